"""Custom executors as the master sees them: their resources, their framework messages, their
end (a mixin of `core.Master`; pure).

An executor's own resources are booked on its agent by the first task that names it there
(`validation.executor_need`) and freed when the agent reports it ended (ExecutorExited), or with its
framework. Framework messages are relayed both ways, best effort, as in Mesos: one that
cannot be delivered now is dropped and counted.
"""
from __future__ import annotations

from mesos_common import messages as m
from mesos_master.core_base import MasterBase, MessageTable


class ExecutorHandlers(MasterBase):

    def _on_framework_message(self, msg: m.FrameworkMessage, peer: bytes) -> None:
        ref = self.peers.get(peer)
        if ref is not None and ref[0] == "agent":  # executor -> scheduler
            fw = self.frameworks.get(msg.framework_id)
            if fw is None or not fw.connected or ref[1] != msg.agent_id:
                self.counters["invalid_executor_to_framework_messages"] += 1
                return
            self.counters["valid_executor_to_framework_messages"] += 1
            self._send(fw.peer, msg)
            return
        fw = self._framework_for(peer, msg, msg.framework_id)  # scheduler -> executor
        if fw is None:
            return
        agent = self.agents.get(msg.agent_id)
        if agent is None:
            self.counters["invalid_framework_to_executor_messages"] += 1
            self._log("info", f"framework {fw.id}: message for executor {msg.executor_id} on "
                              f"unknown agent {msg.agent_id} dropped")
            return
        self.counters["valid_framework_to_executor_messages"] += 1
        self._send(agent.peer, msg)

    def _on_shutdown_executor(self, msg: m.ShutdownExecutor, peer: bytes) -> None:
        fw = self._framework_for(peer, msg, msg.framework_id)
        agent = self.agents.get(msg.agent_id) if fw is not None else None
        if agent is not None:
            self._send(agent.peer, msg)

    def _on_executor_exited(self, msg: m.ExecutorExited, peer: bytes) -> None:
        agent = self._agent_for(peer, msg)
        if agent is None:
            return
        ex = agent.executors.pop((msg.framework_id, msg.executor_id), None)
        if ex is not None:
            res = ex.resources
            agent.used = agent.used - res
            self.allocator.recover(msg.framework_id, agent.id, res, None, self.now)
            self._request_allocation([agent.id])
        fw = self.frameworks.get(msg.framework_id)
        if fw is not None and fw.connected:
            self._send(fw.peer, m.ExecutorLost(agent.id, msg.executor_id, msg.status))

    def _drop_executors(self, framework_id: str) -> None:
        """The framework is gone: its executors' resources leave the agents' books (the
        allocator frees them with the framework; the agents stop the executors)."""
        for agent in self.agents.values():
            for key in [k for k in agent.executors if k[0] == framework_id]:
                agent.used = agent.used - agent.executors.pop(key).resources


#: The messages handled here (mesos_master/core.py composes the master's table).
MESSAGES: MessageTable[ExecutorHandlers] = {
    m.FrameworkMessage: ExecutorHandlers._on_framework_message,
    m.ShutdownExecutor: ExecutorHandlers._on_shutdown_executor,
    m.ExecutorExited: ExecutorHandlers._on_executor_exited,
}
