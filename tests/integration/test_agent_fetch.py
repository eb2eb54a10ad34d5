"""The fetcher with the real agent: URIs served by a real HTTP server in the test (free port)
land in the sandbox before the task starts - unpacked, executable, under their destPath,
through the cache - and a URI that cannot be fetched fails the task with its URL."""
from __future__ import annotations

import io
import tarfile
import threading
import zipfile
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from mesos_common import task_states as ts
from mesos_common.messages import URI, CommandInfo, KillTask, RunTask, TaskInfo
from mesos_common.resources import Resources
from tests.helpers import wait_for
from tests.integration.test_agent_process import (
    FW,
    AgentProcess,
    FakeMaster,
    expect_states,
    register,
    task_json,
)


def _tarball() -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        script = (b'#!/bin/sh\n'
                  b'echo "hello from the tarball: $(cat "$(dirname "$0")/../data/word.txt")"\n')
        for name, body, mode in (("app/bin/hello", script, 0o755),
                                 ("app/data/word.txt", b"corral", 0o644)):
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(body), mode
            tar.addfile(info, io.BytesIO(body))
    return buf.getvalue()


def _zip() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("notes/readme.txt", "zipped text")
    return buf.getvalue()


class Files:
    """A real HTTP server on a free port: fixed files, request counts per path, and a path
    whose answer waits until the test releases it."""

    def __init__(self) -> None:
        self.files = {"/app.tar.gz": _tarball(), "/notes.zip": _zip()}
        self.hits: dict[str, int] = {}
        self.release = threading.Event()
        files = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (http.server's name)
                files.hits[self.path] = files.hits.get(self.path, 0) + 1
                if self.path.startswith("/slow.tar.gz"):
                    files.release.wait(30)
                    body: bytes | None = files.files["/app.tar.gz"]
                else:
                    body = files.files.get(self.path)
                if body is None:
                    self.send_error(404, "Not Found")
                    return
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)


@pytest.fixture
def files() -> Iterator[Files]:
    f = Files()
    yield f
    f.close()


def _run(master: FakeMaster, task_id: str, command: str, *uris: URI) -> None:
    master.send(RunTask(FW, TaskInfo(name=task_id, task_id=task_id, agent_id="A1",
                                     resources=Resources.parse("cpus:0.1;mem:32"),
                                     command=CommandInfo(command, uris=uris))))


def _sandbox_file(agent: AgentProcess, task_id: str, name: str) -> str:
    return (Path(task_json(agent, task_id)["directory"]) / name).read_text()


@pytest.mark.slow
def test_fetch_unpacks_caches_and_fails_with_the_url(
        master: FakeMaster, agent_factory: Callable[..., AgentProcess], files: Files,
        tmp_path: Path) -> None:
    local = tmp_path / "tool.sh"
    local.write_text("#!/bin/sh\necho tool ran\n")
    agent = agent_factory()
    register(master, agent)

    # a tarball unpacked and used by the command; a zip, a local file made executable under
    # its destPath, all in one sandbox; the fetcher's log in stderr
    _run(master, "t1", "./app/bin/hello && cat notes/readme.txt && ./bin/tool",
         URI(f"{files.url}/app.tar.gz"), URI(f"{files.url}/notes.zip"),
         URI(f"file://{local}", executable=True, output_file="bin/tool"))
    *_, done = expect_states(master, "t1", [ts.STARTING, ts.RUNNING, ts.FINISHED])
    assert done.message == "Command exited with status 0"
    assert _sandbox_file(agent, "t1", "stdout") == (
        "hello from the tarball: corral\nzipped texttool ran\n")
    assert (Path(task_json(agent, "t1")["directory"]) / "app.tar.gz").is_file()  # kept
    assert f"Fetching URI '{files.url}/app.tar.gz'" in _sandbox_file(agent, "t1", "stderr")

    # cached: the second task's copy comes from the agent's cache, not from the server
    for tid in ("c1", "c2"):
        _run(master, tid, "./app/bin/hello", URI(f"{files.url}/app.tar.gz", cache=True))
        expect_states(master, tid, [ts.STARTING, ts.RUNNING, ts.FINISHED])
        assert _sandbox_file(agent, tid, "stdout") == "hello from the tarball: corral\n"
    assert files.hits["/app.tar.gz"] == 2  # t1 (not cached) and c1; c2 used the cache
    assert "Using the cached copy" in _sandbox_file(agent, "c2", "stderr")
    assert not (Path(task_json(agent, "c2")["directory"]) / "app.tar.gz").exists()

    # a 404: TASK_FAILED straight from STAGING, the URL in the message; the task never ran
    _run(master, "bad", "echo never", URI(f"{files.url}/missing.tgz"))
    [failed] = expect_states(master, "bad", [ts.FAILED])
    assert failed.reason == "REASON_FETCHER_FAILED", failed
    assert f"{files.url}/missing.tgz" in failed.message and "404" in failed.message
    assert not (Path(task_json(agent, "bad")["directory"]) / "stdout").exists()
    assert "404" in _sandbox_file(agent, "bad", "stderr")


@pytest.mark.slow
def test_a_slow_fetch_does_not_hold_other_launches(
        master: FakeMaster, agent_factory: Callable[..., AgentProcess], files: Files) -> None:
    agent = agent_factory()
    register(master, agent)
    _run(master, "slow", "./app/bin/hello", URI(f"{files.url}/slow.tar.gz"))
    _run(master, "doomed", "echo ran", URI(f"{files.url}/slow.tar.gz?doomed"))
    _run(master, "quick", "sleep 60")
    expect_states(master, "quick", [ts.STARTING, ts.RUNNING])  # while slow's GET hangs
    assert task_json(agent, "slow")["state"] == ts.STAGING
    wait_for(lambda: files.hits.get("/slow.tar.gz") == 1 and
             files.hits.get("/slow.tar.gz?doomed") == 1, what="both GETs at the server")
    master.send(KillTask("F1", "doomed"))  # killed while fetching: it never runs
    [killed] = expect_states(master, "doomed", [ts.KILLED])
    assert killed.reason == "REASON_TASK_KILLED_DURING_LAUNCH", killed
    files.release.set()
    expect_states(master, "slow", [ts.STARTING, ts.RUNNING, ts.FINISHED])
    assert _sandbox_file(agent, "slow", "stdout") == "hello from the tarball: corral\n"
    wait_for(lambda: "fetching stopped" in _sandbox_file(agent, "doomed", "stderr"),
             what="the doomed task's fetch stopped")
    assert not (Path(task_json(agent, "doomed")["directory"]) / "stdout").exists()
