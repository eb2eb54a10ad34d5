"""Task traffic after launch: status updates and their acknowledgements, kill, reconciliation.

The agent owns task state and retries every update until the framework acknowledges it, so the
master only records, forwards and frees resources; it drops what it cannot deliver.
"""
from __future__ import annotations

import attrs

from mesos_common import messages as m
from mesos_common import task_states as ts
from mesos_master.core_base import MasterBase, MessageTable
from mesos_master.state import Framework, Task

REASON_RECONCILIATION = "REASON_RECONCILIATION"


class TaskHandlers(MasterBase):

    def _on_status_update(self, msg: m.StatusUpdate, peer: bytes) -> None:
        agent = self._agent_for(peer, msg)
        if agent is None:
            return
        agent.last_seen = self.now
        status = msg.status
        if status.agent_id is None:
            status = attrs.evolve(status, agent_id=agent.id)
        elif status.agent_id != agent.id:
            self.counters["invalid_status_updates"] += 1
            return self._protocol_error(peer, msg, f"status is for agent {status.agent_id}, "
                                                   f"connection is agent {agent.id}")
        fw = self.frameworks.get(msg.framework_id)
        if fw is None:
            self.counters["invalid_status_updates"] += 1
            self.counters["dropped_messages"] += 1
            if self._is_completed_framework(msg.framework_id):
                self._send(peer, m.ShutdownFramework(msg.framework_id))
            self._log("warning", f"status update for unknown framework {msg.framework_id} "
                                 f"dropped (task {status.task_id})")
            return
        self.counters["valid_status_updates"] += 1
        task = fw.tasks.get(status.task_id)
        if task is not None and task.agent_id == agent.id:
            if self._recently_forwarded(fw, task, status):
                self.counters["status_update_retries_held"] += 1
                return
            self._apply_status(fw, task, status)
        else:
            self._log("info", f"status update {status.state} for task {status.task_id} of "
                              f"{fw.id} unknown on agent {agent.id}: forwarding")
        if fw.connected:
            self._send(fw.peer, m.Update(status, fw.id))
            if task is not None and task.agent_id == agent.id:
                task.forwarded_at = self.now
        else:
            self.counters["dropped_messages"] += 1  # the agent retries until acknowledged

    def _recently_forwarded(self, fw: Framework, task: Task, status: m.TaskStatus) -> bool:
        """A retry (same uuid) of an update this framework connection was sent less than
        `status_retry_forward_interval` ago. Agents retry every 10 s at first (Mesos's
        default; shorter where configured); when the framework is slow to acknowledge
        (thousands of tasks starting), forwarding every retry multiplied its work and the
        queues in front of it. The agent keeps retrying,
        so a copy lost on a broken connection still arrives, a little later."""
        return (status.uuid is not None and status.uuid == task.latest_uuid
                and fw.connected and task.forwarded_at is not None
                and self.now - task.forwarded_at < self.config.status_retry_forward_interval)

    def _apply_status(self, fw: Framework, task: Task, status: m.TaskStatus) -> None:
        if status.uuid is not None and status.uuid == task.latest_uuid:
            return  # a retry of the update already applied: no second history entry
        if task.state != status.state and not ts.can_transition(task.state, status.state):
            self._log("warning", f"task {task.id} of {fw.id}: illegal transition "
                                 f"{task.state} -> {status.state}; forwarding anyway")
        task.confirm(status.uuid, status.healthy, self._shared_resources(task.resources))
        self._set_state(task, status.state, status.healthy)
        if task.terminal and status.uuid is None:
            self._complete(fw, task)  # nothing will acknowledge it

    def _on_acknowledge(self, msg: m.Acknowledge, peer: bytes) -> None:
        fw = self._framework_for(peer, msg, msg.framework_id)
        if fw is None:
            return
        agent = self.agents.get(msg.agent_id)
        if agent is None:
            self.counters["invalid_status_update_acknowledgements"] += 1
            self._log("info", f"acknowledgement for task {msg.task_id} on unknown agent "
                              f"{msg.agent_id} dropped")
            return
        self.counters["valid_status_update_acknowledgements"] += 1
        task = fw.tasks.get(msg.task_id)
        if (task is not None and task.terminal and task.confirmed
                and task.latest_uuid == msg.uuid and task.agent_id == agent.id):
            self._complete(fw, task)
        self._send(agent.peer, m.StatusUpdateAck(fw.id, agent.id, msg.task_id, msg.uuid))

    def _on_kill(self, msg: m.Kill, peer: bytes) -> None:
        fw = self._framework_for(peer, msg, msg.framework_id)
        if fw is None:
            return
        task = fw.tasks.get(msg.task_id)
        agent = self.agents.get(task.agent_id) if task is not None else None
        if task is None or agent is None:
            # Mesos: killing an unknown task is an explicit reconciliation of that task.
            return self._reconcile_one(fw, m.ReconcileTask(msg.task_id, msg.agent_id))
        self._send(agent.peer, m.KillTask(fw.id, task.id, task.info.kill_grace_period))

    def _on_reconcile(self, msg: m.Reconcile, peer: bytes) -> None:
        fw = self._framework_for(peer, msg, msg.framework_id)
        if fw is None:
            return
        if not msg.tasks:  # implicit: everything the master knows for this framework
            for task in sorted([*fw.tasks.values(), *fw.unreachable_tasks.values()],
                               key=lambda t: t.id):
                self._reconcile_known(fw, task)
            return
        for item in msg.tasks:
            self._reconcile_one(fw, item)

    def _reconcile_known(self, fw: Framework, task: Task) -> None:
        healthy = task.healthy if task.confirmed else None
        self._master_update(fw, task.id, task.state, REASON_RECONCILIATION,
                            "Reconciliation: Latest task state", task.agent_id, healthy)

    def _reconcile_one(self, fw: Framework, item: m.ReconcileTask) -> None:
        """Explicit reconciliation of one task (reference §5.3, cases 1-6)."""
        task = fw.known_task(item.task_id)
        if task is not None:
            return self._reconcile_known(fw, task)
        agent_id = item.agent_id
        if agent_id is None:
            if self.recovering:
                return  # some agent may still bring it back: no answer, the framework retries
            state, why = ts.UNKNOWN, "Reconciliation: Task is unknown"
        elif agent_id in self.recovering:
            return
        elif agent_id in self.agents:
            state, why = ts.GONE, "Reconciliation: Task is unknown to the agent"
        elif agent_id in self.registry.unreachable:
            state, why = ts.UNREACHABLE, "Reconciliation: Task is unreachable"
        else:
            state, why = ts.UNKNOWN, "Reconciliation: Task is unknown"
        self._master_update(fw, item.task_id, state, REASON_RECONCILIATION, why, agent_id)

    def _on_revive(self, msg: m.Revive, peer: bytes) -> None:
        fw = self._framework_for(peer, msg, msg.framework_id)
        if fw is not None:
            self.allocator.revive(fw.id, frozenset(msg.roles) or fw.roles)
            self._request_allocation()

    def _on_suppress(self, msg: m.Suppress, peer: bytes) -> None:
        fw = self._framework_for(peer, msg, msg.framework_id)
        if fw is not None:
            self.allocator.suppress(fw.id, frozenset(msg.roles) or fw.roles)

    def _resend_staging(self) -> None:
        """RunTask is at-least-once. A broken ZeroMQ connection drops what was queued on it
        without telling either side (libprocess would report `exited`), so a task that is
        still STAGING with no word from its agent a heartbeat interval after launch is sent
        again; an agent that already has it ignores the copy."""
        horizon = self.now - self.config.heartbeat_interval
        for _, agent in sorted(self.agents.items()):
            if agent.unreachable_pending:
                continue
            waiting = [(key, t) for key, t in agent.tasks.items()  # cheap filter, then sort
                       if t.state == ts.STAGING and not t.confirmed]
            for (fw_id, _), task in sorted(waiting, key=lambda kt: kt[0]):
                last = task.last_status_time
                if last is not None and last <= horizon:
                    fw = self.frameworks.get(fw_id)
                    if fw is not None:
                        task.record(ts.STAGING, self.now)  # back off: one resend per interval
                        self._send(agent.peer, m.RunTask(fw.info, task.info, agent.epoch))


#: The messages handled here (mesos_master/core.py composes the master's table).
MESSAGES: MessageTable[TaskHandlers] = {
    m.StatusUpdate: TaskHandlers._on_status_update,
    m.Acknowledge: TaskHandlers._on_acknowledge,
    m.Kill: TaskHandlers._on_kill,
    m.Reconcile: TaskHandlers._on_reconcile,
    m.Revive: TaskHandlers._on_revive,
    m.Suppress: TaskHandlers._on_suppress,
}
