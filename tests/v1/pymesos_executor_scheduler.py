"""A pymesos 0.3.15 scheduler in the shape of pymesos's examples/scheduler.py that runs its
tasks on a custom executor (tests/v1/pymesos_executor.py, or EXECUTOR_COMMAND), all on one
executor per agent. It sends "ping" to the executor once a task runs, prints each framework
message as a line `message <text>` and each executor loss as `lost <executor id> <status>`,
and stops when every task has ended. Prints one JSON summary line last.

usage: python -I pymesos_executor_scheduler.py MASTER TASKS SECONDS CHECKPOINT [TIMEOUT]
"""
import getpass
import json
import os
import socket
import sys
import threading
import time
import uuid

from pymesos import MesosSchedulerDriver, Scheduler, decode_data, encode_data

TERMINAL = {"TASK_FINISHED", "TASK_FAILED", "TASK_KILLED", "TASK_LOST", "TASK_ERROR",
            "TASK_DROPPED", "TASK_GONE"}
EXECUTOR_SCRIPT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "pymesos_executor.py")


class MinimalScheduler(Scheduler):
    def __init__(self, tasks, seconds):
        self.left, self.seconds = tasks, seconds
        self.states, self.reasons, self.messages, self.lost = {}, {}, [], []
        self.pinged = False
        self.done = threading.Event()
        self.executor = {
            "executor_id": {"value": "MinimalExecutor"}, "name": "MinimalExecutor",
            "command": {"value": os.environ.get("EXECUTOR_COMMAND")
                        or f"{sys.executable} -I {EXECUTOR_SCRIPT}"},
            "resources": [{"name": "mem", "type": "SCALAR", "scalar": {"value": 32}},
                          {"name": "cpus", "type": "SCALAR", "scalar": {"value": 0.1}}]}

    def resourceOffers(self, driver, offers):
        for offer in offers:
            tasks = []
            while self.left > 0:
                task_id = str(uuid.uuid4())
                tasks.append({
                    "task_id": {"value": task_id}, "agent_id": offer["agent_id"],
                    "name": f"task {task_id}", "executor": self.executor,
                    "data": encode_data(str(self.seconds).encode()),
                    "resources": [{"name": "cpus", "type": "SCALAR", "scalar": {"value": 0.1}},
                                  {"name": "mem", "type": "SCALAR", "scalar": {"value": 32}}]})
                self.states[task_id] = "SENT"
                self.left -= 1
            if tasks:
                driver.launchTasks(offer["id"], tasks, {"refuse_seconds": 5})
            else:
                driver.declineOffer(offer["id"], {"refuse_seconds": 3600})

    def statusUpdate(self, driver, update):
        task_id, state = update["task_id"]["value"], update["state"]
        self.states[task_id] = state
        if update.get("reason"):
            self.reasons[task_id] = update["reason"]
        if state == "TASK_RUNNING" and not self.pinged:
            self.pinged = True
            driver.sendFrameworkMessage(self.executor["executor_id"], update["agent_id"],
                                        encode_data(b"ping"))
        if self.left == 0 and all(s in TERMINAL for s in self.states.values()):
            self.done.set()

    def frameworkMessage(self, driver, executor_id, agent_id, message):
        text = decode_data(message).decode()
        self.messages.append(text)
        print(f"message {text}", flush=True)

    def executorLost(self, driver, executor_id, agent_id, status):
        self.lost.append([executor_id["value"], status])
        print("lost {} {}".format(executor_id["value"], status), flush=True)


def main():
    master, tasks, seconds = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
    checkpoint = sys.argv[4] == "checkpoint"
    timeout = float(sys.argv[5]) if len(sys.argv) > 5 else 120
    framework = {"user": getpass.getuser(), "name": "MinimalFramework",
                 "hostname": socket.gethostname(), "checkpoint": checkpoint}
    sched = MinimalScheduler(tasks, seconds)
    driver = MesosSchedulerDriver(sched, framework, master, use_addict=True)
    thread = threading.Thread(target=driver.run, daemon=True)
    thread.start()
    ok = sched.done.wait(timeout)
    time.sleep(0.5)  # a FAILURE that follows the last update
    driver.stop()
    thread.join(10)
    print(json.dumps({"ok": ok, "states": sched.states, "reasons": sched.reasons,
                      "messages": sched.messages, "lost": sched.lost}), flush=True)


if __name__ == "__main__":
    main()
