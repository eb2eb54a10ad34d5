"""Tasks as plain processes, each in its own session and process group (Mesos's posix
launcher): `sh -c <value>` or an argv, in the sandbox, stdout/stderr into sandbox files.
Under cgroups a `<value>` that is one simple command (plain words, no builtin: see
`isolation.simple_command`) is exec'd without the shell, as bash does for `bash -c`.

Launches run in a few launcher threads: a spawn mostly waits for its child's exec.

Killing signals the whole group, so a task's children and grandchildren go with it; when a
task's main process ends, whatever is left of its group is SIGKILLed, as Mesos destroys a
container when its executor exits. Each task's pid (= its process-group id) is written to
`paths.pid_file` while it runs, so tests, `mesos_common.daemons` and a later recovery
feature can find it.
"""
from __future__ import annotations

import asyncio
import logging
import os
import signal
import subprocess
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager, nullcontext
from typing import Mapping

import psutil
from attrs import define

from mesos_agent import paths
from mesos_agent.containerizer.base import LaunchError, make_sandbox, task_environment
from mesos_agent.containerizer.isolation import (Isolator, NoIsolation, Prepared, Usage,
                                                 simple_command, task_key)
from mesos_agent.recovery import EXITED_FOUND, MISSING, RUNNING_FOUND, Found
from mesos_common.messages import TaskInfo

log = logging.getLogger(__name__)

DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
SHELL = "/bin/sh"
START_TIME_SLACK = 0.05  # seconds; psutil derives start times from clock ticks
LAUNCH_THREADS = 4  # spawns in flight; each mostly waits for its child's exec


@define
class _Proc:
    pid: int  # session leader = process-group id
    exited: asyncio.Future[int | None]  # return code (negative: that signal); None: unknown
    pid_file: str
    start_time: float | None = None
    isolation: Prepared = Prepared()


def _watch_exit(popen: subprocess.Popen) -> asyncio.Future[int | None]:
    """A future resolved with the child's return code, with no thread per child: the loop
    watches a pidfd (readable once the process exits); a thread only where pidfds are missing."""
    loop = asyncio.get_running_loop()
    fut: asyncio.Future[int | None] = loop.create_future()
    try:
        fd = os.pidfd_open(popen.pid)
    except (AttributeError, OSError):
        wait = loop.run_in_executor(None, popen.wait)
        wait.add_done_callback(lambda w: fut.done() or fut.set_result(w.result()))
        return fut

    def reap() -> None:
        loop.remove_reader(fd)
        os.close(fd)
        if not fut.done():
            fut.set_result(popen.wait())

    loop.add_reader(fd, reap)
    return fut


def _watch_stranger(pid: int, fd: int) -> asyncio.Future[int | None]:
    """The end of a process that is not our child (reattached after a restart): its pidfd
    turns readable when it exits; its exit status is not ours to read (None)."""
    loop = asyncio.get_running_loop()
    fut: asyncio.Future[int | None] = loop.create_future()

    def gone() -> None:
        loop.remove_reader(fd)
        os.close(fd)
        if not fut.done():
            fut.set_result(None)

    loop.add_reader(fd, gone)
    return fut


def start_time(pid: int) -> float | None:
    """The process's start time (psutil), None when it is gone: with the pid it names one
    process for good, as pids are reused."""
    try:
        return psutil.Process(pid).create_time()
    except psutil.Error:
        return None


def _same_process(pid: int, started: float | None, pid_file: str) -> bool:
    """Is `pid` still the process we started? Its start time must match the checkpointed
    one, or (no start time recorded: we died right after launching) precede the pid file's
    mtime - a reused pid belongs to a process created after ours was reaped."""
    now_start = start_time(pid)
    if now_start is None:
        return False
    try:
        if psutil.Process(pid).status() == psutil.STATUS_ZOMBIE or os.getpgid(pid) != pid:
            return False
    except (psutil.Error, OSError):
        return False
    if started is not None:
        return abs(now_start - started) < START_TIME_SLACK
    try:
        return now_start <= os.stat(pid_file).st_mtime + START_TIME_SLACK
    except OSError:
        return False


def agent_base_env() -> dict[str, str]:
    """The few variables of the agent's own environment a task inherits (as Mesos)."""
    env = {k: os.environ[k] for k in ("PATH", "HOME", "LANG") if k in os.environ}
    env.setdefault("PATH", DEFAULT_PATH)
    return env


def command_argv(task: TaskInfo) -> tuple[str, list[str]]:
    """(executable, argv) for a task's CommandInfo, Mesos semantics for `shell`."""
    cmd = task.command
    if cmd is None:
        kind = task.container.type if task.container is not None else "none"
        raise LaunchError(f"task has no command (container type {kind} is not supported "
                          "by the process containerizer)")
    if cmd.shell:
        if not cmd.value:
            raise LaunchError("shell command is empty")
        return SHELL, [SHELL, "-c", cmd.value]
    argv = list(cmd.arguments) or ([cmd.value] if cmd.value else [])
    if not argv:
        raise LaunchError("command has neither a value nor arguments")
    return (cmd.value or argv[0]), argv


