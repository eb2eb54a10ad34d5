"""The blocking part of starting a batch of process tasks, as the launch helper runs it
(`launch_helper.py`): sandboxes and output files, cgroups and their limits, the spawns (as
the task's user: ids switched in the child before the exec), one launch-log append for the
batch.

First the file work of the whole batch, then the spawns: under cgroup v1 the calling
thread goes into each task's groups in turn and forks it there (`visits`), so memory the
file work allocates is never charged to a task; elsewhere the task joins its groups itself
before it execs its command (the isolator's prologue). A task that cannot start fails
alone; the others of its batch go on.
"""
from __future__ import annotations

import os
from collections.abc import Callable
from contextlib import nullcontext

from attrs import frozen

from mesos_agent.containerizer.isolation import Isolator, Prepared, simple_command, task_key
from mesos_agent.containerizer.sandbox import make_sandbox
from mesos_agent.containerizer.spawn import Ids, spawn
from mesos_agent.containerizer.users import Account, UnknownUser, account
from mesos_common.launch_log import Launch, start_time

SHELL = "/bin/sh"
_Staged = tuple[int, Prepared, tuple[int, int], Ids | None]  # spec index, groups, fds, ids


@frozen
class LaunchSpec:
    """One task to start: what the agent sends the helper (msgpack: `as_list`/`from_list`)."""

    task_id: str
    sandbox: str
    executable: str
    argv: list[str]
    env: dict[str, str]
    cpus: float = 0.0
    mem: float = 0.0
    user: str = ""  # run as this user (switched before the exec); "": the helper's own

    def as_list(self) -> list:
        return [self.task_id, self.sandbox, self.executable, self.argv, self.env,
                self.cpus, self.mem, self.user]

    @classmethod
    def from_list(cls, raw: list) -> LaunchSpec:
        task_id, sandbox, executable, argv, env, cpus, mem, user = raw
        return cls(str(task_id), str(sandbox), str(executable), [str(a) for a in argv],
                   {str(k): str(v) for k, v in env.items()}, float(cpus), float(mem),
                   str(user))


def start_batch(specs: list[LaunchSpec], isolator: Isolator,
                record: Callable[[list[Launch]], None]) -> list[Launch | str]:
    """Start each spec; per spec its launch-log entry, or the error message of a task that
    could not start. `record` appends the started ones to the launch log (once)."""
    out: list[Launch | str] = ["not started"] * len(specs)
    staged: list[_Staged] = []
    users: dict[str, Account | None | UnknownUser] = {}  # one lookup per user and batch
    for i, s in enumerate(specs):
        got = _stage(s, isolator, users)
        if isinstance(got, str):
            out[i] = got
        else:
            staged.append((i, *got))
    visits = getattr(isolator, "visits", None)
    failed: list[Prepared] = []
    pids: list[tuple[int, int]] = []
    with visits() if visits is not None else nullcontext(None) as enter:
        for i, prepared, files, ids in staged:
            s = specs[i]
            try:
                pids.append((i, _spawn(s, prepared, files, enter, ids)))
            except OSError as e:
                failed.append(prepared)
                out[i] = f"{s.executable}: {e.strerror or e}"
            except ValueError as e:  # e.g. a NUL byte or a `=` in a variable's name
                failed.append(prepared)
                out[i] = f"cannot start {s.executable}: {e}"
            finally:
                _close(files)
    for prepared in failed:  # back in our own groups: theirs can go
        isolator.cleanup(prepared)
    entries = []
    for i, pid in pids:
        started = start_time(pid)
        entry = Launch(specs[i].task_id, specs[i].sandbox, pid,
                       started if started is not None else 0.0)
        entries.append(entry)
        out[i] = entry
    if entries:
        record(entries)
    return out


def _stage(s: LaunchSpec, isolator: Isolator, users: dict[str, Account | None | UnknownUser]
           ) -> tuple[Prepared, tuple[int, int], Ids | None] | str:
    """A task's file work before its spawn: its user's ids and HOME/USER (unless the task
    sets them), the sandbox (its user's), its output files, its groups; or why it cannot
    start (an unknown user: it must not run as anyone else)."""
    if s.user not in users:
        try:
            users[s.user] = account(s.user) if s.user else None
        except UnknownUser as e:
            users[s.user] = e
    acct = users[s.user]
    if isinstance(acct, UnknownUser):
        return str(acct)
    ids = None
    if acct is not None:
        s.env.setdefault("HOME", acct.home)
        s.env.setdefault("USER", acct.name)
        if not acct.is_current():
            ids = (acct.uid, acct.gid, acct.groups)
    try:
        make_sandbox(s.sandbox)
        files = _open_outputs(s.sandbox)
    except OSError as e:
        return f"cannot create the sandbox {s.sandbox}: {e}"
    try:
        if ids is not None:  # the fetcher gave it what it fetched
            for fd in (*files, None):
                os.chown(s.sandbox if fd is None else fd, ids[0], ids[1])
        prepared = isolator.prepare(task_key(s.task_id, s.sandbox), s.cpus, s.mem)
    except OSError as e:
        _close(files)
        return f"cannot set up the sandbox or {isolator.name} isolation: {e}"
    return prepared, files, ids


def _spawn(s: LaunchSpec, prepared: Prepared, files: tuple[int, int],
           enter: Callable[[Prepared], None] | None, ids: Ids | None) -> int:
    """Spawn one task's session leader in its sandbox, output appended to its files."""
    if prepared.born_inside and enter is not None:  # forked inside its groups
        enter(prepared)
        argv = s.argv
        words = simple_command(argv[2]) if argv[:2] == [SHELL, "-c"] else None
        try:  # a simple command is exec'd, as the prologue would; sh says 127 else
            return spawn(words or argv, None if words else s.executable, s.sandbox,
                         s.env, *files, ids)
        except (FileNotFoundError, PermissionError):
            if not words:
                raise
            return spawn(argv, s.executable, s.sandbox, s.env, *files, ids)
    if ids is not None and prepared.procs:  # its prologue could not join root's groups
        raise OSError(f"running a task as user '{s.user}' needs cgroup v1 or rlimits "
                      "isolation (a task joins its cgroup v2 group itself)")
    executable, argv = prepared.wrap(SHELL, s.executable, s.argv)
    return spawn(argv, executable, s.sandbox, s.env, *files, ids)


def _open_outputs(sandbox: str) -> tuple[int, int]:
    """The task's stdout and stderr files, opened for appending (raw fds: no file objects)."""
    flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC
    out = os.open(f"{sandbox}/stdout", flags, 0o644)
    try:
        return out, os.open(f"{sandbox}/stderr", flags, 0o644)
    except OSError:
        os.close(out)
        raise


def _close(fds: tuple[int, int]) -> None:
    for fd in fds:
        os.close(fd)
