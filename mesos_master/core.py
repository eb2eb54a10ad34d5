"""The master as a pure state machine: `handle(event, now) -> list[effect]`.

Events are `Start`, `Received(peer, msg)`, `TimerFired(key)` and `PersistDone(op, ok)`; effects
are `Send`, `SetTimer`, `CancelTimer`, `Persist` and `Log` (mesos_common.effects). The handlers
live in mixins by subject (core_agents, core_frameworks, core_tasks); this module only routes:
one singledispatch on the event type, one on the message type. A peer's mistake is answered with
ProtocolError and changes nothing; an exception out of here is a bug of ours.
"""
from __future__ import annotations

import functools
import random
from typing import Any

from mesos_common import codec
from mesos_common import effects as fx
from mesos_common import messages as m
from mesos_common.ids import IdGen
from mesos_master.allocator.base import Allocator
from mesos_master.core_agents import AgentHandlers
from mesos_master.core_base import MESSAGE_METRICS, MasterConfig
from mesos_master.core_frameworks import FrameworkHandlers
from mesos_master.core_operator import (OperatorHandlers, UpdateQuotaRequest,
                                        UpdateWeightsRequest)
from mesos_master.core_tasks import TaskHandlers
from mesos_master.registry.base import (AdmitAgent, MarkReachable, MarkUnreachable,
                                        RegistryState, RemoveAgent, UpdateQuota, UpdateWeights)
from mesos_master.state import check_invariants

__all__ = ["Master", "MasterConfig"]

_FROM_AGENTS = frozenset(m.AGENT_TO_MASTER)
_FROM_FRAMEWORKS = frozenset(m.FRAMEWORK_TO_MASTER)

HEARTBEAT_TIMER = ("heartbeat",)
ALLOCATE_TIMER = ("allocate",)
PERIODIC_ALLOCATE_TIMER = ("allocate_periodic",)
REREGISTER_TIMER = ("agent_reregister_timeout",)


