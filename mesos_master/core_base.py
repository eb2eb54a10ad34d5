"""Master configuration, state and the helpers every handler shares.

Handlers append effects to `self._fx` through these helpers; `Master.handle` (core.py) resets it
per event and returns it, so a handler reads like the protocol it implements. Nothing here
touches a socket, a clock or the disk: time is `self.now`, ids come from the injected IdGen.
"""
from __future__ import annotations

import random
from collections import Counter, deque
from collections.abc import Callable, Hashable, Iterable, Iterator
from typing import Any, TypeVar

from attrs import define, frozen

from mesos_common import effects as fx
from mesos_common import messages as m
from mesos_common import task_states as ts
from mesos_common.auth.rate_limits import RateLimiter
from mesos_common.ids import IdGen
from mesos_common.resources import Resources
from mesos_master.allocator.base import Allocator
from mesos_master.auth_config import MasterAuth
from mesos_master.registry.base import RegistryOperation, RegistryState
from mesos_master.state import Agent, Framework, Offer, Task

SOURCE_MASTER = "SOURCE_MASTER"
MAX_UNREACHABLE_TASKS = 1000
RESOURCES_POOL_SIZE = 10_000
DONE = object()  # `next(steps, DONE)`: a handler in pieces (handle_in_pieces) has finished

_H = TypeVar("_H", bound="MasterBase")
#: The handler tables beside each group of handlers, by the type of what is handled: an event
#: (`handler(master, event)`) or a peer's message (`handler(master, message, peer)`).
EventTable = dict[type, Callable[[_H, Any], None]]
MessageTable = dict[type, Callable[[_H, Any, bytes], None]]


@frozen
class MasterConfig:
    """Everything the core needs to know about its process; times in seconds."""

    master_id: str
    hostname: str = "localhost"
    ip: str = "127.0.0.1"
    port: int = 5050
    heartbeat_interval: float = 15.0
    agent_ping_timeout: float = 15.0
    max_agent_ping_timeouts: int = 5
    framework_heartbeat_timeouts: int = 3  # silent this many intervals -> disconnected
    allocation_interval: float = 0.1  # batching window after changes (Mesos' is 1s)
    offer_timeout: float | None = None
    agent_reregister_timeout: float = 600.0  # Mesos --agent_reregister_timeout (10mins)
    default_refuse_seconds: float = 5.0
    max_completed_tasks_per_framework: int = 1000
    max_completed_frameworks: int = 50
    status_retry_forward_interval: float = 10.0  # a retried update is forwarded this rarely
    version: str = "1.11.0"
    auth: MasterAuth = MasterAuth()
    drain_notice: float = 60.0  # a drained agent's tasks are killed this long after the
    # inverse offer, unless their framework accepts it (or has moved them) sooner

    @property
    def agent_timeout(self) -> float:
        return self.agent_ping_timeout * self.max_agent_ping_timeouts

    @property
    def periodic_allocation(self) -> float:
        """Full cycles (expired filters, anything missed) need not run every batching window:
        at 10,000 agents a cycle is ~0.1 s of CPU."""
        return max(self.allocation_interval, 1.0)

    @property
    def framework_timeout(self) -> float:
        return self.heartbeat_interval * self.framework_heartbeat_timeouts


@define(eq=False)
class PendingAgent:
    """An agent whose admission waits for a registry write (AdmitAgent / MarkReachable)."""

    agent_id: str
    peer: bytes
    info: m.AgentInfo
    version: str
    op: RegistryOperation
    reregister: m.ReregisterAgent | None = None  # None: a fresh RegisterAgent


# Message type -> Mesos metric suffix for master/messages_<name>.
MESSAGE_METRICS: dict[type, str] = {
    m.RegisterAgent: "register_slave", m.ReregisterAgent: "reregister_slave",
    m.UnregisterAgent: "unregister_slave", m.StatusUpdate: "status_update",
    m.Heartbeat: "heartbeat", m.Accept: "launch_tasks",
    m.Decline: "decline_offers", m.Kill: "kill_task",
    m.Acknowledge: "status_update_acknowledgement", m.Reconcile: "reconcile_tasks",
    m.Revive: "revive_offers", m.Suppress: "suppress_offers",
    m.Teardown: "unregister_framework",
}


