"""A tiny driver for the pure master core: events in, effects out, helpers to read them."""
from __future__ import annotations

import random
from collections.abc import Iterable
from typing import Any

import attrs

from mesos_common import effects as fx
from mesos_common import messages as m
from mesos_common.ids import IdGen
from mesos_common.resources import Resources
from mesos_master.allocator.hierarchical import HierarchicalAllocator
from mesos_master.core import Master, MasterConfig
from mesos_master.registry.base import MemoryRegistry

AGENT_RES = "cpus:4;mem:4096;disk:10000;ports:[31000-31099]"


def agent_info(host: str = "h1", res: str = AGENT_RES, port: int = 5051) -> m.AgentInfo:
    return m.AgentInfo(hostname=host, port=port, resources=Resources.parse(res),
                       attributes={"rack": "r1"}, containerizers=("docker", "mesos"))


def command_task(task_id: str, agent_id: str, res: str = "cpus:1;mem:128",
                 **kw: Any) -> m.TaskInfo:
    return m.TaskInfo(name=task_id, task_id=task_id, agent_id=agent_id,
                      resources=Resources.parse(res), command=m.CommandInfo("sleep 10"), **kw)


class Harness:
    """Drives a Master; Persist effects are applied to a MemoryRegistry and fed back."""

    def __init__(self, registry: MemoryRegistry | None = None, now: float = 1000.0,
                 auto_persist: bool = True, **config: Any) -> None:
        self.registry = registry or MemoryRegistry()
        cfg = {"master_id": "M", "heartbeat_interval": 15.0, **config}
        self.ids = IdGen(config.get("master_id", "M"))
        self.master = Master(MasterConfig(**cfg), HierarchicalAllocator(random.Random(7)),
                             self.registry.load(), self.ids, random.Random(7))
        self.now = now
        self.auto_persist = auto_persist
        self.timers: dict[Any, float] = {}
        self.handle(fx.Start())

    def restart(self, master_id: str) -> None:
        """A new master process on the same registry; peers keep whatever they believe."""
        cfg = attrs.evolve(self.master.config, master_id=master_id)
        self.ids = IdGen(master_id)
        self.master = Master(cfg, HierarchicalAllocator(random.Random(7)), self.registry.load(),
                             self.ids, random.Random(7))
        self.timers.clear()
        self.handle(fx.Start())

    def handle(self, event: Any, now: float | None = None) -> list[Any]:
        if now is not None:
            self.now = now
        out = self.master.handle(event, self.now)
        result = list(out)
        for e in out:
            if isinstance(e, fx.SetTimer):
                self.timers[e.key] = e.at
            elif isinstance(e, fx.CancelTimer):
                self.timers.pop(e.key, None)
            elif isinstance(e, fx.Persist) and self.auto_persist:
                ok = self.registry.apply(e.op) or True
                result += self.handle(fx.PersistDone(e.op, ok))
        self.master.check_invariants()
        return result

    def recv(self, peer: bytes, msg: Any, now: float | None = None) -> list[Any]:
        return self.handle(fx.Received(peer, msg), now)

    def fire(self, key: Any, now: float | None = None) -> list[Any]:
        at = self.timers.pop(key, self.now)
        return self.handle(fx.TimerFired(key), max(at, self.now) if now is None else now)

    def advance(self, seconds: float) -> list[Any]:
        """Move time forward, firing due timers in order."""
        end, out = self.now + seconds, []
        while True:
            due = sorted((at, repr(k), k) for k, at in self.timers.items() if at <= end)
            if not due:
                break
            at, _, key = due[0]
            self.timers.pop(key)
            out += self.handle(fx.TimerFired(key), max(at, self.now))
        self.now = end
        return out

    # ------------------------------------------------------------ scenario steps

    def register_agent(self, peer: bytes = b"agent1", info: m.AgentInfo | None = None) -> str:
        out = self.recv(peer, m.RegisterAgent(info or agent_info()))
        (reg,) = sent(out, m.AgentRegistered, to=peer)
        return reg.agent_id

    def subscribe(self, peer: bytes = b"fw1", name: str = "fw", **info: Any) -> str:
        out = self.recv(peer, m.Subscribe(m.FrameworkInfo(name=name, **info)))
        (sub,) = sent(out, m.Subscribed, to=peer)
        return sub.framework_id

    def allocate(self) -> list[Any]:
        return self.fire(("allocate",)) if ("allocate",) in self.timers else self.fire(
            ("allocate_periodic",))

    def offers(self, peer: bytes = b"fw1") -> list[m.Offer]:
        return [o for msg in sent(self.allocate(), m.Offers, to=peer) for o in msg.offers]

    def launch(self, fw_peer: bytes, fw_id: str, offer: m.Offer, tasks: Iterable[m.TaskInfo],
               refuse_seconds: float | None = None) -> list[Any]:
        op = m.Operation("LAUNCH", tuple(tasks))
        return self.recv(fw_peer, m.Accept(fw_id, (offer.id,), (op,), refuse_seconds))


def sent(effects: Iterable[Any], kind: type, to: bytes | None = None) -> list[Any]:
    """Messages of `kind` sent (to `to`, if given) among `effects`."""
    return [e.msg for e in effects if isinstance(e, fx.Send) and isinstance(e.msg, kind)
            and (to is None or e.to == to)]


def updates(effects: Iterable[Any], to: bytes | None = None) -> list[m.TaskStatus]:
    return [u.status for u in sent(effects, m.Update, to)]


def persisted(effects: Iterable[Any]) -> list[Any]:
    return [e.op for e in effects if isinstance(e, fx.Persist)]


def only(items: list[Any]) -> Any:
    assert len(items) == 1, items
    return items[0]
