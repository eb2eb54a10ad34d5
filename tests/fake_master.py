"""The one fake master of the tests: the real wire protocol, none of the master's rules.

It serves `/master/info` over aiohttp and a ZeroMQ ROUTER with `mesos_common.codec`, on its
own asyncio loop in a thread, and records every message it receives (`received`, and the
`inbox` queue that `expect` reads). What it does besides is chosen per test:
- `ping_every`: heartbeat every peer it has heard from (what agents need from a master);
- `frameworks`: subscribe any framework (a Subscribed, then one Offers of `agents`), answer
  its heartbeats (ProtocolError to peers it does not know, like a restarted master) and,
  with `run_tasks`, play the agent: RUNNING then FINISHED (or FAILED for `exit N`).

Ports: a test may hand it listening sockets (bound to port 0, held for the test's life): it
then serves on duplicates of them, so a restarted master gets the same port without binding
it again (binding a released free port later lets another bind to port 0 take it first).
"""
from __future__ import annotations

import asyncio
import itertools
import os
import queue
import re
import socket
import threading
import time
from collections.abc import Callable
from typing import Any

import zmq
from aiohttp import web

from mesos_common import codec
from mesos_common import messages as m
from mesos_common.resources import Resources
from mesos_common.transport import RouterTransport

HB = 1.0  # seconds between the heartbeats a framework is told to expect


