"""The agent's Prometheus metrics (`GET /metrics`), computed at scrape time from its `/state`
document (resources, tasks by framework and state), plus API request durations."""
from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable
from typing import Any

from prometheus_client import CollectorRegistry
from prometheus_client.core import Metric

from mesos_common import prom

PREFIX = "mesos_agent"
_UNITS = {"cpus": "cpus", "gpus": "gpus", "mem": "mem_megabytes", "disk": "disk_megabytes"}


def state_families(state: dict[str, Any]) -> Iterable[Metric]:
    fams = prom.Families()
    fams.add("gauge", f"{PREFIX}_registered", "1 while registered with a master",
             1.0 if state.get("state") == "RUNNING" else 0.0)
    total, used = state.get("resources", {}), state.get("used_resources", {})
    for res, unit in _UNITS.items():
        for kind, doc in (("total", total), ("used", used)):
            value = doc.get(res, 0.0)
            fams.add("gauge", f"{PREFIX}_{unit}", f"Agent {res} by kind",
                     value if isinstance(value, (int, float)) else 0.0, {"kind": kind})
    for fw in state.get("frameworks", []):
        by_state = Counter(t["state"] for t in fw.get("tasks", []))
        for st, n in sorted(by_state.items()):
            fams.add("gauge", f"{PREFIX}_tasks", "Tasks the agent holds, by framework and state",
                     n, {"framework": fw.get("name", ""), "framework_id": fw.get("id", ""),
                         "state": st.removeprefix("TASK_").lower()})
    fams.add("gauge", f"{PREFIX}_frameworks", "Frameworks with tasks on the agent",
             len(state.get("frameworks", [])))
    return fams


class AgentMetrics:
    def __init__(self, get_state: Callable[[], dict[str, Any]]) -> None:
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(prom.FunctionCollector(lambda: state_families(get_state())))
        self.requests = prom.request_histogram(self.registry, PREFIX)
