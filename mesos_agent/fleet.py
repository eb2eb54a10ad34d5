"""Many simulated agents in one process, each a real `Agent` core with its own ZeroMQ socket to
a real master: scale measured end to end on real sockets without N processes.

Tasks do not run: a launch is reported at once and a task "exits" after its `sim.duration`
label or the N of a `sleep N` command (never, without either), or when killed. Everything else
(registration, heartbeats, status updates and their retries, re-detection) is the production
agent core, driven by one asyncio loop.

    python -m mesos_agent.fleet --master 127.0.0.1:5050 --agents 1000
    python -m mesos_agent.fleet --master zk://127.0.0.1:2181/corral --agents 1000

Master detection is the real agent's: `leader.detect` on every (re)detection (HTTP or zk://)
and a `LeaderWatch`, so a newly elected leader makes every agent re-register at once.

Each agent holds two file descriptors (its socket and libzmq's mailbox); where the open-file
limit cannot be raised, run several fleets (`--first_index`) side by side.
"""
from __future__ import annotations

import asyncio
import logging
import random
import re
import resource
import signal
import sys
from collections.abc import Callable, Sequence
from typing import Any

import zmq
import zmq.asyncio

from mesos_agent import events as ev
from mesos_agent.config import AgentConfig
from mesos_agent.core import Agent
from mesos_agent.recovery import Checkpoint
from mesos_common import effects as fx
from mesos_common import flags, leader
from mesos_common.auth.flags import add_peer_security_flags, peer_security_from
from mesos_common.codec import DecodeError
from mesos_common.curve import PeerSecurity
from mesos_common.resources import ResourceError, Resources
from mesos_common.runtime import Performers, Timers
from mesos_common.transport import DealerTransport

log = logging.getLogger("mesos-agent-fleet")
_SLEEP = re.compile(r"^\s*sleep\s+([0-9.]+)\s*$")


def task_duration(task: Any) -> float | None:
    if "sim.duration" in task.labels:
        return float(task.labels["sim.duration"])
    m = _SLEEP.match(task.command.value) if task.command is not None else None
    return float(m.group(1)) if m else None


def _ignore(effect: Any) -> None:
    pass


class FleetAgent:
    """One agent core, its socket, its timers and its pretend processes."""

    def __init__(self, fleet: AgentFleet, index: int, resources: Resources) -> None:
        self.fleet = fleet
        self.name = f"fleet-{index}"
        config = AgentConfig(hostname=self.name, port=5051, resources=resources,
                             work_dir=f"/fleet/{self.name}", attributes={"fleet": "1"},
                             containerizers=("sim",))  # pretend processes run anything
        self.core = Agent(config, random.Random(index))
        self.dealer = DealerTransport(fleet.ctx, security=fleet.security)
        self.timers = Timers(lambda key: self.feed(fx.TimerFired(key)))  # core on loop time
        performers: dict[type, Callable[..., Any]] = {
            fx.Send: lambda e: self.dealer.send(e.msg),
            fx.SetTimer: lambda e: self.timers.set(e.key, e.at),
            fx.CancelTimer: lambda e: self.timers.cancel(e.key),
            ev.LaunchTask: self.launch,
            ev.KillProcess: lambda e: asyncio.get_running_loop().call_soon(
                self.exit, e.task_id, None, signal.SIGTERM),
            ev.Redetect: lambda e: self.fleet.redetect(self),
            fx.Log: lambda e: log.log(logging.DEBUG if e.level in ("debug", "info")
                                      else logging.WARNING, "%s: %s", self.name, e.text),
            # Pretend processes are not probed, and a fleet agent keeps no checkpoints:
            # it starts afresh every time.
            ev.StartHealthCheck: _ignore, ev.StopHealthCheck: _ignore, Checkpoint: _ignore}
        self.performers = Performers(performers)
        self.exits: dict[str, asyncio.TimerHandle] = {}
        self.pids = 0

    def feed(self, event: Any) -> None:
        loop = asyncio.get_running_loop()
        try:
            effects = self.core.handle(event, loop.time())
        except Exception:
            log.exception("%s: core failed on %r", self.name, event)
            return
        self.performers.perform(effects)

    def launch(self, e: ev.LaunchTask) -> None:
        loop = asyncio.get_running_loop()
        tid = e.task.task_id
        self.pids += 1
        loop.call_soon(self.feed, ev.TaskLaunched(tid, self.pids))
        duration = task_duration(e.task)
        if duration is not None:
            self.exits[tid] = loop.call_later(duration, self.exit, tid, 0, None)

    def exit(self, task_id: str, code: int | None, sig: int | None) -> None:
        h = self.exits.pop(task_id, None)
        if h is not None:
            h.cancel()
        self.feed(ev.TaskExited(task_id, code, sig))

    async def receive(self) -> None:
        while True:
            msg = await self.dealer.recv()
            if isinstance(msg, DecodeError):
                log.warning("%s: undecodable frame: %s", self.name, msg.message)
                continue
            self.feed(fx.Received(b"", msg))