class MasterBase:
    """State and shared helpers; see core.Master for the event handlers' entry point."""

    def __init__(self, config: MasterConfig, allocator: Allocator, registry: RegistryState,
                 ids: IdGen, rng: random.Random) -> None:
        self.config = config
        self.allocator = allocator
        self.registry = registry.copy()  # mirror of the durable registry, updated on PersistDone
        self.ids = ids
        self.rng = rng
        self.agents: dict[str, Agent] = {}
        self.frameworks: dict[str, Framework] = {}
        self.completed_frameworks: deque[Framework] = deque(maxlen=config.max_completed_frameworks)
        self.offers: dict[str, Offer] = {}
        # inverse offers sent (id -> agent, framework) and the answers (agent -> framework
        # -> ("ACCEPT" | "DECLINE", time)); see core_drain / core_maintenance
        self.inverse_offers: dict[str, tuple[str, str]] = {}
        self.inverse_answers: dict[str, dict[str, tuple[str, float]]] = {}
        # maintenance inverse offers sent: (agent, framework) -> the framework's connection
        self.maintenance_asked: dict[tuple[str, str], bytes | None] = {}
        self.peers: dict[bytes, tuple[str, str]] = {}  # peer -> ("agent"|"framework", id)
        self.pending_agents: dict[str, PendingAgent] = {}
        self.recovering: set[str] = set(self.registry.admitted)  # admitted, not yet re-registered
        self.counters: Counter[str] = Counter()
        self.start_time: float | None = None
        self.now = 0.0
        self._fx: list[Any] = []
        # Master.handle_in_pieces: set while it runs; `_rest` the ACCEPT it goes on with.
        self._pieces = False
        self._rest: Iterator[None] | None = None
        self._alloc_pending = False
        self._alloc_all = False
        self._alloc_agents: set[str] = set()
        self._resources_pool: dict[Resources, Resources] = {}
        # connection -> proven principal, None if its latest Authenticate failed (core_auth)
        self.authenticated: dict[bytes, str | None] = {}
        self._refusals_logged: set[bytes] = set()
        limits = config.auth.rate_limits
        self.rate_limiter = RateLimiter(limits) if limits is not None else None

    def _shared_resources(self, res: Resources) -> Resources:
        """One shared object per distinct Resources value: 100k tasks of the same shape hold
        one copy, not 100k (the pool is bounded; clearing it only ends the sharing)."""
        got = self._resources_pool.get(res)
        if got is None:
            if len(self._resources_pool) >= RESOURCES_POOL_SIZE:
                self._resources_pool.clear()
            got = self._resources_pool[res] = res
        return got

    # ---------------------------------------------------------------- effects

    def _send(self, to: bytes | None, msg: Any) -> None:
        if to is not None:
            self._fx.append(fx.Send(to, msg))

    def _log(self, level: str, text: str) -> None:
        self._fx.append(fx.Log(level, text))

    def _timer(self, key: Hashable, at: float) -> None:
        self._fx.append(fx.SetTimer(key, at))

    def _cancel(self, key: Hashable) -> None:
        self._fx.append(fx.CancelTimer(key))

    def _persist(self, op: RegistryOperation) -> None:
        self._fx.append(fx.Persist(op))

    def _protocol_error(self, peer: bytes, msg: Any, why: str) -> None:
        """A peer's mistake: tell it and carry on (never an exception)."""
        name = type(msg).__name__
        self.counters["dropped_messages"] += 1
        self._send(peer, m.ProtocolError(why, in_reply_to=name))
        self._log("debug", f"protocol error for {peer!r} ({name}): {why}")

    # ---------------------------------------------------------------- peers

    def _agent_for(self, peer: bytes, msg: Any) -> Agent | None:
        """The registered agent behind `peer`, or None after replying ProtocolError."""
        ref = self.peers.get(peer)
        agent = self.agents.get(ref[1]) if ref and ref[0] == "agent" else None
        if agent is None:
            self._protocol_error(peer, msg, "not a registered agent: register first")
        return agent

    def _framework_for(self, peer: bytes, msg: Any, framework_id: str) -> Framework | None:
        """The subscribed framework `framework_id` if `peer` is its connection."""
        ref = self.peers.get(peer)
        fw = self.frameworks.get(ref[1]) if ref and ref[0] == "framework" else None
        if fw is None or not fw.connected:
            self._protocol_error(peer, msg, "not a subscribed framework: subscribe first")
            return None
        if fw.id != framework_id:
            self._protocol_error(peer, msg, f"connection is subscribed as framework {fw.id}, "
                                            f"not {framework_id}")
            return None
        # Any message is a sign of life: a framework's heartbeat can wait behind tens of
        # thousands of its own acknowledgements in the master's queue for that connection.
        fw.last_seen = self.now
        return fw

    # ---------------------------------------------------------------- task updates

    def _master_update(self, fw: Framework, task_id: str, state: str, reason: str,
                       message: str, agent_id: str | None = None,
                       healthy: bool | None = None) -> None:
        """An update the master makes up: no uuid (nothing to acknowledge), SOURCE_MASTER,
        state translated for frameworks that are not partition aware."""
        status = m.TaskStatus(task_id=task_id, state=ts.for_framework(state, fw.partition_aware),
                              agent_id=agent_id, message=message, reason=reason,
                              source=SOURCE_MASTER, timestamp=self.now, healthy=healthy)
        if fw.connected:
            self._send(fw.peer, m.Update(status, fw.id))

    def _count_state(self, state: str) -> None:
        if ts.is_terminal(state):
            self.counters[f"tasks_{state.removeprefix('TASK_').lower()}"] += 1

    def _set_state(self, task: Task, state: str, healthy: bool | None = None) -> None:
        """Record a state; on the first terminal one give the resources back."""
        if task.terminal:
            return  # terminal is final: late or duplicate updates change nothing here
        if task.state != state or state == ts.RUNNING:
            task.record(state, self.now, healthy)
        task.state = state
        self._count_state(state)
        if task.terminal:
            self._release(task)

    def _release(self, task: Task) -> None:
        if task.resources_recovered:
            return
        task.resources_recovered = True
        agent = self.agents.get(task.agent_id)
        if agent is not None:
            agent.used = agent.used - task.resources
            self.allocator.recover(task.framework_id, agent.id, task.resources, None, self.now)
            self._request_allocation([agent.id])
            if agent.drain is not None:
                self._check_drained(agent)

    def _check_drained(self, agent: Agent) -> None:
        """A task on a draining agent ended (core_drain)."""

    def _complete(self, fw: Framework, task: Task) -> None:
        """A terminal, acknowledged (or unreportable) task leaves the live books."""
        self._release(task)
        fw.tasks.pop(task.id, None)
        fw.unreachable_tasks.pop(task.id, None)
        agent = self.agents.get(task.agent_id)
        if agent is not None:
            agent.tasks.pop((fw.id, task.id), None)
        if fw.completed_tasks.maxlen != self.config.max_completed_tasks_per_framework:
            fw.completed_tasks = deque(fw.completed_tasks,
                                       maxlen=self.config.max_completed_tasks_per_framework)
        fw.completed_tasks.append(task)

    def _make_unreachable(self, fw: Framework, task: Task) -> None:
        self._release(task)
        task.state = ts.UNREACHABLE
        task.record(ts.UNREACHABLE, self.now)
        fw.tasks.pop(task.id, None)
        fw.unreachable_tasks[task.id] = task
        while len(fw.unreachable_tasks) > MAX_UNREACHABLE_TASKS:
            fw.unreachable_tasks.pop(next(iter(fw.unreachable_tasks)))

    # ---------------------------------------------------------------- offers and allocation

    def _request_allocation(self, agent_ids: Iterable[str] | None = None) -> None:
        """Coalesce: one 'allocate' timer at a time covers every change until it fires."""
        if agent_ids is None:
            self._alloc_all = True
        else:
            self._alloc_agents.update(agent_ids)
        if not self._alloc_pending:
            self._alloc_pending = True
            self._timer(("allocate",), self.now + self.config.allocation_interval)

    def _drop_offer(self, offer: Offer) -> None:
        """Forget an offer (the caller decides whether the allocator gets it back)."""
        del self.offers[offer.id]
        agent = self.agents.get(offer.agent_id)
        if agent is not None:
            agent.offers.discard(offer.id)
            agent.offered = agent.offered - offer.resources
        fw = self.frameworks.get(offer.framework_id)
        if fw is not None:
            fw.offers.discard(offer.id)
        if self.config.offer_timeout is not None:
            self._cancel(("offer_timeout", offer.id))

    def _recover_offer(self, offer: Offer, refuse_seconds: float | None,
                       rescind: bool = False) -> None:
        self._drop_offer(offer)
        self.allocator.recover(offer.framework_id, offer.agent_id, offer.resources,
                               refuse_seconds, self.now)
        self._request_allocation([offer.agent_id])
        fw = self.frameworks.get(offer.framework_id)
        if rescind and fw is not None and fw.connected:
            self._send(fw.peer, m.Rescind(offer.id))

    def _framework_placeholder(self, framework_id: str, info: m.FrameworkInfo | None) -> Framework:
        """A framework learned from an agent after a master failover; it must re-subscribe."""
        fw = self.frameworks.get(framework_id)
        if fw is None:
            info = info or m.FrameworkInfo(name="", id=framework_id)
            fw = Framework(id=framework_id, info=info, peer=None, registered_time=self.now,
                           last_seen=self.now, active=False, connected=False, recovered=True)
            fw.completed_tasks = deque(maxlen=self.config.max_completed_tasks_per_framework)
            self.frameworks[framework_id] = fw
            self.allocator.add_framework(framework_id, fw.roles, {}, active=False)
            # Not back within its failover_timeout: torn down. The clock starts when we learn
            # of it, and it gets at least the recovery window agents get
            # (agent_reregister_timeout): it cannot know about the failover any sooner.
            fw.unregistered_time = self.now
            grace = max(info.failover_timeout, self.config.agent_reregister_timeout)
            self._timer(("framework_failover", framework_id), self.now + grace)
        return fw

    def _is_completed_framework(self, framework_id: str) -> bool:
        return any(f.id == framework_id for f in self.completed_frameworks)


def sum_resources(items: Iterable[Resources]) -> Resources:
    out = Resources()
    for r in items:
        out = out + r
    return out
