"""pymesos 0.3.15 launching N command tasks as fast as offers allow (the v1_launch benchmark's
framework; run in pymesos's own virtualenv). Packs each offer, declines what it cannot use,
and prints one JSON line: seconds from the first ACCEPT and from SUBSCRIBE to the N-th
TASK_RUNNING.

usage: python -I pymesos_launch.py MASTER TASKS TIMEOUT
"""
import json
import sys
import threading
import time

from pymesos import MesosSchedulerDriver, Scheduler


class Launcher(Scheduler):
    def __init__(self, n):
        self.n, self.left, self.running = n, n, set()
        self.first_accept = None
        self.failed = []
        self.done = threading.Event()

    def resourceOffers(self, driver, offers):
        for offer in offers:
            cpus = sum(r["scalar"]["value"] for r in offer["resources"] if r["name"] == "cpus")
            mem = sum(r["scalar"]["value"] for r in offer["resources"] if r["name"] == "mem")
            tasks = []
            while self.left > 0 and cpus >= 0.01 - 1e-9 and mem >= 1:
                i = self.n - self.left
                tasks.append({
                    "task_id": {"value": f"t{i}"}, "agent_id": offer["agent_id"],
                    "name": f"t{i}", "command": {"value": "sleep 600"},
                    "resources": [
                        {"name": "cpus", "type": "SCALAR", "scalar": {"value": 0.01}},
                        {"name": "mem", "type": "SCALAR", "scalar": {"value": 1}}]})
                self.left -= 1
                cpus, mem = cpus - 0.01, mem - 1
            if tasks:
                if self.first_accept is None:
                    self.first_accept = time.time()
                driver.launchTasks(offer["id"], tasks)
            else:
                driver.declineOffer(offer["id"], {"refuse_seconds": 60})

    def statusUpdate(self, driver, update):
        if update["state"] == "TASK_RUNNING":
            self.running.add(update["task_id"]["value"])
        elif update["state"] not in ("TASK_STAGING", "TASK_STARTING"):
            self.failed.append(update["task_id"]["value"] + " " + update["state"])
        if len(self.running) + len(self.failed) >= self.n:
            self.done.set()


def main():
    master, n, timeout = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
    sched = Launcher(n)
    driver = MesosSchedulerDriver(sched, {"user": "root", "name": "v1-launch"}, master)
    started = time.time()
    thread = threading.Thread(target=driver.run, daemon=True)
    thread.start()
    ok = sched.done.wait(timeout)
    end = time.time()
    driver.stop()
    thread.join(10)
    print(json.dumps({"ok": ok, "running": len(sched.running), "failed": sched.failed[:5],
                      "accept_to_running_s": end - (sched.first_accept or end),
                      "subscribe_to_running_s": end - started}))


if __name__ == "__main__":
    main()