class AgentFleet:
    def __init__(self, master: str, count: int, resources: Resources, first: int = 0,
                 security: PeerSecurity | None = None) -> None:
        self.master = master
        self.security = security  # one credential and CURVE key for every agent
        self.ctx = zmq.asyncio.Context()
        self.ctx.setsockopt(zmq.LINGER, 0)
        self.ctx.set(zmq.MAX_SOCKETS, count + 64)  # libzmq's default cap is 1023
        self.agents = [FleetAgent(self, i, resources) for i in range(first, first + count)]
        self._redetect: set[FleetAgent] = set()
        self._wake = asyncio.Event()
        self.leader_changes = 0

    def redetect(self, agent: FleetAgent) -> None:
        self._redetect.add(agent)
        self._wake.set()

    def leader_changed(self, znode: str | None) -> None:
        """zk://: a new leader znode; every agent re-detects and re-registers now, as the
        real agent does, rather than after its master goes silent."""
        if znode is None:
            return
        self.leader_changes += 1
        log.info("leader changed in ZooKeeper (%s): re-detecting", znode)
        self._redetect.update(self.agents)
        self._wake.set()

    async def connect(self, agents: Sequence[FleetAgent]) -> None:
        delay = 0.1
        while True:
            try:
                info = await leader.detect(self.master)
                break
            except leader.DetectError as e:
                log.warning("no master yet: %s", e)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)
        for a in agents:
            a.dealer.connect(info.zmq_endpoint, info.curve_public_key, self.master)
        await asyncio.sleep(0.2)  # let the connections finish their handshakes
        for a in agents:
            a.feed(ev.MasterConnected({"id": info.id}))

    async def run(self, stop: asyncio.Event) -> None:
        watch = leader.LeaderWatch(self.master, self.leader_changed, asyncio.get_running_loop())
        try:
            async with asyncio.TaskGroup() as tg:
                receivers = [tg.create_task(a.receive()) for a in self.agents]
                for a in self.agents:
                    a.feed(fx.Start())
                watcher = tg.create_task(watch.run())
                await self.connect(self.agents)
                print(f"mesos-agent-fleet: started agents={len(self.agents)}", flush=True)
                redetector = tg.create_task(self._redetect_loop())
                await stop.wait()
                for t in [*receivers, redetector, watcher]:
                    t.cancel()
        finally:
            watch.close()
        for a in self.agents:
            a.dealer.close()
        self.ctx.term()

    async def _redetect_loop(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            await asyncio.sleep(0.1)  # gather a burst of agents that all lost the master
            batch, self._redetect = list(self._redetect), set()
            await self.connect(batch)


def _raise_fd_limit(want: int) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    for limit in ((max(want, hard), max(want, hard)), (hard, hard)):  # above hard needs root
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, limit)
            return
        except (ValueError, OSError):
            continue
    log.warning("could not raise the open-file limit above %d", soft)


def main(argv: Sequence[str] | None = None) -> int:
    p = flags.FlagParser("mesos-agent-fleet", "Many simulated agents in one process.")
    p.add_flag("master", help="the master's HTTP address host:port (or a comma list), or "
                              "zk://host:port[,host:port]/path for HA masters; required")
    p.add_flag("agents", type=flags.positive_int, default=100, help="how many agents")
    p.add_flag("first_index", type=int, default=0,
               help="number of the first agent (hostnames fleet-N), to run several fleets")
    p.add_flag("resources", default="cpus:8;mem:16384;disk:100000;ports:[31000-32000]",
               help="resources of each agent")
    add_peer_security_flags(p)
    ns = p.parse(argv)
    security = peer_security_from(ns, p)
    if not ns.master:
        p.error("--master is required")
    try:
        res = Resources.parse(ns.resources)
    except ResourceError as e:
        p.error(f"--resources: {e}")
    flags.setup_logging(ns.log_level, "mesos-agent-fleet")
    _raise_fd_limit(3 * ns.agents + 1024)  # a socket and an eventfd per agent, and HTTP

    async def go() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await AgentFleet(ns.master, ns.agents, res, ns.first_index, security).run(stop)

    asyncio.run(go())
    return 0


if __name__ == "__main__":
    sys.exit(main())
