"""The master as a pure state machine: `handle(event, now) -> list[effect]`.

Events are `Start`, `Received(peer, msg)`, `TimerFired(key)` and `PersistDone(op, ok)`; effects
are `Send`, `SetTimer`, `CancelTimer`, `Persist` and `Log` (mesos_common.effects). The handlers
live in mixins by subject (core_agents, core_frameworks, core_tasks, core_auth, core_operator),
each exporting the table of what it handles beside its handlers; this module composes them and
routes: one plain-dict lookup on the event type, one on the message type. A peer's mistake is
answered with ProtocolError and changes nothing; an exception out of here is a bug of ours.
"""
from __future__ import annotations

import random
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

from mesos_common import effects as fx
from mesos_common import messages as m
from mesos_common.decode_error import DecodeError
from mesos_common.ids import IdGen
from mesos_master import (
    core_agents,
    core_auth,
    core_drain,
    core_executors,
    core_frameworks,
    core_maintenance,
    core_operator,
    core_reservations,
    core_tasks,
)
from mesos_master.allocator.base import Allocator
from mesos_master.core_agents import AgentHandlers
from mesos_master.core_auth import AuthHandlers
from mesos_master.core_base import DONE, MESSAGE_METRICS, MasterConfig
from mesos_master.core_executors import ExecutorHandlers
from mesos_master.core_frameworks import FrameworkHandlers
from mesos_master.core_maintenance import MaintenanceHandlers
from mesos_master.core_operator import OperatorHandlers
from mesos_master.core_reservations import ReservationHandlers
from mesos_master.core_tasks import TaskHandlers
from mesos_master.registry.base import (
    AdmitAgent,
    MarkGone,
    MarkReachable,
    MarkUnreachable,
    RegistryState,
    RemoveAgent,
    StartMaintenance,
    StopMaintenance,
    UpdateAgentDrain,
    UpdateQuota,
    UpdateReservations,
    UpdateSchedule,
    UpdateWeights,
)
from mesos_master.state import check_invariants

__all__ = ["EVENTS", "MESSAGES", "Master", "MasterConfig"]

MessageHandler = Callable[[Any, Any, bytes], None]  # (master, message, peer)

_FROM_AGENTS = frozenset(m.AGENT_TO_MASTER)
_FROM_FRAMEWORKS = frozenset(m.FRAMEWORK_TO_MASTER)
_RATE_LIMITED = _FROM_FRAMEWORKS - {m.Heartbeat, m.Authenticate}
_MESSAGE_COUNTERS = {kind: f"messages_{name}" for kind, name in MESSAGE_METRICS.items()}

HEARTBEAT_TIMER = ("heartbeat",)
ALLOCATE_TIMER = ("allocate",)
PERIODIC_ALLOCATE_TIMER = ("allocate_periodic",)
REREGISTER_TIMER = ("agent_reregister_timeout",)


