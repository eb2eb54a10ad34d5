"""The agent's asyncio runtime: feeds the pure core and performs its effects.

One TaskGroup holds everything: the connection loop (detect the leading master, point the DEALER
at it, feed MasterConnected, wait for a Redetect), the receive loop, one task per launched task
(launch, then wait for its exit) and kill tasks. Effects are performed through a `Performers`
table, timers are `Timers` (mesos_common.runtime). A failure while handling one event or
performing one effect is logged with its traceback and the agent carries on. SIGTERM/SIGINT:
kill every task (with its grace period), wait for them, exit 0 - leaving no orphans behind
(Mesos agents would leave tasks running; here SIGTERM is an orderly stop, and a crash / kill -9
is what recovery is for).

The core's `Checkpoint` effects are group-committed (atomically, see checkpoint.py) under
`<work_dir>/meta/checkpoint`, and the effects queued after one wait until it is durable
(a `CommitBarrier`).
Health probes run as tasks of the group too (one per checked task). At start-up, before the
first registration, the checkpoint is read back, each task's container is looked for
(`--recover=reconnect` reattaches, `cleanup` reattaches to kill) and `Recovered` is fed.
"""
from __future__ import annotations

import asyncio
import logging
import os
import random
import shutil
import signal
import socket
import sys
import time
from collections.abc import Coroutine
from concurrent.futures import Future, ThreadPoolExecutor
from typing import IO, Any

import zmq
from aiohttp import web
from attrs import field, frozen

from mesos_agent import paths
from mesos_agent.checkpoint import CheckpointStore
from mesos_agent.config import VERSION, AgentConfig
from mesos_agent.containerizer.base import Containerizer, LaunchError, task_environment
from mesos_agent.containerizer.isolation import Usage
from mesos_agent.containerizer.process import agent_base_env
from mesos_agent.containerizer.users import closed_ancestor
from mesos_agent.core import RUNNING, Agent
from mesos_agent.events import (
    EndExecutorStream,
    HealthResult,
    KillProcess,
    LaunchTask,
    MasterConnected,
    Redetect,
    ResizeContainer,
    StartHealthCheck,
    StopAgent,
    StopHealthCheck,
    TaskExited,
    TaskLaunched,
    TaskLaunchFailed,
    ToExecutor,
)
from mesos_agent.executor_api import ExecutorApi
from mesos_agent.fetcher import (
    STALL_TIMEOUT,
    FetchCancelled,
    Fetcher,
    FetchError,
    cache_dir_for,
    launched_as,
)
from mesos_agent.health import on_host, probe
from mesos_agent.http import make_app
from mesos_agent.operator_api import AgentOperatorApi, add_v1_routes
from mesos_agent.records import ALIVE
from mesos_agent.recovery import (
    MISSING,
    RECONNECT,
    RUNNING_FOUND,
    Checkpoint,
    Found,
    Recovered,
    RecoveredTask,
    record_file,
)
from mesos_agent.status import RetryPolicy
from mesos_common.auth.http import HttpAuth
from mesos_common.codec import DecodeError
from mesos_common.curve import PeerSecurity
from mesos_common.effects import CancelTimer, Log, Received, Send, SetTimer, Start, TimerFired
from mesos_common.gc_policy import GcPolicy
from mesos_common.leader import DetectError, LeaderWatch, detect
from mesos_common.messages import AttributeValue, TaskInfo
from mesos_common.resources import EMPTY, Resources
from mesos_common.runtime import CommitBarrier, Performers, Timers
from mesos_common.transport import DealerTransport

log = logging.getLogger("mesos_agent")

