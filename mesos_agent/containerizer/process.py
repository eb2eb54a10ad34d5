"""Tasks as plain processes, each in its own session and process group (Mesos's posix
launcher): `sh -c <value>` or an argv, in the sandbox, stdout/stderr into sandbox files.
Under cgroups a `<value>` that is one simple command (plain words, no builtin: see
`isolation.simple_command`) is exec'd without the shell, as bash does for `bash -c`.

Launches run in a few launcher threads, in batches: the launches asked for in one turn of
the event loop are split into chunks, one chunk per thread at a time, and each chunk comes
back to the loop in one piece. A spawn mostly waits for its child's exec.

Killing signals the whole group, so a task's children and grandchildren go with it; when a
task's main process ends, whatever is left of its group is SIGKILLed, as Mesos destroys a
container when its executor exits. Each task's pid (= its process-group id) and start time
go into the agent's launch log (`mesos_common.launch_log`) as soon as it is spawned, so a
restarted agent, `mesos_common.daemons` and tests can find it even when the checkpoint
missed it.
"""
from __future__ import annotations

import asyncio
import logging
import os
import signal
from concurrent.futures import ThreadPoolExecutor
from contextlib import nullcontext
from typing import Any, Callable, Mapping

import psutil
from attrs import define, frozen

from mesos_agent.containerizer.base import LaunchError, make_sandbox, task_environment
from mesos_agent.containerizer.exits import ExitWatch, watch_stranger
from mesos_agent.containerizer.isolation import (Isolator, NoIsolation, Prepared, Usage,
                                                 simple_command, task_key)
from mesos_agent.containerizer.isolation import key_owner, safe_task_id
from mesos_agent.containerizer.spawn import spawn
from mesos_agent.recovery import EXITED_FOUND, MISSING, RUNNING_FOUND, Found
from mesos_common import launch_log
from mesos_common.launch_log import Launch, LaunchLog, start_time
from mesos_common.messages import TaskInfo

log = logging.getLogger(__name__)

DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
SHELL = "/bin/sh"
LAUNCH_THREADS = 4  # chunks in flight; a spawn mostly waits for its child's exec
CHUNK_MAX = 16  # launches per chunk: few loop wake-ups, yet the first tasks start early
ORPHAN_WAIT = 5.0  # seconds for killed orphans to leave their groups


@define
class _Proc:
    pid: int  # session leader = process-group id
    exited: asyncio.Future[int | None]  # return code (negative: that signal); None: unknown
    launch: Launch
    isolation: Prepared = Prepared()


@frozen
class _Request:
    """One launch waiting for a launcher thread; `done` gets a _Started or a LaunchError."""

    task_id: str
    task: TaskInfo
    sandbox: str
    executable: str
    argv: list[str]
    env: dict[str, str]
    done: asyncio.Future


@frozen
class _Started:
    pid: int
    prepared: Prepared
    launch: Launch


def _same_process(entry: Launch) -> bool:
    """Is the launched process still there, the same one (start time), not a zombie, and
    still leading its process group?"""
    if not launch_log.is_alive(entry):
        return False
    try:
        return (psutil.Process(entry.pid).status() != psutil.STATUS_ZOMBIE
                and os.getpgid(entry.pid) == entry.pid)
    except (psutil.Error, OSError):
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


