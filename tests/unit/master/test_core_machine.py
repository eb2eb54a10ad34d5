"""Random event sequences through the master core, with plausible fake peers around it.

Fake agents run what they are told, send updates (retried until acknowledged), heartbeat and
re-register after a master restart; fake frameworks accept (sometimes invalid or stale) offers,
decline, kill, reconcile, fail over and tear down; garbage comes from strangers. After every
step the core's own invariants must hold and its books must agree with the allocator's.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any, TypeVar

from attrs import define, field
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from mesos_common import effects as fx
from mesos_common import messages as m
from mesos_common import task_states as ts
from mesos_common.resources import EMPTY, Resources

from .harness import Harness

R = Resources.parse
AGENT_SHAPES = ["cpus:4;mem:2048;ports:[31000-31009]", "cpus:1;mem:256",
                "cpus:2;mem:1024;cpus(web):2;mem(web):512"]
TASK_SHAPES = ["cpus:1;mem:128", "cpus:0.5;mem:64;ports:[31000-31001]", "cpus:3", "",
               "cpus(web):1;mem(web):64", "cpus:100"]
PEERS = [b"stranger", b"agent0", b"fw0"]
GARBAGE = [m.Heartbeat(), m.StatusUpdate("f", m.TaskStatus("t", ts.RUNNING)),
           m.Accept("f", ("o",)), m.RunTask(m.FrameworkInfo("x"), m.TaskInfo(
               "t", "t", "S", R("cpus:1"))), m.Offers(()), m.ProtocolError("x"),
           m.Acknowledge("f", "S", "t", b"u"), m.Subscribe(m.FrameworkInfo("x", id="M-F2")),
           m.ReregisterAgent("M-S1", m.AgentInfo("h", 1, R("cpus:1"))), m.Decline("M-F2", ("o",))]
UPDATE_STATES = [ts.STARTING, ts.RUNNING, ts.FINISHED, ts.FAILED, ts.KILLED, ts.RUNNING]


T = TypeVar("T")


def _or_none(items: Sequence[T]) -> st.SearchStrategy[T | None]:
    """One of `items`, or None when there are none."""
    choices: list[T | None] = [*items] or [None]
    return st.sampled_from(choices)


@define
class FakeAgent:
    peer: bytes
    info: m.AgentInfo
    agent_id: str | None = None
    tasks: dict[tuple[str, str], list[Any]] = field(factory=dict)  # key -> [TaskInfo, state]
    frameworks: dict[str, m.FrameworkInfo] = field(factory=dict)


@define
class FakeFramework:
    peer: bytes
    info: m.FrameworkInfo
    fw_id: str | None = None
    offers: dict[str, m.Offer] = field(factory=dict)
    stale: list[str] = field(factory=list)
    unacked: list[tuple[str, str, bytes]] = field(factory=list)  # agent, task, uuid
    tasks: set[str] = field(factory=set)
    greedy: bool = False  # launches a small task on every offer as soon as it arrives


class MasterMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.h = Harness(agent_ping_timeout=5.0, max_agent_ping_timeouts=2,
                         heartbeat_interval=5.0, allocation_interval=1.0)
        self.agents: dict[bytes, FakeAgent] = {}
        self.fws: dict[bytes, FakeFramework] = {}
        self.seq = 0
        self.restarts = 0

    # ------------------------------------------------------------ plumbing

    def _uuid(self) -> bytes:
        self.seq += 1
        return self.seq.to_bytes(16, "big")

    def send(self, peer: bytes, msg: Any) -> None:
        self.deliver(self.h.recv(peer, msg))

    def deliver(self, out: list[Any]) -> None:
        greedy: list[tuple[FakeFramework, m.Offer]] = []
        for e in out:
            if isinstance(e, fx.Send):
                if e.to in self.agents:
                    self._to_agent(self.agents[e.to], e.msg)
                elif e.to in self.fws:
                    f = self.fws[e.to]
                    self._to_framework(f, e.msg)
                    if f.greedy and isinstance(e.msg, m.Offers):
                        greedy += [(f, o) for o in e.msg.offers]
        for f, offer in greedy:
            if offer.id in f.offers and f.fw_id and f.peer in self.fws:
                del f.offers[offer.id]
                self.seq += 1
                task = m.TaskInfo("g", f"g{self.seq}", offer.agent_id, R("cpus:0.5;mem:32"),
                                  m.CommandInfo("true"))
                f.tasks.add(task.task_id)
                op = m.Operation("LAUNCH", (task,))
                self.send(f.peer, m.Accept(f.fw_id, (offer.id,), (op,), 1.0))

    def _to_agent(self, a: FakeAgent, msg: Any) -> None:
        if isinstance(msg, (m.AgentRegistered, m.AgentReregistered)):
            a.agent_id = msg.agent_id
        elif isinstance(msg, m.ShutdownAgent):
            a.agent_id, a.tasks = None, {}
        elif isinstance(msg, m.RunTask):
            fid = msg.framework.id
            assert fid is not None  # the master fills it in before it runs a task
            a.frameworks[fid] = msg.framework
            a.tasks[(fid, msg.task.task_id)] = [msg.task, ts.STAGING]
        elif isinstance(msg, m.ShutdownFramework):
            a.tasks = {k: v for k, v in a.tasks.items() if k[0] != msg.framework_id}
        elif isinstance(msg, m.StatusUpdateAck):
            entry = a.tasks.get((msg.framework_id, msg.task_id))
            if entry is not None and ts.is_terminal(entry[1]):
                del a.tasks[(msg.framework_id, msg.task_id)]

    def _to_framework(self, f: FakeFramework, msg: Any) -> None:
        if isinstance(msg, m.Subscribed):
            f.fw_id = msg.framework_id
            f.stale += list(f.offers)
            f.offers = {}
        elif isinstance(msg, m.Offers):
            f.offers.update({o.id: o for o in msg.offers})
        elif isinstance(msg, m.Rescind):
            if f.offers.pop(msg.offer_id, None) is not None:
                f.stale.append(msg.offer_id)
        elif isinstance(msg, m.Update) and msg.status.uuid is not None:
            f.unacked.append((msg.status.agent_id or "", msg.status.task_id, msg.status.uuid))
        elif isinstance(msg, m.Error):
            f.fw_id = None

    # ------------------------------------------------------------ agents

    @rule(i=st.integers(0, 3), shape=st.sampled_from(AGENT_SHAPES))
    def register_agent(self, i: int, shape: str) -> None:
        peer = f"agent{i}".encode()
        a = self.agents.setdefault(peer, FakeAgent(peer, m.AgentInfo(f"h{i}", 5051, R(shape))))
        if a.agent_id is None:
            self.send(peer, m.RegisterAgent(a.info))

    def reregister_agent(self, data: st.DataObject) -> None:
        a = data.draw(_or_none([a for a in self.agents.values() if a.agent_id]))
        if a is None or a.agent_id is None:
            return
        records = tuple(m.TaskRecord(fw, info, state) for (fw, _), (info, state) in
                        sorted(a.tasks.items()))
        fws = tuple(a.frameworks[fw] for fw in sorted({k[0] for k in a.tasks}))
        self.send(a.peer, m.ReregisterAgent(a.agent_id, a.info, records, fws))

    @precondition(lambda self: any(a.tasks for a in self.agents.values()))
    @rule(data=st.data(), state=st.sampled_from(UPDATE_STATES))
    def agent_status_update(self, data: st.DataObject, state: str) -> None:
        a = data.draw(st.sampled_from([a for a in self.agents.values() if a.tasks]))
        key = data.draw(st.sampled_from(sorted(a.tasks)))
        entry = a.tasks[key]
        if not ts.is_terminal(entry[1]):
            entry[1] = state
        status = m.TaskStatus(key[1], entry[1], agent_id=a.agent_id, uuid=self._uuid())
        self.send(a.peer, m.StatusUpdate(key[0], status))

    @precondition(lambda self: self.agents)
    @rule(data=st.data())
    def agent_heartbeat(self, data: st.DataObject) -> None:
        self._heartbeat_agent(data.draw(st.sampled_from(
            sorted(self.agents.values(), key=lambda a: a.peer))))

    def _heartbeat_agent(self, a: FakeAgent) -> None:
        out = self.h.recv(a.peer, m.Heartbeat())
        self.deliver(out)
        if any(isinstance(e, fx.Send) and isinstance(e.msg, m.ProtocolError) for e in out):
            self.reregister_or_register(a)

    def reregister_or_register(self, a: FakeAgent) -> None:
        if a.agent_id is None:
            self.send(a.peer, m.RegisterAgent(a.info))
            return
        records = tuple(m.TaskRecord(fw, info, state) for (fw, _), (info, state) in
                        sorted(a.tasks.items()))
        fws = tuple(a.frameworks[fw] for fw in sorted({k[0] for k in a.tasks}))
        self.send(a.peer, m.ReregisterAgent(a.agent_id, a.info, records, fws))

    def agent_unregisters(self, data: st.DataObject) -> None:
        a = data.draw(_or_none([a for a in self.agents.values() if a.agent_id]))
        if a is None or a.agent_id is None:
            return
        self.send(a.peer, m.UnregisterAgent(a.agent_id))
        a.agent_id, a.tasks = None, {}

    # ------------------------------------------------------------ frameworks

    @rule(j=st.integers(0, 2), pa=st.booleans(), role=st.sampled_from(["*", "web"]),
          greedy=st.booleans())
    def subscribe(self, j: int, pa: bool, role: str, greedy: bool) -> None:
        peer = f"fw{j}".encode()
        f = self.fws.get(peer)
        if f is None:
            info = m.FrameworkInfo(f"fw{j}", roles=(role,), failover_timeout=20.0,
                                   capabilities=("PARTITION_AWARE",) if pa else ())
            f = self.fws[peer] = FakeFramework(peer, info, greedy=greedy)
        if f.fw_id is None:
            self.send(peer, m.Subscribe(attrs_evolve(f.info, id=f.fw_id)))

    def framework_fails_over(self, data: st.DataObject, new_peer: bool) -> None:
        """Re-subscribe with the same id, from the same or from a new connection."""
        f = data.draw(_or_none([f for f in self.fws.values() if f.fw_id]))
        if f is None:
            return
        if new_peer:
            del self.fws[f.peer]
            f.peer = f.peer + b"'"
            self.fws[f.peer] = f
        self.send(f.peer, m.Subscribe(attrs_evolve(f.info, id=f.fw_id)))

    def _fw(self, data: st.DataObject) -> FakeFramework | None:
        fws = sorted(self.fws.values(), key=lambda f: f.peer)
        return data.draw(_or_none(fws))

    @precondition(lambda self: self.fws)
    @rule(data=st.data())
    def framework_heartbeat(self, data: st.DataObject) -> None:
        f = self._fw(data)
        if f is not None:
            self._heartbeat_framework(f)

    def _heartbeat_framework(self, f: FakeFramework) -> None:
        out = self.h.recv(f.peer, m.Heartbeat())
        self.deliver(out)
        if any(isinstance(e, fx.Send) and isinstance(e.msg, m.ProtocolError) for e in out):
            self.send(f.peer, m.Subscribe(attrs_evolve(f.info, id=f.fw_id)))

    @precondition(lambda self: any(f.offers or f.stale for f in self.fws.values()))
    @rule(data=st.data(), n_tasks=st.integers(0, 3), refuse=st.sampled_from([None, 0.0, 3.0]),
          mode=st.sampled_from(["one", "one", "one", "all", "stale", "duplicate"]))
    def accept(self, data: st.DataObject, n_tasks: int, refuse: float | None, mode: str) -> None:
        f = data.draw(st.sampled_from([f for f in self.fws.values() if f.offers or f.stale]))
        live = sorted(f.offers)
        if mode == "stale" or not live:
            ids = [data.draw(st.sampled_from(f.stale or ["never"]))] + live[:1]
        elif mode == "all":
            ids = live
        else:
            ids = [data.draw(st.sampled_from(live))] * (2 if mode == "duplicate" else 1)
        agent_id = f.offers[ids[0]].agent_id if ids[0] in f.offers else "S-unknown"
        tasks = []
        for _ in range(n_tasks):
            self.seq += 1
            tid = data.draw(st.sampled_from([f"t{self.seq}"] * 4 + sorted(f.tasks)[:1]))
            shape = data.draw(st.sampled_from(TASK_SHAPES))
            tasks.append(m.TaskInfo(tid, tid, agent_id, R(shape), m.CommandInfo("true")))
            f.tasks.add(tid)
        for oid in ids:
            f.offers.pop(oid, None)
        op = m.Operation("LAUNCH", tuple(tasks))
        self.send(f.peer, m.Accept(f.fw_id or "none", tuple(ids), (op,), refuse))

    @precondition(lambda self: any(f.offers for f in self.fws.values()))
    @rule(data=st.data(), refuse=st.sampled_from([None, 0.0, 2.0, 1e9]))
    def decline(self, data: st.DataObject, refuse: float | None) -> None:
        f = data.draw(st.sampled_from([f for f in self.fws.values() if f.offers]))
        oid = data.draw(st.sampled_from(sorted(f.offers)))
        del f.offers[oid]
        self.send(f.peer, m.Decline(f.fw_id or "none", (oid,), refuse))

    @precondition(lambda self: any(f.unacked for f in self.fws.values()))
    @rule(data=st.data())
    def acknowledge(self, data: st.DataObject) -> None:
        f = data.draw(st.sampled_from([f for f in self.fws.values() if f.unacked]))
        agent_id, task_id, uuid = f.unacked.pop(data.draw(st.integers(0, len(f.unacked) - 1)))
        self.send(f.peer, m.Acknowledge(f.fw_id or "none", agent_id, task_id, uuid))

    @precondition(lambda self: self.fws)
    @rule(data=st.data(), what=st.sampled_from(["kill", "reconcile", "explicit", "revive",
                                                "suppress"]))
    def framework_call(self, data: st.DataObject, what: str) -> None:
        f = self._fw(data)
        if f is None:
            return
        fid = f.fw_id or "none"
        task = data.draw(st.sampled_from(sorted(f.tasks) or ["ghost"]))
        msg = {"kill": m.Kill(fid, task), "reconcile": m.Reconcile(fid),
               "explicit": m.Reconcile(fid, (m.ReconcileTask(task), m.ReconcileTask("x", "S1"))),
               "revive": m.Revive(fid), "suppress": m.Suppress(fid),
               "teardown": m.Teardown(fid)}[what]
        self.send(f.peer, msg)
        if what == "teardown":
            del self.fws[f.peer]  # a torn-down framework is gone for good

    # ------------------------------------------------------------ time, chaos, restarts

    @rule(dt=st.sampled_from([0.5, 1.0, 3.0, 6.0, 12.0]), alive=st.booleans())
    def time_passes(self, dt: float, alive: bool) -> None:
        if alive:  # everyone heartbeats first (and re-registers if the master forgot them)
            for a in sorted(self.agents.values(), key=lambda a: a.peer):
                self._heartbeat_agent(a)
            for f in sorted(self.fws.values(), key=lambda f: f.peer):
                self._heartbeat_framework(f)
        self.deliver(self.h.advance(dt))

    @rule(data=st.data(), what=st.sampled_from(["garbage", "restart", "unregister", "reregister",
                                                "failover", "teardown"]))
    def chaos(self, data: st.DataObject, what: str) -> None:
        if what == "garbage":
            self.deliver(self.h.recv(data.draw(st.sampled_from(PEERS)),
                                     data.draw(st.sampled_from(GARBAGE))))
        elif what == "restart" and self.restarts < 2:
            self.restarts += 1
            self.h.restart(f"M{self.restarts}")
            for f in self.fws.values():
                f.stale += list(f.offers)
                f.offers = {}
        elif what == "unregister":
            self.agent_unregisters(data)
        elif what == "reregister":
            self.reregister_agent(data)
        elif what == "failover":
            self.framework_fails_over(data, data.draw(st.booleans()))
        elif what == "teardown":
            gone = self._fw(data)
            if gone is not None:
                self.send(gone.peer, m.Teardown(gone.fw_id or "none"))
                del self.fws[gone.peer]  # a torn-down framework is gone for good

    @invariant()
    def allocator_agrees_with_master(self) -> None:
        master = self.h.master
        master.check_invariants()
        for agent in master.agents.values():
            expected: dict[str, Resources] = {}
            for oid in agent.offers:
                o = master.offers[oid]
                expected[o.framework_id] = expected.get(o.framework_id, EMPTY) + o.resources
            for (fw_id, _), task in agent.tasks.items():
                if not task.resources_recovered:
                    expected[fw_id] = expected.get(fw_id, EMPTY) + task.resources
            got = {k: v for k, v in master.allocator.allocated(agent.id).items() if v}
            assert got == expected, (agent.id, got, expected)


def attrs_evolve(info: m.FrameworkInfo, **kw: Any) -> m.FrameworkInfo:
    import attrs
    return attrs.evolve(info, **kw)


TestMasterMachine = MasterMachine.TestCase
TestMasterMachine.settings = settings(max_examples=150, stateful_step_count=60, deadline=None)