DETECT_BACKOFF = RetryPolicy(initial=0.5, max=10.0)
CONNECT_WAIT = 2.0  # seconds to wait for the DEALER's connection before registering
# Below this much free space in the work dir a new task is refused: its sandbox and the
# checkpoints of its updates would not fit, while the running tasks' updates still must.
WORK_DIR_RESERVE = 1 << 20
STOP_SLACK = 10.0   # beyond the longest grace period, how long shutdown waits for tasks
GC_FREEZE_CHECK = 0.25  # seconds between looks for survivors of a full collection to freeze
# Messages fed per turn of the receive loop: one ZeroMQ message from the master carries up to
# transport.BATCH_MAX (64). Between turns the loop runs what the burst made ready: a finished
# group commit's effects (the first launches) and the launches' hand-over to the containerizer.
RECV_BATCH = 64
FETCHER_CACHE_SIZE = 2 << 30  # Mesos's --fetcher_cache_size default (2GB)


@frozen
class ServerOptions:
    master: str
    work_dir: str
    resources: Resources
    attributes: dict[str, AttributeValue]
    ip: str = "127.0.0.1"
    port: int = 5051
    hostname: str | None = None
    registration_backoff: float = 1.0
    flags: dict[str, str] = field(factory=dict)
    recover: str = RECONNECT
    status_retry: RetryPolicy = RetryPolicy()
    gc_freeze: bool = False  # the daemon: the gc policy's thresholds and freezes (gc_policy)
    containerizers: tuple[str, ...] = ("mesos",)  # what the containerizer runs (told the master)
    switch_user: bool = True
    default_user: str = "nobody"  # --default_user ("": the agent's own user)
    executor_registration_timeout: float = 60.0
    executor_shutdown_grace: float = 5.0
    fetcher_cache_dir: str = ""  # "": <work_dir>/fetch
    fetcher_cache_size: int = FETCHER_CACHE_SIZE
    fetcher_stall_timeout: float = STALL_TIMEOUT
    security: PeerSecurity = field(factory=PeerSecurity)  # CURVE key, --credential
    http_auth: HttpAuth = HttpAuth()


REDETECT_MIN_INTERVAL = 0.3


