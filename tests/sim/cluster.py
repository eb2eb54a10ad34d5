"""SimCluster: the real master, agent, scheduler-SDK and Marathon cores in one process on
virtual time (Marathon's part: sim_marathon.py).

One event heap ordered by (time, seq) drives everything; all randomness comes from one seed,
so a run is a pure function of its seed and replays exactly. A crash drops a node's core and
rebuilds it from what is durable (the master's registry, Marathon's store; agents have no
checkpoint yet, so a crashed agent's processes die with it). Invariants are checked after every step
(invariants.py); a violation raises SimViolation naming the seed.
"""
from __future__ import annotations

import hashlib
import heapq
import random
import re
from collections import deque
from collections.abc import Callable, Mapping
from typing import Any

import attrs
from attrs import define, field

from frameworks import core as sdk
from frameworks.tasks import ResourcesLeft, reserve, unreserve
from mesos_agent import events as agent_events
from mesos_agent import recovery as rec
from mesos_agent.config import AgentConfig
from mesos_agent.core import Agent
from mesos_agent.status import RetryPolicy
from mesos_common import effects as fx
from mesos_common import messages as m
from mesos_common import task_states as ts
from mesos_common.ids import IdGen, random_prefix
from mesos_common.resources import Resources
from mesos_common.runtime import Performers
from mesos_master.allocator.hierarchical import HierarchicalAllocator
from mesos_master.core import Master, MasterConfig
from mesos_master.registry.base import RegistryState
from tests.sim import sim_marathon as sm
from tests.sim.cluster_health import HealthEdges
from tests.sim.cluster_marathon import MarathonEdges
from tests.sim.network import NetworkOptions, SimNetwork
from tests.sim.node import Node

MASTER = "master"
WORLD = "world"  # owns chaos and healing events; never crashes
RECONCILE_EVERY = 15.0
AGENT_RESOURCES = "cpus:2;mem:1024;disk:1024;ports:[31000-31009]"


class SimViolation(AssertionError):
    def __init__(self, seed: int, message: str, trace: list[str]) -> None:
        tail = "\n  ".join(trace[-25:])
        super().__init__(f"seed {seed}: {message}\n  last events:\n  {tail}\n"
                         f"replay with: python -m tests.sim.sweep --seed {seed} -v")
        self.seed = seed
        self.problem = message


