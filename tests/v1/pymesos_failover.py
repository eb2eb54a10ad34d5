"""A pymesos 0.3.15 scheduler that rides out a master failover (run in pymesos's own
virtualenv, master given as zk://): it launches one long task, says so on stdout, waits for
`reregistered` (after the test kills the leading master), reconciles the task and prints one
JSON line with what it saw. Stops with failover (no TEARDOWN) so its task stays.

usage: python -I pymesos_failover.py zk://HOST:PORT/PATH TIMEOUT
"""
import json
import sys
import threading
import uuid

from pymesos import MesosSchedulerDriver, Scheduler


class Rider(Scheduler):
    def __init__(self):
        self.task_id = None
        self.framework_id = None
        self.registered_hosts, self.reregistered_hosts = [], []
        self.states, self.reconciled = [], []
        self.running = threading.Event()
        self.back = threading.Event()
        self.done = threading.Event()

    def registered(self, driver, framework_id, master_info):
        self.framework_id = framework_id["value"]
        self.registered_hosts.append("{}:{}".format(master_info["hostname"], master_info["port"]))

    def reregistered(self, driver, master_info):
        self.reregistered_hosts.append("{}:{}".format(master_info["hostname"], master_info["port"]))
        self.back.set()
        driver.reconcileTasks([{"task_id": {"value": self.task_id}}])

    def resourceOffers(self, driver, offers):
        for offer in offers:
            if self.task_id is None:
                self.task_id = str(uuid.uuid4())
                driver.launchTasks(offer["id"], [{
                    "task_id": {"value": self.task_id}, "agent_id": offer["agent_id"],
                    "name": "rider", "command": {"value": "sleep 600"},
                    "resources": [{"name": "cpus", "type": "SCALAR", "scalar": {"value": 0.1}},
                                  {"name": "mem", "type": "SCALAR", "scalar": {"value": 16}}]}])
            else:
                driver.declineOffer(offer["id"], {"refuse_seconds": 3600})

    def statusUpdate(self, driver, update):
        if update.get("reason") == "REASON_RECONCILIATION":
            self.reconciled.append(update["state"])
            if self.back.is_set():
                self.done.set()
            return
        self.states.append(update["state"])
        if update["state"] == "TASK_RUNNING":
            self.running.set()


def main():
    master, timeout = sys.argv[1], float(sys.argv[2])
    sched = Rider()
    driver = MesosSchedulerDriver(sched, {"user": "root", "name": "rider",
                                          "failover_timeout": 300}, master)
    thread = threading.Thread(target=driver.run, daemon=True)
    thread.start()
    if sched.running.wait(timeout):
        print(f"running {sched.framework_id} {sched.task_id}", flush=True)
    ok = sched.done.wait(timeout)
    driver.stop(failover=True)
    thread.join(10)
    print(json.dumps({"ok": ok, "framework_id": sched.framework_id, "task_id": sched.task_id,
                      "states": sched.states, "reconciled": sched.reconciled,
                      "registered": sched.registered_hosts,
                      "reregistered": sched.reregistered_hosts}))


if __name__ == "__main__":
    main()