class AgentServer:
    """Runs one agent until `stop` is set (or SIGTERM/SIGINT arrives)."""

    def __init__(self, opts: ServerOptions, containerizer: Containerizer,
                 rng: random.Random | None = None, out: IO[str] | None = None) -> None:
        self.opts = opts
        self.containerizer = containerizer
        self.rng = rng or random.Random()
        self.out = out or sys.stdout
        self.core: Agent | None = None
        self.http_port = 0
        self._dealer: DealerTransport | None = None
        self._timers = Timers(lambda key: self.feed(TimerFired(key)), clock=time.time)
        self._redetect = asyncio.Event()
        self._tg: asyncio.TaskGroup | None = None
        self._runs: dict[str, asyncio.Task[None]] = {}
        self._graces: dict[str, float] = {}
        self._announced: str | None = None
        self._store = CheckpointStore(opts.work_dir)
        self._health: dict[str, asyncio.Task[None]] = {}
        self._perform = Performers({
            Send: self._send, SetTimer: lambda e: self._timers.set(e.key, e.at),
            CancelTimer: lambda e: self._timers.cancel(e.key),
            Log: lambda e: log.log(logging.getLevelName(e.level.upper()), "%s", e.text),
            LaunchTask: self._launch, StartHealthCheck: self._start_health,
            StopHealthCheck: lambda e: self._stop_health(e.task_id),
            KillProcess: lambda e: self._spawn(self._kill(e.task_id, e.grace_period)),
            ToExecutor: lambda e: self.executor_api.deliver(e.framework_id, e.executor_id, e.msg),
            EndExecutorStream: lambda e: self.executor_api.end(e.framework_id, e.executor_id),
            ResizeContainer: lambda e: self._spawn(self._resize(e.key, e.resources)),
            Redetect: self._redetect_now})
        # Effects wait behind the checkpoint they report: commit number = record number.
        self._effects = CommitBarrier(self._perform_logged)
        # Checkpoint records not yet committed, the latest per file (task id; None: the
        # agent id): a task's later snapshot replaces an earlier one still waiting.
        self._unwritten: dict[str | None, Any] = {}
        self._seq = 0  # records handed to us so far
        self._committing = False
        self._commit_pool = ThreadPoolExecutor(1, thread_name_prefix="checkpoint")
        self._fetcher: Fetcher | None = None  # made by the first task with URIs
        self.executor_api: ExecutorApi = ExecutorApi(self, time.time)

    # ------------------------------------------------------------ lifecycle

    def _check_work_dir(self) -> None:
        """Tasks switched to other users must be able to walk to their sandboxes."""
        if not self.opts.switch_user or os.geteuid() != 0:
            return
        closed = closed_ancestor(os.path.join(self.opts.work_dir, paths.SANDBOXES))
        if closed is not None:
            log.warning("%s is not passable by other users (no search bit for others): tasks "
                        "run as another user (--switch_user, --default_user=%s) cannot reach "
                        "their sandboxes under it by path; choose another --work_dir or "
                        "chmod o+x it", closed, self.opts.default_user)

    async def run(self, stop: asyncio.Event | None = None) -> int:
        loop = asyncio.get_running_loop()
        stop = stop or asyncio.Event()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        self._check_work_dir()
        app = make_app(self._state, self.opts.work_dir, self._statistics,
                       auth=self.opts.http_auth)
        add_v1_routes(app, self.executor_api, AgentOperatorApi(
            lambda: self.core, self.opts.work_dir, dict(self.opts.flags), VERSION))
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        gc_policy = GcPolicy() if self.opts.gc_freeze else None
        try:
            site = web.TCPSite(runner, self.opts.ip, self.opts.port,
                               ssl_context=self.opts.http_auth.ssl_context())
            try:
                await site.start()
            except OSError as e:
                log.error("cannot listen on %s:%d: %s", self.opts.ip, self.opts.port, e)
                return 1
            self.http_port = runner.addresses[0][1]
            self.core = Agent(self._config(), self.rng)
            self._dealer = DealerTransport(security=self.opts.security)
            print(f"mesos-agent: listening http={self.opts.http_auth.scheme}://{self.opts.ip}:"
                  f"{self.http_port} pid={os.getpid()} "
                  f"containerizers={','.join(self.opts.containerizers)}",
                  file=self.out, flush=True)
            async with asyncio.TaskGroup() as tg:
                self._tg = tg
                self.feed(Start())
                await self._recover()
                watch = LeaderWatch(self.opts.master, self._leader_changed, loop)
                loops = [tg.create_task(self._connection_loop()),
                         tg.create_task(self._receive_loop()), tg.create_task(watch.run()),
                         tg.create_task(self.executor_api.heartbeats())]
                if gc_policy is not None:
                    # As in the master and Marathon: what start-up and recovery built lives
                    # as long as the daemon, so freeze it now rather than have the first
                    # collections of a launch burst walk it (with the default thresholds
                    # the agent spent ~60 ms of its loop in gc during 1,000 launches).
                    gc_policy.install()
                    gc_policy.collect_and_freeze()
                    loops.append(tg.create_task(gc_policy.freezer(GC_FREEZE_CHECK)))
                try:
                    await stop.wait()
                finally:
                    watch.close()
                await self._shutdown()
                self.executor_api.close()
                closer = getattr(self.containerizer, "close", None)
                if closer is not None and not self.containerizer.containers():
                    closer()  # every task is gone: nothing of ours is left to isolate
                for t in loops:
                    t.cancel()
        finally:
            if gc_policy is not None:
                gc_policy.uninstall()
            self._timers.close()
            if self._dealer is not None:
                self._dealer.close()
            await runner.cleanup()
            self._commit_pool.shutdown(wait=False)  # a running commit ends on its own
            if self._fetcher is not None:
                await self._fetcher.close()
        log.info("stopped")
        return 0

    async def _remove_orphans(self, known: set[str]) -> None:
        remover = getattr(self.containerizer, "remove_orphans", None)
        if remover is None:
            return
        try:
            gone = await remover(known)
        except Exception:
            log.exception("looking for orphan containers failed")
            return
        if gone:
            log.warning("removed %d orphan container(s): %s", len(gone), ", ".join(gone))

    def _config(self) -> AgentConfig:
        o = self.opts
        return AgentConfig(
            hostname=o.hostname or (o.ip if o.ip != "0.0.0.0" else _hostname()),
            port=self.http_port, ip=o.ip, resources=o.resources, work_dir=o.work_dir,
            attributes=dict(o.attributes), flags=dict(o.flags), containerizers=o.containerizers,
            registration_backoff=RetryPolicy(initial=o.registration_backoff, max=60.0),
            status_retry=o.status_retry, checkpoint=True, switch_user=o.switch_user,
            default_user=o.default_user,
            executor_registration_timeout=o.executor_registration_timeout,
            executor_shutdown_grace=o.executor_shutdown_grace)

    async def _recover(self) -> None:
        """Read the checkpoint, look for every task's container, feed `Recovered`, then
        watch the reattached ones as if we had launched them."""
        try:
            record, checkpoints = self._store.load()
        except OSError as e:
            log.error("cannot read the checkpoint: %s; starting afresh", e)
            return
        await self._remove_orphans({cp.task.task_id for cp in checkpoints})
        agent_id = record.agent_id if record is not None else None
        if agent_id is None and not checkpoints:
            return
        found: list[RecoveredTask] = []
        for cp in checkpoints:
            tid = cp.task.task_id
            try:
                what = await self.containerizer.recover(
                    tid, cp.framework.id or "", cp.task, cp.sandbox, cp.container)
            except Exception:
                log.exception("recovering task %s failed", tid)
                what = Found(MISSING)
            found.append(RecoveredTask(cp, what))
        self.feed(Recovered(agent_id, tuple(found), self.opts.recover,
                            record.reserved if record is not None else EMPTY))
        assert self.core is not None
        live = self.core.containers()
        for rt in found:
            tid = rt.checkpoint.task.task_id
            if rt.found.what == RUNNING_FOUND and tid in live:
                self._graces[tid] = max(0.0, rt.checkpoint.task.kill_grace_period or 3.0)
                self._runs[tid] = self._spawn(self._watch(tid))

    async def _shutdown(self) -> None:
        """Kill every task (the core decides how), wait for them to end, so no process
        outlives us; whatever is still there after the longest grace period is SIGKILLed."""
        self.feed(StopAgent())
        for t in self._health.values():
            t.cancel()
        if self._runs:
            longest = max((self._graces.get(t, 3.0) for t in self._runs), default=0.0)
            _, pending = await asyncio.wait(list(self._runs.values()),
                                            timeout=longest + STOP_SLACK)
            for task_id in self.containerizer.containers():
                log.error("task %s outlived its kill; SIGKILL", task_id)
                await self._kill(task_id, 0.0)
            if pending:
                _, pending = await asyncio.wait(pending, timeout=2.0)
            for t in pending:
                t.cancel()
        await self._flush()

    async def _flush(self) -> None:
        """Commit the lazy records still waiting, so a clean stop leaves nothing to resend."""
        for _ in range(int(STOP_SLACK / 0.01)):
            if not (self._committing or self._unwritten):
                return
            self._start_commit()
            await asyncio.sleep(0.01)

    def _state(self) -> dict[str, Any]:
        assert self.core is not None
        return self.core.state_json()

    async def _statistics(self) -> list[dict[str, Any]]:
        """`/monitor/statistics`: per running task, usage from its containerizer (cgroups,
        psutil or docker stats) and limits from its resources where the counters lack them."""
        if self.core is None:
            return []
        entries = [e for e in self.core.tasks().values() if e.process == ALIVE]
        usages = await asyncio.gather(*(self.containerizer.usage(e.task_id) for e in entries),
                                      return_exceptions=True)
        out = []
        for e, u in zip(entries, usages, strict=True):
            if not isinstance(u, Usage):
                continue
            res = e.task.resources
            stats: dict[str, Any] = {"timestamp": time.time(),
                                     "cpus_limit": u.cpus_limit or res.scalar("cpus"),
                                     "mem_limit_bytes": u.mem_limit_bytes
                                     or int(res.scalar("mem") * 1024 * 1024)}
            for k in ("mem_rss_bytes", "cpus_user_time_secs", "cpus_system_time_secs"):
                if getattr(u, k) is not None:
                    stats[k] = getattr(u, k)
            out.append({"executor_id": e.task_id, "executor_name": e.task.name,
                        "framework_id": e.framework_id, "source": e.task_id,
                        "container_id": e.run_id, "statistics": stats})
        return out

    # ------------------------------------------------------------ feeding the core

    def feed(self, event: Any) -> None:
        """Hand one event to the core and perform its effects; never raises."""
        assert self.core is not None
        try:
            effects = self.core.handle(event, time.time())
        except Exception:
            log.exception("agent core failed handling %r", event)
            return
        self._announce()
        for e in effects:
            if isinstance(e, Checkpoint):
                self._seq += 1
                self._unwritten[record_file(e.record)] = e.record
                if not e.lazy:
                    self._effects.hold(self._seq)
            else:
                self._effects.add(e)
        self._drain()

    def _drain(self) -> None:
        """Perform queued effects in order. At a barrier (a non-lazy Checkpoint), every
        record handed to us so far goes into one group commit (in a thread) and the effects
        after it wait until it is durable - so no update is sent, nor task launched, before
        its checkpoint is on disk. Lazy records (acks after which nothing is sent) ride along
        with the next commit, or get one of their own when the queue is idle; commits are
        serial, so a task's later snapshot never lands before an earlier one."""
        self._effects.drain()  # stopped at a hold: _committed drains again once it is durable
        self._start_commit()

    def _start_commit(self) -> None:
        """Hand the waiting records to a thread now, not from a task of the loop's next
        turn: the write overlaps whatever the loop does meanwhile (a burst of RunTasks),
        and the first launches wait for one commit of a few records, not for the burst."""
        if self._committing or not self._unwritten:
            return
        batch, self._unwritten = list(self._unwritten.values()), {}
        self._committing = True
        upto, loop = self._seq, asyncio.get_running_loop()
        # The thread's future, not an asyncio one chained to it: that would take two turns
        # of the loop (copy the state, then run the callback) instead of one.
        done = self._commit_pool.submit(self._store.write_batch, batch)
        done.add_done_callback(lambda f: _call_in(loop, self._committed, f, len(batch), upto))

    def _committed(self, done: Future[None], records: int, upto: int) -> None:
        error = done.exception()
        if error is not None:  # logged; the agent goes on, as it did before group commit
            log.error("checkpointing %d record(s) failed", records, exc_info=error)
        self._effects.committed(upto)
        self._committing = False
        self._drain()

    def _announce(self) -> None:
        core = self.core
        assert core is not None
        if core.state == RUNNING and core.agent_id != self._announced:
            self._announced = core.agent_id
            print(f"mesos-agent: registered id={core.agent_id} master={core.master_id}",
                  file=self.out, flush=True)

    def _perform_logged(self, effect: Any) -> None:
        try:
            self._perform[type(effect)](effect)
        except Exception:
            log.exception("failed performing %r", effect)

    def _send(self, effect: Send) -> None:
        assert self._dealer is not None
        self._dealer.send(effect.msg)

    def _launch(self, effect: LaunchTask) -> None:
        self._graces[effect.task.task_id] = max(0.0, effect.task.kill_grace_period or 3.0)
        self._runs[effect.task.task_id] = self._spawn(self._run_task(effect))

    def _start_health(self, effect: StartHealthCheck) -> None:
        self._stop_health(effect.task_id)
        self._health[effect.task_id] = self._spawn(self._health_loop(effect))

    def _redetect_now(self, effect: Redetect) -> None:
        log.info("re-detecting the master: %s", effect.reason)
        self._redetect.set()

    def _stop_health(self, task_id: str) -> None:
        t = self._health.pop(task_id, None)
        if t is not None:
            t.cancel()

    async def _health_loop(self, effect: StartHealthCheck) -> None:
        """Probe after the check's delay, then every interval, until stopped."""
        task_id = effect.task_id
        assert self.core is not None
        entry = self.core.tasks().get(task_id)
        if entry is None:
            return
        check = on_host(effect.check, entry.task)
        env = task_environment(task_id, entry.framework_id, entry.task, effect.sandbox,
                               agent_base_env())
        docker_id = (self.containerizer.handle(task_id) if entry.task.container is not None
                     and entry.task.container.type == "DOCKER" else None)
        try:
            await asyncio.sleep(max(0.0, check.delay_seconds))
            while True:
                healthy, why = await probe(check, effect.sandbox, env, docker_id,
                                           None if docker_id else effect.user)
                if self._health.get(task_id) is not asyncio.current_task():
                    return  # stopped while probing
                self.feed(HealthResult(task_id, healthy, why))
                await asyncio.sleep(max(0.05, check.interval_seconds))
        except asyncio.CancelledError:
            pass
        finally:
            if self._health.get(task_id) is asyncio.current_task():
                del self._health[task_id]

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        assert self._tg is not None
        return self._tg.create_task(coro)

    # ------------------------------------------------------------ master connection

    async def _connection_loop(self) -> None:
        """Detect the leader (retrying with backoff), connect, register; again on Redetect."""
        assert self._dealer is not None
        delay = DETECT_BACKOFF.initial
        while True:
            self._redetect.clear()  # a leader change seen from here on triggers another round
            try:
                info = await detect(self.opts.master)
            except DetectError as e:
                log.warning("%s; retrying in %.1fs", e, delay)
                try:  # a new leader appearing in ZooKeeper cuts the wait short
                    await asyncio.wait_for(self._redetect.wait(), delay)
                except TimeoutError:
                    pass
                delay = min(delay * 2, DETECT_BACKOFF.max)
                continue
            delay = DETECT_BACKOFF.initial
            if info.zmq_endpoint != self._dealer.endpoint:
                log.info("leading master %s at %s", info.id, info.zmq_endpoint)
            self._dealer.connect(info.zmq_endpoint, info.curve_public_key, self.opts.master)
            deadline = time.monotonic() + CONNECT_WAIT
            while not self._redetect.is_set() and time.monotonic() < deadline:
                if self._dealer.writable():
                    break
                await asyncio.sleep(0.05)
            if self._redetect.is_set():  # the leader moved while we were connecting
                continue
            self.feed(MasterConnected({"id": info.id}))
            connected_at = time.monotonic()
            await self._redetect.wait()
            # A standby answering "not leader" while the election settles must not make us
            # spin: at most one detection per REDETECT_MIN_INTERVAL.
            await asyncio.sleep(max(0.0, connected_at + REDETECT_MIN_INTERVAL - time.monotonic()))

    def _leader_changed(self, znode: str | None) -> None:
        """The zk:// leader znode changed: re-register with the new leader right away."""
        if znode is not None:
            log.info("leader changed in ZooKeeper (%s): re-detecting", znode)
            self._redetect.set()

    async def _receive_loop(self) -> None:
        """Wait for a message, then take whatever else is already queued, up to RECV_BATCH
        (a burst of RunTasks or acks costs one wake-up, not one per message); then give the
        loop a turn. An awaited recv that is already done does not yield: without the turn
        a 1,000-task ACCEPT was decoded and fed whole (~80 ms) before the first group commit
        could end and the first launch could start."""
        assert self._dealer is not None
        while True:
            msgs: list[Any] = []
            try:
                msgs = await self._dealer.recv_batch(RECV_BATCH)
            except zmq.ZMQError as e:
                log.error("receive failed: %s", e)
                await asyncio.sleep(0.1)
            for msg in msgs:
                if isinstance(msg, DecodeError):
                    log.warning("dropping undecodable frame from the master: %s", msg.message)
                    continue
                self.feed(Received(b"", msg))
            await asyncio.sleep(0)

    # ------------------------------------------------------------ tasks

    async def _run_task(self, effect: LaunchTask) -> None:
        """Launch one task and report its life: launched (or not), then its exit."""
        task_id = effect.task.task_id
        try:
            try:
                full = self._work_dir_full()
                if full is not None:
                    self.feed(TaskLaunchFailed(task_id, full))
                    return
                task = await self._fetch(effect)
                if task is None:
                    return
                pid = await self.containerizer.launch(task_id, effect.framework_id, task,
                                                      effect.sandbox)
            except FetchError as e:
                self.feed(TaskLaunchFailed(task_id, str(e), "REASON_FETCHER_FAILED"))
                return
            except LaunchError as e:
                self.feed(TaskLaunchFailed(task_id, str(e)))
                return
            except Exception as e:
                log.exception("launching task %s failed", task_id)
                self.feed(TaskLaunchFailed(task_id, f"{type(e).__name__}: {e}"))
                return
            self.feed(TaskLaunched(task_id, pid, self.containerizer.handle(task_id)))
            await self._wait_exit(task_id)
        finally:
            self._runs.pop(task_id, None)
            self._graces.pop(task_id, None)

    def _work_dir_full(self) -> str | None:
        """Why no new task fits in the work dir now (None: it does)."""
        try:
            free = shutil.disk_usage(self.opts.work_dir).free
        except OSError as e:
            return f"agent work dir {self.opts.work_dir} is unusable: {e}"
        if free >= WORK_DIR_RESERVE:
            return None
        log.warning("work dir %s is full (%d bytes free): refusing new tasks",
                    self.opts.work_dir, free)
        return (f"agent work dir {self.opts.work_dir} is full ({free} bytes free, a new task "
                f"needs {WORK_DIR_RESERVE}); the tasks running here are kept")

    async def _fetch(self, effect: LaunchTask) -> TaskInfo | None:
        """The task as its containerizer gets it (`launched_as`), once its URIs are in the
        sandbox; None when it was killed while fetching. The task stays STAGING meanwhile;
        launches of other tasks do not wait for it."""
        task = launched_as(effect.task, effect.user)
        if task.command is None or not task.command.uris:
            return task
        if self._fetcher is None:
            o = self.opts
            self._fetcher = Fetcher(cache_dir_for(o.work_dir, o.fetcher_cache_dir),
                                    o.fetcher_cache_size, stall_timeout=o.fetcher_stall_timeout)
        core = self.core
        assert core is not None
        try:
            await self._fetcher.fetch_task(task, effect.sandbox,
                                           lambda: core.wants_launch(task.task_id))
        except FetchCancelled:
            pass
        if not core.wants_launch(task.task_id):
            self.feed(TaskLaunchFailed(task.task_id, "killed while its URIs were fetched"))
            return None
        return task

    async def _watch(self, task_id: str) -> None:
        """A reattached task: report its end."""
        try:
            await self._wait_exit(task_id)
        finally:
            self._runs.pop(task_id, None)
            self._graces.pop(task_id, None)

    async def _wait_exit(self, task_id: str) -> None:
        try:
            code, sig = await self.containerizer.wait(task_id)
        except Exception:
            log.exception("waiting for task %s failed", task_id)
            code, sig = None, None
        self.feed(TaskExited(task_id, code, sig, self.containerizer.limitation(task_id)))

    async def _resize(self, key: str, res: Resources) -> None:
        resize = getattr(self.containerizer, "resize", None)
        if resize is None:
            return
        try:
            await asyncio.to_thread(resize, key, res.scalar("cpus"), res.scalar("mem"))
        except Exception as e:
            log.warning("raising the limits of %s failed: %s", key, e)

    async def _kill(self, task_id: str, grace: float) -> None:
        try:
            await self.containerizer.kill(task_id, grace)
        except Exception:
            log.exception("killing task %s failed", task_id)


def _call_in(loop: asyncio.AbstractEventLoop, fn: Any, *args: Any) -> None:
    """From another thread: `fn(*args)` on `loop`, unless the agent has stopped meanwhile."""
    try:
        loop.call_soon_threadsafe(fn, *args)
    except RuntimeError:  # the loop is closed
        pass


def _hostname() -> str:
    return socket.gethostname()