@define
class SimOptions:
    seed: int
    agents: int = 3
    frameworks: int = 2
    tasks_per_framework: int = 10
    network: NetworkOptions = field(factory=NetworkOptions)
    master_crashes_per_min: float = 0.0
    agent_crashes_per_min: float = 0.0
    partitions_per_min: float = 0.0
    safety_time: float = 60.0
    liveness_time: float = 400.0
    heartbeat: float = 1.0
    marathon: bool = False  # run Marathon too, with API calls, crashes and task failures
    marathon_ops_per_min: float = 12.0
    marathon_crashes_per_min: float = 0.0
    task_failures_per_min: float = 0.0
    agent_checkpoint: bool = False  # agents checkpoint; their processes outlive a crash
    # Agents resend unacknowledged status updates with Mesos's backoff (10 s doubling to
    # 10 min, AgentConfig's default) or, when False, with a short 1 s .. 10 s one.
    mesos_status_retry: bool = False
    health_checks: float = 0.0  # share of tasks launched with a Mesos health check
    unhealthy: float = 0.0  # share of checked tasks (launched while faults are on) that fail
    reservations: bool = False  # frameworks have roles and reserve and unreserve offered cpus
    # The master's message table (None: the real one); a test plants a bug with its own.
    master_messages: Mapping[type, Callable[..., None]] | None = None

    @classmethod
    def swarm(cls, seed: int) -> SimOptions:
        """Randomised knobs per seed (TigerBeetle's options_swarm): each seed tests a mix."""
        r = random.Random(seed ^ 0x5EED)
        return cls(
            seed=seed, agents=r.randint(1, 5), frameworks=r.randint(1, 3),
            tasks_per_framework=r.randint(1, 25),
            network=NetworkOptions(
                loss=r.choice([0.0, 0.0, 0.01, 0.05, 0.2]),
                duplicate=r.choice([0.0, 0.01, 0.1]),
                delay_min=0.0005, delay_mean=r.choice([0.001, 0.01, 0.1]),
                clog_probability=r.choice([0.0, 0.0, 0.001]), clog_mean=r.choice([0.5, 3.0])),
            master_crashes_per_min=r.choice([0.0, 0.0, 1.0, 4.0]),
            agent_crashes_per_min=r.choice([0.0, 0.0, 1.0, 3.0]),
            partitions_per_min=r.choice([0.0, 0.0, 2.0, 6.0]),
            safety_time=r.choice([20.0, 60.0])).with_marathon(seed)

    def with_marathon(self, seed: int) -> SimOptions:
        """Marathon in half the seeds (knobs from their own stream: the others' stay put)."""
        r = random.Random(seed ^ 0xA11)
        if r.random() < 0.5:
            self.marathon = True
            self.marathon_ops_per_min = r.choice([6.0, 12.0, 30.0])
            self.marathon_crashes_per_min = r.choice([0.0, 1.0, 3.0])
            self.task_failures_per_min = r.choice([0.0, 2.0, 6.0])
        self.agent_checkpoint = random.Random(seed ^ 0xC4E).random() < 0.5
        return self.with_agent_policies(seed)

    def with_agent_policies(self, seed: int) -> SimOptions:
        """Status-update retries and health checks (their own stream: the others' stay)."""
        r = random.Random(seed ^ 0x4EA1)
        self.mesos_status_retry = r.random() < 0.5
        self.health_checks = r.choice([0.0, 0.5, 1.0])
        self.unhealthy = r.choice([0.0, 0.3, 0.7]) if self.health_checks else 0.0
        self.reservations = random.Random(seed ^ 0x7E5).random() < 0.5
        return self


# ---------------------------------------------------------------- nodes

@define(eq=False)
class MasterNode(Node):
    core: Master | None = None
    registry: RegistryState = field(factory=RegistryState)


@define(eq=False)
class Proc:
    framework_id: str
    resources: Resources
    duration: float
    ends_at: float | None = None  # once launched
    pid: int = 0
    check: m.HealthCheck | None = None  # its Mesos health check, if it has one
    fails_at: float | None = None  # from then on every probe of it fails (None: never)
    checks_since: float | None = None  # when its agent (re)started checking it


@define(eq=False)
class AgentNode(Node):
    core: Agent | None = None
    total: Resources = field(factory=Resources)
    procs: dict[str, Proc] = field(factory=dict)
    ckpt_id: str | None = None  # durable: the checkpoint (with SimOptions.agent_checkpoint)
    ckpt_tasks: dict[str, rec.TaskCheckpoint] = field(factory=dict)
    ckpt_reserved: Resources = field(factory=Resources)
    probe_gen: dict[str, int] = field(factory=dict)  # task -> generation of its probe loop