class Master(AgentHandlers, OperatorHandlers, FrameworkHandlers, TaskHandlers, MaintenanceHandlers,
             AuthHandlers, ExecutorHandlers, ReservationHandlers):
    """See the module docstring. State is exclusively mutated through `handle`."""

    def __init__(self, config: MasterConfig, allocator: Allocator, registry: RegistryState,
                 ids: IdGen, rng: random.Random,
                 messages: Mapping[type, MessageHandler] | None = None) -> None:
        """`messages`: the message table (default MESSAGES; a test plants a bug with its own)."""
        super().__init__(config, allocator, registry, ids, rng)
        self._messages = MESSAGES if messages is None else messages
        self._apply_registry_policies()

    def handle(self, event: Any, now: float) -> list[Any]:
        self.now = now
        self._fx = []
        if self.start_time is None:
            self._start()
        if not isinstance(event, fx.Start):
            handler = EVENTS.get(type(event))
            if handler is None:
                raise AssertionError(f"master core got an unknown event {event!r}")
            handler(self, event)
        out, self._fx = self._fx, []
        return out

    def handle_in_pieces(self, event: Any, now: float) -> Iterable[list[Any]]:
        """`handle`, with the effects of a big ACCEPT handed out while it is booked (one
        piece per ACCEPT_PIECE tasks), so that a runtime can send the first RunTasks while
        the rest are validated. The pieces together are what `handle` returns. Until they
        have all been taken the core is in the middle of the event: nothing else may be
        fed. Any other event is one piece, at the cost of `handle` (no generator)."""
        if type(event) is not fx.Received or type(event.msg) is not m.Accept:
            return (self.handle(event, now),)
        return self._accept_in_pieces(event, now)

    def _accept_in_pieces(self, event: fx.Received, now: float) -> Iterator[list[Any]]:
        self._pieces = True
        try:
            yield self.handle(event, now)  # up to the first pause, if any
            while self._rest is not None:
                if next(self._rest, DONE) is DONE:
                    self._rest = None
                out, self._fx = self._fx, []
                yield out
        finally:
            self._pieces = False
            rest, self._rest = self._rest, None
            for _ in rest or ():  # abandoned half way (a bug raised): keep the books whole
                pass
            self._fx = []

    def check_invariants(self) -> None:
        check_invariants(self.agents, self.frameworks, self.offers)

    def _start(self) -> None:
        """Arm the periodic timers; give recovered agents time to come back."""
        self.start_time = self.now
        self._timer(HEARTBEAT_TIMER, self.now + self.config.heartbeat_interval)
        self._timer(PERIODIC_ALLOCATE_TIMER, self.now + self.config.periodic_allocation)
        if self.recovering:
            self._timer(REREGISTER_TIMER, self.now + self.config.agent_reregister_timeout)
            self._log("info", f"recovered {len(self.recovering)} agent(s) from the registry; "
                              f"waiting {self.config.agent_reregister_timeout}s for them")

    # ---------------------------------------------------------------- events

    def _on_received(self, event: fx.Received) -> None:
        msg, peer = event.msg, event.peer
        kind = type(msg)
        if isinstance(msg, DecodeError):  # normally answered by the runtime already
            self.counters["dropped_messages"] += 1
            return self._send(peer, m.ProtocolError(msg.message, in_reply_to=msg.type))
        if isinstance(msg, m.ProtocolError):  # never answer an error with an error (no loops)
            self._log("warning", f"peer {peer!r} reports a protocol error: {msg.message} "
                                 f"(in reply to {msg.in_reply_to})")
            return None
        if kind not in _FROM_AGENTS and kind not in _FROM_FRAMEWORKS:
            return self._protocol_error(peer, msg, f"{kind.__name__} is not a message a "
                                                   "master accepts")
        if self.rate_limiter is not None and kind in _RATE_LIMITED and \
                self._rate_limited(peer, msg):
            return None
        counter = _MESSAGE_COUNTERS.get(kind)  # Subscribe: counted as (re)register_framework
        if counter is not None:
            self.counters[counter] += 1
        self._messages[kind](self, msg, peer)

    def _on_timer(self, event: fx.TimerFired) -> None:
        key = event.key
        if key == HEARTBEAT_TIMER:
            self._heartbeat_tick()
        elif key == PERIODIC_ALLOCATE_TIMER:
            self._timer(PERIODIC_ALLOCATE_TIMER, self.now + self.config.periodic_allocation)
            self._alloc_all = True
            self._allocate()
            self._ask_for_scheduled_agents(again=False)
        elif key == ALLOCATE_TIMER:
            self._alloc_pending = False
            self._allocate()
        elif key == REREGISTER_TIMER:
            self._reregister_timeout()
        elif isinstance(key, tuple) and len(key) == 2 and key[0] == "offer_timeout":
            self._offer_expired(key[1])
        elif isinstance(key, tuple) and len(key) == 2 and key[0] == "framework_failover":
            self._failover_expired(key[1])
        elif isinstance(key, tuple) and len(key) == 2 and key[0] == "drain_deadline":
            self._drain_deadline(key[1])
        else:
            self._log("warning", f"unknown timer {key!r} ignored")

    def _on_persist_done(self, event: fx.PersistDone) -> None:
        op = event.op
        if event.ok:
            op.apply(self.registry)
        if isinstance(op, (AdmitAgent, MarkReachable)):
            self._agent_persisted(op, event.ok)
        elif isinstance(op, (MarkUnreachable, RemoveAgent)):
            self._removal_persisted(op, event.ok)
        elif isinstance(op, (UpdateWeights, UpdateQuota)):
            self._policy_persisted(op, event.ok)
        elif isinstance(op, MarkGone):
            self._gone_persisted(op, event.ok)
        elif isinstance(op, UpdateReservations):
            self._reservations_persisted(op, event.ok)
        elif isinstance(op, UpdateAgentDrain):
            self._drain_persisted(op, event.ok)
        elif isinstance(op, (UpdateSchedule, StartMaintenance, StopMaintenance)):
            self._maintenance_persisted(op, event.ok)
        else:
            raise AssertionError(f"unknown registry operation {op!r}")

    def _heartbeat_tick(self) -> None:
        """One periodic timer: heartbeats out, then who has been silent too long."""
        self._timer(HEARTBEAT_TIMER, self.now + self.config.heartbeat_interval)
        beat = m.Heartbeat()  # one object for every peer (the codec caches its bytes)
        for _, agent in sorted(self.agents.items()):
            self._send(agent.peer, beat)
        for _, fw in sorted(self.frameworks.items()):
            if fw.connected:
                self._send(fw.peer, beat)
        self._check_agents()
        self._check_frameworks()
        self._resend_staging()

    def _reregister_timeout(self) -> None:
        """Agents from the registry that never came back are unreachable (Mesos semantics)."""
        for agent_id in sorted(self.recovering):
            if agent_id not in self.agents and agent_id not in self.pending_agents:
                self._persist(MarkUnreachable(agent_id, self.now))
        self.recovering.clear()

    # ---------------------------------------------------------------- messages

    def _on_heartbeat(self, msg: m.Heartbeat, peer: bytes) -> None:
        ref = self.peers.get(peer)
        if ref is not None and ref[0] == "agent":
            self._on_agent_heartbeat(self.agents[ref[1]])
        elif ref is not None and ref[0] == "framework" and self.frameworks[ref[1]].connected:
            self.frameworks[ref[1]].last_seen = self.now
        else:
            self._protocol_error(peer, msg, "unknown peer: (re-)register or (re-)subscribe")


#: Event -> handler: the master's own, and the operator's requests (core_operator).
EVENTS: dict[type, Callable[[Master, Any], None]] = {
    fx.Received: Master._on_received, fx.TimerFired: Master._on_timer,
    fx.PersistDone: Master._on_persist_done,
    **core_operator.EVENTS, **core_reservations.EVENTS, **core_drain.EVENTS,
    **core_maintenance.EVENTS, **core_auth.EVENTS,
}

#: Message -> handler, from the tables beside the handlers.
MESSAGES: dict[type, MessageHandler] = {
    m.Heartbeat: Master._on_heartbeat,
    **core_agents.MESSAGES, **core_frameworks.MESSAGES, **core_tasks.MESSAGES,
    **core_executors.MESSAGES, **core_auth.MESSAGES,
    **core_drain.MESSAGES,
}


def _assert_all_handled() -> None:
    """Every message the master accepts has a handler (checked at import: our bug otherwise)."""
    missing = [t.__name__ for t in (*_FROM_AGENTS, *_FROM_FRAMEWORKS)
               if t not in MESSAGES]
    assert not missing, f"no master handler for {missing}"


_assert_all_handled()