def _killpg(pgid: int, sig: int) -> None:
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def _write_atomically(path: str, text: str) -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = f"{path}.tmp"
    with open(tmp, "w") as f:
        f.write(text)
    os.replace(tmp, path)


class ProcessContainerizer:
    """Containerizer running each task as a session leader under the agent."""

    def __init__(self, work_dir: str, base_env: Mapping[str, str] | None = None,
                 isolator: Isolator | None = None) -> None:
        self.work_dir = work_dir
        self.isolator: Isolator = isolator if isolator is not None else NoIsolation()
        self.base_env = dict(base_env) if base_env is not None else agent_base_env()
        self._procs: dict[str, _Proc] = {}
        self._launching: set[str] = set()
        self._limits: dict[str, str] = {}
        self._pool = ThreadPoolExecutor(LAUNCH_THREADS, thread_name_prefix="launch")

    async def launch(self, task_id: str, framework_id: str, task: TaskInfo, sandbox: str) -> int:
        """Start the task from a launcher thread: a spawn mostly waits for the child's exec
        (vfork), so a few spawning in parallel keep the loop free and both cores busy."""
        if task_id in self._procs or task_id in self._launching:
            raise LaunchError(f"task {task_id} is already running")
        executable, argv = command_argv(task)
        env = task_environment(task_id, framework_id, task, sandbox, self.base_env)
        self._launching.add(task_id)
        spawn = asyncio.get_running_loop().run_in_executor(
            self._pool, self._start, task_id, task, sandbox, executable, argv, env)
        try:
            proc, prepared, started = await asyncio.shield(spawn)
        except asyncio.CancelledError:  # the thread spawns anyway: leave no process behind
            pid_file = paths.pid_file(self.work_dir, sandbox, task_id)
            spawn.add_done_callback(lambda f: self._abandoned(f, pid_file))
            raise
        finally:
            self._launching.discard(task_id)
        pid_file = paths.pid_file(self.work_dir, sandbox, task_id)
        self._procs[task_id] = _Proc(proc.pid, _watch_exit(proc), pid_file, started, prepared)
        log.info("task %s: started pid %d: %s", task_id, proc.pid, argv)
        return proc.pid

    def _abandoned(self, spawn: asyncio.Future, pid_file: str) -> None:
        """A launch cancelled while its thread spawned: kill what it started."""
        if spawn.cancelled() or spawn.exception() is not None:
            return
        proc, prepared, _ = spawn.result()
        _killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        self.isolator.cleanup(prepared)
        _unlink(pid_file)

    def _start(self, task_id: str, task: TaskInfo, sandbox: str, executable: str,
               argv: list[str], env: dict[str, str]
               ) -> tuple[subprocess.Popen, Prepared, float | None]:
        """The blocking part of a launch (in a launcher thread): sandbox, cgroups, spawn,
        pid file. The child is born in its cgroups (v1: this thread joins them while it
        forks) or joins them before it execs the command (the prologue; see isolation)."""
        make_sandbox(sandbox)
        try:
            prepared = self.isolator.prepare(task_key(task_id, sandbox), task.resources)
        except OSError as e:
            raise LaunchError(f"cannot set up {self.isolator.name} isolation: {e}") from None
        inside = getattr(self.isolator, "inside", None)
        try:
            if prepared.born_inside and inside is not None:  # forked inside its groups
                words = simple_command(argv[2]) if argv[:2] == [SHELL, "-c"] else None
                try:  # a simple command is exec'd, as the prologue would; sh says 127 else
                    proc = _popen(words or argv, None if words else executable, sandbox,
                                  env, inside(prepared))
                except (FileNotFoundError, PermissionError):
                    if not words:
                        raise
                    proc = _popen(argv, executable, sandbox, env, inside(prepared))
            else:
                executable, argv = prepared.wrap(SHELL, executable, argv)
                proc = _popen(argv, executable, sandbox, env, nullcontext())
        except OSError as e:
            self.isolator.cleanup(prepared)
            raise LaunchError(f"{executable}: {e.strerror or e}") from None
        pid_file = paths.pid_file(self.work_dir, sandbox, task_id)
        try:
            _write_atomically(pid_file, f"{proc.pid}\n")
        except OSError as e:
            log.error("task %s: cannot write pid file %s: %s", task_id, pid_file, e)
        return proc, prepared, start_time(proc.pid)

    def handle(self, task_id: str) -> str:
        """`pid:start_time`, checkpointed by the agent to find the process after a restart."""
        p = self._procs.get(task_id)
        if p is None or p.start_time is None:
            return ""
        return f"{p.pid}:{p.start_time!r}"

    async def recover(self, task_id: str, framework_id: str, task: TaskInfo, sandbox: str,
                      handle: str) -> Found:
        """Reattach to a task started by a previous agent process: by `handle`, or (no
        handle: we died while launching) by its pid file, never by a bare pid."""
        pid_file = paths.pid_file(self.work_dir, sandbox, task_id)
        pid, started = _parse_handle(handle)
        if pid is None:
            try:
                with open(pid_file) as f:
                    pid = int(f.read().strip())
            except (OSError, ValueError):
                return Found(MISSING)
        if not _same_process(pid, started, pid_file):
            return self._gone(task_id, sandbox, pid_file)
        try:
            fd = os.pidfd_open(pid)
        except OSError:
            return self._gone(task_id, sandbox, pid_file)
        self._procs[task_id] = _Proc(pid, _watch_stranger(pid, fd), pid_file, started,
                                     self.isolator.locate(task_key(task_id, sandbox)))
        log.info("task %s: reattached to pid %d", task_id, pid)
        return Found(RUNNING_FOUND, pid=pid)

    def _gone(self, task_id: str, sandbox: str, pid_file: str) -> Found:
        _unlink(pid_file)
        self.isolator.cleanup(self.isolator.locate(task_key(task_id, sandbox)))
        return Found(EXITED_FOUND)

    async def wait(self, task_id: str) -> tuple[int | None, int | None]:
        p = self._procs[task_id]
        rc = await asyncio.shield(p.exited)
        _killpg(p.pid, signal.SIGKILL)  # the container ends with its main process
        limit = self.isolator.limitation(p.isolation)
        if limit is not None:
            self._limits[task_id] = limit
        await self._cleanup(task_id, p.isolation)
        self._procs.pop(task_id, None)
        _unlink(p.pid_file)  # the pid may be reused now: never point at a stranger
        if rc is None:
            return None, None
        return (rc, None) if rc >= 0 else (None, -rc)

    async def kill(self, task_id: str, grace_period: float) -> None:
        p = self._procs.get(task_id)
        if p is None or p.exited.done():
            return
        pgid = p.pid
        if grace_period <= 0:
            _killpg(pgid, signal.SIGKILL)
            return
        _killpg(pgid, signal.SIGTERM)
        try:
            await asyncio.wait_for(asyncio.shield(p.exited), grace_period)
        except TimeoutError:
            log.info("task %s: still alive %.1fs after SIGTERM; SIGKILL", task_id, grace_period)
            _killpg(pgid, signal.SIGKILL)

    def limitation(self, task_id: str) -> str | None:
        return self._limits.pop(task_id, None)

    async def _cleanup(self, task_id: str, prepared: Prepared) -> None:
        """Remove the task's cgroups; SIGKILLed members may take a moment to leave."""
        for _ in range(40):
            if self.isolator.cleanup(prepared):
                return
            await asyncio.sleep(0.05)
        log.warning("task %s: cannot remove its cgroups %s", task_id, prepared.dirs)

    async def usage(self, task_id: str) -> Usage | None:
        """The task's resource usage (cgroup counters; psutil over its process group where
        the cgroups say nothing)."""
        p = self._procs.get(task_id)
        if p is None:
            return None
        u = self.isolator.usage(p.isolation)
        if u.mem_rss_bytes is None or u.cpus_user_time_secs is None:
            rss, user, system = _group_usage(p.pid)
            u = Usage(u.mem_rss_bytes if u.mem_rss_bytes is not None else rss,
                      u.mem_limit_bytes,
                      u.cpus_user_time_secs if u.cpus_user_time_secs is not None else user,
                      u.cpus_system_time_secs if u.cpus_system_time_secs is not None
                      else system, u.cpus_limit)
        return u

    def containers(self) -> set[str]:
        return set(self._procs)

    def close(self) -> None:
        """The agent stops (its tasks are gone): drop the launcher threads and the
        agent's parent cgroups."""
        self._pool.shutdown(wait=False)
        closer = getattr(self.isolator, "close", None)
        if closer is not None:
            closer()

    def pid(self, task_id: str) -> int | None:
        p = self._procs.get(task_id)
        return p.pid if p is not None else None


