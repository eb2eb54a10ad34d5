"""The master's asyncio runtime: ZeroMQ in, core events, effects out. All IO lives here.

One task reads the ROUTER socket and feeds `Received` events; effects are performed through a
`Performers` table, timers are `Timers` (mesos_common.runtime); registry writes run
synchronously for SQLite (small local transactions) and in a worker thread for ZooKeeper, and
are fed back as `PersistDone`. Events are processed one at a time from a queue, so effects that
produce events (Persist) never re-enter the core. A bug in the core is logged with its traceback
and the daemon carries on with the next event.

With `--zk` the core exists only while this master is the elected leader (`ha.py` decides);
until then, and while fenced, peers get "not leader" replies and HTTP clients a redirect.
"""
from __future__ import annotations

import asyncio
import collections
import logging
import os
import random
import socket
import time
from collections.abc import Callable
from typing import Any

import zmq
import zmq.asyncio
from aiohttp import web
from attrs import field, frozen

from mesos_common import codec
from mesos_common import effects as fx
from mesos_common import messages as m
from mesos_common.auth.http import HttpAuth
from mesos_common.curve import ensure_master_cert, load_secret_cert
from mesos_common.gc_policy import GcPolicy
from mesos_common.ids import IdGen, random_prefix
from mesos_common.runtime import Performers, Timers
from mesos_common.transport import RouterTransport
from mesos_common.zap import ZapHandler
from mesos_master.allocator.hierarchical import HierarchicalAllocator
from mesos_master.api_v1.operator import OperatorApi
from mesos_master.api_v1.scheduler import PEER_PREFIX as V1_PEER
from mesos_master.api_v1.scheduler import SchedulerApi
from mesos_master.auth_config import MasterAuth
from mesos_master.core import Master, MasterConfig
from mesos_master.ha import HaState
from mesos_master.metrics import MasterMetrics
from mesos_master.registry.base import MemoryRegistry, Registry
from mesos_master.registry.sqlite import SqliteRegistry
from mesos_master.registry.zookeeper import FencedError

log = logging.getLogger("mesos_master.server")
core_log = logging.getLogger("mesos_master.core")

VERSION = "1.11.0"
LAG_PROBE_INTERVAL = 0.05  # seconds between event-loop lag probes
LAG_WINDOW = 10.0  # master/event_loop_lag_max_ms is the worst lag of the last LAG_WINDOW s
RECV_BURST = 128  # messages handled per turn of the loop (an ACCEPT of 10 tasks takes ~0.5 ms)


@frozen
class ServerOptions:
    ip: str = "127.0.0.1"
    port: int = 5050
    zmq_port: int = 5049
    hostname: str | None = None
    work_dir: str | None = None
    registry: str = "sqlite"  # "sqlite" | "in_memory"
    agent_ping_timeout: float = 15.0
    max_agent_ping_timeouts: int = 5
    heartbeat_interval: float | None = None  # default: agent_ping_timeout
    allocation_interval: float = 0.1
    offer_timeout: float | None = None
    agent_reregister_timeout: float = 600.0
    drain_notice: float = 60.0
    zk: str | None = None  # zk://h:p[,h:p]/path: HA mode (election + ZooKeeper registry)
    quorum: int = 1  # HA: contenders that must be present before a first election is won
    zk_session_timeout: float = 10.0
    gc_freeze: bool = False  # the daemon: the gc policy's thresholds and freezes (gc_policy)
    zmq_curve: bool = False  # CURVE server on the ROUTER (mesos_common.curve, zap)
    zmq_curve_cert: str | None = None  # *.key_secret; None: generated under work_dir
    auth: MasterAuth = MasterAuth()
    http_auth: HttpAuth = HttpAuth()
    flags: dict[str, str] = field(factory=dict)  # as given, for /master/flags and /state


