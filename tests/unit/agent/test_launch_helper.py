"""The launch helper process on its own: its protocol, bad requests, and hanging up."""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgpack
import psutil
import pytest

from mesos_agent.containerizer.batch import LaunchSpec
from mesos_agent.containerizer.launch_helper import EXITED, LAUNCH, STARTED
from mesos_common import launch_log


class Peer:
    """The agent's side of a helper, by hand: blocking socket, msgpack both ways."""

    def __init__(self, work: Path) -> None:
        self.work = work
        ours, theirs = socket.socketpair()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "mesos_agent.containerizer.launch_helper",
             str(theirs.fileno()), '["none"]', launch_log.log_path(str(work))],
            pass_fds=(theirs.fileno(),), stderr=subprocess.PIPE, text=True)
        theirs.close()
        ours.settimeout(20)
        self.sock = ours
        self.unpacker = msgpack.Unpacker(raw=False)

    def send(self, msg: Any) -> None:
        self.sock.sendall(msgpack.packb(msg))

    def recv(self) -> Any:
        while True:
            for msg in self.unpacker:
                return msg
            data = self.sock.recv(65536)
            assert data, "the helper hung up"
            self.unpacker.feed(data)

    def spec(self, tid: str, argv: list[str]) -> list:
        box = self.work / tid
        return LaunchSpec(tid, str(box), argv[0], argv, {"PATH": os.environ["PATH"]},
                          0.1, 0.0).as_list()


@pytest.fixture
def peer(tmp_path: Path) -> Iterator[Peer]:
    (tmp_path / "meta").mkdir()
    p = Peer(tmp_path)
    yield p
    p.sock.close()
    try:
        p.proc.wait(10)
    finally:
        if p.proc.poll() is None:
            p.proc.kill()
            p.proc.wait()


def test_a_batch_is_answered_per_task_then_exits_are_reported(peer: Peer) -> None:
    peer.send([LAUNCH, 7, [peer.spec("ok", ["sh", "-c", "exit 5"]),
                           peer.spec("bad", ["/no/such/program"])]])
    kind, batch, (ok, bad) = peer.recv()
    assert (kind, batch) == (STARTED, 7)
    pid, started = ok
    assert isinstance(pid, int) and started > 0
    assert isinstance(bad, str) and "/no/such/program" in bad
    assert peer.recv() == [EXITED, [[pid, 5]]]
    assert (peer.work / "ok" / "stdout").exists()  # its sandbox and output files
    logged = launch_log.read(str(peer.work))
    assert [e.pid for e in logged.values()] == [pid]  # logged before it answered


def test_bad_requests_are_logged_and_the_helper_goes_on(peer: Peer) -> None:
    peer.send(["no such request"])
    peer.send([LAUNCH, 1, "not a list of specs"])
    peer.send([LAUNCH, 2, [["too", "short"]]])
    peer.send([LAUNCH, 3, [peer.spec("t", ["true"])]])
    kind, batch, [[pid, _]] = peer.recv()
    assert (kind, batch) == (STARTED, 3)
    assert peer.recv() == [EXITED, [[pid, 0]]]
    peer.sock.close()
    assert peer.proc.wait(10) == 0
    err = peer.proc.stderr.read() if peer.proc.stderr else ""
    assert "unknown request 'no such request'" in err
    assert err.count("malformed request") == 2


def test_the_helper_exits_when_the_agent_hangs_up_and_leaves_its_tasks_running(
        peer: Peer) -> None:
    peer.send([LAUNCH, 1, [peer.spec("long", ["sleep", "30"])]])
    _, _, [[pid, _]] = peer.recv()
    try:
        peer.sock.close()
        assert peer.proc.wait(10) == 0
        assert psutil.Process(pid).status() != psutil.STATUS_ZOMBIE  # orphaned, running
    finally:
        os.kill(pid, signal.SIGKILL)


def test_wrong_arguments_exit_2_with_a_message() -> None:
    run = [sys.executable, "-m", "mesos_agent.containerizer.launch_helper"]
    usage = subprocess.run(run, capture_output=True, text=True)
    assert usage.returncode == 2 and "usage:" in usage.stderr
    no_fd = subprocess.run(run + ["99", '["none"]', "/tmp/x"], capture_output=True, text=True)
    assert no_fd.returncode == 2 and "Bad file descriptor" in no_fd.stderr
    ours, theirs = socket.socketpair()
    with ours, theirs:
        bad = subprocess.run(run + [str(theirs.fileno()), '["no-such-isolator"]', "/tmp/x"],
                             pass_fds=(theirs.fileno(),), capture_output=True, text=True)
    assert bad.returncode == 2 and "unknown isolator 'no-such-isolator'" in bad.stderr
