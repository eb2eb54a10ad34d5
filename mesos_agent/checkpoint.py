"""Checkpoint files under `<work_dir>/meta/checkpoint` (runtime IO; the core only emits
`Checkpoint(record)` effects).

    meta/checkpoint/agent_id              the agent id (msgpack AgentIdRecord)
    meta/checkpoint/tasks/<task id>       one TaskCheckpoint per live task

Every write is atomic: a temp file is written and fsynced, renamed over the old one and the
directory fsynced, so a kill -9 (or a power cut) leaves the old or the new file, never a torn
one. `write_batch` is the group commit the runtime uses: all temp files of a batch are
written, made durable with one `syncfs` (per-file fsync where that is missing), renamed, and
the directories fsynced once - a flush costs milliseconds, so one per batch instead of two
per record is what lets a busy agent checkpoint every update. Unreadable files are reported
and skipped rather than stopping the agent.
"""
from __future__ import annotations

import ctypes
import logging
import os
import posixpath
from urllib.parse import quote, unquote

import msgpack

from mesos_agent.recovery import AgentIdRecord, TaskCheckpoint, TaskRemoved
from mesos_common import codec

log = logging.getLogger(__name__)

DIR = posixpath.join("meta", "checkpoint")
TMP_SUFFIX = ".tmp"


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


def _syncfs_fn():  # type: ignore[no-untyped-def]
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
    def __init__(self, work_dir: str) -> None:
        self.root = posixpath.join(work_dir, DIR)
        self.tasks_dir = posixpath.join(self.root, "tasks")

    def _task_path(self, task_id: str) -> str:
        return posixpath.join(self.tasks_dir, quote(task_id, safe=""))

    def write(self, record: AgentIdRecord | TaskCheckpoint | TaskRemoved) -> None:
        match record:
            case AgentIdRecord():
                write_atomically(posixpath.join(self.root, "agent_id"), _pack(record))
            case TaskCheckpoint():
                write_atomically(self._task_path(record.task.task_id), _pack(record))
            case TaskRemoved(task_id=task_id):
                try:
                    os.unlink(self._task_path(task_id))
                except FileNotFoundError:
                    pass
            case _:
                raise TypeError(f"not a checkpoint record: {record!r}")

    def _target(self, record: AgentIdRecord | TaskCheckpoint | TaskRemoved
                ) -> tuple[str, bytes | None]:
        match record:
            case AgentIdRecord():
                return posixpath.join(self.root, "agent_id"), _pack(record)
            case TaskCheckpoint():
                return self._task_path(record.task.task_id), _pack(record)
            case TaskRemoved(task_id=task_id):
                return self._task_path(task_id), None
        raise TypeError(f"not a checkpoint record: {record!r}")

    def write_batch(self, records: list[AgentIdRecord | TaskCheckpoint | TaskRemoved]) -> None:
        """Apply `records` in order, durably, with one flush for the whole batch; each file
        still changes atomically (old or new content after a crash, never torn)."""
        final: dict[str, bytes | None] = {}
        for r in records:
            path, data = self._target(r)
            final.pop(path, None)
            final[path] = data  # the last record for a file wins
        os.makedirs(self.tasks_dir, exist_ok=True)
        written = []
        for path, data in final.items():
            if data is None:
                continue
            tmp = f"{path}{TMP_SUFFIX}"
            with open(tmp, "wb") as f:
                f.write(data)
                if _SYNCFS is None:
                    f.flush()
                    os.fsync(f.fileno())
            written.append((tmp, path))
        if written and _SYNCFS is not None:
            fd = os.open(self.root, os.O_RDONLY)
            try:
                if _SYNCFS(fd) != 0:
                    raise OSError(ctypes.get_errno(), "syncfs failed")
            finally:
                os.close(fd)
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

    def load(self) -> tuple[str | None, list[TaskCheckpoint]]:
        """(agent id, task checkpoints); leftover temp files (a crash mid-write) are removed."""
        agent = _unpack(AgentIdRecord, posixpath.join(self.root, "agent_id"))
        tasks: list[TaskCheckpoint] = []
        try:
            names = sorted(os.listdir(self.tasks_dir))
        except FileNotFoundError:
            names = []
        for name in names:
            path = posixpath.join(self.tasks_dir, name)
            if name.endswith(TMP_SUFFIX):
                os.unlink(path)
                continue
            cp = _unpack(TaskCheckpoint, path)
            if cp is not None and quote(cp.task.task_id, safe="") != name:
                log.error("checkpoint %s holds task %s; skipped", path, cp.task.task_id)
                cp = None
            if cp is not None:
                tasks.append(cp)
        try:
            os.unlink(posixpath.join(self.root, "agent_id" + TMP_SUFFIX))
        except FileNotFoundError:
            pass
        return (agent.agent_id if agent is not None else None), tasks

    def clear(self) -> None:
        """Forget everything (a fresh agent)."""
        for name in os.listdir(self.tasks_dir) if os.path.isdir(self.tasks_dir) else []:
            os.unlink(posixpath.join(self.tasks_dir, name))
        try:
            os.unlink(posixpath.join(self.root, "agent_id"))
        except FileNotFoundError:
            pass


def _pack(record: object) -> bytes:
    return msgpack.packb(codec.to_dict(record), use_bin_type=True)


def _unpack(cls: type, path: str):  # type: ignore[no-untyped-def]
    try:
        with open(path, "rb") as f:
            data = f.read()
    except FileNotFoundError:
        return None
    try:
        return codec.from_dict(cls, msgpack.unpackb(data, raw=False))
    except (ValueError, msgpack.UnpackException, TypeError) as e:
        log.error("unreadable checkpoint %s (%s); skipped", unquote(path), e)
        return None
