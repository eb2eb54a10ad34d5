"""Checkpoint files under `<work_dir>/meta/checkpoint` (runtime IO; the core only emits
`Checkpoint(record)` effects).

    meta/checkpoint/agent_id              the agent id (msgpack AgentIdRecord)
    meta/checkpoint/tasks/<task id>       one TaskCheckpoint per live task
    meta/checkpoint/log                   records written since the files were last updated

`write_batch` is the group commit the runtime uses: the whole batch is appended to `log` as
one frame (length, crc32, msgpack of [file, content-or-nil] pairs) and made durable with one
`fdatasync` - a flush costs milliseconds, and one append per batch (rather than a file write,
rename and sync per record) is what lets a busy agent checkpoint every update. `load` reads
the files and replays the log over them; a torn last frame (a crash mid-append: never
reported durable) is dropped and cut off. Once the log passes COMPACT_BYTES, the latest
content of every file it holds is written into the files - each atomically: temp file,
one `syncfs` (per-file fsync where that is missing), rename, directory fsync - and only then
is the log emptied, so a crash at any point leaves old or new state, never a torn one.
Unreadable files are reported and skipped rather than stopping the agent.
"""
from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import posixpath
import struct
import zlib
from collections.abc import Callable, Sequence
from typing import Any, TypeVar
from urllib.parse import quote, unquote

import attrs
import msgpack

from mesos_agent.recovery import AgentIdRecord, TaskCheckpoint, TaskRemoved, record_file
from mesos_common import codec

log = logging.getLogger(__name__)
_R = TypeVar("_R")  # the record type `_unpack` rebuilds

DIR = posixpath.join("meta", "checkpoint")
TMP_SUFFIX = ".tmp"
LOG = "log"
COMPACT_BYTES = 8 << 20  # ~10k task records; compaction rewrites only the files it holds
_FRAME = struct.Struct("<II")  # payload length, crc32 of the payload
AGENT_ID = "agent_id"
TASKS = "tasks"


def write_atomically(path: str, data: bytes) -> None:
    """tmp + fsync + rename + fsync(dir): the file is either old or new after any crash."""
    directory = os.path.dirname(path)
    os.makedirs(directory, exist_ok=True)
    tmp = f"{path}{TMP_SUFFIX}"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
    dfd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(dfd)
    finally:
        os.close(dfd)


def _syncfs_fn() -> Callable[[int], int] | None:
    try:
        fn = ctypes.CDLL(None, use_errno=True).syncfs
    except (OSError, AttributeError):
        return None
    fn.argtypes = [ctypes.c_int]
    return fn


_SYNCFS = _syncfs_fn()