@define(eq=False)
class SimFramework:
    """A batch policy: `n` named jobs of random length arrive over `window` seconds (so there
    are idle spells, when offers are declined, and bursts); a job whose task ends other than
    FINISHED is run again as a new task. Liveness means every job finished."""

    name: str
    rng: random.Random
    n: int
    window: float
    arriving: list[tuple[float, str, float]] = field(factory=list)  # (at, job, duration)
    todo: deque[tuple[str, float]] = field(factory=deque)
    attempts: dict[str, int] = field(factory=dict)
    running: dict[str, tuple[str, float]] = field(factory=dict)  # task id -> job
    finished: set[str] = field(factory=set)
    checks: Callable[[], m.HealthCheck | None] = lambda: None  # a check for a new task
    reserving: random.Random | None = None  # with roles: (un)reserves cpus now and then

    def __attrs_post_init__(self) -> None:
        for i in range(self.n):
            at = round(self.rng.uniform(0.0, self.window), 2) if i else 0.0
            self.arriving.append((at, f"{self.name}-job{i}", round(self.rng.uniform(0.2, 8.0), 2)))
        self.arriving.sort(reverse=True)

    def arrive(self, now: float) -> None:
        while self.arriving and self.arriving[-1][0] <= now:
            _, job, duration = self.arriving.pop()
            self.todo.append((job, duration))

    def done(self) -> bool:
        return len(self.finished) == self.n

    def on_offers(self, core: sdk.SchedulerCore, offers: tuple[m.Offer, ...],
                  now: float) -> list[Any]:
        self.arrive(now)
        out: list[Any] = []
        for offer in offers:
            op = self._reservation(offer)
            if op is not None:  # the offer goes to the operation; it comes back converted
                out += core.accept([offer.id], [op], refuse_seconds=0.5)
                continue
            left, tasks = ResourcesLeft(offer), []
            while self.todo:
                job, duration = self.todo[0]
                attempt = self.attempts.get(job, 0)
                t = left.take(f"{job}.{attempt}", f"sleep {duration}", cpus=0.5, mem=64)
                if t is None:
                    break
                self.todo.popleft()
                check = self.checks()
                if check is not None:
                    t = attrs.evolve(t, health_check=check)
                self.attempts[job] = attempt + 1
                self.running[t.task_id] = (job, duration)
                tasks.append(t)
            out += core.launch([offer.id], tasks, refuse_seconds=1.0) if tasks else \
                core.decline([offer.id], refuse_seconds=1.0)
        return out

    def _reservation(self, offer: m.Offer) -> m.Operation | None:
        if self.reserving is None:
            return None
        mine = offer.resources.reserved(self.name)
        draw = self.reserving.random()
        if draw < 0.2 and offer.resources.unreserved().scalar("cpus") >= 0.5:
            return reserve("cpus:0.5", self.name)
        if draw > 0.9 and mine:
            return unreserve(mine)
        return None

    def on_update(self, status: m.TaskStatus) -> None:
        job = self.running.get(status.task_id)
        if job is None or not ts.is_terminal(status.state):
            return
        del self.running[status.task_id]
        if status.state == ts.FINISHED:
            self.finished.add(job[0])
        elif job[0] not in self.finished:
            self.todo.append(job)


@define(eq=False)
class FrameworkNode(Node):
    core: sdk.SchedulerCore | None = None
    policy: SimFramework | None = None
    seen: dict[str, list[tuple[bytes, str]]] = field(factory=dict)  # task -> agent updates
    acked: set[bytes] = field(factory=set)


# ---------------------------------------------------------------- the cluster

