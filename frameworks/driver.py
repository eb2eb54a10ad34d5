"""The asyncio runtime around `SchedulerCore`: detection, ZeroMQ, timers, callbacks.

One task group holds three loops: `_connect_loop` (detect the leading master with backoff,
point the DEALER at it, feed MasterConnected), `_recv_loop` (decoded messages in) and
`_dispatch_loop`, the only place the core is touched: it takes one item at a time from a
queue, runs the core and performs the effects in order. Callbacks therefore run one at a
time, in event order, and an implicit Acknowledge is only sent after the status_update
callback has returned (awaited, when it is a coroutine). Driver methods only enqueue, so
they are safe from any thread and from inside callbacks.

A scheduler with a `batch_done(driver)` callback gets bursts: the loop runs queued items
for up to BATCH_SECONDS, calls `batch_done` (where the scheduler commits what the burst
changed), and only then sends what the burst produced (acknowledgements, launches,
kills). So an update is acknowledged only once the scheduler's record of it is durable,
with one commit per burst instead of one per update.
"""
from __future__ import annotations

import asyncio
import functools
import inspect
import logging
from collections.abc import Awaitable, Callable, Iterable
from typing import Any, Protocol

import attrs
import zmq.asyncio

from frameworks.core import Abort, Callback, SchedulerCore
from mesos_common import leader
from mesos_common import messages as m
from mesos_common.auth.credentials import Credential
from mesos_common.codec import DecodeError
from mesos_common.curve import PeerSecurity
from mesos_common.effects import (
    CancelTimer,
    LeaderChanged,
    Log,
    MasterConnected,
    Received,
    Redetect,
    Send,
    SetTimer,
    TimerFired,
)
from mesos_common.runtime import Performers, Timers
from mesos_common.transport import DealerTransport

log = logging.getLogger("frameworks.driver")

DRIVER_NOT_STARTED = "DRIVER_NOT_STARTED"
DRIVER_RUNNING = "DRIVER_RUNNING"
DRIVER_ABORTED = "DRIVER_ABORTED"
DRIVER_STOPPED = "DRIVER_STOPPED"

_LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING,
           "error": logging.ERROR}

Item = Callable[[float], list[Any]]  # run on the dispatch loop with the current time
Burst = list[Any]  # messages received from the master together, in order
OfferIds = str | m.Offer | m.InverseOffer | Iterable[str | m.Offer | m.InverseOffer]


class Upstream(Protocol):
    """The one connection to the master (DealerTransport; a fake in unit tests)."""

    def connect(self, endpoint: str, curve_key: str | None = None) -> None: ...
    async def recv(self) -> Any: ...
    def send(self, msg: Any) -> bool: ...
    async def wait_ready(self, timeout: float) -> bool: ...
    def close(self, linger: float = 0.0) -> None: ...