def _fsync_path(path: str) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class CheckpointStore:
    """The agent's checkpoint: files plus an append-only log (see the module docstring).
    `write_batch` and `clear` are called by one thread at a time."""

    def __init__(self, work_dir: str, compact_bytes: int = COMPACT_BYTES) -> None:
        self.root = posixpath.join(work_dir, DIR)
        self.tasks_dir = posixpath.join(self.root, TASKS)
        self.log_path = posixpath.join(self.root, LOG)
        self.compact_bytes = compact_bytes
        self._log_fd: int | None = None
        self._log_size = 0
        self._in_log: dict[str, bytes | None] = {}  # latest content per file the log holds
        self._packer = _TaskPacker()

    def _rel(self, record: AgentIdRecord | TaskCheckpoint | TaskRemoved
             ) -> tuple[str, bytes | None]:
        """(file relative to the root, its new content; None: removed). Which file is
        `recovery.record_file`'s rule, which the runtime also uses to coalesce records."""
        if not isinstance(record, (AgentIdRecord, TaskCheckpoint, TaskRemoved)):
            raise TypeError(f"not a checkpoint record: {record!r}")
        task_id = record_file(record)
        rel = AGENT_ID if task_id is None else posixpath.join(TASKS, quote(task_id, safe=""))
        if isinstance(record, TaskRemoved):
            self._packer.forget(record.task_id)
            return rel, None
        if isinstance(record, TaskCheckpoint):
            return rel, self._packer.pack(record)
        return rel, _pack(record)

    def write(self, record: AgentIdRecord | TaskCheckpoint | TaskRemoved) -> None:
        self.write_batch([record])

    def write_batch(self, records: Sequence[AgentIdRecord | TaskCheckpoint | TaskRemoved]) -> None:
        """Apply `records` in order, durably, with one append and one flush for the whole
        batch (the last record for a file wins)."""
        if not records:
            return
        pairs = [self._rel(r) for r in records]
        payload = msgpack.packb(pairs, use_bin_type=True)
        fd = self._open_log()
        frame = _FRAME.pack(len(payload), zlib.crc32(payload)) + payload
        view = memoryview(frame)
        try:
            while view:
                view = view[os.write(fd, view):]
            os.fdatasync(fd)
        except OSError:
            # A full disk: cut the torn frame off (shrinking needs no space), or frames
            # appended later would sit behind it, unreadable at recovery.
            os.ftruncate(fd, self._log_size)
            raise
        self._log_size += len(frame)
        for rel, data in pairs:
            self._in_log[rel] = data
        if self._log_size >= self.compact_bytes:
            self.compact()

    def compact(self) -> None:
        """Write what the log holds into the files (durably), then empty the log."""
        if self._in_log:
            self._write_files({posixpath.join(self.root, rel): data
                               for rel, data in self._in_log.items()})
        fd = self._open_log()
        os.ftruncate(fd, 0)
        os.fsync(fd)
        self._log_size = 0
        self._in_log.clear()

    def _open_log(self) -> int:
        """The log, opened for appending once; a torn tail is cut off first, so that new
        frames follow the last whole one."""
        if self._log_fd is not None:
            return self._log_fd
        os.makedirs(self.root, exist_ok=True)
        frames, valid = _read_log(self.log_path)
        fd = os.open(self.log_path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o600)
        try:
            if os.fstat(fd).st_size != valid:
                os.ftruncate(fd, valid)
                os.fsync(fd)
            _fsync_path(self.root)  # the log's own directory entry is durable
        except OSError:
            os.close(fd)
            raise
        self._log_fd, self._log_size = fd, valid
        self._in_log = {rel: data for frame in frames for rel, data in frame}
        return fd

    def _write_files(self, final: dict[str, bytes | None]) -> None:
        """Each file replaced atomically, one flush for all: temp files, syncfs, renames,
        removals, directory fsyncs."""
        os.makedirs(self.tasks_dir, exist_ok=True)
        written: list[tuple[str, str]] = []
        try:
            for path, data in final.items():
                if data is None:
                    continue
                tmp = f"{path}{TMP_SUFFIX}"
                written.append((tmp, path))
                with open(tmp, "wb") as f:
                    f.write(data)
                    if _SYNCFS is None:
                        f.flush()
                        os.fsync(f.fileno())
            if written and _SYNCFS is not None:
                fd = os.open(self.root, os.O_RDONLY)
                try:
                    if _SYNCFS(fd) != 0:
                        raise OSError(ctypes.get_errno(), "syncfs failed")
                finally:
                    os.close(fd)
        except OSError:  # a full disk: the files stay as they were, and so does the log
            for tmp, _ in written:
                with contextlib.suppress(OSError):
                    os.unlink(tmp)
            raise
        for tmp, path in written:
            os.replace(tmp, path)
        for path, data in final.items():
            if data is None:
                try:
                    os.unlink(path)
                except FileNotFoundError:
                    pass
        for d in {posixpath.dirname(p) for p in final}:
            _fsync_path(d)

    def load(self) -> tuple[AgentIdRecord | None, list[TaskCheckpoint]]:
        """(agent id and reservations, task checkpoints): the files with the log replayed over them.
        Leftover temp files (a crash mid-compaction) are removed."""
        contents: dict[str, bytes | None] = {}
        agent_path = posixpath.join(self.root, AGENT_ID)
        contents[AGENT_ID] = _read(agent_path)
        try:
            names = sorted(os.listdir(self.tasks_dir))
        except FileNotFoundError:
            names = []
        for name in names:
            path = posixpath.join(self.tasks_dir, name)
            if name.endswith(TMP_SUFFIX):
                os.unlink(path)
                continue
            contents[posixpath.join(TASKS, name)] = _read(path)
        try:
            os.unlink(agent_path + TMP_SUFFIX)
        except FileNotFoundError:
            pass
        frames, _ = _read_log(self.log_path)
        for frame in frames:
            contents.update(frame)
        agent = _unpack(AgentIdRecord, AGENT_ID, contents.pop(AGENT_ID, None))
        tasks: list[TaskCheckpoint] = []
        for rel in sorted(contents):
            cp = _unpack(TaskCheckpoint, rel, contents[rel])
            name = posixpath.basename(rel)
            if cp is not None and quote(cp.task.task_id, safe="") != name:
                log.error("checkpoint %s holds task %s; skipped", rel, cp.task.task_id)
                cp = None
            if cp is not None:
                tasks.append(cp)
        return agent, tasks

    def clear(self) -> None:
        """Forget everything (a fresh agent)."""
        self._packer = _TaskPacker()
        for name in os.listdir(self.tasks_dir) if os.path.isdir(self.tasks_dir) else []:
            os.unlink(posixpath.join(self.tasks_dir, name))
        try:
            os.unlink(posixpath.join(self.root, AGENT_ID))
        except FileNotFoundError:
            pass
        if self._log_fd is not None or os.path.exists(self.log_path):
            fd = self._open_log()
            os.ftruncate(fd, 0)
            os.fsync(fd)
            self._log_size = 0
            self._in_log.clear()


