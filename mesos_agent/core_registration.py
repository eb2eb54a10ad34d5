"""The agent's side of the master connection: registration, re-registration, heartbeats.

DISCONNECTED (finding a master) -> REGISTERING (connected, waiting for AgentRegistered /
AgentReregistered, retrying with backoff) -> RUNNING (heartbeating, updates flowing). A silent
master, or one answering our Heartbeat/StatusUpdate with a ProtocolError (it restarted and does
not know us), sends the agent back to DISCONNECTED through a Redetect effect. Mesos's
`Slave::registered`, `reregistered` and `ping` handling (src/slave/slave.cpp) is the reference.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

import attrs

from mesos_agent.core_base import AgentBase, Effects
from mesos_agent.events import MasterConnected, Redetect
from mesos_agent.records import DISCONNECTED, REGISTERING, RUNNING
from mesos_common.effects import CancelTimer, Log, Send, SetTimer
from mesos_common.messages import (
    AgentRegistered,
    AgentReregistered,
    Heartbeat,
    ProtocolError,
    RegisterAgent,
    ReregisterAgent,
    ShutdownAgent,
    TaskRecord,
)
from mesos_common.resources import EMPTY

REGISTER_TIMER = "register"
HEARTBEAT_TIMER = "heartbeat"
# A standby master answers everything with a ProtocolError starting with this.
NOT_LEADER = "not leader"
# A ProtocolError answering these means the master has no record of us.
_UNKNOWN_TO_MASTER = ("Heartbeat", "StatusUpdate")


class RegistrationRules(AgentBase):
    """Finding, joining and keeping the master."""

    def _master_connected(self, event: MasterConnected, now: float) -> Effects:
        self._expected_master = event.master_id
        effects = [CancelTimer(HEARTBEAT_TIMER), *self.updates.pause()]
        self.state = REGISTERING
        self._register_attempts = 0
        return effects + self._send_registration(now)

    def _on_heartbeat(self, msg: Heartbeat, now: float) -> Effects:
        return []

    def _on_protocol_error(self, msg: ProtocolError, now: float) -> Effects:
        text = f"master rejected our {msg.in_reply_to or 'message'}: {msg.message}"
        if msg.in_reply_to in _UNKNOWN_TO_MASTER and self.state == RUNNING:
            return self._lose_master(f"{text} (master does not know us)")
        if msg.message.startswith(NOT_LEADER) and self.state != DISCONNECTED:
            return self._lose_master(text)  # a standby: find the leader now, not after retries
        return [Log("warning", text)]

    def _on_registered(self, msg: AgentRegistered, now: float) -> Effects:
        if self._expected_master and msg.master_id != self._expected_master:
            return [Log("warning", f"ignoring AgentRegistered from master {msg.master_id}: "
                                   f"we are registering with {self._expected_master}")]
        if self.state != REGISTERING:
            return self._late_registration_reply(msg)
        effects: Effects = []
        if self.agent_id is not None and msg.agent_id != self.agent_id:
            # We asked to re-register and were given a new identity: the master did not take
            # our tasks back (Mesos exits here). Start afresh under the new id.
            effects += self._reset(f"master registered us as {msg.agent_id}, not {self.agent_id}")
        self.epoch = msg.epoch
        return effects + self._registered(msg.agent_id, msg.master_id, msg.heartbeat_interval,
                                          now, "registered")

    def _on_reregistered(self, msg: AgentReregistered, now: float) -> Effects:
        if self._expected_master and msg.master_id != self._expected_master:
            return [Log("warning", f"ignoring AgentReregistered from master {msg.master_id}: "
                                   f"we are registering with {self._expected_master}")]
        if self.state != REGISTERING:
            return self._late_registration_reply(msg)
        if msg.agent_id != self.agent_id:
            return [Log("error", f"re-registered as {msg.agent_id} but we are {self.agent_id}")]
        self.epoch = msg.epoch
        return self._registered(msg.agent_id, msg.master_id, msg.heartbeat_interval, now,
                                "re-registered")

    def _on_shutdown_agent(self, msg: ShutdownAgent, now: float) -> Effects:
        # A fresh registration refused (e.g. the machine is down for maintenance): back off
        # rather than ask again at once; a re-registration refused starts afresh now.
        refused_again = self.state == REGISTERING and self.agent_id is None
        effects = self._reset(f"master asked us to shut down: {msg.reason}")
        if self.state == DISCONNECTED:
            return effects  # MasterConnected will register us afresh
        self.state = REGISTERING
        self._register_attempts = 0
        effects += [CancelTimer(HEARTBEAT_TIMER), *self.updates.pause()]
        if refused_again:  # as for an unanswered registration: no busy loop
            backoff = self.config.registration_backoff
            self._register_interval = min(self._register_interval * 2, backoff.max)
            return effects + [SetTimer(REGISTER_TIMER, now + self._register_interval)]
        return effects + self._send_registration(now)

    def _send_registration(self, now: float) -> Effects:
        info = attrs.evolve(self.config.agent_info(), resources=self.total())
        if self.agent_id is None:
            msg: Any = RegisterAgent(info, version=self.config.version)
        else:
            msg = ReregisterAgent(self.agent_id, info, tasks=self._task_records(),
                                  frameworks=tuple(self._frameworks.values()),
                                  version=self.config.version, reserved=self.reserved)
        return [Send(None, msg), SetTimer(REGISTER_TIMER, now + self._register_interval)]

    def _task_records(self) -> tuple[TaskRecord, ...]:
        """Every task we hold, terminal-but-unacknowledged ones included."""
        return tuple(TaskRecord(e.framework_id, e.task, e.state, e.healthy)
                     for e in self._tasks.values())

    def _registration_timeout(self, now: float) -> Effects:
        if self.state != REGISTERING:
            return []
        self._register_attempts += 1
        backoff = self.config.registration_backoff
        self._register_interval = min(self._register_interval * 2, backoff.max)
        if self._register_attempts >= self.config.registration_attempts:
            return self._lose_master(
                f"no reply to {self._register_attempts} registration attempts")
        return self._send_registration(now)

    def _registered(self, agent_id: str, master_id: str, interval: float, now: float,
                    verb: str) -> Effects:
        self._id_dirty = self._id_dirty or agent_id != self.agent_id
        self.agent_id, self.master_id, self.state = agent_id, master_id, RUNNING
        self.heartbeat_interval = (interval if interval > 0
                                   else self.config.default_heartbeat_interval)
        self._last_heard = now
        self._register_interval = self.config.registration_backoff.initial
        return [CancelTimer(REGISTER_TIMER),
                SetTimer(HEARTBEAT_TIMER, now + self.heartbeat_interval),
                Log("info", f"{verb} with master {master_id} as agent {agent_id}"),
                *self.updates.resend_all(now)]

    def _late_registration_reply(self, msg: AgentRegistered | AgentReregistered) -> Effects:
        if msg.agent_id == self.agent_id:
            self.epoch = max(self.epoch, msg.epoch)  # the master's latest admission counts
            return []  # a reply to a retried registration: already done
        return [Log("warning", f"ignoring {type(msg).__name__} for {msg.agent_id} in {self.state}")]

    def _heartbeat(self, now: float) -> Effects:
        if self.state != RUNNING or self.heartbeat_interval is None:
            return []
        silence = now - self._last_heard
        if silence >= self.config.max_missed_heartbeats * self.heartbeat_interval:
            return self._lose_master(f"master silent for {silence:.1f}s")
        return [Send(None, Heartbeat()), SetTimer(HEARTBEAT_TIMER, now + self.heartbeat_interval)]

    def _lose_master(self, reason: str) -> Effects:
        self.state = DISCONNECTED
        return [CancelTimer(HEARTBEAT_TIMER), CancelTimer(REGISTER_TIMER), *self.updates.pause(),
                Log("warning", f"lost the master: {reason}; re-detecting"), Redetect(reason)]

    def _reset(self, reason: str) -> Effects:
        """Kill every task and forget all state but the connection: a fresh agent."""
        effects: Effects = [Log("warning", f"{reason}; killing all tasks and starting afresh")]
        for entry in list(self._tasks.values()):
            effects += self._drain(entry)
        for task_id in self.updates.task_ids():
            effects += self.updates.remove(task_id)
        effects += self._shutdown_executors(None)
        self._frameworks = {fid: fw for fid, fw in self._frameworks.items()
                            if self._has_executors(fid)}
        self._held.clear()
        self.agent_id = self.master_id = None
        self.reserved = EMPTY  # a fresh agent: the master forgot our reservations too
        return effects



EVENTS: dict[type, Callable[[RegistrationRules, Any, float], Effects]] = {
    MasterConnected: RegistrationRules._master_connected,
}
MESSAGES: dict[type, Callable[[RegistrationRules, Any, float], Effects]] = {
    Heartbeat: RegistrationRules._on_heartbeat,
    ProtocolError: RegistrationRules._on_protocol_error,
    AgentRegistered: RegistrationRules._on_registered,
    AgentReregistered: RegistrationRules._on_reregistered,
    ShutdownAgent: RegistrationRules._on_shutdown_agent,
}
