"""A pymesos 0.3.15 scheduler in the shape of pymesos's examples/scheduler.py, run in pymesos's
own virtualenv: launches command tasks on offers (acknowledging implicitly); once every task runs
it reconciles them (and one unknown task), then kills the ones still running, and stops when all
have ended. Prints one JSON summary line.

usage: python -I pymesos_scheduler.py MASTER TASKS COMMAND [TIMEOUT]
"""
import getpass
import json
import socket
import sys
import threading
import time
import uuid

from pymesos import MesosSchedulerDriver, Scheduler

TERMINAL = {"TASK_FINISHED", "TASK_FAILED", "TASK_KILLED", "TASK_LOST", "TASK_ERROR",
            "TASK_DROPPED", "TASK_GONE"}


class Minimal(Scheduler):
    def __init__(self, tasks, command):
        self.left, self.command = tasks, command
        self.states, self.history, self.reconciled = {}, [], {}
        self.framework_id = None
        self.offers = self.heartbeats = 0
        self.done = threading.Event()
        self.reconciling = self.killing = False

    def registered(self, driver, framework_id, master_info):
        self.framework_id = framework_id["value"]

    def reregistered(self, driver, master_info):
        pass

    def processHeartBeat(self, driver):
        self.heartbeats += 1

    def resourceOffers(self, driver, offers):
        for offer in offers:
            self.offers += 1
            cpus = sum(r["scalar"]["value"] for r in offer["resources"] if r["name"] == "cpus")
            mem = sum(r["scalar"]["value"] for r in offer["resources"] if r["name"] == "mem")
            tasks = []
            while self.left > 0 and cpus >= 0.1 and mem >= 32:
                task_id = str(uuid.uuid4())
                tasks.append({
                    "task_id": {"value": task_id}, "agent_id": offer["agent_id"],
                    "name": f"task {task_id}",
                    "command": {"value": self.command,
                                "environment": {"variables": [{"name": "HELLO",
                                                               "value": "from pymesos"}]}},
                    "resources": [
                        {"name": "cpus", "type": "SCALAR", "scalar": {"value": 0.1}},
                        {"name": "mem", "type": "SCALAR", "scalar": {"value": 32}}]})
                self.states[task_id] = "SENT"
                self.left -= 1
                cpus, mem = cpus - 0.1, mem - 32
            if tasks:
                driver.launchTasks(offer["id"], tasks, {"refuse_seconds": 5})
            else:
                driver.declineOffer(offer["id"], {"refuse_seconds": 3600})

    def statusUpdate(self, driver, update):
        task_id, state = update["task_id"]["value"], update["state"]
        if update.get("reason") == "REASON_RECONCILIATION":
            self.reconciled[task_id] = state
        else:
            self.states[task_id] = state
            self.history.append([task_id, state, update.get("source"), "uuid" in update])
        if self.left > 0:
            return
        if not self.reconciling and all(s != "SENT" and s != "TASK_STAGING"
                                        and s != "TASK_STARTING" for s in self.states.values()):
            self.reconciling = True
            driver.reconcileTasks([{"task_id": {"value": t}} for t in self.states]
                                  + [{"task_id": {"value": "no-such-task"}}])
        elif self.reconciling and len(self.reconciled) == len(self.states) + 1:
            if not self.killing:
                self.killing = True
                for t, s in self.states.items():
                    if s not in TERMINAL:
                        driver.killTask({"value": t})
            if all(s in TERMINAL for s in self.states.values()):
                self.done.set()


def main():
    master, tasks, command = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    framework = {"user": getpass.getuser(), "name": "MinimalFramework",
                 "hostname": socket.gethostname()}
    sched = Minimal(tasks, command)
    driver = MesosSchedulerDriver(sched, framework, master, use_addict=True)
    thread = threading.Thread(target=driver.run, daemon=True)
    started = time.time()
    thread.start()
    ok = sched.done.wait(float(sys.argv[4]) if len(sys.argv) > 4 else 120)
    elapsed = time.time() - started
    driver.stop()
    thread.join(10)
    print(json.dumps({"ok": ok, "framework_id": sched.framework_id, "states": sched.states,
                      "history": sched.history, "reconciled": sched.reconciled,
                      "offers": sched.offers, "heartbeats": sched.heartbeats,
                      "elapsed": elapsed}))


if __name__ == "__main__":
    main()