def _read(path: str) -> bytes | None:
    try:
        with open(path, "rb") as f:
            return f.read()
    except FileNotFoundError:
        return None


def _read_log(path: str) -> tuple[list[list[tuple[str, bytes | None]]], int]:
    """The log's whole frames, and the length they cover (what follows is a torn tail)."""
    data = _read(path) or b""
    frames, pos = [], 0
    while pos + _FRAME.size <= len(data):
        length, crc = _FRAME.unpack_from(data, pos)
        payload = data[pos + _FRAME.size:pos + _FRAME.size + length]
        if len(payload) != length or zlib.crc32(payload) != crc:
            break
        try:
            pairs = msgpack.unpackb(payload, raw=False)
            frame = [(str(rel), content) for rel, content in pairs]
        except (ValueError, TypeError, msgpack.UnpackException):
            break
        if not all(_valid_rel(rel) and isinstance(c, (bytes, type(None))) for rel, c in frame):
            break
        frames.append(frame)
        pos += _FRAME.size + length
    if pos != len(data):
        log.warning("checkpoint log %s: dropping a torn tail of %d bytes", path, len(data) - pos)
    return frames, pos


def _valid_rel(rel: str) -> bool:
    """`agent_id` or `tasks/<quoted id>`: all a log frame may name."""
    head, _, name = rel.partition("/")
    return rel == AGENT_ID or (head == TASKS and name not in ("", ".", "..") and "/" not in name)


def _pack(record: object) -> bytes:
    return msgpack.packb(codec.to_dict(record), use_bin_type=True)


# What a task's snapshots share: ~3/4 of the work of packing one, and a task is snapshotted
# ~4 times on its way to RUNNING (launch, launched, each update acknowledged).
_SHARED = ("framework", "task", "sandbox", "run_id")
_FIELDS = [f.name for f in attrs.fields(TaskCheckpoint)]
assert _FIELDS[:len(_SHARED)] == list(_SHARED) and len(_FIELDS) <= 15  # see _TaskPacker
_shared_dict = codec.fields_to_dict(TaskCheckpoint, _SHARED)
_changing_dict = codec.fields_to_dict(TaskCheckpoint, _FIELDS[len(_SHARED):])


class _TaskPacker:
    """`_pack` of TaskCheckpoints, byte for byte, with each task's shared fields packed
    once. A record packs as a msgpack map of at most 15 entries (a one-byte header, 0x80 |
    count) whose pairs follow in field order, shared ones first; so a snapshot is the
    header, the task's cached shared pairs, then the packed changing pairs."""

    def __init__(self) -> None:
        # task id -> (framework, task, sandbox, run id) it was packed from, and its pairs
        self._shared: dict[str, tuple[Any, Any, str, str, bytes]] = {}

    def pack(self, cp: TaskCheckpoint) -> bytes:
        hit = self._shared.get(cp.task.task_id)
        if (hit is None or hit[1] is not cp.task or hit[2] != cp.sandbox or hit[3] != cp.run_id
                or (hit[0] is not cp.framework and hit[0] != cp.framework)):
            pairs = msgpack.packb(_shared_dict(cp), use_bin_type=True)[1:]
            hit = self._shared[cp.task.task_id] = (cp.framework, cp.task, cp.sandbox,
                                                   cp.run_id, pairs)
        rest = msgpack.packb(_changing_dict(cp), use_bin_type=True)
        return bytes((0x80 | (len(_SHARED) + (rest[0] & 0x0F)),)) + hit[4] + rest[1:]

    def forget(self, task_id: str) -> None:
        self._shared.pop(task_id, None)


def _unpack(cls: type[_R], name: str, data: bytes | None) -> _R | None:
    if data is None:
        return None
    try:
        record: _R = codec.from_dict(cls, msgpack.unpackb(data, raw=False))
        return record
    except (ValueError, msgpack.UnpackException, TypeError) as e:
        log.error("unreadable checkpoint %s (%s); skipped", unquote(name), e)
        return None
