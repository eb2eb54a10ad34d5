"""The fetcher's IO edge against a real aiohttp server on a free port: unpacking that cannot
escape the sandbox, the cache's eviction and sharing of one download, bypass of what does
not fit, and errors that name the URI."""
from __future__ import annotations

import asyncio
import gzip
import io
import tarfile
import zipfile
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from mesos_agent.fetcher import Fetcher, FetchError
from mesos_common.messages import URI
from tests.helpers import wait_for_async


def _tar(members: list[tarfile.TarInfo | tuple[str, bytes]]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for m in members:
            if isinstance(m, tarfile.TarInfo):
                tar.addfile(m)
            else:
                info = tarfile.TarInfo(m[0])
                info.size = len(m[1])
                tar.addfile(info, io.BytesIO(m[1]))
    return buf.getvalue()


def _link(name: str, target: str) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.linkname = tarfile.SYMTYPE, target
    return info


def _zip(name: str, body: bytes) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr(name, body)
    return buf.getvalue()


FILES = {
    "/ok.tgz": _tar([("a/one.txt", b"1")]),
    "/dotdot.tar.gz": _tar([("../escaped.txt", b"x")]),
    "/absolute.tgz": _tar([("/tmp/corral-absolute-escape.txt", b"x")]),
    "/link-out.tgz": _tar([_link("out", "/etc"), ("out/corral-escape.txt", b"x")]),
    "/dotdot.zip": _zip("../escaped.txt", b"x"),
    "/notes.txt.gz": gzip.compress(b"gunzipped"),
    "/broken.tgz": b"not a tarball",
    "/a.bin": b"a" * 400, "/b.bin": b"b" * 400, "/c.bin": b"c" * 400, "/big.bin": b"z" * 2000,
}


GATE = web.AppKey("gate", asyncio.Event)


def run(tmp_path: Path, body: Callable[[Fetcher, str, dict[str, int], web.Application],
                                       Awaitable[Any]], cache_size: int = 1000,
        stall_timeout: float = 60.0) -> Any:
    """`body(fetcher, base url, hits per path, app)` with a server and a fetcher of its own."""
    hits: dict[str, int] = {}

    async def serve(request: web.Request) -> web.StreamResponse:
        hits[request.path] = hits.get(request.path, 0) + 1
        if request.path == "/slow.bin":
            await request.app[GATE].wait()
            return web.Response(body=b"s" * 100)
        data = FILES.get(request.path)
        return web.Response(body=data) if data is not None else web.Response(status=404)

    async def main() -> Any:
        app = web.Application()
        app[GATE] = asyncio.Event()
        app.router.add_get("/{name:.*}", serve)
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        base = f"http://127.0.0.1:{runner.addresses[0][1]}"
        fetcher = Fetcher(str(tmp_path / "cache"), cache_size, stall_timeout=stall_timeout)
        try:
            return await body(fetcher, base, hits, app)
        finally:
            await fetcher.close()
            await runner.cleanup()
    return asyncio.run(main())


@pytest.mark.parametrize("name", ["dotdot.tar.gz", "link-out.tgz", "dotdot.zip",
                                  "broken.tgz"])
def test_unpacking_never_writes_outside_the_sandbox(tmp_path: Path, name: str) -> None:
    box = tmp_path / "runs" / "box"

    async def body(f: Fetcher, base: str, hits: dict, app: Any) -> None:
        with pytest.raises(FetchError, match=f"{base}/{name}"):
            await f.fetch("t", [URI(f"{base}/{name}")], str(box))
    run(tmp_path, body)
    assert not (tmp_path / "runs" / "escaped.txt").exists()
    assert not Path("/etc/corral-escape.txt").exists()
    assert "Failed to extract '" in (box / "stderr").read_text()


def test_absolute_member_names_land_inside_the_sandbox(tmp_path: Path) -> None:
    async def body(f: Fetcher, base: str, hits: dict, app: Any) -> None:
        await f.fetch("t", [URI(f"{base}/absolute.tgz")], str(tmp_path / "box"))
    run(tmp_path, body)
    assert (tmp_path / "box/tmp/corral-absolute-escape.txt").read_text() == "x"
    assert not Path("/tmp/corral-absolute-escape.txt").exists()


def test_gz_zip_and_errors(tmp_path: Path) -> None:
    box = tmp_path / "box"

    async def body(f: Fetcher, base: str, hits: dict, app: Any) -> None:
        await f.fetch("t", [URI(f"{base}/notes.txt.gz"), URI(f"{base}/ok.tgz", extract=False),
                            URI(f"{base}/a.bin", output_file="sub/dir/a")], str(box))
        for uri in (f"{base}/missing.bin", f"file://{tmp_path}/missing.bin", "ftp://h/x"):
            with pytest.raises(FetchError, match=uri):
                await f.fetch("t", [URI(uri)], str(box))
    run(tmp_path, body)
    assert (box / "notes.txt").read_text() == "gunzipped"
    assert (box / "ok.tgz").is_file() and not (box / "a").exists()
    assert (box / "sub/dir/a").read_bytes() == b"a" * 400


def test_cache_evicts_lru_shares_one_download_and_bypasses_what_does_not_fit(
        tmp_path: Path) -> None:
    async def body(f: Fetcher, base: str, hits: dict, app: Any) -> None:
        def fetch(name: str, box: str) -> Awaitable[None]:
            return f.fetch(box, [URI(f"{base}/{name}", cache=True)], str(tmp_path / box))
        # three tasks want one URI at once, the agent's first cached fetches: one download
        waiting = [asyncio.ensure_future(fetch("slow.bin", f"s{i}")) for i in range(3)]
        await wait_for_async(lambda: hits.get("/slow.bin"), what="the download started")
        await asyncio.sleep(0.2)  # 0.2 s for the other two to join it (nothing says they did)
        app[GATE].set()
        await asyncio.gather(*waiting)
        assert hits == {"/slow.bin": 1}
        await fetch("a.bin", "1")
        await fetch("b.bin", "2")
        await fetch("a.bin", "3")  # a: hit, now the most recently used
        await fetch("c.bin", "4")  # 1300 > 1000: slow.bin and b (least recently used) go
        await fetch("a.bin", "5")
        await fetch("b.bin", "6")  # downloaded again (c goes)
        await fetch("big.bin", "7")  # larger than the cache: straight to the sandbox
        assert hits == {"/slow.bin": 1, "/a.bin": 1, "/b.bin": 2, "/c.bin": 1, "/big.bin": 1}
        assert f.book.used() <= 1000
    run(tmp_path, body)
    for box, name, size in (("1", "a.bin", 400), ("3", "a.bin", 400), ("6", "b.bin", 400),
                            ("s2", "slow.bin", 100)):
        assert (tmp_path / box / name).read_bytes() == name[0].encode() * size
    assert (tmp_path / "7" / "big.bin").stat().st_size == 2000
    cached = sorted(p.read_bytes()[:1] for p in (tmp_path / "cache").iterdir())
    assert cached == [b"a", b"b"]  # slow.bin and c.bin evicted, big.bin never cached


def test_a_stalled_download_fails_naming_its_uri(tmp_path: Path) -> None:
    async def body(f: Fetcher, base: str, hits: dict, app: Any) -> None:
        with pytest.raises(FetchError, match=f"{base}/slow.bin.*Timeout"):
            await f.fetch("t", [URI(f"{base}/slow.bin")], str(tmp_path / "box"))
        app[GATE].set()  # the server's handler may end
    run(tmp_path, body, stall_timeout=0.3)
