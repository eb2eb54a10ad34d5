"""Spawning and reaping task processes without `subprocess.Popen` objects.

A task's session leader is started as `Popen(argv, executable=, cwd=, env=,
stdin=DEVNULL, stdout=, stderr=, start_new_session=True)` would start it (vfork, the same
child-side steps, PATH search in the task's own environment, every other fd closed, exec
errors raised in the parent as OSError), but through the helper Popen itself calls
(`_posixsubprocess.fork_exec`): Popen's Python-level set-up was half of a launcher's
spawn cost (0.27 -> 0.08 ms of parent CPU per spawn). The helper is private and its
arguments change between Python versions, so it is used only on the version whose
signature is known here; elsewhere Popen runs, and the Popen objects are kept until
`reap` so nothing else waits for their children.
"""
from __future__ import annotations

import functools
import os
import subprocess
import sys
import threading
from collections.abc import Callable, Sequence

# Typed loosely: the helper is private, its arguments are those of one Python version (checked
# below), and typeshed does not allow the None preexec_fn that Popen itself passes.
_fork_exec: Callable[..., int] | None
try:
    from _posixsubprocess import fork_exec as _fork_exec
except ImportError:  # pragma: no cover - not CPython on POSIX
    _fork_exec = None

# (3, 11): fork_exec(args, executable_list, close_fds, pass_fds, cwd, env, p2cread,
# p2cwrite, c2pread, c2pwrite, errread, errwrite, errpipe_read, errpipe_write,
# restore_signals, call_setsid, pgid_to_set, gid, extra_groups, uid, child_umask,
# preexec_fn, allow_vfork)
FORK_EXEC = _fork_exec is not None and sys.version_info[:2] == (3, 11)

Ids = tuple[int, int, Sequence[int]]  # uid, gid, supplementary groups
_FS_CODEC = (sys.getfilesystemencoding(), sys.getfilesystemencodeerrors())  # os.fsencode's
_popens: dict[int, subprocess.Popen] = {}  # pid -> child, where Popen started it
_lock = threading.Lock()
_devnull: list[int] = []  # one read-only /dev/null for every child's stdin


def _stdin() -> int:
    if not _devnull:
        with _lock:
            if not _devnull:
                _devnull.append(os.open(os.devnull, os.O_RDONLY | os.O_CLOEXEC))
    return _devnull[0]


def spawn(argv: Sequence[str], executable: str | None, cwd: str, env: dict[str, str],
          stdout: int, stderr: int, ids: Ids | None = None) -> int:
    """Start `argv` (`executable`, else argv[0] looked up in env's PATH) as the leader of
    a new session in `cwd`, stdin /dev/null, stdout/stderr onto the given fds, with
    exactly `env`, as `ids` (uid, gid, supplementary groups: set in the child before the
    exec) when given; its pid. Raises OSError (FileNotFoundError, PermissionError, ...)
    when it cannot run, ValueError for an argument or variable the kernel cannot take."""
    codec = _FS_CODEC
    env_list = []
    for k, v in env.items():
        name = k.encode(*codec)
        if b"=" in name:
            raise ValueError(f"illegal environment variable name {k!r}")
        env_list.append(name + b"=" + v.encode(*codec))
    if not FORK_EXEC or _fork_exec is None:
        switch: dict = ({} if ids is None else
                        {"user": ids[0], "group": ids[1], "extra_groups": list(ids[2])})
        proc = subprocess.Popen(argv, executable=executable, cwd=cwd, env=env,
                                stdin=subprocess.DEVNULL, stdout=stdout, stderr=stderr,
                                start_new_session=True, **switch)
        with _lock:
            _popens[proc.pid] = proc
        return proc.pid
    program = (executable if executable is not None else argv[0]).encode(*codec)
    if b"/" in program:
        candidates: tuple[bytes, ...] = (program,)
    else:  # as Popen and os.execvpe: the child tries each directory in turn
        candidates = tuple(d + program for d in _search_dirs(env.get("PATH", os.defpath)))
    err_read, err_write = os.pipe()
    while err_write < 3:  # never one of the fds the child dup2s onto (as Popen)
        low, err_write = err_write, os.dup(err_write)
        os.close(low)
    try:
        try:
            pid = _fork_exec(argv, candidates, True, (err_write,), cwd, env_list,
                             _stdin(), -1, -1, stdout, -1, stderr, err_read, err_write,
                             True, True, -1, *_child_ids(ids), -1, None, True)
        finally:
            os.close(err_write)
        failure = os.read(err_read, 50000)  # empty: the exec closed it (vfork: done)
        while failure and (part := os.read(err_read, 50000)):
            failure += part
    finally:
        os.close(err_read)
    if failure:
        try:
            os.waitpid(pid, 0)
        except ChildProcessError:
            pass
        raise _child_error(failure, cwd, executable if executable is not None else argv[0])
    return pid


def _child_ids(ids: Ids | None) -> tuple[int | None, list[int] | None, int | None]:
    """fork_exec's (gid, extra groups, uid): None leaves them as they are."""
    if ids is None:
        return None, None, None
    return ids[1], list(ids[2]), ids[0]


@functools.lru_cache(maxsize=64)
def _search_dirs(path: str) -> tuple[bytes, ...]:
    """PATH's directories as prefixes of a program name (os.get_exec_path + os.path.join:
    an empty entry is the working directory). Cached: tasks share a few PATHs."""
    dirs = (d.encode(*_FS_CODEC) for d in path.split(os.pathsep))
    return tuple(d if not d or d.endswith(b"/") else d + b"/" for d in dirs)


def _child_error(data: bytes, cwd: str, program: str) -> OSError:
    """The OSError a child's `name:hex errno:detail` report stands for (as Popen)."""
    _, code, detail = data.split(b":", 2) if data.count(b":") >= 2 else (b"", b"0", data)
    try:
        errno = int(code, 16)
    except ValueError:
        errno = 0
    if not errno:
        return OSError(f"cannot start {program}: {detail.decode(errors='replace')}")
    return OSError(errno, os.strerror(errno), cwd if detail == b"noexec" else program)


def forget(pid: int, code: int) -> None:
    """`pid` was reaped elsewhere (waitpid(-1)) with return code `code`: drop its Popen."""
    with _lock:
        proc = _popens.pop(pid, None)
    if proc is not None:
        proc.returncode = code


def reap(pid: int) -> int | None:
    """Wait for a child `spawn` started: its return code (negative: the signal that ended
    it), None when someone else reaped it."""
    with _lock:
        proc = _popens.pop(pid, None)
    if proc is not None:
        return proc.wait()
    try:
        _, status = os.waitpid(pid, 0)
    except ChildProcessError:
        return None
    return os.waitstatus_to_exitcode(status)