class FakeMaster:
    def __init__(self, http: socket.socket | None = None,
                 zmq_listener: socket.socket | None = None, master_id: str = "M1", *,
                 ping_every: float | None = None, frameworks: bool = False,
                 agents: dict[str, str] | None = None, run_tasks: bool = False,
                 heartbeat_interval: float = HB) -> None:
        self.http, self.zmq_listener, self.master_id = http, zmq_listener, master_id
        self.http_port = http.getsockname()[1] if http is not None else 0
        self.ping_every = ping_every
        self.serve_frameworks = frameworks
        self.agents = agents or {}
        self.run_tasks = run_tasks
        self.heartbeat_interval = heartbeat_interval
        self.endpoint = ""
        self.received: list[tuple[bytes, Any]] = []
        self.inbox: queue.Queue[tuple[bytes, Any]] = queue.Queue()
        self.peers: set[bytes] = set()
        self.frameworks: dict[bytes, str] = {}
        self._ids = itertools.count(1)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._router: RouterTransport | None = None
        self._recv: asyncio.Task[None] | None = None
        self._tg: asyncio.TaskGroup | None = None
        self._stop: asyncio.Event | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._main, name=f"fake-{master_id}", daemon=True)

    # ------------------------------------------------------------ test side

    def start(self) -> FakeMaster:
        self._thread.start()
        assert self._ready.wait(10), "fake master did not start"
        if self._error is not None:
            raise self._error
        return self

    def stop(self) -> None:
        if self._loop is not None and self._stop is not None and self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(10)

    def send(self, msg: Any, to: bytes | None = None) -> None:
        """Send `msg` to `to`, or to the one peer it has heard from."""
        self.send_raw(codec.encode(msg), to)

    def send_raw(self, body: bytes, to: bytes | None = None) -> None:
        if to is None:
            assert len(self.peers) == 1, self.peers
            to = next(iter(self.peers))
        assert self._loop is not None

        def deliver() -> None:  # the router of the moment (a socket restart replaces it)
            if self._router is not None:
                self._router.send_raw(to, body)

        self._loop.call_soon_threadsafe(deliver)

    def of(self, cls: type) -> list[Any]:
        return [msg for _, msg in list(self.received) if isinstance(msg, cls)]

    def expect(self, cls: type, timeout: float = 15.0,
               pred: Callable[[Any], bool] = lambda msg: True) -> Any:
        """The next message of type `cls` matching `pred`; heartbeats and others skipped."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"no {cls.__name__} within {timeout}s")
            try:
                _, msg = self.inbox.get(timeout=left)
            except queue.Empty:
                continue
            if isinstance(msg, cls) and pred(msg):
                return msg

    def update(self, task_id: str, timeout: float = 15.0, framework_id: str = "F1"
               ) -> m.TaskStatus:
        """The next StatusUpdate an agent sends for `task_id`."""
        upd = self.expect(m.StatusUpdate, timeout, lambda u: u.status.task_id == task_id)
        assert upd.framework_id == framework_id
        return upd.status

    def ack(self, status: m.TaskStatus, framework_id: str = "F1", agent_id: str = "A1") -> None:
        assert status.uuid is not None, "an agent's update carries a uuid"
        self.send(m.StatusUpdateAck(framework_id, agent_id, status.task_id, status.uuid))

    def restart_socket(self, master_id: str) -> None:
        """Close the ROUTER (peers lose us), bind a new one on a new port, forget peers."""
        self._on_loop(self._restart(master_id))

    def forget_peers(self) -> None:
        """Drop known connections (the peer's process died; its successor connects anew)."""
        async def forget() -> None:
            self.peers.clear()
        self._on_loop(forget())

    def _on_loop(self, coro: Any) -> None:
        assert self._loop is not None
        asyncio.run_coroutine_threadsafe(coro, self._loop).result(10)

    # ------------------------------------------------------------ master side

    def _main(self) -> None:
        try:
            asyncio.run(self._serve())
        except BaseException as e:
            self._error = e
            self._ready.set()

    async def _info(self, _: web.Request) -> web.Response:
        return web.json_response({"id": self.master_id, "hostname": "localhost",
                                  "ip": "127.0.0.1", "port": self.http_port,
                                  "zmq_endpoint": self.endpoint, "version": "fake"})

    async def _serve(self) -> None:
        self._loop, self._stop = asyncio.get_running_loop(), asyncio.Event()
        runner: web.AppRunner | None = None
        try:
            app = web.Application()
            app.router.add_get("/master/info", self._info)
            runner = web.AppRunner(app)
            await runner.setup()
            if self.http is not None:
                await web.SockSite(runner, self.http.dup()).start()
            else:
                await web.TCPSite(runner, "127.0.0.1", 0).start()
                self.http_port = runner.addresses[0][1]
            async with asyncio.TaskGroup() as tg:
                self._tg = tg
                self._bind(self.zmq_listener)
                if self.ping_every is not None:
                    ping = tg.create_task(self._ping())
                self._ready.set()
                await self._stop.wait()
                assert self._recv is not None
                self._recv.cancel()
                if self.ping_every is not None:
                    ping.cancel()
        finally:
            if self._router is not None:
                self._router.close()
            if runner is not None:
                await runner.cleanup()

    def _bind(self, listener: socket.socket | None) -> None:
        assert self._tg is not None
        self._router = RouterTransport()
        port = 0
        if listener is not None:  # libzmq takes (and closes) a dup of it
            self._router.sock.setsockopt(zmq.USE_FD, listener.dup().detach())
            port = listener.getsockname()[1]
        self.endpoint = self._router.bind(f"tcp://127.0.0.1:{port}")
        self._recv = self._tg.create_task(self._recv_loop(self._router))

    async def _restart(self, master_id: str) -> None:
        assert self._router is not None and self._recv is not None
        self._recv.cancel()
        # What was sent before the restart (the test's last acks) still reaches the peer:
        # with linger 0 an ack libzmq had not written yet would be dropped.
        self._router.close(linger_ms=2000)
        self.peers.clear()
        self.master_id = master_id
        self._bind(None)

    async def _ping(self) -> None:
        assert self.ping_every is not None
        while True:
            await asyncio.sleep(self.ping_every)
            for peer in list(self.peers):
                assert self._router is not None
                self._router.send(peer, m.Heartbeat())

    async def _recv_loop(self, router: RouterTransport) -> None:
        assert self._tg is not None
        while True:
            peer, msg = await router.recv()
            self.peers.add(peer)
            self.received.append((peer, msg))
            self.inbox.put((peer, msg))
            if not self.serve_frameworks:
                continue
            if isinstance(msg, m.Subscribe):
                self._subscribe(router, peer, msg)
            elif isinstance(msg, m.Heartbeat):
                router.send(peer, m.Heartbeat() if peer in self.frameworks else
                            m.ProtocolError("framework is not subscribed", "Heartbeat"))
            elif isinstance(msg, m.Accept) and self.run_tasks:
                for op in msg.operations:
                    for task in op.tasks:
                        self._tg.create_task(self._run_task(router, peer, task))

    def _subscribe(self, router: RouterTransport, peer: bytes, msg: m.Subscribe) -> None:
        fid = msg.framework_info.id or f"fw-{next(self._ids)}"
        self.frameworks[peer] = fid
        router.send(peer, m.Subscribed(fid, self.master_id, self.heartbeat_interval))
        offers = tuple(m.Offer(f"{self.master_id}-o{next(self._ids)}", fid, agent, f"host-{agent}",
                               Resources.parse(res)) for agent, res in self.agents.items())
        if offers:
            router.send(peer, m.Offers(offers))

    async def _run_task(self, router: RouterTransport, peer: bytes, task: m.TaskInfo) -> None:
        assert task.command is not None
        fid = self.frameworks[peer]
        match = re.search(r"exit (\d+)", task.command.value)
        code = int(match.group(1)) if match else 0
        for state in ("TASK_RUNNING", "TASK_FINISHED" if code == 0 else "TASK_FAILED"):
            await asyncio.sleep(0.02)
            message = "" if state == "TASK_RUNNING" else f"Command exited with status {code}"
            status = m.TaskStatus(task.task_id, state, agent_id=task.agent_id, message=message,
                                  uuid=os.urandom(16))
            router.send(peer, m.Update(status, fid))
