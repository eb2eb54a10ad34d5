"""The agent's launch log: what is live after launches, ends, torn lines and compaction."""
from __future__ import annotations

import os
import subprocess
from pathlib import Path

import psutil
import pytest

from mesos_common import launch_log
from mesos_common.launch_log import Launch, LaunchLog


def e(i: int, sandbox: str = "box") -> Launch:
    return Launch(f"t{i}", f"/{sandbox}/{i}", 1000 + i, 1.5e9 + i)


def test_launched_then_ended_leaves_the_rest(tmp_path: Path) -> None:
    log = LaunchLog(str(tmp_path))
    log.launched([e(1), e(2), e(3)])
    assert not log.ended(e(2), live=2)
    log.ended(Launch("t3", "/box/3", 1003, 99.0), live=2)  # another process: not t3's
    assert launch_log.read(str(tmp_path)) == {("t1", "/box/1"): e(1), ("t3", "/box/3"): e(3)}
    assert launch_log.task_pids(str(tmp_path)) == {"t1": 1001, "t3": 1003}


def test_a_relaunch_in_the_same_sandbox_replaces_the_old_entry(tmp_path: Path) -> None:
    log = LaunchLog(str(tmp_path))
    log.launched([e(1)])
    again = Launch("t1", "/box/1", 2001, 1.6e9)
    log.launched([again])
    assert launch_log.read(str(tmp_path)) == {("t1", "/box/1"): again}


def test_torn_and_foreign_lines_are_skipped(tmp_path: Path) -> None:
    LaunchLog(str(tmp_path)).launched([e(1)])
    with open(launch_log.log_path(str(tmp_path)), "ab") as f:
        f.write(b'not json\n["L", "x"]\n["L",1002,1.5e9,"t2","/box/2"]\n["L",10')
    log = LaunchLog(str(tmp_path))
    assert set(log.found) == {("t1", "/box/1"), ("t2", "/box/2")}
    log.launched([e(3)])  # appended after the torn line: its own line
    assert ("t3", "/box/3") in launch_log.read(str(tmp_path))


def test_compaction_keeps_only_the_live(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(launch_log, "COMPACT_AT", 3)
    log = LaunchLog(str(tmp_path))
    log.launched([e(i) for i in range(5)])
    assert [log.ended(e(i), live=4 - i) for i in range(3)] == [False, False, True]
    log.compact([e(3), e(4)])
    path = launch_log.log_path(str(tmp_path))
    assert len(Path(path).read_bytes().splitlines()) == 2
    log.launched([e(7)])  # the writer goes on appending to the new file
    assert set(launch_log.task_pids(str(tmp_path))) == {"t3", "t4", "t7"}
    assert LaunchLog(str(tmp_path))._ended == 0  # nothing left to drop


def test_a_restarted_writer_counts_what_a_rewrite_would_drop(tmp_path: Path) -> None:
    log = LaunchLog(str(tmp_path))
    log.launched([e(1), e(2)])
    log.ended(e(1), live=1)
    log.close()
    assert LaunchLog(str(tmp_path))._ended == 2  # t1's two lines


def test_start_time_is_psutils_and_tells_a_reused_pid() -> None:
    proc = subprocess.Popen(["sleep", "30"])
    try:
        started = launch_log.start_time(proc.pid)
        assert started is not None
        assert started == pytest.approx(psutil.Process(proc.pid).create_time(), abs=0.02)
        assert launch_log.is_alive(Launch("t", "/b", proc.pid, started))
        assert not launch_log.is_alive(Launch("t", "/b", proc.pid, started - 10))
    finally:
        proc.kill()
        proc.wait()
    assert launch_log.start_time(proc.pid) is None or proc.pid == os.getpid()