class ZmqUpstream:
    """DealerTransport plus the two things the driver needs on top of it."""

    def __init__(self, security: PeerSecurity | None = None) -> None:
        # Its own context, so that close() can wait for a final Teardown to leave (term()
        # blocks up to the linger); the shared instance is never terminated before exit.
        self._ctx = zmq.asyncio.Context()
        self.transport = DealerTransport(self._ctx, security=security)

    def connect(self, endpoint: str, curve_key: str | None = None) -> None:
        """`curve_key`: the one the master publishes (the security's pinned key wins)."""
        self.transport.connect(endpoint, curve_key)

    async def recv(self) -> Any:
        return await self.transport.recv()

    async def recv_batch(self, limit: int = 256) -> list[Any]:
        return await self.transport.recv_batch(limit)

    def send(self, msg: Any) -> bool:
        """Non-blocking send; False when dropped (no master connected, or queue full)."""
        return self.transport.send(msg)

    async def wait_ready(self, timeout: float) -> bool:
        """Until the connection is up (IMMEDIATE: POLLOUT only then), so that the first
        Subscribe is not dropped and left to the retry timer."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not self.transport.writable():  # reads EVENTS, and wakes a waiting recv
            if loop.time() >= deadline:
                return False
            await asyncio.sleep(0.01)
        return True

    def close(self, linger: float = 0.0) -> None:
        """`linger` seconds let a final Teardown leave before the process may exit."""
        self.transport.sock.close(linger=int(linger * 1000))
        self._ctx.term()


def _offer_ids(ids: OfferIds) -> tuple[str, ...]:
    if isinstance(ids, (str, m.Offer, m.InverseOffer)):
        ids = (ids,)
    return tuple(i.id if isinstance(i, (m.Offer, m.InverseOffer)) else str(i) for i in ids)


def _tasks(tasks: m.TaskInfo | Iterable[m.TaskInfo]) -> tuple[m.TaskInfo, ...]:
    return (tasks,) if isinstance(tasks, m.TaskInfo) else tuple(tasks)


def _reconcile_task(t: Any) -> m.ReconcileTask:
    if isinstance(t, m.ReconcileTask):
        return t
    if isinstance(t, m.TaskStatus):
        return m.ReconcileTask(t.task_id, t.agent_id)
    if isinstance(t, str):
        return m.ReconcileTask(t)
    raise TypeError(f"cannot reconcile {t!r}: give a TaskStatus, ReconcileTask or task id")


def _framework_info(framework: m.FrameworkInfo | str) -> m.FrameworkInfo:
    return framework if isinstance(framework, m.FrameworkInfo) else m.FrameworkInfo(name=framework)


REDETECT_MIN_INTERVAL = 0.3
BATCH_SECONDS = 0.005  # longest burst of callbacks between two `batch_done` calls


class AsyncSchedulerDriver:
    """Scheduler driver for asyncio programs: `await start()`, `await join()`, `await stop()`.

    Callbacks get `callback_driver` (default: this driver) as their first argument; they
    may be plain functions or coroutines. A callback that raises is logged with its
    traceback and the driver carries on.
    """

    def __init__(self, scheduler: Any, framework: m.FrameworkInfo | str, master: str,
                 implicit_acknowledgements: bool = True, *,
                 callback_driver: Any = None, stop_linger: float = 1.0,
                 detect: Callable[[str], Awaitable[leader.MasterInfo]] = leader.detect,
                 upstream_factory: Callable[[], Upstream] = ZmqUpstream,
                 detect_backoff: tuple[float, float] = (0.25, 10.0),
                 core_options: dict[str, Any] | None = None,
                 principal: str | None = None, secret: str | None = None,
                 master_public_key: str | None = None) -> None:
        """`principal`/`secret`: authenticate to the master as that principal (and record
        it in the FrameworkInfo); `master_public_key`: the master's CURVE public
        certificate to encrypt to (default: the key the master publishes, if any)."""
        leader.validate_master_spec(master)  # bad addresses fail now, not in the loop
        if (principal is None) != (secret is None):
            raise ValueError("principal and secret go together")
        if upstream_factory is ZmqUpstream:
            cred = Credential(principal, secret) if principal and secret else None
            security = PeerSecurity.from_flags(master_public_key, cred)
            upstream_factory = functools.partial(ZmqUpstream, security)
        if principal is not None:
            framework = attrs.evolve(_framework_info(framework), principal=principal)
        self.scheduler = scheduler
        self.master = master
        self.status = DRIVER_NOT_STARTED
        self.core = SchedulerCore(_framework_info(framework), implicit_acknowledgements,
                                  **(core_options or {}))
        self._callback_driver = self if callback_driver is None else callback_driver
        self._stop_linger = stop_linger
        self._detect = detect
        self._upstream_factory = upstream_factory
        self._detect_backoff = detect_backoff
        self._loop: asyncio.AbstractEventLoop | None = None
        self._queue: asyncio.Queue[Item | Burst] = asyncio.Queue()
        self._redetect = asyncio.Event()
        self._leader_moved = asyncio.Event()
        self._watch: leader.LeaderWatch | None = None
        # The core runs on loop time. A firing is queued; it is dropped if the timer is
        # re-armed or cancelled before the dispatcher gets to it.
        self._timers = Timers(self._timer_fired, keep_fired=True)
        # Each returns None, or a coroutine callback's awaitable, finished before what follows.
        self._performers = Performers({
            Send: self._send_or_hold, Callback: lambda e: self._call_now(e.name, e.args),
            SetTimer: lambda e: self._timers.set(e.key, e.at),
            CancelTimer: lambda e: self._timers.cancel(e.key),
            Redetect: self._redetect_now, Abort: self._abort,
            Log: lambda e: log.log(_LEVELS.get(e.level, logging.INFO), "%s", e.text)})
        self._children: list[asyncio.Task[None]] = []
        self._runner: asyncio.Task[None] | None = None
        self._upstream: Upstream | None = None
        self._connected = False
        self._sent_teardown = False
        self._held: list[Any] | None = None  # sends waiting for the burst's batch_done

    # ------------------------------------------------------------ lifecycle

    @property
    def framework_id(self) -> str | None:
        return self.core.framework_id

    async def start(self) -> str:
        """Begin detecting and subscribing in the background; returns at once."""
        if self._runner is not None:
            raise RuntimeError("driver already started")
        self._loop = asyncio.get_running_loop()
        self._upstream = self._upstream_factory()
        self._redetect.set()
        self.status = DRIVER_RUNNING
        self._runner = asyncio.create_task(self._run(), name="scheduler-driver")
        return self.status

    async def join(self) -> str:
        """Wait until the driver stops or aborts; returns the final status."""
        if self._runner is None:
            return self.status
        await asyncio.shield(self._runner)
        return self.status

    async def stop(self, failover: bool = False) -> str:
        """Stop; without failover the framework is torn down (its tasks are killed)."""
        self.request_stop(failover)
        return await self.join()

    async def abort(self) -> str:
        """Stop at once without tearing down, ending with DRIVER_ABORTED."""
        self.request_abort()
        return await self.join()

    async def run(self) -> str:
        await self.start()
        return await self.join()

    def request_stop(self, failover: bool = False) -> None:
        """Non-blocking stop, safe from callbacks and other threads."""
        self._enqueue(lambda now: self.core.stop(failover))

    def request_abort(self) -> None:
        self._enqueue(lambda now: self.core.stop(failover=True) + [Abort("aborted by user")])

    # ------------------------------------------------------------ commands (any thread)

    def launch_tasks(self, offer_ids: OfferIds, tasks: m.TaskInfo | Iterable[m.TaskInfo],
                     refuse_seconds: float | None = None) -> None:
        ids, ts = _offer_ids(offer_ids), _tasks(tasks)
        self._enqueue(lambda now: self.core.launch(ids, ts, refuse_seconds))

    def accept_offers(self, offer_ids: OfferIds, operations: Iterable[m.Operation],
                      refuse_seconds: float | None = None) -> None:
        ids, ops = _offer_ids(offer_ids), tuple(operations)
        self._enqueue(lambda now: self.core.accept(ids, ops, refuse_seconds))

    def decline_offer(self, offer_ids: OfferIds, refuse_seconds: float | None = None) -> None:
        ids = _offer_ids(offer_ids)
        self._enqueue(lambda now: self.core.decline(ids, refuse_seconds))

    def kill_task(self, task_id: str, agent_id: str | None = None) -> None:
        self._enqueue(lambda now: self.core.kill(task_id, agent_id))

    def accept_inverse_offers(self, inverse_offer_ids: OfferIds) -> None:
        """Give the agents back now: the master may kill what still runs there."""
        ids = _offer_ids(inverse_offer_ids)
        self._enqueue(lambda now: self.core.answer_inverse_offers(ids, accept=True))

    def decline_inverse_offers(self, inverse_offer_ids: OfferIds) -> None:
        ids = _offer_ids(inverse_offer_ids)
        self._enqueue(lambda now: self.core.answer_inverse_offers(ids, accept=False))

    def acknowledge_status_update(self, status: m.TaskStatus) -> None:
        """Explicit ack (with implicit_acknowledgements=False); no-op without a uuid."""
        if status.uuid is None or not status.agent_id:
            return
        agent_id, uuid = status.agent_id, status.uuid
        self._enqueue(lambda now: self.core.acknowledge(agent_id, status.task_id, uuid))

    def send_framework_message(self, executor_id: str, agent_id: str, data: bytes) -> None:
        self._enqueue(lambda now: self.core.send_framework_message(executor_id, agent_id, data))

    def shutdown_executor(self, executor_id: str, agent_id: str) -> None:
        self._enqueue(lambda now: self.core.shutdown_executor(executor_id, agent_id))

    def reconcile_tasks(self, statuses_or_ids: Iterable[Any] = ()) -> None:
        """Explicit reconciliation of the given tasks; empty means implicit (all tasks)."""
        tasks = tuple(_reconcile_task(t) for t in statuses_or_ids)
        self._enqueue(lambda now: self.core.reconcile(tasks))

    def revive_offers(self, roles: Iterable[str] = ()) -> None:
        roles = tuple(roles)
        self._enqueue(lambda now: self.core.revive(roles))

    def suppress_offers(self, roles: Iterable[str] = ()) -> None:
        roles = tuple(roles)
        self._enqueue(lambda now: self.core.suppress(roles))

    # ------------------------------------------------------------ internals

    def _enqueue(self, item: Item) -> None:
        if self._loop is None:  # before start(): nothing runs yet, no thread to race
            self._queue.put_nowait(item)
        elif self._loop.is_closed():
            log.warning("driver is no longer running; command dropped")
        else:
            try:
                self._loop.call_soon_threadsafe(self._queue.put_nowait, item)
            except RuntimeError:  # the loop closed in between
                log.warning("driver is no longer running; command dropped")

    def _feed(self, event: Any) -> None:
        """Enqueue an event for the core (loop thread only)."""
        self._queue.put_nowait(lambda now: self.core.handle(event, now))

    async def _run_item(self, item: Item | Burst) -> None:
        """One queue item: a command or event, or a burst of received messages. A burst is
        one hand-over between the loops (not one per message), but the core still takes its
        messages one at a time, each one's effects performed before the next."""
        assert self._loop is not None
        if type(item) is not list:
            await self._perform(item(self._loop.time()))  # type: ignore[operator]
            return
        for msg in item:
            await self._perform(self.core.handle(Received(b"master", msg), self._loop.time()))
            if self.core.stopped:
                return

    async def _run(self) -> None:
        try:
            async with asyncio.TaskGroup() as tg:
                watch = leader.LeaderWatch(self.master, self._leader_changed,
                                           asyncio.get_running_loop())
                self._watch = watch
                self._children = [tg.create_task(self._recv_loop(), name="driver-recv"),
                                  tg.create_task(self._connect_loop(), name="driver-connect"),
                                  tg.create_task(watch.run(), name="driver-leader-watch")]
                tg.create_task(self._dispatch_loop(), name="driver-dispatch")
        except Exception:  # a bug in the driver itself: end, loudly, as aborted
            log.exception("scheduler driver failed")
            self.status = DRIVER_ABORTED
        finally:
            if self._watch is not None:
                self._watch.close()
            self._timers.close()
            if self._upstream is not None:
                self._upstream.close(self._stop_linger if self._sent_teardown else 0.0)

    async def _dispatch_loop(self) -> None:
        assert self._loop is not None
        batching = callable(getattr(self.scheduler, "batch_done", None))
        while True:
            item = await self._queue.get()
            if batching:
                self._held = []
            await self._run_item(item)
            if batching:  # drain a burst (bounded, so the loop's other tasks keep running)
                deadline = self._loop.time() + BATCH_SECONDS
                while not self.core.stopped and not self._queue.empty() \
                        and self._loop.time() < deadline:
                    await self._run_item(self._queue.get_nowait())
                await self._end_batch()
            if self.core.stopped:
                if self.status == DRIVER_RUNNING:
                    self.status = DRIVER_STOPPED
                for child in self._children:
                    child.cancel()
                return
            if batching:
                await asyncio.sleep(0)  # let the API and timers in between bursts

    async def _end_batch(self) -> None:
        """`batch_done` (the scheduler makes the burst's state durable), then the sends the
        burst produced, in order. If it raises, acknowledgements are withheld (the agents
        resend those updates) and everything else goes out."""
        held, self._held = self._held, None
        try:
            await self._call("batch_done", (), reraise=True)
            durable = True
        except Exception:
            durable = False
        assert self._loop is not None
        deadline = self._loop.time() + BATCH_SECONDS
        for msg in held or ():
            if self._loop.time() > deadline:  # encoding big Accepts takes a while
                await asyncio.sleep(0)
                deadline = self._loop.time() + BATCH_SECONDS
            if durable or not isinstance(msg, m.Acknowledge):
                self._send(msg)

    async def _recv_loop(self) -> None:
        assert self._upstream is not None and self._loop is not None
        since = self._loop.time()
        while True:
            # A ready zmq future does not yield: with a backlog of messages this loop
            # would hold the event loop until it is drained.
            if self._loop.time() - since > BATCH_SECONDS:
                await asyncio.sleep(0)
                since = self._loop.time()
            batch = getattr(self._upstream, "recv_batch", None)
            burst: Burst = []
            for msg in (await batch()) if batch else [await self._upstream.recv()]:
                if isinstance(msg, DecodeError):
                    log.warning("undecodable message from master: %s", msg.message)
                    continue
                burst.append(msg)
            if burst:
                self._queue.put_nowait(burst)

    async def _connect_loop(self) -> None:
        assert self._upstream is not None
        connected_at = -1.0
        while True:
            await self._redetect.wait()
            # A standby answering "not leader" while the election settles must not make us
            # spin: at most one detection per REDETECT_MIN_INTERVAL.
            loop = asyncio.get_running_loop()
            await asyncio.sleep(max(0.0, connected_at + REDETECT_MIN_INTERVAL - loop.time()))
            self._redetect.clear()
            info = await self._detect_with_backoff()
            connected_at = loop.time()
            self._upstream.connect(info.zmq_endpoint, info.curve_public_key)
            self._connected = True
            if not await self._wait_ready(2.0):
                if self._redetect.is_set():  # the leader moved while we were connecting
                    continue
                log.warning("master at %s not reachable yet; subscribing anyway",
                            info.zmq_endpoint)
            self._feed(MasterConnected({
                "id": info.id, "hostname": info.hostname, "ip": info.ip, "port": info.port,
                "zmq_endpoint": info.zmq_endpoint, "version": info.version}))

    async def _wait_ready(self, timeout: float) -> bool:
        """The upstream's wait_ready, in slices, giving up early when the leader moves."""
        assert self._upstream is not None and self._loop is not None
        deadline = self._loop.time() + timeout
        while not self._redetect.is_set():
            left = deadline - self._loop.time()
            if left <= 0:
                return False
            if await self._upstream.wait_ready(min(0.1, left)):
                return True
        return False

    async def _detect_with_backoff(self) -> leader.MasterInfo:
        delay, cap = self._detect_backoff
        while True:
            try:
                info = await self._detect(self.master)
                log.info("detected master %s at %s", info.id, info.zmq_endpoint)
                return info
            except leader.DetectError as e:
                log.warning("master detection failed (retrying in %.2gs): %s", delay, e)
            self._leader_moved.clear()
            try:  # a leader appearing in ZooKeeper cuts the wait short
                await asyncio.wait_for(self._leader_moved.wait(), delay)
            except TimeoutError:
                pass
            delay = min(delay * 2, cap)

    def _leader_changed(self, znode: str | None) -> None:
        """zk:// only: a new leader znode. The core is told (a subscribed framework hears
        `disconnected`), the connect loop runs another round, a detection backoff ends now."""
        if znode is None:
            return
        log.info("leader changed in ZooKeeper (%s)", znode)
        self._leader_moved.set()
        self._redetect.set()  # also when a connection round is under way: it may be stale
        if self._connected:
            self._feed(LeaderChanged(znode))

    async def _perform(self, effects: list[Any]) -> None:
        performers = self._performers
        for eff in effects:
            pending = performers[type(eff)](eff)  # an unknown effect raises: our bug
            if pending is not None:  # a coroutine callback: done before what follows
                await self._finish(eff.name, pending)

    def _send_or_hold(self, eff: Send) -> None:
        if self._held is not None:
            self._held.append(eff.msg)
        else:
            self._send(eff.msg)

    def _redetect_now(self, eff: Redetect) -> None:
        log.info("re-detecting the master: %s", eff.reason)
        self._redetect.set()

    def _abort(self, eff: Abort) -> None:
        self.status = DRIVER_ABORTED

    def _send(self, msg: Any) -> None:
        assert self._upstream is not None
        if not self._connected:
            log.debug("no master yet; dropping %s", type(msg).__name__)
            return
        if isinstance(msg, m.Teardown):
            self._sent_teardown = True
        if not self._upstream.send(msg):
            log.debug("master unreachable; dropped %s", type(msg).__name__)

    def _timer_fired(self, key: Any) -> None:
        handle = self._timers.current(key)

        def fire(now: float) -> list[Any]:
            return self.core.handle(TimerFired(key), now) if self._timers.take(key, handle) \
                else []
        self._queue.put_nowait(fire)

    async def _call(self, name: str, args: tuple[Any, ...], reraise: bool = False) -> None:
        pending = self._call_now(name, args, reraise)
        if pending is not None:
            await self._finish(name, pending, reraise)

    def _call_now(self, name: str, args: tuple[Any, ...],
                  reraise: bool = False) -> Awaitable[Any] | None:
        """Run a callback; what a coroutine callback returns is handed back to be awaited.
        Plain callbacks (a threaded scheduler's, a status update per call) need no
        coroutine of ours around them."""
        fn = getattr(self.scheduler, name, None)
        if fn is None:
            return None
        try:
            result = fn(self._callback_driver, *args)
        except Exception:
            log.exception("scheduler callback %s raised; the driver carries on", name)
            if reraise:
                raise
            return None
        return result if result is not None and inspect.isawaitable(result) else None

    async def _finish(self, name: str, pending: Awaitable[Any], reraise: bool = False) -> None:
        try:
            await pending
        except Exception:
            log.exception("scheduler callback %s raised; the driver carries on", name)
            if reraise:
                raise