def open_registry(opts: ServerOptions) -> Registry | None:
    """The embedded registry; None in HA mode (the ZooKeeper one is opened on election)."""
    if opts.zk:
        return None
    if opts.registry == "in_memory":
        return MemoryRegistry()
    if not opts.work_dir:
        raise ValueError("--work_dir is required unless --registry=in_memory")
    os.makedirs(opts.work_dir, exist_ok=True)
    return SqliteRegistry(os.path.join(opts.work_dir, "registry.sqlite"))


def _listen(ip: str, port: int) -> socket.socket:
    """Bind the HTTP socket ourselves so port 0 is resolved before the core is built."""
    family = socket.AF_INET6 if ":" in ip else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((ip, port))
    sock.listen(128)
    sock.setblocking(False)
    return sock


class MasterServer:
    """Owns the sockets, the timers, the registry and one `Master` core."""

    def __init__(self, opts: ServerOptions, registry: Registry | None = None,
                 master_id: str | None = None) -> None:
        self.opts = opts
        self.registry: Registry | None = registry if registry is not None else open_registry(opts)
        self.master_id = master_id or random_prefix()
        self.hostname = opts.hostname or (opts.ip if opts.ip not in ("0.0.0.0", "::")
                                          else socket.gethostname())
        self.flags = dict(opts.flags)
        self.master: Master | None = None
        self.transport: RouterTransport | None = None
        self.zmq_endpoint = ""
        self.curve_public_key: str | None = None  # z85, published in info() when CURVE is on
        self.curve_public_cert: str | None = None  # its certificate file, when generated
        self._zap: ZapHandler | None = None
        self.http_port = opts.port
        self._ctx: zmq.asyncio.Context | None = None
        self.timers = Timers(self._fire, clock=time.time)  # the core runs on wall time
        self._queue: collections.deque[Any] = collections.deque()
        self._feeding = False
        self._persists: list[Any] = []
        self._hold_persists = False
        self._writing = False  # a remote registry write is under way
        self._written: list[asyncio.Future[None]] = []  # `written()` callers
        self._stop = asyncio.Event()
        self.core_errors = 0
        self.exit_code = 0
        self.ha = HaState(self, opts.zk, opts.quorum, opts.zk_session_timeout)
        self.v1 = SchedulerApi(self)
        self.operator = OperatorApi(self)
        self._tg: asyncio.TaskGroup | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._lag: collections.deque[tuple[float, float]] = collections.deque()  # (at, lag)
        self._lag_max = 0.0
        self.gc = GcPolicy(freeze=self.opts.gc_freeze, window=LAG_WINDOW)
        self.prom = MasterMetrics(self)  # GET /metrics; the runtime feeds its histograms
        self.perform = Performers({
            fx.Send: self._send, fx.SetTimer: lambda e: self.timers.set(e.key, e.at),
            fx.CancelTimer: lambda e: self.timers.cancel(e.key),
            fx.Persist: lambda e: self._persists.append(e.op),
            fx.Log: lambda e: core_log.log(logging.getLevelName(e.level.upper()), "%s", e.text)})

    # ---------------------------------------------------------------- lifecycle

    async def run(self, ready: Callable[[MasterServer], None] | None = None) -> None:
        """Serve until `stop()`; `ready` is called once both sockets are bound."""
        self._ctx = zmq.asyncio.Context()
        keys = self._curve_keys()
        if keys is not None:
            self._zap = ZapHandler(self._ctx)  # before the ROUTER accepts anyone
        elif self.opts.auth.credentials is not None:
            log.warning("--credentials without --zmq_curve: peers' secrets cross the network "
                        "in the clear")
        self.transport = RouterTransport(self._ctx, curve_keys=keys)
        if self._zap is not None:
            self._zap.watch(self.transport.sock)
        bound = self.transport.bind(f"tcp://{self._zmq_host()}:{self.opts.zmq_port}")
        self.zmq_endpoint = self._advertised(bound)
        http_sock = _listen(self.opts.ip, self.opts.port)
        self.http_port = http_sock.getsockname()[1]
        from mesos_master.http import make_app  # aiohttp app; imported here to keep it optional
        runner = web.AppRunner(make_app(self), access_log=None)
        await runner.setup()
        try:
            await web.SockSite(runner, http_sock,
                               ssl_context=self.opts.http_auth.ssl_context()).start()
            if not self.opts.zk:
                assert self.registry is not None  # open_registry opens one unless --zk
                self.lead(self.registry)
            self.gc.install()
            if self.opts.gc_freeze:
                # What start-up built (modules, the HTTP app, the recovered core) lives as long
                # as the daemon: freeze it now. Otherwise the first full collection walks all
                # of it (~30 ms), and it comes in the first burst of work, e.g. while the
                # first big ACCEPT is decoded.
                self.gc.collect_and_freeze()
            if ready is not None:
                ready(self)
            async with asyncio.TaskGroup() as tg:
                self._tg = tg
                self.spawn(self._receive_loop())
                if self._zap is not None:
                    self.spawn(self._zap.run())
                self.spawn(self._lag_probe())
                self.spawn(self.operator.run())
                if self.opts.zk:
                    self.spawn(self.ha.start())
                await self._stop.wait()
                for task in self._tasks:
                    task.cancel()
        finally:
            self.gc.uninstall()
            self.v1.close()
            self.operator.close()
            await self.ha.close()
            self.timers.close()
            await runner.cleanup()
            self.transport.close()
            if self._zap is not None:
                self._zap.close()
            self._ctx.destroy(linger=0)
            if self.registry is not None:
                self.registry.close()

    def stop(self, exit_code: int | None = None) -> None:
        if exit_code is not None:
            self.exit_code = exit_code
        self._stop.set()

    def spawn(self, coro: Any) -> None:
        """Run `coro` in the server's task group; it is cancelled when the server stops."""
        assert self._tg is not None
        task = self._tg.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    @property
    def http_auth(self) -> HttpAuth:
        return self.opts.http_auth

    @property
    def leading(self) -> bool:
        """Acting as the leader right now: elected and not fenced."""
        return self.master is not None and not self.ha.fenced

    def lead(self, registry: Registry) -> None:
        """Become the acting master: build the core from the registry and start it."""
        self.registry = registry
        self.master = self._make_master(registry)
        self.feed(fx.Start())

    def leader_info(self) -> dict[str, Any] | None:
        """Whom peers should talk to: us when leading, else the elected leader (if known)."""
        if self.leading:
            return self.info()
        return self.ha.leader if self.ha.leader and self.ha.leader.get("id") != self.master_id \
            else None

    def _make_master(self, registry: Registry | None = None) -> Master:
        registry = registry if registry is not None else self.registry
        assert registry is not None
        o = self.opts
        config = MasterConfig(
            master_id=self.master_id, hostname=self.hostname, ip=self.opts.ip,
            port=self.http_port, heartbeat_interval=o.heartbeat_interval or o.agent_ping_timeout,
            agent_ping_timeout=o.agent_ping_timeout,
            max_agent_ping_timeouts=o.max_agent_ping_timeouts,
            allocation_interval=o.allocation_interval, offer_timeout=o.offer_timeout,
            agent_reregister_timeout=o.agent_reregister_timeout, drain_notice=o.drain_notice,
            version=VERSION, auth=o.auth)
        return Master(config, HierarchicalAllocator(random.Random()), registry.load(),
                      IdGen(self.master_id),
                      random.Random())

    def _zmq_host(self) -> str:
        return f"[{self.opts.ip}]" if ":" in self.opts.ip else self.opts.ip

    def _advertised(self, bound: str) -> str:
        """What peers should connect to: the bound endpoint, with a wildcard replaced."""
        port = bound.rsplit(":", 1)[1]
        host = self.opts.ip if self.opts.ip not in ("0.0.0.0", "::") else self.hostname
        return f"tcp://{f'[{host}]' if ':' in host else host}:{port}"

    def info(self) -> dict[str, Any]:
        """/master/info: how peers find the ZeroMQ endpoint (mesos_common.leader.detect),
        and the CURVE key to encrypt to when it is on."""
        out: dict[str, Any] = {
            "id": self.master_id, "hostname": self.hostname, "ip": self.opts.ip,
            "port": self.http_port, "zmq_endpoint": self.zmq_endpoint, "version": VERSION,
            # MasterInfo.address: what v1 clients (pymesos) read from the leader's znode
            "address": {"hostname": self.hostname, "ip": self.opts.ip, "port": self.http_port}}
        if self.curve_public_key is not None:
            out["zmq_curve_public_key"] = self.curve_public_key
        if self.opts.http_auth.tls:
            out["scheme"] = "https"
        return out

    def _curve_keys(self) -> tuple[bytes, bytes] | None:
        """The ROUTER's CURVE keypair: --zmq_curve_cert, or one generated under work_dir."""
        if not self.opts.zmq_curve:
            return None
        path = self.opts.zmq_curve_cert
        if path is None:
            if not self.opts.work_dir:
                raise ValueError("--zmq_curve needs --zmq_curve_cert or --work_dir")
            self.curve_public_cert, path = ensure_master_cert(self.opts.work_dir)
            log.info("CURVE on; peers encrypt to the public certificate %s",
                     self.curve_public_cert)
        public, secret = load_secret_cert(path)
        self.curve_public_key = public.decode()
        return public, secret

    # ---------------------------------------------------------------- event-loop health

    async def _lag_probe(self) -> None:
        """How late the loop wakes a sleeper: anything that holds the loop (a big view, a
        burst of messages) shows here before it shows as missed heartbeats."""
        loop = asyncio.get_running_loop()
        while True:
            start = loop.time()
            await asyncio.sleep(LAG_PROBE_INTERVAL)
            now = loop.time()
            lag = max(0.0, now - start - LAG_PROBE_INTERVAL)
            self.gc.maybe_freeze()  # outside the collector, soon after a full collection
            self._lag_max = max(self._lag_max, lag)
            self._lag.append((now, lag))
            while self._lag and self._lag[0][0] < now - LAG_WINDOW:
                self._lag.popleft()

    def runtime_metrics(self) -> dict[str, float]:
        """Metrics only the runtime knows, merged into /metrics/snapshot."""
        recent = max((lag for _, lag in self._lag), default=0.0)
        latest = self._lag[-1][1] if self._lag else 0.0
        return {"master/event_loop_lag_ms": latest * 1000,
                "master/event_loop_lag_max_ms": recent * 1000,
                "master/event_loop_lag_max_ever_ms": self._lag_max * 1000,
                **self.gc.metrics("master"),
                "master/core_errors": float(self.core_errors),
                "master/dropped_sends": float(self.transport.dropped if self.transport else 0)}

    # ---------------------------------------------------------------- events and effects

    async def _receive_loop(self) -> None:
        assert self.transport is not None
        while True:
            try:
                batch = await self.transport.recv_batch(RECV_BURST)
            except asyncio.CancelledError:
                raise
            except Exception:  # a transport hiccup must not end the daemon
                log.exception("error receiving a message")
                await asyncio.sleep(0.01)
                continue
            self._hold_persists = True  # one registry transaction for the whole burst
            try:
                for peer, msg in batch:
                    if isinstance(msg, codec.DecodeError):
                        log.debug("undecodable frame from %r: %s", peer, msg.message)
                        self.transport.send(peer, m.ProtocolError(msg.message,
                                                                  in_reply_to=msg.type))
                        if self.master is not None:
                            self.master.counters["dropped_messages"] += 1
                        continue
                    if not self.leading:
                        self._not_leader(peer, msg)
                        continue
                    self.feed(fx.Received(peer, msg))
            finally:
                self._hold_persists = False
            self.feed(None)
            # An awaited recv that is already done does not yield: under a sustained flood
            # this loop would never let timers (heartbeats!), HTTP or the lag probe run.
            await asyncio.sleep(0)

    def _not_leader(self, peer: bytes, msg: Any) -> None:
        """A standby (or fenced) master points peers elsewhere; they re-detect on this."""
        assert self.transport is not None
        if isinstance(msg, m.ProtocolError):
            return  # never answer an error with an error
        other = self.leader_info()
        where = f"{other['id']} at {other['zmq_endpoint']}" if other else "unknown"
        self.transport.send(peer, m.ProtocolError(f"not leader, leader is {where}",
                                                  in_reply_to=type(msg).__name__))

    def feed(self, event: Any) -> None:
        """Run `event` (and the events its effects produce) through the core, in order.
        Registry writes wait for the end of the burst and are committed together; their
        PersistDone events then run like any other (None: just flush what is pending)."""
        if event is not None:
            self._queue.append(event)
        if self._feeding:
            return
        self._feeding = True
        try:
            while self._queue or self._flushable():
                while self._queue:
                    self._process(self._queue.popleft())
                if self._flushable():
                    self._flush_persists()
        finally:
            self._feeding = False
            if self.transport is not None and not self._hold_persists:
                self.transport.kick()  # within a burst, the next recv re-checks the socket

    def _process(self, event: Any) -> None:
        if self.master is None:
            return
        if self.ha.fenced:  # no offers, no registry writes; timers wait for the session
            if isinstance(event, fx.TimerFired):
                self.ha.held_timers.append(event.key)
            return
        started = time.perf_counter()
        perform = self.perform
        try:
            # In pieces: a big ACCEPT's first RunTasks go out (a full transport batch is
            # sent at once) while its other tasks are still being booked.
            for effects in self.master.handle_in_pieces(event, time.time()):
                for effect in effects:
                    try:
                        perform[type(effect)](effect)
                    except Exception:
                        log.exception("failed to perform %r", effect)
            self.prom.handled(event, started)
        except Exception:
            self.core_errors += 1
            log.exception("master core failed on %r; continuing", event)

    def _send(self, effect: fx.Send) -> None:
        assert self.transport is not None and effect.to is not None
        if effect.to[:3] == V1_PEER:  # a v1 HTTP framework's stream
            self.v1.deliver(effect.to, effect.msg)
        else:
            self.transport.send(effect.to, effect.msg)
        self.prom.sent(effect.msg)
        if self.operator.streams:  # v1 operator subscribers see launches and updates
            self.operator.observe(effect.msg)

    def _flushable(self) -> bool:
        return bool(self._persists) and not self._hold_persists and not self._writing

    def _flush_persists(self) -> None:
        """Commit the pending registry operations together; a fenced leader writes nothing.
        A remote registry (ZooKeeper) is written in a worker thread, one group at a time: the
        core acts on PersistDone only, so the loop goes on serving meanwhile."""
        ops, self._persists = self._persists, []
        registry = None if self.ha.fenced else self.registry
        if registry is not None and getattr(registry, "remote", False):
            self._writing = True
            self.spawn(self._write_remote(registry, ops))
            return
        ok = False
        if registry is not None:
            try:
                registry.apply_many(ops)
                ok = True
            except Exception as e:
                self._write_failed(ops, e)
        self._queue.extend(fx.PersistDone(op, ok) for op in ops)

    async def _write_remote(self, registry: Registry, ops: list[Any]) -> None:
        ok = False
        try:
            await asyncio.to_thread(registry.apply_many, ops)
            ok = True
        except Exception as e:
            self._write_failed(ops, e)
        self._writing = False
        self._queue.extend(fx.PersistDone(op, ok) for op in ops)
        self.feed(None)
        waiters, self._written = self._written, []
        for w in waiters:
            if not w.done():
                w.set_result(None)

    async def written(self) -> None:
        """Until the registry writes asked for so far are done and their PersistDone handled
        (at once for a local registry; a remote one writes in a worker thread), so that an
        operator's call is answered by what is durable."""
        while self._persists or self._writing:
            waiter = asyncio.get_running_loop().create_future()
            self._written.append(waiter)
            await waiter

    def _write_failed(self, ops: list[Any], e: BaseException) -> None:
        if isinstance(e, FencedError):
            self.ha.registry_refused(str(e))
        else:
            log.error("registry write of %d operation(s) failed: %r", len(ops), e)

    def _fire(self, key: object) -> None:
        self.feed(fx.TimerFired(key))
