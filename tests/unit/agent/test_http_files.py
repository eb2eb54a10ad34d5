"""Files API path safety and Mesos read/browse semantics (pure functions + the aiohttp app)."""
from __future__ import annotations

import asyncio
import os
from pathlib import Path

import aiohttp
import pytest
from aiohttp.test_utils import TestClient, TestServer

from mesos_agent.http import FOLLOW, PathError, browse, make_app, read_file, resolve_sandbox_path


@pytest.fixture
def work(tmp_path: Path) -> Path:
    box = tmp_path / "slaves" / "A1" / "frameworks" / "F1" / "executors" / "t1" / "runs" / "r1"
    box.mkdir(parents=True)
    (box / "stdout").write_text("hello world\n")
    (tmp_path / "secret").write_text("no")
    os.symlink(tmp_path / "secret", box / "escape")
    os.symlink(box / "stdout", box / "inside")
    return tmp_path


def box(work: Path) -> Path:
    return work / "slaves" / "A1" / "frameworks" / "F1" / "executors" / "t1" / "runs" / "r1"


def status(work: Path, path: str | None) -> int:
    try:
        resolve_sandbox_path(str(work), path)
        return 200
    except PathError as e:
        return e.status


def test_path_safety(work: Path) -> None:
    b = box(work)
    assert status(work, str(b / "stdout")) == 200
    assert status(work, str(b / "inside")) == 200  # symlink staying inside
    assert status(work, str(b / "escape")) == 403  # symlink leading out
    assert status(work, str(b.joinpath(*[".."] * 8, "secret"))) == 403
    assert status(work, str(work / "secret")) == 403
    assert status(work, "/etc/passwd") == 403
    assert status(work, str(work / "meta")) == 403
    assert status(work, str(b / "nope")) == 404
    assert status(work, None) == 400 and status(work, "") == 400
    assert status(work, "a\x00b") == 400
    assert status(work, "/slaves/A1/frameworks/F1/executors/t1/runs/r1/stdout") == 200  # virtual
    assert status(work, "/slaves/../secret") == 403


def test_read_semantics(work: Path) -> None:
    f = str(box(work) / "stdout")
    assert read_file(f, -1, None) == {"data": "", "offset": 12}
    assert read_file(f, 0, None) == {"data": "hello world\n", "offset": 0}
    assert read_file(f, 6, 5) == {"data": "world", "offset": 6}
    assert read_file(f, 100, None) == {"data": "", "offset": 12}
    with pytest.raises(PathError, match="Negative offset"):
        read_file(f, -2, None)
    with pytest.raises(PathError, match="directory"):
        read_file(str(box(work)), 0, None)


def test_browse_lists_entries(work: Path) -> None:
    shown = str(box(work))
    names = {e["path"].rsplit("/", 1)[1]: e for e in browse(shown, shown)}
    assert set(names) == {"stdout", "escape", "inside"}
    assert names["stdout"]["size"] == 12 and names["stdout"]["mode"].startswith("-rw")


def test_endpoints(work: Path) -> None:
    state = {"id": "A1", "frameworks": []}

    async def go() -> None:
        client = TestClient(TestServer(make_app(lambda: state, str(work))))
        await client.start_server()
        try:
            f = str(box(work) / "stdout")
            for path in ("/state", "/state.json", "/slave(1)/state", "/slave(1)/state.json"):
                r = await client.get(path)
                assert r.status == 200 and await r.json() == state
            r = await client.get("/state", params={"jsonp": "cb"})
            assert (await r.text()).startswith("cb(")
            assert (await client.get("/health")).status == 200
            r = await client.get("/files/read", params={"path": f, "offset": "0"})
            assert await r.json() == {"data": "hello world\n", "offset": 0}
            r = await client.get("/files/read", params={"path": f})
            assert await r.json() == {"data": "", "offset": 12}
            assert (await client.get("/files/read")).status == 400
            bad_offset = {"path": f, "offset": "x"}
            assert (await client.get("/files/read", params=bad_offset)).status == 400
            assert (await client.get("/files/read", params={"path": "/etc/passwd",
                                                            "offset": "0"})).status == 403
            assert (await client.get("/files/read", params={"path": f + "x"})).status == 404
            r = await client.get("/files/browse", params={"path": str(box(work))})
            assert r.status == 200 and len(await r.json()) == 3
            r = await client.get("/files/download", params={"path": f})
            assert r.status == 200 and await r.text() == "hello world\n"
        finally:
            await client.close()

    asyncio.run(go())


def test_follow_streams_growth_until_the_task_ends(work: Path) -> None:
    """`follow=true`: 200 followers of one growing file each get every byte in order from one
    ticker; all end once the task is terminal; a client that leaves is dropped."""
    live = {"frameworks": [{"executors": [{"directory": str(box(work)),
                                           "tasks": [{"state": "TASK_RUNNING"}]}]}]}
    state = dict(live)
    f = box(work) / "stdout"

    async def go() -> None:
        import mesos_agent.follow as follow
        follow.LIVENESS_EVERY = 0.0  # see the task end at the next tick (restored below)
        app = make_app(lambda: state, str(work))
        client = TestClient(TestServer(app), connector=aiohttp.TCPConnector(limit=0))
        await client.start_server()
        try:
            base = {"path": str(f), "follow": "true"}
            assert (await client.get("/files/read", params={**base, "path": str(box(work))})
                    ).status == 400
            rs = [await client.get("/files/read", params={**base, "offset": "6"})
                  for _ in range(200)]
            assert all(r.status == 200 and r.headers["X-Offset"] == "6" for r in rs)
            assert rs[0].headers["Access-Control-Allow-Origin"] == "*"
            assert [await r.content.readexactly(6) for r in rs] == [b"world\n"] * 200
            quitter = await client.get("/files/read", params={**base, "offset": "-1"})
            quitter.close()  # goes away while following
            for i in range(3):
                with open(f, "a") as out:
                    out.write(f"line {i}\n")
                await asyncio.sleep(0.05)
            got = [await r.content.readexactly(21) for r in rs]
            assert got == [b"line 0\nline 1\nline 2\n"] * 200
            with open(f, "a") as out:
                out.write("last words\n")
            state["frameworks"] = []  # the task ended: streams drain and end
            rest = await asyncio.wait_for(asyncio.gather(*(r.read() for r in rs)), 10)
            assert rest == [b"last words\n"] * 200
            for _ in range(100):
                if not app[FOLLOW].followers:
                    break
                await asyncio.sleep(0.05)
            assert app[FOLLOW].followers == 0
        finally:
            follow.LIVENESS_EVERY = 1.0
            await client.close()

    asyncio.run(go())

