"""The agent's launch log: one line per task process it starts, one per process that ends.

    <work_dir>/meta/launched      ["L", pid, start_time, task_id, sandbox]   started
                                  ["E", pid, start_time, task_id, sandbox]   ended

It answers "which processes did this agent start?" for a restarted agent whose checkpoint
missed a launch (kill -9 between the spawn and the group commit), and for the tools that
sweep up after an agent (`mesos_common.daemons`, tests, benchmarks). A pid names a process
only together with its start time (pids are reused), so both are written and both are
checked before anything is signalled.

Appending a line is one `write` to a file the agent keeps open. It replaced a pid file per
task: that cost a directory and a file (two inode allocations, a rename) on every launch,
which on a busy ext4 was a third of the agent's launch time. The log is rewritten with only
the live entries when the agent starts, and whenever ended entries outnumber live ones
(`compact`). A torn last line (kill -9 mid-write) is skipped when read.
"""
from __future__ import annotations

import json
import os
from collections.abc import Iterable

from attrs import frozen

LAUNCHED = "L"
ENDED = "E"
LOG_NAME = "launched"
START_TIME_SLACK = 0.05  # seconds: start times come from clock ticks
COMPACT_AT = 10_000  # ended entries before a rewrite is considered


@frozen
class Launch:
    task_id: str
    sandbox: str
    pid: int
    start_time: float


def log_path(work_dir: str) -> str:
    return os.path.join(work_dir, "meta", LOG_NAME)


def _line(kind: str, entry: Launch) -> bytes:
    return (json.dumps([kind, entry.pid, entry.start_time, entry.task_id, entry.sandbox],
                       separators=(",", ":")) + "\n").encode()


def launched_lines(entries: Iterable[Launch]) -> bytes:
    return b"".join(_line(LAUNCHED, e) for e in entries)


def open_append(path: str) -> int:
    """An fd that appends to the log at `path` (each write of whole lines is one append:
    the agent and its launch helpers write to the same file through fds of their own)."""
    return os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o644)


def read(work_dir: str) -> dict[tuple[str, str], Launch]:
    """The launches that have not ended, by (task id, sandbox): the last word per process."""
    return _read(log_path(work_dir))[0]


def _read(path: str) -> tuple[dict[tuple[str, str], Launch], int, bool]:
    """(live launches, number of lines read, whether the last line is torn: no newline)."""
    live: dict[tuple[str, str], Launch] = {}
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError:
        return live, 0, False
    lines = data.splitlines()
    for raw in lines:
        try:
            kind, pid, started, task_id, sandbox = json.loads(raw)
            entry = Launch(str(task_id), str(sandbox), int(pid), float(started))
        except (ValueError, TypeError):
            continue  # a torn or foreign line
        key = (entry.task_id, entry.sandbox)
        if kind == LAUNCHED:
            live[key] = entry
        elif kind == ENDED and live.get(key) == entry:
            del live[key]
    return live, len(lines), bool(data) and not data.endswith(b"\n")


_boot_time: float | None = None
_ticks = os.sysconf("SC_CLK_TCK")


def start_time(pid: int) -> float | None:
    """When the process started (seconds since the epoch; psutil's `create_time`), None when
    it is gone. Read straight from /proc: a launch helper calls it per task."""
    global _boot_time
    try:
        fd = os.open(f"/proc/{pid}/stat", os.O_RDONLY | os.O_CLOEXEC)  # no file object:
        try:  # 3 syscalls, not 6 (fstat, isatty), at ~1/3 of the CPU
            stat = os.read(fd, 4096)  # one line of < 1.2 KB, read whole by one read
        finally:
            os.close(fd)
        if _boot_time is None:
            with open("/proc/stat", "rb") as f:
                _boot_time = float(next(line.split()[1] for line in f
                                        if line.startswith(b"btime")))
    except (OSError, StopIteration, ValueError):
        return None
    # Field 22 (starttime); the command name in field 2 may hold spaces and parentheses.
    fields = stat[stat.rfind(b")") + 2:].split()
    try:
        return _boot_time + int(fields[19]) / _ticks
    except (IndexError, ValueError):
        return None


def task_pids(work_dir: str) -> dict[str, int]:
    """Task id -> process-group id of the launches that have not ended (tests, tools)."""
    return {e.task_id: e.pid for e in read(work_dir).values()}


def is_alive(entry: Launch) -> bool:
    """Is `entry.pid` still the process that was launched (not a reused pid)?"""
    now = start_time(entry.pid)
    return now is not None and abs(now - entry.start_time) < START_TIME_SLACK


class LaunchLog:
    """The agent's writer (on its event loop; the launch helpers append their launches
    through `open_append` fds of their own). `found`: what the log held when it was opened
    (a previous agent process's launches)."""

    def __init__(self, work_dir: str) -> None:
        self.path = log_path(work_dir)
        os.makedirs(os.path.dirname(self.path), exist_ok=True)
        self.found, lines, torn = _read(self.path)
        self._fd = open_append(self.path)
        self._ended = lines - len(self.found)  # lines a rewrite would drop
        if torn:  # end the torn line, or the next entry would join it
            os.write(self._fd, b"\n")

    def launched(self, entries: Iterable[Launch]) -> None:
        data = launched_lines(entries)
        if data and self._fd >= 0:
            os.write(self._fd, data)

    def ended(self, entry: Launch, live: int) -> bool:
        """Record that `entry` ended; True when the log should be compacted (`live` entries
        remain, and ended ones outnumber them)."""
        if self._fd < 0:
            return False
        os.write(self._fd, _line(ENDED, entry))
        self._ended += 1
        return self._ended >= max(COMPACT_AT, live)

    def compact(self, live: Iterable[Launch]) -> None:
        """Rewrite the log with only `live` (atomically: a crash leaves the old or the new)."""
        if self._fd < 0:
            return
        tmp = f"{self.path}.tmp"
        with open(tmp, "wb") as f:
            f.write(launched_lines(live))
        os.replace(tmp, self.path)
        os.close(self._fd)
        self._fd = open_append(self.path)
        self._ended = 0

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1
