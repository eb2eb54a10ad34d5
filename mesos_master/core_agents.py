"""Agent lifecycle: register, re-register (after either side restarted), liveness, removal.

Admission is durable before it is acknowledged: a new id is written to the registry
(AdmitAgent) and an unreachable agent marked reachable (MarkReachable) before the agent hears
back; removal (MarkUnreachable / RemoveAgent) is written before tasks are reported lost.
"""
from __future__ import annotations

from mesos_common import messages as m
from mesos_common import task_states as ts
from mesos_common.resources import EMPTY, Resources
from mesos_master.core_auth import AuthHandlers
from mesos_master.core_base import MessageTable, PendingAgent, sum_resources
from mesos_master.core_drain import DrainHandlers
from mesos_master.core_maintenance import on_machine
from mesos_master.core_reservations import ReservationHandlers
from mesos_master.registry.base import (
    AdmitAgent,
    MarkGone,
    MarkReachable,
    MarkUnreachable,
    RemoveAgent,
)
from mesos_master.state import Agent, Framework, Task

REASON_AGENT_REMOVED = "REASON_AGENT_REMOVED"
REASON_RECONCILIATION = "REASON_RECONCILIATION"
REASON_REMOVED_BY_OPERATOR = "REASON_AGENT_REMOVED_BY_OPERATOR"