def _popen(argv: list[str], executable: str | None, sandbox: str, env: dict[str, str],
           birthplace: AbstractContextManager[None]) -> subprocess.Popen:
    """Spawn a task's session leader in its sandbox, output appended to its files."""
    with open(os.path.join(sandbox, "stdout"), "ab") as out, \
            open(os.path.join(sandbox, "stderr"), "ab") as err, birthplace:
        return subprocess.Popen(argv, executable=executable, cwd=sandbox, env=env,
                                stdin=subprocess.DEVNULL, stdout=out, stderr=err,
                                start_new_session=True)


def _group_usage(pgid: int) -> tuple[int, float, float]:
    """(rss bytes, user s, system s) summed over a process group's live members."""
    rss, user, system = 0, 0.0, 0.0
    try:
        members = [psutil.Process(pgid)] + psutil.Process(pgid).children(recursive=True)
    except psutil.Error:
        return rss, user, system
    for m in members:
        try:
            with m.oneshot():
                rss += m.memory_info().rss
                t = m.cpu_times()
                user, system = user + t.user, system + t.system
        except psutil.Error:
            continue
    return rss, user, system


def _parse_handle(handle: str) -> tuple[int | None, float | None]:
    try:
        pid, started = handle.split(":", 1)
        return int(pid), float(started)
    except ValueError:
        return None, None


def _unlink(path: str) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass
