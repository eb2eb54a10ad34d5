"""Tasks as plain processes, each in its own session and process group (Mesos's posix
launcher): `sh -c <value>` or an argv, in the sandbox, stdout/stderr into sandbox files.
Under cgroups a `<value>` that is one simple command (plain words, no builtin: see
`isolation.simple_command`) is exec'd without the shell, as bash does for `bash -c`.

Launches run in the agent's launch helpers, processes of their own (`launch_helper.py`), in
batches: the launches asked for in one turn of the event loop are split into chunks, each
sent to the next helper in turn as one request and answered in one piece. A helper is its
tasks' parent: it reaps them and reports their exits.

Killing signals the whole group, so a task's children and grandchildren go with it; when a
task's main process ends, whatever is left of its group is SIGKILLed, as Mesos destroys a
container when its executor exits. Each task's pid (= its process-group id) and start time
go into the agent's launch log (`mesos_common.launch_log`) as soon as it is spawned, so a
restarted agent, `mesos_common.daemons` and tests can find it even when the checkpoint
missed it.
"""
from __future__ import annotations

import asyncio
import functools
import logging
import os
import signal
from collections.abc import Mapping

import psutil
from attrs import define, frozen

from mesos_agent.containerizer.base import LaunchError, task_environment
from mesos_agent.containerizer.batch import SHELL, LaunchSpec
from mesos_agent.containerizer.isolation import (
    Isolator,
    NoIsolation,
    Prepared,
    Usage,
    key_owner,
    safe_task_id,
    task_key,
)
from mesos_agent.containerizer.launcher import HelperLost, Launcher, watch_stranger
from mesos_agent.containerizer.support import MESOS, refusal
from mesos_agent.recovery import EXITED_FOUND, MISSING, RUNNING_FOUND, Found
from mesos_common import launch_log
from mesos_common.launch_log import Launch, LaunchLog
from mesos_common.messages import TaskInfo

log = logging.getLogger(__name__)

DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
HELPERS = 2  # launch helpers: one's spawn waits for its child's exec while another works
CHUNK_MAX = 16  # launches per request to a helper: few wake-ups, yet the first start early
ORPHAN_WAIT = 5.0  # seconds for killed orphans to leave their groups


@define
class _Proc:
    pid: int  # session leader = process-group id
    exited: asyncio.Future[int | None]  # return code (negative: that signal); None: unknown
    launch: Launch
    isolation: Prepared = Prepared()
    oom_fd: int | None = None  # signalled when its memory group runs out (isolator's oom_events)
    oom_seen: bool = False  # it did, and we killed the task for it (reattached tasks)


@frozen
class _Request:
    """One launch waiting for a helper; `done` gets a _Started or a LaunchError."""

    spec: LaunchSpec
    done: asyncio.Future


@frozen
class _Started:
    launch: Launch
    exited: asyncio.Future[int | None]  # from the helper that started it


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
    """Containerizer running each task as a session leader under the agent's launch helper."""

    def __init__(self, work_dir: str, base_env: Mapping[str, str] | None = None,
                 isolator: Isolator | None = None) -> None:
        self.work_dir = work_dir
        self.isolator: Isolator = isolator if isolator is not None else NoIsolation()
        self.base_env = dict(base_env) if base_env is not None else agent_base_env()
        # A task with a user gets its user's HOME and USER (the launch helper sets them)
        self._user_env = {k: v for k, v in self.base_env.items() if k not in ("HOME", "USER")}
        self._procs: dict[str, _Proc] = {}
        self._launching: set[str] = set()
        self._queue: list[_Request] = []
        self._limits: dict[str, str] = {}
        self._oom_pids: set[int] = set()  # tasks a helper killed for running out of memory
        self._log = LaunchLog(work_dir)
        self._found = self._log.found  # what a previous agent process started
        self._starting: dict[str, Launch] = {}  # started, not yet handed to `launch`
        self._compact_due = False
        self._launchers = [Launcher(self.isolator, self._log.path, self._helper_saw_oom)
                           for _ in range(HELPERS)]
        self._turn = 0  # the launcher the next chunk goes to

    async def launch(self, task_id: str, framework_id: str, task: TaskInfo, sandbox: str) -> int:
        """Queue the launch for the launch helper (see the module docstring) and wait."""
        if task_id in self._procs or task_id in self._launching:
            raise LaunchError(f"task {task_id} is already running")
        why = refusal(task, (MESOS,))  # never a container's command on the host
        if why is not None:
            raise LaunchError(why)
        executable, argv = command_argv(task)
        user = (task.command.user if task.command is not None else None) or ""
        env = task_environment(task_id, framework_id, task, sandbox,
                               self._user_env if user else self.base_env)
        loop = asyncio.get_running_loop()
        spec = LaunchSpec(task_id, sandbox, executable, argv, env,
                          task.resources.scalar("cpus"), task.resources.scalar("mem"), user)
        req = _Request(spec, loop.create_future())
        if not self._queue:
            loop.call_soon(self._dispatch)
        self._queue.append(req)
        self._launching.add(task_id)
        try:  # not shielded (a turn of the loop per launch): _deliver sees a cancelled one
            started = await req.done
        finally:
            self._launching.discard(task_id)
        self._starting.pop(task_id, None)
        pid = started.launch.pid
        self._procs[task_id] = _Proc(pid, started.exited, started.launch,
                                     self.isolator.locate(task_key(task_id, sandbox)))
        log.info("task %s: started pid %d: %s", task_id, pid, argv)
        return pid

    def _dispatch(self) -> None:
        """Hand this turn's launches to the helpers, in chunks that keep them all busy,
        taking turns."""
        reqs, self._queue = self._queue, []
        for h in self._launchers:
            h.watch()
        size = max(1, min(CHUNK_MAX, -(-len(reqs) // len(self._launchers))))  # all get some
        for i in range(0, len(reqs), size):
            chunk = reqs[i:i + size]
            launcher = self._launchers[self._turn]
            self._turn = (self._turn + 1) % len(self._launchers)
            try:
                launcher.submit([r.spec for r in chunk],
                                functools.partial(self._deliver, chunk, launcher))
            except OSError as e:  # the helper cannot be (re)started
                _fail(chunk, f"cannot start the launch helper: {e}")

    def _deliver(self, chunk: list[_Request], launcher: Launcher,
                 answer: list[tuple[int, float] | str] | HelperLost) -> None:
        """A chunk is back from its helper: resolve each launch's future; a launch
        cancelled meanwhile (the agent stops) has what it started killed."""
        if isinstance(answer, HelperLost):  # it may have started some: the log says which
            self._kill_logged(chunk)
            _fail(chunk, f"launcher failed: {answer}")
        else:
            for r, result in zip(chunk, answer, strict=True):
                if isinstance(result, str):
                    if not r.done.done():
                        r.done.set_exception(LaunchError(result))
                    continue
                entry = Launch(r.spec.task_id, r.spec.sandbox, *result)
                started = _Started(entry, launcher.exit_future(entry.pid))
                self._starting[r.spec.task_id] = entry
                if r.done.cancelled():
                    self._abandoned(started)
                elif not r.done.done():
                    r.done.set_result(started)
        self._compact_if_due()

    def _kill_logged(self, chunk: list[_Request]) -> None:
        """Kill what a dead helper's launch log entries say it started for `chunk`."""
        wanted = {(r.spec.task_id, r.spec.sandbox) for r in chunk}
        for key, entry in launch_log.read(self.work_dir).items():
            if key in wanted and launch_log.is_alive(entry):
                _killpg(entry.pid, signal.SIGKILL)

    def _abandoned(self, started: _Started) -> None:
        """A launch cancelled while the helper started it: kill what it started."""
        entry = started.launch
        _killpg(entry.pid, signal.SIGKILL)
        prepared = self.isolator.locate(task_key(entry.task_id, entry.sandbox))

        def reaped(_: asyncio.Future) -> None:
            self._starting.pop(entry.task_id, None)
            self.isolator.cleanup(prepared)
            self._log.ended(entry, len(self._procs))
        started.exited.add_done_callback(reaped)

    def _compact_if_due(self) -> None:
        """Rewrite the launch log with the live entries once no helper has a batch in
        flight (a batch's launches are logged by its helper before it answers)."""
        if not self._compact_due or any(h.busy() for h in self._launchers):
            return
        self._compact_due = False
        self._log.compact([p.launch for p in self._procs.values()]
                          + list(self._starting.values()))
        for h in self._launchers:
            h.reopen_log()

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
        self._procs[task_id] = proc = _Proc(entry.pid, watch_stranger(entry.pid, fd), entry,
                                            self.isolator.locate(task_key(task_id, sandbox)))
        self._watch_oom(task_id, proc)  # ours to watch: its helper is gone
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
        self._unwatch_oom(p)
        oom_seen = p.oom_seen or p.pid in self._oom_pids
        self._oom_pids.discard(p.pid)
        limit = self.isolator.limitation(p.isolation, oom_seen)
        if limit is not None:
            self._limits[task_id] = limit
        await self._cleanup(task_id, p.isolation)
        self._procs.pop(task_id, None)
        if self._log.ended(p.launch, len(self._procs)):
            self._compact_due = True
            self._compact_if_due()
        if rc is None:
            return None, None
        return (rc, None) if rc >= 0 else (None, -rc)

    def resize(self, task_id: str, cpus: float, mem: float) -> None:
        """Raise a running task's cgroup limits (blocking: a few small writes to cgroupfs);
        nothing without cgroups (rlimits are fixed at launch)."""
        p = self._procs.get(task_id)
        resize = getattr(self.isolator, "resize", None)
        if p is not None and resize is not None:
            resize(task_key(task_id, p.launch.sandbox), cpus, mem)

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

    def _helper_saw_oom(self, pid: int) -> None:
        """A launch helper killed one of its tasks (`wait` reports it): its memory group ran
        out. Before the task's exit, maybe before its launch is handed back."""
        self._oom_pids.add(pid)

    def _watch_oom(self, task_id: str, p: _Proc) -> None:
        """Watch a reattached task's memory group (the helpers watch the tasks they start)."""
        watch = getattr(self.isolator, "oom_events", None)
        fd = watch(p.isolation) if watch is not None else None
        if fd is not None:
            p.oom_fd = fd
            asyncio.get_running_loop().add_reader(fd, self._out_of_memory, task_id, p)

    def _out_of_memory(self, task_id: str, p: _Proc) -> None:
        """The task's memory group ran out: the whole task goes (Mesos destroys the
        container), even when the OOM killer only took one of its processes; `wait`
        reports the limitation."""
        self._unwatch_oom(p)
        if p.exited.done():
            return
        log.warning("task %s: out of memory in its cgroup; killing it", task_id)
        p.oom_seen = True
        _killpg(p.pid, signal.SIGKILL)
        kill = getattr(self.isolator, "kill", None)
        if kill is not None:
            kill(p.isolation)

    def _unwatch_oom(self, p: _Proc) -> None:
        if p.oom_fd is not None:
            asyncio.get_running_loop().remove_reader(p.oom_fd)
            os.close(p.oom_fd)
            p.oom_fd = None

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
        """The agent stops (its tasks are gone): stop the launch helper, drop the agent's
        parent cgroups."""
        for h in self._launchers:
            h.close()
        self._log.close()
        closer = getattr(self.isolator, "close", None)
        if closer is not None:
            closer()

    def helper_pids(self) -> list[int]:
        """The live launch helpers' pids (tests, diagnostics)."""
        return [h.pid for h in self._launchers if h.pid is not None]

    def pid(self, task_id: str) -> int | None:
        p = self._procs.get(task_id)
        return p.pid if p is not None else None


def _fail(chunk: list[_Request], why: str) -> None:
    for r in chunk:
        if not r.done.done():
            r.done.set_exception(LaunchError(why))


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
