"""A pymesos 0.3.15 operator client in the shape of pymesos's examples/operator_v1.py: asks
for health, state and tasks, then subscribes and records the events it gets until it has seen
FRAMEWORK_ADDED, TASK_ADDED, TASK_UPDATED (to a terminal state) and FRAMEWORK_REMOVED, or the
timeout passes. Prints "subscribed" once its stream is open, then one JSON summary line.

usage: python -I pymesos_operator.py MASTER TIMEOUT
"""
import json
import sys
import threading
import time

from pymesos import MesosOperatorMasterDriver, OperatorMaster


class Minimal(OperatorMaster):
    def __init__(self):
        self.events = []
        self.done = threading.Event()

    def _add(self, kind, what):
        self.events.append([kind, what])
        kinds = {k for k, _ in self.events}
        finished = any(k == "TASK_UPDATED" and w in ("TASK_FINISHED", "TASK_KILLED")
                       for k, w in self.events)
        if {"FRAMEWORK_ADDED", "TASK_ADDED", "FRAMEWORK_REMOVED"} <= kinds and finished:
            self.done.set()

    def taskAdded(self, task_info):
        self._add("TASK_ADDED", task_info["task_id"]["value"])

    def taskUpdated(self, task_info):
        self._add("TASK_UPDATED", task_info["state"])

    def frameworkAdded(self, framework_info):
        self._add("FRAMEWORK_ADDED", framework_info["framework_info"]["name"])

    def frameworkUpdated(self, framework_info):
        self._add("FRAMEWORK_UPDATED", framework_info["framework_info"]["name"])

    def frameworkRemoved(self, framework_info):
        self._add("FRAMEWORK_REMOVED", framework_info.get("name", ""))

    def agentAdded(self, agent_info):
        self._add("AGENT_ADDED", agent_info["agent_info"]["hostname"])

    def agentRemoved(self, agent_id):
        self._add("AGENT_REMOVED", agent_id)


def main():
    master, timeout = sys.argv[1], float(sys.argv[2])
    operator = Minimal()
    driver = MesosOperatorMasterDriver(master, operator)
    health = driver.getHealth()
    state = driver.getState()
    agents = driver.getAgents()
    driver.start()
    deadline = time.time() + 10
    while not driver.connected and time.time() < deadline:
        time.sleep(0.05)
    print("subscribed", flush=True)
    ok = operator.done.wait(timeout)
    driver.stop()
    print(json.dumps({"ok": ok, "health": health, "events": operator.events,
                      "state_keys": sorted(state.get("get_state", {})),
                      "agents": len(agents.get("get_agents", {}).get("agents", []))}))


if __name__ == "__main__":
    main()