class AgentHandlers(AuthHandlers, ReservationHandlers, DrainHandlers):

    # ---------------------------------------------------------------- registration

    def _on_register_agent(self, msg: m.RegisterAgent, peer: bytes) -> None:
        ref = self.peers.get(peer)
        if ref is not None and ref[0] == "framework":
            return self._protocol_error(peer, msg, "connection is a framework")
        if not self._agent_principal_ok(peer, msg) or self._machine_down(peer, msg.agent_info):
            return None
        if ref is not None:  # duplicate from a registered agent: same answer, same id
            self.agents[ref[1]].last_seen = self.now
            agent = self.agents[ref[1]]
            return self._send(peer, m.AgentRegistered(agent.id, self.config.master_id,
                                                      self.config.heartbeat_interval, agent.epoch))
        if any(p.peer == peer for p in self.pending_agents.values()):
            return  # the answer follows when the registry write is done
        agent_id = self.ids.next("S")
        op = AdmitAgent(agent_id, msg.agent_info.hostname)
        self.pending_agents[agent_id] = PendingAgent(agent_id, peer, msg.agent_info,
                                                     msg.version, op)
        self._persist(op)

    def _on_reregister_agent(self, msg: m.ReregisterAgent, peer: bytes) -> None:
        ref = self.peers.get(peer)
        if ref is not None and ref != ("agent", msg.agent_id):
            return self._protocol_error(peer, msg, f"connection is {ref[0]} {ref[1]}")
        if not self._agent_principal_ok(peer, msg) or self._machine_down(peer, msg.agent_info):
            return None
        pending = self.pending_agents.get(msg.agent_id)
        if pending is not None:  # already being re-admitted: answer when that is durable
            pending.peer, pending.info, pending.reregister = peer, msg.agent_info, msg
            return
        agent = self.agents.get(msg.agent_id)
        if agent is not None and agent.peer == peer and not agent.unreachable_pending:
            # A retried ReregisterAgent on the same connection: its report may predate tasks
            # launched since, so answer again and keep the books as they are.
            agent.last_seen = self.now
            return self._send(peer, m.AgentReregistered(agent.id, self.config.master_id,
                                                        self.config.heartbeat_interval,
                                                        agent.epoch))
        if agent is not None or msg.agent_id in self.registry.admitted:
            return self._admit_reregistered(msg, peer, was_unreachable=False)
        if msg.agent_id in self.registry.gone:
            self._log("warning", f"agent {msg.agent_id} at {peer!r} was marked gone: refused")
            return self._send(peer, m.ShutdownAgent(f"agent id {msg.agent_id} was marked gone "
                                                    "by an operator"))
        if msg.agent_id in self.registry.unreachable:
            op = MarkReachable(msg.agent_id, msg.agent_info.hostname)
            self.pending_agents[msg.agent_id] = PendingAgent(
                msg.agent_id, peer, msg.agent_info, msg.version, op, reregister=msg)
            return self._persist(op)
        self._log("warning", f"agent {msg.agent_id} at {peer!r} is unknown: shutting it down")
        self._send(peer, m.ShutdownAgent(f"agent id {msg.agent_id} is unknown to this master; "
                                         "register as a new agent"))

    def _machine_down(self, peer: bytes, info: m.AgentInfo) -> bool:
        """An agent on a machine down for maintenance is told to shut down (Mesos)."""
        if on_machine(info.hostname, self.registry.down) is None:
            return False
        self._log("warning", f"agent at {peer!r} ({info.hostname}) is on a machine down for "
                             "maintenance: refused")
        self._send(peer, m.ShutdownAgent("its machine is down for maintenance"))
        return True

    def _agent_persisted(self, op: AdmitAgent | MarkReachable, ok: bool) -> None:
        """PersistDone for AdmitAgent / MarkReachable: now the agent may be told."""
        pending = self.pending_agents.pop(op.agent_id, None)
        if pending is None or pending.op != op:
            return
        if not ok:
            self._log("error", f"registry write {op} failed; agent {op.agent_id} must retry")
            return
        if pending.reregister is not None:
            return self._admit_reregistered(pending.reregister, pending.peer,
                                            was_unreachable=isinstance(op, MarkReachable))
        agent = Agent(id=pending.agent_id, peer=pending.peer, info=pending.info,
                      version=pending.version, registered_time=self.now, last_seen=self.now,
                      epoch=self.now, principal=self.authenticated.get(pending.peer))
        self._bind_agent_peer(agent, pending.peer)
        self.agents[agent.id] = agent
        self.allocator.add_agent(agent.id, agent.total, {})
        self.counters["slave_registrations"] += 1
        self._send(agent.peer, m.AgentRegistered(agent.id, self.config.master_id,
                                                 self.config.heartbeat_interval, agent.epoch))
        self._log("info", f"registered agent {agent.id} ({agent.info.hostname}) "
                          f"with {agent.total!r}")
        self._request_allocation([agent.id])

    def _bind_agent_peer(self, agent: Agent, peer: bytes) -> None:
        if self.peers.get(agent.peer) == ("agent", agent.id):
            del self.peers[agent.peer]
        agent.peer = peer
        self.peers[peer] = ("agent", agent.id)

    def _admit_reregistered(self, msg: m.ReregisterAgent, peer: bytes,
                            was_unreachable: bool) -> None:
        """Take the agent back with its id and rebuild its tasks from what it reports."""
        agent = self.agents.get(msg.agent_id)
        restore = agent is None  # new to this master: deactivation and drain as registered
        keep_filters = False
        info, reserved = self._booked_info(msg)
        if agent is not None:  # still registered here: start its books afresh
            for oid in sorted(agent.offers):
                offer = self.offers[oid]
                self._drop_offer(offer)
                self._send_rescind(oid, offer.framework_id)
            # Mesos updateSlave: refuse filters stay unless the attributes changed (or what
            # it can run: a declined DOCKER app may fit now).
            keep_filters = (agent.info.attributes == msg.agent_info.attributes
                            and agent.info.containerizers == msg.agent_info.containerizers)
            agent.info, agent.version = info, msg.version
            agent.reregistered_time = self.now
        else:
            agent = Agent(id=msg.agent_id, peer=peer, info=info, version=msg.version,
                          registered_time=self.now, last_seen=self.now,
                          reregistered_time=self.now)
            self.agents[agent.id] = agent
        agent.reservations = reserved
        agent.last_seen = self.now
        agent.principal = self.authenticated.get(peer)
        agent.unreachable_pending = False
        agent.epoch = max(self.now, agent.epoch + 1e-6)  # RunTasks sent before now are stale
        self.recovering.discard(agent.id)
        self._bind_agent_peer(agent, peer)
        shutdown = self._rebuild_tasks(agent, msg, was_unreachable)
        used: dict[str, Resources] = {}
        agent.executors = {}
        for (fw_id, _), task in agent.tasks.items():
            if not task.resources_recovered:
                used[fw_id] = used.get(fw_id, EMPTY) + task.resources
                ex = task.info.executor
                if ex is not None and (fw_id, ex.executor_id) not in agent.executors:
                    agent.executors[(fw_id, ex.executor_id)] = ex
                    used[fw_id] = used[fw_id] + ex.resources
        agent.used = sum_resources(used.values())
        self.allocator.add_agent(agent.id, agent.total, used, keep_filters=keep_filters)
        self.counters["slave_reregistrations"] += 1
        self._send(peer, m.AgentReregistered(agent.id, self.config.master_id,
                                             self.config.heartbeat_interval, agent.epoch))
        if reserved.total != msg.reserved:  # the registry's reservations are the truth
            self._send(peer, m.CheckpointResources(reserved.total))
        for fw_id in sorted(shutdown):
            self._send(peer, m.ShutdownFramework(fw_id))
        self._log("info", f"re-registered agent {agent.id} ({agent.info.hostname}) "
                          f"with {len(agent.tasks)} task(s)")
        if restore:
            self._restore_drain(agent)
        self._request_allocation([agent.id])

    def _send_rescind(self, offer_id: str, fw_id: str | None = None) -> None:
        fw = self.frameworks.get(fw_id) if fw_id else None
        if fw is not None and fw.connected:
            self._send(fw.peer, m.Rescind(offer_id))

    def _rebuild_tasks(self, agent: Agent, msg: m.ReregisterAgent,
                       was_unreachable: bool) -> set[str]:
        """Merge the agent's report into the books; returns frameworks it must shut down."""
        infos = {f.id: f for f in msg.frameworks if f.id}
        shutdown: set[str] = set()
        reported: set[tuple[str, str]] = set()
        free = agent.total
        executors: set[tuple[str, str]] = set()  # (framework, executor) counted in `free`
        for record in msg.tasks:
            fw_id, task_id = record.framework_id, record.task.task_id
            if (fw_id, task_id) in reported:
                continue  # reported twice: the first report counts
            if self._is_completed_framework(fw_id):
                shutdown.add(fw_id)
                continue
            fw = self._framework_placeholder(fw_id, infos.get(fw_id))
            if was_unreachable and not fw.partition_aware:
                shutdown.add(fw_id)  # it was told TASK_LOST already (Mesos semantics)
                lost = fw.unreachable_tasks.get(task_id)
                if lost is not None:
                    self._set_state(lost, ts.LOST)
                    self._complete(fw, lost)
                continue
            known = fw.tasks.get(task_id)
            if known is not None and known.agent_id != agent.id:
                self._log("warning", f"agent {agent.id} reports task {task_id} of {fw_id} that "
                                     f"runs on {known.agent_id}; ignored")
                continue
            if not ts.is_terminal(record.state):
                need, ex = record.task.resources, record.task.executor
                if ex is not None and (fw_id, ex.executor_id) not in executors:
                    need = need + ex.resources  # an executor's own resources count once
                if not free.contains(need):
                    self._log("warning", f"agent {agent.id} reports task {task_id} of {fw_id} "
                                         "beyond its resources; killing it")
                    self._send(agent.peer, m.KillTask(fw_id, task_id))
                    continue
                free = free - need
                if ex is not None:
                    executors.add((fw_id, ex.executor_id))
            reported.add((fw_id, task_id))
            self._adopt_task(agent, fw, record, known)
        for key, task in list(agent.tasks.items()):
            if key not in reported:
                self._task_vanished(agent, task)
        # Tasks held unreachable on this agent that it does not bring back (their launch
        # never reached it, or they ended while it was away): gone, or a reconciliation
        # would answer TASK_UNREACHABLE for them forever.
        for fw in self.frameworks.values():
            for task in [t for t in fw.unreachable_tasks.values() if t.agent_id == agent.id
                         and (fw.id, t.id) not in reported]:
                self._task_vanished(agent, task)
        return shutdown

    def _adopt_task(self, agent: Agent, fw: Framework, record: m.TaskRecord,
                    known: Task | None) -> None:
        task = known or fw.unreachable_tasks.pop(record.task.task_id, None)
        if task is None or task.agent_id != agent.id:
            task = Task(framework_id=fw.id, agent_id=agent.id, info=record.task,
                        state=record.state, role=sorted(fw.roles)[0])
            task.record(record.state, self.now, record.healthy)
        else:
            if task.state != record.state:
                task.record(record.state, self.now, record.healthy)
            task.state = record.state
        task.resources_recovered = task.terminal  # the allocator is rebuilt from this report
        fw.tasks[task.id] = task
        agent.tasks[(fw.id, task.id)] = task

    def _task_vanished(self, agent: Agent, task: Task) -> None:
        """The master launched it, the re-registering agent does not know it: it is gone."""
        fw = self.frameworks[task.framework_id]
        if task.terminal:
            task.resources_recovered = True
            return self._complete(fw, task)
        state = ts.DROPPED if task.state == ts.STAGING else ts.GONE
        task.resources_recovered = True  # not handed to the rebuilt allocator entry
        self._set_state(task, state)
        self._master_update(fw, task.id, state, REASON_RECONCILIATION,
                            "task unknown to the agent when it re-registered", agent.id)
        self._complete(fw, task)

    # ---------------------------------------------------------------- liveness and removal

    def _on_agent_heartbeat(self, agent: Agent) -> None:
        agent.last_seen = self.now

    def _check_agents(self) -> None:
        for _, agent in sorted(self.agents.items()):
            if agent.unreachable_pending or self.now - agent.last_seen <= self.config.agent_timeout:
                continue
            agent.unreachable_pending = True
            self._log("warning", f"agent {agent.id} silent for {self.now - agent.last_seen:.1f}s:"
                                 " marking it unreachable")
            self._persist(MarkUnreachable(agent.id, self.now))

    def _on_unregister_agent(self, msg: m.UnregisterAgent, peer: bytes) -> None:
        agent = self._agent_for(peer, msg)
        if agent is None:
            return
        if agent.id != msg.agent_id:
            return self._protocol_error(peer, msg, f"connection is agent {agent.id}")
        self._persist(RemoveAgent(agent.id))

    def _gone_persisted(self, op: MarkGone, ok: bool) -> None:
        """The agent is shut down and its tasks are TASK_GONE_BY_OPERATOR (Mesos markGone)."""
        if not ok:
            return self._log("error", f"registry write {op} failed; agent not marked gone")
        self.recovering.discard(op.agent_id)
        agent = self.agents.get(op.agent_id)
        if agent is not None:
            self._send(agent.peer, m.ShutdownAgent("marked gone by an operator"))
            self.counters["slave_removals"] += 1
            return self._remove_agent(agent, unreachable=False, state=ts.GONE_BY_OPERATOR,
                                      reason=REASON_REMOVED_BY_OPERATOR)
        for fw in sorted(self.frameworks.values(), key=lambda f: f.id):
            for task in [t for t in fw.unreachable_tasks.values() if t.agent_id == op.agent_id]:
                task.state = ts.GONE_BY_OPERATOR
                task.record(ts.GONE_BY_OPERATOR, self.now)
                self._count_state(ts.GONE_BY_OPERATOR)
                self._master_update(fw, task.id, ts.GONE_BY_OPERATOR,
                                    REASON_REMOVED_BY_OPERATOR,
                                    f"agent {op.agent_id} was marked gone", op.agent_id)
                self._complete(fw, task)
        self._log("warning", f"agent {op.agent_id} marked gone")

    def _removal_persisted(self, op: MarkUnreachable | RemoveAgent, ok: bool) -> None:
        """PersistDone for MarkUnreachable / RemoveAgent."""
        agent = self.agents.get(op.agent_id)
        if not ok:
            if agent is not None:
                agent.unreachable_pending = False  # try again on the next check
            self._log("error", f"registry write {op} failed")
            return
        self.recovering.discard(op.agent_id)
        if agent is None:
            if isinstance(op, MarkUnreachable):  # never came back after a failover: its tasks
                for fw in sorted(self.frameworks.values(), key=lambda f: f.id):  # are unknown
                    if fw.connected:  # here, so frameworks learn by reconciling (Mesos does so)
                        self._send(fw.peer, m.AgentLost(op.agent_id))
            return
        if isinstance(op, MarkUnreachable):
            if not agent.unreachable_pending:  # it re-registered meanwhile: undo the write
                return self._persist(MarkReachable(agent.id, agent.info.hostname))
            self._remove_agent(agent, unreachable=True)
        else:
            self.counters["slave_removals"] += 1
            self._remove_agent(agent, unreachable=False)

    def _remove_agent(self, agent: Agent, unreachable: bool, state: str = ts.GONE,
                      reason: str = REASON_AGENT_REMOVED) -> None:
        for oid in sorted(agent.offers):
            offer = self.offers[oid]
            self._drop_offer(offer)
            self._send_rescind(oid, offer.framework_id)
        self.allocator.remove_agent(agent.id)
        for (fw_id, _), task in sorted(agent.tasks.items()):
            fw = self.frameworks[fw_id]
            task.resources_recovered = True  # the allocator dropped the whole agent
            if task.terminal:
                self._complete(fw, task)
            elif unreachable:
                self._make_unreachable(fw, task)
                self._master_update(fw, task.id, ts.UNREACHABLE, REASON_AGENT_REMOVED,
                                    f"agent {agent.id} is unreachable", agent.id)
            else:
                self._set_state(task, state)
                self._master_update(fw, task.id, state, reason,
                                    f"agent {agent.id} was removed", agent.id)
                self._complete(fw, task)
        agent.tasks.clear()
        agent.executors.clear()
        agent.used = EMPTY
        del self.agents[agent.id]
        if self.peers.get(agent.peer) == ("agent", agent.id):
            del self.peers[agent.peer]
        for fw in sorted(self.frameworks.values(), key=lambda f: f.id):
            if fw.connected:
                self._send(fw.peer, m.AgentLost(agent.id))
        what = "unreachable" if unreachable else "removed"
        self._log("warning", f"agent {agent.id} ({agent.info.hostname}) {what}")


#: The messages handled here (mesos_master/core.py composes the master's table).
MESSAGES: MessageTable[AgentHandlers] = {
    m.RegisterAgent: AgentHandlers._on_register_agent,
    m.ReregisterAgent: AgentHandlers._on_reregister_agent,
    m.UnregisterAgent: AgentHandlers._on_unregister_agent,
}