class ProcessContainerizer:
    """Containerizer running each task as a session leader under the agent."""

    def __init__(self, work_dir: str, base_env: Mapping[str, str] | None = None,
                 isolator: Isolator | None = None) -> None:
        self.work_dir = work_dir
        self.isolator: Isolator = isolator if isolator is not None else NoIsolation()
        self.base_env = dict(base_env) if base_env is not None else agent_base_env()
        self._procs: dict[str, _Proc] = {}
        self._launching: set[str] = set()
        self._queue: list[_Request] = []
        self._limits: dict[str, str] = {}
        self._pool = ThreadPoolExecutor(LAUNCH_THREADS, thread_name_prefix="launch")
        self._log = LaunchLog(work_dir)
        self._found = self._log.found  # what a previous agent process started
        self._exits = ExitWatch()

    async def launch(self, task_id: str, framework_id: str, task: TaskInfo, sandbox: str) -> int:
        """Queue the launch for the launcher threads (see the module docstring) and wait."""
        if task_id in self._procs or task_id in self._launching:
            raise LaunchError(f"task {task_id} is already running")
        executable, argv = command_argv(task)
        env = task_environment(task_id, framework_id, task, sandbox, self.base_env)
        loop = asyncio.get_running_loop()
        req = _Request(task_id, task, sandbox, executable, argv, env, loop.create_future())
        if not self._queue:
            loop.call_soon(self._dispatch)
        self._queue.append(req)
        self._launching.add(task_id)
        try:
            started = await asyncio.shield(req.done)
        except asyncio.CancelledError:  # the thread spawns anyway: leave no process behind
            req.done.add_done_callback(self._abandoned)
            raise
        finally:
            self._launching.discard(task_id)
        self._procs[task_id] = _Proc(started.pid,
                                     self._exits.future(started.pid),
                                     started.launch, started.prepared)
        log.info("task %s: started pid %d: %s", task_id, started.pid, argv)
        return started.pid

    def _dispatch(self) -> None:
        """Hand this turn's launches to the threads, in chunks that keep them all busy."""
        reqs, self._queue = self._queue, []
        size = max(1, min(CHUNK_MAX, -(-len(reqs) // LAUNCH_THREADS)))
        loop = asyncio.get_running_loop()
        for i in range(0, len(reqs), size):
            chunk = reqs[i:i + size]
            ran = loop.run_in_executor(self._pool, self._start_chunk, chunk)
            ran.add_done_callback(lambda f, chunk=chunk: _deliver(chunk, f))

    def _abandoned(self, done: asyncio.Future) -> None:
        """A launch cancelled while its thread spawned: kill what it started."""
        if done.cancelled() or done.exception() is not None:
            return
        started: _Started = done.result()
        _killpg(started.pid, signal.SIGKILL)

        def reaped(_: asyncio.Future) -> None:
            self.isolator.cleanup(started.prepared)
            self._log.ended(started.launch, len(self._procs))
        self._exits.future(started.pid).add_done_callback(reaped)

    def _start_chunk(self, chunk: list[_Request]) -> list[_Started | LaunchError]:
        """The blocking part of a chunk of launches (in a launcher thread). First the file
        work of them all (sandboxes, output files, cgroups and their limits), then the
        spawns; under cgroup v1 each task is forked from inside its groups (`visits`),
        elsewhere it joins them before it execs its command (the prologue; see isolation).
        Last, one append to the launch log for the chunk."""
        out: list[_Started | LaunchError] = [LaunchError("not started")] * len(chunk)
        staged: list[tuple[int, Prepared, tuple[int, int]]] = []
        for i, r in enumerate(chunk):
            try:
                make_sandbox(r.sandbox)
                files = _open_outputs(r.sandbox)
            except OSError as e:
                out[i] = LaunchError(f"cannot create the sandbox {r.sandbox}: {e}")
                continue
            try:
                prepared = self.isolator.prepare(task_key(r.task_id, r.sandbox),
                                                 r.task.resources)
            except OSError as e:
                _close(files)
                out[i] = LaunchError(f"cannot set up {self.isolator.name} isolation: {e}")
                continue
            staged.append((i, prepared, files))
        visits = getattr(self.isolator, "visits", None)
        failed: list[Prepared] = []
        procs: list[tuple[int, Prepared, int]] = []
        with visits() if visits is not None else nullcontext(None) as enter:
            for i, prepared, files in staged:
                r = chunk[i]
                try:
                    procs.append((i, prepared, self._spawn(r, prepared, files, enter)))
                except OSError as e:
                    failed.append(prepared)
                    out[i] = LaunchError(f"{r.executable}: {e.strerror or e}")
                except ValueError as e:  # e.g. a NUL byte or a `=` in a variable's name
                    failed.append(prepared)
                    out[i] = LaunchError(f"cannot start {r.executable}: {e}")
                finally:
                    _close(files)
        for prepared in failed:  # back in our own groups: theirs can go
            self.isolator.cleanup(prepared)
        entries = []
        for i, prepared, pid in procs:
            started = start_time(pid)
            entry = Launch(chunk[i].task_id, chunk[i].sandbox, pid,
                           started if started is not None else 0.0)
            entries.append(entry)
            self._exits.add(pid)
            out[i] = _Started(pid, prepared, entry)
        try:
            self._log.launched(entries)
        except OSError as e:
            log.error("cannot append %d launch(es) to %s: %s", len(entries), self._log.path, e)
        return out

    def _spawn(self, r: _Request, prepared: Prepared, files: tuple[int, int],
               enter: Callable[[Prepared], None] | None) -> int:
        """Spawn one task's session leader in its sandbox, output appended to its files."""
        if prepared.born_inside and enter is not None:  # forked inside its groups
            enter(prepared)
            argv = r.argv
            words = simple_command(argv[2]) if argv[:2] == [SHELL, "-c"] else None
            try:  # a simple command is exec'd, as the prologue would; sh says 127 else
                return spawn(words or argv, None if words else r.executable, r.sandbox,
                             r.env, *files)
            except (FileNotFoundError, PermissionError):
                if not words:
                    raise
                return spawn(argv, r.executable, r.sandbox, r.env, *files)
        executable, argv = prepared.wrap(SHELL, r.executable, r.argv)
        return spawn(argv, executable, r.sandbox, r.env, *files)

    def handle(self, task_id: str) -> str:
        """`pid:start_time`, checkpointed by the agent to find the process after a restart."""
        p = self._procs.get(task_id)
        if p is None or not p.launch.start_time:
            return ""
        return f"{p.pid}:{p.launch.start_time!r}"

    async def recover(self, task_id: str, framework_id: str, task: TaskInfo, sandbox: str,
                      handle: str) -> Found:
        """Reattach to a task started by a previous agent process: by `handle`, or (no
        handle: we died before checkpointing it) by the launch log; never by a bare pid."""
        pid, started = _parse_handle(handle)
        entry = (Launch(task_id, sandbox, pid, started) if pid is not None and started
                 else self._found.get((task_id, sandbox)))
        if entry is None:
            return Found(MISSING)
        if not _same_process(entry):
            return self._gone(task_id, sandbox, entry)
        try:
            fd = os.pidfd_open(entry.pid)
        except OSError:
            return self._gone(task_id, sandbox, entry)
        self._procs[task_id] = _Proc(entry.pid, watch_stranger(entry.pid, fd), entry,
                                     self.isolator.locate(task_key(task_id, sandbox)))
        if (task_id, sandbox) not in self._found:  # the log must know it for the next time
            self._log.launched([entry])
        log.info("task %s: reattached to pid %d", task_id, entry.pid)
        return Found(RUNNING_FOUND, pid=entry.pid)

    def _gone(self, task_id: str, sandbox: str, entry: Launch) -> Found:
        self._log.ended(entry, len(self._procs))
        self.isolator.cleanup(self.isolator.locate(task_key(task_id, sandbox)))
        return Found(EXITED_FOUND)

    async def remove_orphans(self, known: set[str]) -> list[str]:
        """Kill and remove what a previous agent process left for tasks the checkpoint does
        not know (Mesos destroys the containers it does not recover): this agent's task
        groups not owned by a task in `known`, and the live launch-log entries of other
        tasks. Known tasks' groups and processes are left for `recover`. Called at start-up,
        before any launch; returns the groups and processes removed."""
        owners = {safe_task_id(t) for t in known}
        keys_of = getattr(self.isolator, "keys", None)
        keys = [k for k in (keys_of() if keys_of is not None else [])
                if key_owner(k) not in owners]
        groups = {k: self.isolator.locate(k) for k in keys}
        entries = [e for e in self._found.values() if e.task_id not in known]
        live = [e for e in entries if _same_process(e)]
        for e in live:
            _killpg(e.pid, signal.SIGKILL)
        busy = await self._destroy_orphans(live, groups)
        for e in entries:  # ended (killed now, or already gone): out of the log
            self._found.pop((e.task_id, e.sandbox), None)
            self._log.ended(e, len(self._found))
        if busy:
            log.warning("orphan cgroups still busy after %.0fs, left: %s", ORPHAN_WAIT,
                        ", ".join(sorted(busy)))
        return ([f"cgroup {k}" for k in keys if k not in busy]
                + [f"task {e.task_id} (pid {e.pid})" for e in live])

    async def _destroy_orphans(self, live: list[Launch], groups: dict[str, Prepared]
                               ) -> set[str]:
        """SIGKILL the groups' members until the processes are gone and the groups removed
        (a member may fork meanwhile); the keys of the groups still there at the deadline."""
        kill = getattr(self.isolator, "kill", None)
        left = dict(groups)
        for _ in range(int(ORPHAN_WAIT / 0.05)):
            for p in left.values():
                if kill is not None:
                    kill(p)
            left = {k: p for k, p in left.items() if not self.isolator.cleanup(p)}
            live = [e for e in live if _same_process(e)]
            if not left and not live:
                break
            await asyncio.sleep(0.05)
        for e in live:
            log.warning("orphan task %s (pid %d) outlived SIGKILL for %.0fs", e.task_id,
                        e.pid, ORPHAN_WAIT)
        return set(left)

    async def wait(self, task_id: str) -> tuple[int | None, int | None]:
        p = self._procs[task_id]
        rc = await asyncio.shield(p.exited)
        _killpg(p.pid, signal.SIGKILL)  # the container ends with its main process
        limit = self.isolator.limitation(p.isolation)
        if limit is not None:
            self._limits[task_id] = limit
        await self._cleanup(task_id, p.isolation)
        self._procs.pop(task_id, None)
        if self._log.ended(p.launch, len(self._procs)):
            self._log.compact(q.launch for q in self._procs.values())
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
        self._log.close()
        self._exits.close()
        closer = getattr(self.isolator, "close", None)
        if closer is not None:
            closer()

    def pid(self, task_id: str) -> int | None:
        p = self._procs.get(task_id)
        return p.pid if p is not None else None


def _deliver(chunk: list[_Request], ran: asyncio.Future) -> None:
    """A chunk is back from its thread: resolve each launch's future."""
    if ran.cancelled() or ran.exception() is not None:
        why = "cancelled" if ran.cancelled() else f"{type(ran.exception()).__name__}: {ran.exception()}"
        results: list[Any] = [LaunchError(f"launcher failed: {why}")] * len(chunk)
    else:
        results = ran.result()
    for r, result in zip(chunk, results):
        if r.done.done():
            continue
        if isinstance(result, LaunchError):
            r.done.set_exception(result)
        else:
            r.done.set_result(result)


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