class SimCluster(MarathonEdges, HealthEdges):
    def __init__(self, options: SimOptions) -> None:
        self.o = options
        self.rng = random.Random(options.seed)
        self.net = SimNetwork(random.Random(self.rng.getrandbits(64)), options.network)
        self.now = 0.0
        self.heap: list[tuple[float, int, str, str, int, Any]] = []
        self.seq = 0
        self.timer_gen: dict[tuple[str, Any], int] = {}
        self._performers = self._performer_table()
        self.trace: deque[str] = deque(maxlen=200)
        self.digest = hashlib.sha256()
        self.steps = 0
        self.master = MasterNode(MASTER)
        self.agents = {f"agent{i}": AgentNode(f"agent{i}", total=Resources.parse(AGENT_RESOURCES))
                       for i in range(options.agents)}
        self.frameworks = {f"fw{i}": FrameworkNode(f"fw{i}") for i in range(options.frameworks)}
        self.nodes: dict[str, Node] = {MASTER: self.master, **self.agents, **self.frameworks,
                                       WORLD: Node(WORLD)}
        # health checks draw from their own stream: seeds without them run as before
        self.health_rng = random.Random(options.seed ^ 0x4EA17)
        self.health_kills = 0  # tasks whose agent killed them for failing their checks
        self.marathon = sm.MarathonNode("marathon") if options.marathon else None
        if self.marathon is not None:
            self.nodes[self.marathon.name] = self.marathon
            self.marathon.check_share = options.health_checks
            self.marathon.check_rng = self.health_rng
        self.checks: list[Callable[[SimCluster], None]] = []
        self.faults = True

    # ------------------------------------------------------------ building cores

    def _new_master(self) -> None:
        prefix = random_prefix(self.rng)[:8]
        hb = self.o.heartbeat
        config = MasterConfig(master_id=prefix, heartbeat_interval=hb, agent_ping_timeout=hb,
                              max_agent_ping_timeouts=3, allocation_interval=0.1,
                              offer_timeout=10.0,
                              agent_reregister_timeout=20.0)
        allocator = HierarchicalAllocator(random.Random(self.rng.getrandbits(64)))
        self.master.core = Master(config, allocator, self.master.registry.copy(),
                                  IdGen(prefix), random.Random(self.rng.getrandbits(64)),
                                  self.o.master_messages)
        self.feed(MASTER, fx.Start())

    def _new_agent(self, node: AgentNode) -> None:
        config = AgentConfig(hostname=node.name, port=5051, resources=node.total,
                             work_dir=f"/sim/{node.name}",
                             default_heartbeat_interval=self.o.heartbeat,
                             registration_backoff=RetryPolicy(initial=0.5, max=5.0),
                             status_retry=RetryPolicy() if self.o.mesos_status_retry
                             else RetryPolicy(initial=1.0, max=10.0),
                             checkpoint=self.o.agent_checkpoint)
        node.core = Agent(config, random.Random(self.rng.getrandbits(64)))
        self.feed(node.name, fx.Start())
        if self.o.agent_checkpoint:
            self.feed(node.name, rec.Recovered(node.ckpt_id, self._reattach(node),
                                               reserved=node.ckpt_reserved))
        else:
            node.procs.clear()
        self.push(self.now + 0.05, "connect", node.name, None)

    def _reattach(self, node: AgentNode) -> tuple[rec.RecoveredTask, ...]:
        """What the containerizer finds for each checkpointed task after a restart."""
        out = []
        for tid in set(node.procs) - set(node.ckpt_tasks):
            del node.procs[tid]  # never checkpointed: not ours to adopt (cannot happen)
        for tid, cp in sorted(node.ckpt_tasks.items()):
            proc = node.procs.get(tid)
            if proc is None:
                found = rec.Found(rec.MISSING)
            elif proc.ends_at is not None and proc.ends_at <= self.now:
                del node.procs[tid]
                found = rec.Found(rec.EXITED_FOUND, exit_code=0)
            else:
                found = rec.Found(rec.RUNNING_FOUND, pid=proc.pid or 1)
                proc.checks_since = self.now  # a recovered agent checks it from scratch
                proc.ends_at = proc.ends_at or self.now + proc.duration
                self.push(proc.ends_at, "proc", node.name, ("exit", tid, 0, None))
            out.append(rec.RecoveredTask(cp, found))
        return tuple(out)

    def _checkpoint(self, node: AgentNode, record: Any) -> None:
        if isinstance(record, rec.AgentIdRecord):
            node.ckpt_id, node.ckpt_reserved = record.agent_id, record.reserved
        elif isinstance(record, rec.TaskCheckpoint):
            node.ckpt_tasks[record.task.task_id] = record
        else:
            node.ckpt_tasks.pop(record.task_id, None)

    def _new_framework(self, node: FrameworkNode) -> None:
        roles = (node.name,) if self.o.reservations else ("*",)
        info = m.FrameworkInfo(name=node.name, user="sim", failover_timeout=3600.0,
                               id=node.core.framework_id if node.core else None, roles=roles)
        node.core = sdk.SchedulerCore(info)
        if node.policy is None:
            node.policy = SimFramework(node.name, random.Random(self.rng.getrandbits(64)),
                                       self.o.tasks_per_framework, 0.75 * self.o.safety_time,
                                       checks=self._maybe_check,
                                       reserving=random.Random(self.rng.getrandbits(64))
                                       if self.o.reservations else None)
        self.push(self.now + 0.1, "connect", node.name, None)
        self.push(self.now + RECONCILE_EVERY, "reconcile", node.name, None)

    def _reconcile(self, node: FrameworkNode) -> None:
        """Frameworks reconcile periodically (as Marathon does): replies can be lost."""
        assert node.core is not None and node.policy is not None
        if node.core.subscribed and node.policy.running:
            tasks = [m.ReconcileTask(task_id=t) for t in sorted(node.policy.running)]
            self.perform(node, node.core.reconcile(tasks))
        self.push(self.now + RECONCILE_EVERY, "reconcile", node.name, None)

    # ------------------------------------------------------------ the loop

    def push(self, at: float, kind: str, node: str, payload: Any) -> None:
        self.seq += 1
        heapq.heappush(self.heap, (at, self.seq, kind, node, self.nodes[node].incarnation, payload))

    def run_until(self, t_end: float, stop: Callable[[], bool] | None = None) -> bool:
        while self.heap and self.heap[0][0] <= t_end:
            at, _, kind, name, inc, payload = heapq.heappop(self.heap)
            self.now = at
            node = self.nodes[name]
            if kind == "restart":
                self._restart(node)
            elif node.up and inc == node.incarnation:
                self._dispatch(kind, node, payload)
            else:
                continue
            self.steps += 1
            for check in self.checks:
                check(self)
            if stop is not None and stop():
                return True
        self.now = max(self.now, t_end)
        return stop() if stop is not None else True

    def _dispatch(self, kind: str, node: Node, payload: Any) -> None:
        self.digest.update(f"{self.now:.6f}{kind}{node.name}".encode())
        if kind == "deliver":
            src, msg = payload
            self._note(f"{node.name} <- {src.decode()}: {type(msg).__name__}")
            self.feed(node.name, fx.Received(src, msg))
        elif kind == "timer":
            key, gen = payload
            if self.timer_gen.get((node.name, key)) == gen:
                self.feed(node.name, fx.TimerFired(key))
        elif kind == "persist_done":
            self.feed(node.name, fx.PersistDone(payload))
        elif kind == "connect":
            self._connect(node)
        elif kind == "proc":
            self._proc_event(node, payload)
        elif kind == "probe":
            self._probe(node, payload)  # type: ignore[arg-type]
        elif kind == "chaos":
            self._chaos()
        elif kind == "heal":
            self.net.partitioned.discard(payload)
        elif kind == "reconcile":
            self._reconcile(node)  # type: ignore[arg-type]
        elif kind == "mtick":
            self._marathon_tick(node)  # type: ignore[arg-type]
        elif kind == "mop":
            self._marathon_op(node)  # type: ignore[arg-type]
        elif kind == "mbatch":
            self._marathon_batch_done(node)  # type: ignore[arg-type]
        elif kind == "mpump":
            self._marathon_pump(node)  # type: ignore[arg-type]
        else:
            raise AssertionError(kind)

    def _note(self, text: str) -> None:
        self.trace.append(f"t={self.now:.3f} {text}")

    def start(self) -> None:
        self._new_master()
        for a in self.agents.values():
            self._new_agent(a)
        for f in self.frameworks.values():
            self._new_framework(f)
        if self.marathon is not None:
            self._new_marathon(self.marathon)
        self.push(1.0, "chaos", WORLD, None)

    # ------------------------------------------------------------ cores and effects

    def feed(self, name: str, event: Any) -> None:
        node = self.nodes[name]
        core = node.core  # type: ignore[attr-defined]
        if isinstance(node, sm.MarathonNode):
            self._open_burst(node)
        self.perform(node, core.handle(event, self.now))
        if isinstance(node, sm.MarathonNode):
            self._drain(node)

    def perform(self, node: Node, effects: list[Any]) -> None:
        performers = self._performers
        for e in effects:
            performers[type(e)](node, e)  # an effect no runtime performs raises

    def _performer_table(self) -> Performers:
        """What the runtimes do with each effect, in simulated time (node, effect)."""
        def send(node: Node, e: fx.Send) -> None:
            held = getattr(node, "held", None)
            if held is not None:
                held.append(e)  # Marathon's, until its burst's batch_done
            else:
                self._send(node, e)

        def set_timer(node: Node, e: fx.SetTimer) -> None:
            gen = self.timer_gen.get((node.name, e.key), 0) + 1
            self.timer_gen[(node.name, e.key)] = gen
            self.push(max(e.at, self.now), "timer", node.name, (e.key, gen))

        def cancel_timer(node: Node, e: fx.CancelTimer) -> None:
            self.timer_gen[(node.name, e.key)] = self.timer_gen.get((node.name, e.key), 0) + 1

        def persist(node: Node, e: fx.Persist) -> None:
            e.op.apply(self.master.registry)
            self.push(self.now + 0.002, "persist_done", node.name, e.op)

        def note(node: Node, e: fx.Log) -> None:
            if e.level in ("warning", "error"):
                self._note(f"{node.name} {e.level}: {e.text[:160]}")

        def kill(node: AgentNode, e: agent_events.KillProcess) -> None:
            if e.task_id in node.procs:
                self.push(self.now + 0.01, "proc", node.name, ("exit", e.task_id, None, 15))

        def abort(node: FrameworkNode, e: sdk.Abort) -> None:
            self._note(f"{node.name} aborted: {e.reason}")
            node.up = False

        return Performers({
            fx.Send: send, fx.SetTimer: set_timer, fx.CancelTimer: cancel_timer,
            fx.Persist: persist, fx.Log: note,
            rec.Checkpoint: lambda node, e: self._checkpoint(node, e.record),
            agent_events.LaunchTask: self._launch, agent_events.KillProcess: kill,
            agent_events.StartHealthCheck: self._health_effect,
            agent_events.StopHealthCheck: self._health_effect,
            fx.Redetect: lambda node, e: self.push(self.now + 0.1, "connect", node.name, None),
            sdk.Callback: self._callback, sdk.Abort: abort})

    def _send(self, node: Node, e: fx.Send) -> None:
        if node is self.master:
            name, _, inc = e.to.decode().partition("#")  # type: ignore[union-attr]
            dst = self.nodes.get(name)
            if dst is None or str(dst.incarnation) != inc:
                return  # that connection is gone
            target, src = name, self.master.identity
        else:
            target, src = MASTER, node.identity
            if isinstance(e.msg, m.Acknowledge):
                node.acked.add(e.msg.uuid)  # type: ignore[attr-defined]
                if isinstance(node, sm.MarathonNode):
                    node.on_ack(e.msg.uuid)
        for at in self.net.deliveries(node.name, target, self.now):
            self.push(at, "deliver", target, (src, e.msg))

    def _connect(self, node: Node) -> None:
        if not self.master.up:
            self.push(self.now + 0.5, "connect", node.name, None)  # detection retries
            return
        master_id = self.master.core.config.master_id  # type: ignore[union-attr]
        self.feed(node.name, fx.MasterConnected({"id": master_id}))

    def _launch(self, node: AgentNode, e: agent_events.LaunchTask) -> None:
        cmd = e.task.command.value if e.task.command else ""
        match = re.fullmatch(r"sleep ([0-9.]+)", cmd)
        check = e.task.health_check
        fails = (check is not None and self.faults
                 and self.health_rng.random() < self.o.unhealthy)
        node.procs[e.task.task_id] = Proc(
            e.framework_id, e.task.resources, float(match.group(1)) if match else 1.0,
            check=check, fails_at=self.now + self.health_rng.uniform(0.0, 40.0) if fails else None)
        self.push(self.now + 0.01, "proc", node.name, ("launched", e.task.task_id, None, None))

    def _proc_event(self, node: Node, payload: tuple) -> None:
        what, task_id, code, sig = payload
        proc = node.procs.get(task_id)  # type: ignore[attr-defined]
        if proc is None:
            return
        if what == "launched":
            proc.pid, proc.ends_at = 1000 + self.steps, self.now + proc.duration
            proc.checks_since = self.now
            self.feed(node.name, agent_events.TaskLaunched(task_id, proc.pid))
            self.push(proc.ends_at, "proc", node.name, ("exit", task_id, 0, None))
        else:
            del node.procs[task_id]  # type: ignore[attr-defined]
            self.feed(node.name, agent_events.TaskExited(task_id, code, sig))

    def _callback(self, node: FrameworkNode, e: sdk.Callback) -> None:
        if isinstance(node, sm.MarathonNode):
            node.callback(e.name, e.args)
            return
        assert node.core is not None and node.policy is not None
        if e.name == "resource_offers":
            self.perform(node, node.policy.on_offers(node.core, e.args[0], self.now))
        elif e.name == "status_update":
            status: m.TaskStatus = e.args[0]
            if status.uuid is not None:
                node.seen.setdefault(status.task_id, []).append((status.uuid, status.state))
            node.policy.on_update(status)
        elif e.name in ("registered", "reregistered") and node.policy.running:
            tasks = [m.ReconcileTask(task_id=t) for t in sorted(node.policy.running)]
            self.perform(node, node.core.reconcile(tasks))

    # ------------------------------------------------------------ faults

    def _chaos(self) -> None:
        """Once per virtual second while faults are on: maybe crash or cut off a node."""
        if not self.faults:
            return
        r, o = self.rng, self.o
        if self.master.up and r.random() < o.master_crashes_per_min / 60:
            self._crash(self.master, r.uniform(0.5, 5.0))
        for a in self.agents.values():
            if a.up and r.random() < o.agent_crashes_per_min / 60 / len(self.agents):
                self._crash(a, r.uniform(0.5, 8.0))
        if r.random() < o.partitions_per_min / 60:
            victim = r.choice(sorted(set(self.nodes) - {WORLD}))
            self.net.partitioned.add(victim)
            self._note(f"partition {victim}")
            self.push(self.now + r.uniform(0.5, 10.0), "heal", WORLD, victim)
        mara = self.marathon
        if mara is not None:
            if mara.up and r.random() < o.marathon_crashes_per_min / 60:
                self._crash(mara, r.uniform(0.5, 5.0))
            if r.random() < o.task_failures_per_min / 60:
                self._fail_a_task(mara.state.framework_id if mara.state else None)
        self.push(self.now + 1.0, "chaos", WORLD, None)

    def _fail_a_task(self, framework_id: str | None) -> None:
        """A Marathon task's process exits with status 1 (the app crashed)."""
        procs = sorted((a.name, t) for a in self.agents.values() if a.up
                       for t, p in a.procs.items() if p.framework_id == framework_id)
        if framework_id is not None and procs:
            agent, task = self.rng.choice(procs)
            self._note(f"task {task} on {agent} crashes")
            self.push(self.now + 0.001, "proc", agent, ("exit", task, 1, None))

    def _crash(self, node: Node, downtime: float) -> None:
        self._note(f"crash {node.name} for {downtime:.1f}s")
        node.up = False
        node.incarnation += 1
        if isinstance(node, AgentNode) and not self.o.agent_checkpoint:
            node.procs.clear()  # without a checkpoint its processes die with it
        elif isinstance(node, sm.MarathonNode):
            node.marathon = node.core = None  # all but what its store committed
            node.queue.clear()
            node.held = None
            node.store.drop_pending()
        self.seq += 1
        heapq.heappush(self.heap, (self.now + downtime, self.seq, "restart", node.name,
                                   node.incarnation, None))

    def _restart(self, node: Node) -> None:
        if node.up:
            return
        node.up = True
        self._note(f"restart {node.name}")
        if node is self.master:
            self._new_master()
        elif isinstance(node, AgentNode):
            self._new_agent(node)
        elif isinstance(node, sm.MarathonNode):
            self._new_marathon(node)

    def heal(self) -> None:
        """End of the safety phase: no more faults; everything down comes back."""
        self.faults = False
        self.net.heal()
        for node in self.nodes.values():
            if not node.up and isinstance(node, (MasterNode, AgentNode, sm.MarathonNode)):
                node.incarnation += 1
                self.push(self.now + 0.01, "restart", node.name, None)
