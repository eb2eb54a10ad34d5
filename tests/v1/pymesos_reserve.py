"""A pymesos 0.3.15 scheduler of role `web` that reserves part of an offer through ACCEPT
(RESERVE, in Mesos's pre-refinement `role` + `reservation` form), waits for an offer holding the
reservation, unreserves it (UNRESERVE) and waits for an offer without it. Prints one JSON line
with the reserved resources it was offered.

usage: python -I pymesos_reserve.py HOST:PORT TIMEOUT
"""
import json
import sys
import threading

from pymesos import MesosSchedulerDriver, Scheduler


def scalar(name, value, role):
    return {"name": name, "type": "SCALAR", "scalar": {"value": value}, "role": role,
            "reservation": {"principal": "reserver"}}


class Reserver(Scheduler):
    def __init__(self):
        self.phase = "reserve"
        self.reserved_seen = []
        self.done = threading.Event()

    def resourceOffers(self, driver, offers):
        for offer in offers:
            mine = [r for r in offer["resources"] if r.get("role") == "web"]
            if self.phase == "reserve" and not mine:
                self.phase = "reserved?"
                driver.acceptOffers([offer["id"]], [{"type": "RESERVE", "reserve": {
                    "resources": [scalar("cpus", 1, "web"), scalar("mem", 64, "web")]}}],
                    {"refuse_seconds": 0})
            elif self.phase == "reserved?" and mine:
                self.reserved_seen = sorted((r["name"], r["scalar"]["value"]) for r in mine)
                self.phase = "unreserved?"
                driver.acceptOffers([offer["id"]], [{"type": "UNRESERVE", "unreserve": {
                    "resources": mine}}], {"refuse_seconds": 0})
            elif self.phase == "unreserved?" and not mine:
                self.done.set()
                driver.declineOffer(offer["id"], {"refuse_seconds": 3600})
            else:
                driver.declineOffer(offer["id"], {"refuse_seconds": 0.2})


def main():
    master, timeout = sys.argv[1], float(sys.argv[2])
    sched = Reserver()
    driver = MesosSchedulerDriver(sched, {"user": "root", "name": "reserver", "roles": ["web"],
                                          "capabilities": [{"type": "MULTI_ROLE"}],
                                          "principal": "reserver"}, master)
    thread = threading.Thread(target=driver.run, daemon=True)
    thread.start()
    ok = sched.done.wait(timeout)
    driver.stop()
    thread.join(10)
    print(json.dumps({"ok": ok, "phase": sched.phase, "reserved": sched.reserved_seen}))


if __name__ == "__main__":
    main()
