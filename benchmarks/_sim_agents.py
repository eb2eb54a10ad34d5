"""Many simulated agents in one process, for the failover benchmark's large runs.

Each simulated agent is one ZeroMQ DEALER that speaks the agent protocol's registration part
only: RegisterAgent, then Heartbeats; on a leader change (zk:// LeaderWatch, or a "not leader"
reply) it points at the new leader and sends ReregisterAgent with its id. No tasks run, so this
measures what a failover costs the masters and the election, not the agents' own work.
"""
from __future__ import annotations

import asyncio
import threading
from typing import Any

import zmq
import zmq.asyncio

from mesos_common import messages as m
from mesos_common.leader import DetectError, LeaderWatch, detect
from mesos_common.resources import Resources
from mesos_common.transport import DealerTransport

TICK = 0.05
HEARTBEAT = 2.0
RESEND = 1.0  # registration retry period while unanswered


class SimAgent:
    def __init__(self, ctx: zmq.asyncio.Context, index: int) -> None:
        self.t = DealerTransport(ctx)
        self.info = m.AgentInfo(hostname=f"sim{index}", port=20000 + index,
                                resources=Resources.parse("cpus:4;mem:4096;disk:10000"))
        self.agent_id: str | None = None
        self.registered = False
        self.sent_at = -1e9

    def register(self) -> bool:
        """False when the connection is not up yet (nothing was queued): retry next tick."""
        if self.agent_id is None:
            return self.t.send(m.RegisterAgent(self.info, version="corral-sim"))
        return self.t.send(m.ReregisterAgent(self.agent_id, self.info, version="corral-sim"))

    def on_message(self, msg: Any) -> bool:
        """True when the agent must find the leader again."""
        if isinstance(msg, (m.AgentRegistered, m.AgentReregistered)):
            self.agent_id, self.registered = msg.agent_id, True
        elif isinstance(msg, m.ProtocolError) and msg.message.startswith("not leader"):
            self.registered = False
            return True
        return False


class SimAgents:
    """`start()` runs them in a thread with its own loop; `stop()` ends and joins it."""

    def __init__(self, count: int, master: str) -> None:
        self.count = count
        self.master = master
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._started = threading.Event()

    def start(self) -> None:
        self._thread = threading.Thread(target=asyncio.run, args=(self._main(),), daemon=True)
        self._thread.start()
        self._started.wait(30)

    def stop(self) -> None:
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        if self._thread is not None:
            self._thread.join(30)

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        ctx = zmq.asyncio.Context()
        agents = [SimAgent(ctx, i) for i in range(self.count)]
        redetect = asyncio.Event()
        watch = LeaderWatch(self.master, lambda _z: redetect.set(), self._loop)
        self._started.set()
        try:
            async with asyncio.TaskGroup() as tg:
                tasks = [tg.create_task(watch.run()),
                         tg.create_task(self._connect(agents, redetect))]
                tasks += [tg.create_task(self._recv(a, redetect)) for a in agents]
                await self._stop.wait()
                for t in tasks:
                    t.cancel()
        finally:
            watch.close()
            for a in agents:
                a.t.close()
            ctx.term()

    async def _connect(self, agents: list[SimAgent], redetect: asyncio.Event) -> None:
        beat = 0.0
        redetect.set()
        while True:
            if redetect.is_set():
                redetect.clear()
                try:
                    info = await detect(self.master)
                except DetectError:
                    await asyncio.sleep(TICK)
                    redetect.set()
                    continue
                for a in agents:
                    a.t.connect(info.zmq_endpoint)
                    a.registered, a.sent_at = False, -1e9
            beat += TICK  # approximate: the loop's own work is not counted
            now = asyncio.get_running_loop().time()
            for a in agents:
                if not a.registered and now - a.sent_at >= RESEND and a.register():
                    a.sent_at = now
                elif beat >= HEARTBEAT:
                    a.t.send(m.Heartbeat())
            beat = 0.0 if beat >= HEARTBEAT else beat
            await asyncio.sleep(TICK)

    async def _recv(self, agent: SimAgent, redetect: asyncio.Event) -> None:
        while True:
            msg = await agent.t.recv()
            if agent.on_message(msg):
                redetect.set()