class Master(AgentHandlers, FrameworkHandlers, TaskHandlers, OperatorHandlers):
    """See the module docstring. State is exclusively mutated through `handle`."""

    def __init__(self, config: MasterConfig, allocator: Allocator, registry: RegistryState,
                 ids: IdGen, rng: random.Random) -> None:
        super().__init__(config, allocator, registry, ids, rng)
        self._apply_registry_policies()

    def handle(self, event: Any, now: float) -> list[Any]:
        self.now = now
        self._fx = []
        if self.start_time is None:
            self._start()
        if not isinstance(event, fx.Start):
            self._event(event)
        out, self._fx = self._fx, []
        return out

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

    @functools.singledispatchmethod
    def _event(self, event: Any) -> None:
        raise AssertionError(f"master core got an unknown event {event!r}")

    @_event.register
    def _(self, event: fx.Received) -> None:
        msg, peer = event.msg, event.peer
        kind = type(msg)
        if isinstance(msg, codec.DecodeError):  # normally answered by the runtime already
            self.counters["dropped_messages"] += 1
            return self._send(peer, m.ProtocolError(msg.message, in_reply_to=msg.type))
        if isinstance(msg, m.ProtocolError):  # never answer an error with an error (no loops)
            self._log("warning", f"peer {peer!r} reports a protocol error: {msg.message} "
                                 f"(in reply to {msg.in_reply_to})")
            return None
        if kind not in _FROM_AGENTS and kind not in _FROM_FRAMEWORKS:
            return self._protocol_error(peer, msg, f"{kind.__name__} is not a message a "
                                                   "master accepts")
        if kind in MESSAGE_METRICS:  # Subscribe is counted as (re)register_framework
            self.counters[f"messages_{MESSAGE_METRICS[kind]}"] += 1
        self._message(msg, peer)

    @_event.register
    def _(self, event: fx.TimerFired) -> None:
        key = event.key
        if key == HEARTBEAT_TIMER:
            self._heartbeat_tick()
        elif key == PERIODIC_ALLOCATE_TIMER:
            self._timer(PERIODIC_ALLOCATE_TIMER, self.now + self.config.periodic_allocation)
            self._alloc_all = True
            self._allocate()
        elif key == ALLOCATE_TIMER:
            self._alloc_pending = False
            self._allocate()
        elif key == REREGISTER_TIMER:
            self._reregister_timeout()
        elif isinstance(key, tuple) and len(key) == 2 and key[0] == "offer_timeout":
            self._offer_expired(key[1])
        elif isinstance(key, tuple) and len(key) == 2 and key[0] == "framework_failover":
            self._failover_expired(key[1])
        else:
            self._log("warning", f"unknown timer {key!r} ignored")

    @_event.register
    def _(self, event: fx.PersistDone) -> None:
        op = event.op
        if event.ok:
            op.apply(self.registry)
        if isinstance(op, (AdmitAgent, MarkReachable)):
            self._agent_persisted(op, event.ok)
        elif isinstance(op, (MarkUnreachable, RemoveAgent)):
            self._removal_persisted(op, event.ok)
        elif isinstance(op, (UpdateWeights, UpdateQuota)):
            self._policy_persisted(op, event.ok)
        else:
            raise AssertionError(f"unknown registry operation {op!r}")

    @_event.register
    def _(self, event: UpdateWeightsRequest) -> None:
        self._on_update_weights(event)

    @_event.register
    def _(self, event: UpdateQuotaRequest) -> None:
        self._on_update_quota(event)

    def _heartbeat_tick(self) -> None:
        """One periodic timer: heartbeats out, then who has been silent too long."""
        self._timer(HEARTBEAT_TIMER, self.now + self.config.heartbeat_interval)
        for agent in sorted(self.agents.values(), key=lambda a: a.id):
            self._send(agent.peer, m.Heartbeat())
        for fw in sorted(self.frameworks.values(), key=lambda f: f.id):
            if fw.connected:
                self._send(fw.peer, m.Heartbeat())
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

    @functools.singledispatchmethod
    def _message(self, msg: Any, peer: bytes) -> None:
        raise AssertionError(f"no handler for accepted message {type(msg).__name__}")

    @_message.register
    def _(self, msg: m.Heartbeat, peer: bytes) -> None:
        ref = self.peers.get(peer)
        if ref is not None and ref[0] == "agent":
            self._on_agent_heartbeat(self.agents[ref[1]])
        elif ref is not None and ref[0] == "framework" and self.frameworks[ref[1]].connected:
            self.frameworks[ref[1]].last_seen = self.now
        else:
            self._protocol_error(peer, msg, "unknown peer: (re-)register or (re-)subscribe")

    _message.register(m.RegisterAgent, AgentHandlers._on_register_agent)
    _message.register(m.ReregisterAgent, AgentHandlers._on_reregister_agent)
    _message.register(m.UnregisterAgent, AgentHandlers._on_unregister_agent)
    _message.register(m.StatusUpdate, TaskHandlers._on_status_update)
    _message.register(m.Subscribe, FrameworkHandlers._on_subscribe)
    _message.register(m.Accept, FrameworkHandlers._on_accept)
    _message.register(m.Decline, FrameworkHandlers._on_decline)
    _message.register(m.Teardown, FrameworkHandlers._on_teardown)
    _message.register(m.Acknowledge, TaskHandlers._on_acknowledge)
    _message.register(m.Kill, TaskHandlers._on_kill)
    _message.register(m.Reconcile, TaskHandlers._on_reconcile)
    _message.register(m.Revive, TaskHandlers._on_revive)
    _message.register(m.Suppress, TaskHandlers._on_suppress)


def _assert_all_handled() -> None:
    """Every message the master accepts has a handler (checked at import: our bug otherwise)."""
    registry = Master.__dict__["_message"].dispatcher.registry
    missing = [t.__name__ for t in (*_FROM_AGENTS, *_FROM_FRAMEWORKS) if t not in registry]
    assert not missing, f"no master handler for {missing}"


_assert_all_handled()
