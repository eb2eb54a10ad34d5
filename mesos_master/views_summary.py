"""GET /master/state-summary (Mesos): agents and frameworks with per-state task counts and
resources but without task lists, what the web UI polls. One pass over the tasks."""
from __future__ import annotations

from collections import Counter, defaultdict
from typing import Any

from mesos_common import task_states as ts
from mesos_master import views
from mesos_master.core import Master
from mesos_master.core_base import sum_resources

STATES = (ts.STAGING, ts.STARTING, ts.RUNNING, ts.KILLING, ts.FINISHED, ts.KILLED, ts.FAILED,
          ts.LOST, ts.ERROR, ts.UNREACHABLE)


def state_summary(master: Master, now: float) -> dict[str, Any]:
    by_agent: dict[str, Counter[str]] = defaultdict(Counter)
    by_fw: dict[str, Counter[str]] = defaultdict(Counter)
    agent_fws: dict[str, set[str]] = defaultdict(set)
    fw_agents: dict[str, set[str]] = defaultdict(set)
    for fw in master.frameworks.values():
        counts = by_fw[fw.id]
        for group in (fw.tasks.values(), fw.unreachable_tasks.values(), fw.completed_tasks):
            for t in group:
                counts[t.state] += 1
                by_agent[t.agent_id][t.state] += 1
                if not ts.is_terminal(t.state):
                    agent_fws[t.agent_id].add(fw.id)
                    fw_agents[fw.id].add(t.agent_id)
    agents = []
    for a in sorted(master.agents.values(), key=lambda a: a.id):
        doc = views.agent_json(a)
        doc["last_seen"] = a.last_seen
        doc["seconds_since_heartbeat"] = max(0.0, now - a.last_seen)
        doc.update({s: by_agent[a.id][s] for s in STATES})
        doc["framework_ids"] = sorted(agent_fws[a.id])
        agents.append(doc)
    frameworks = []
    for fw in sorted(master.frameworks.values(), key=lambda f: f.id):
        used = sum_resources(t.resources for t in fw.tasks.values() if not t.resources_recovered)
        doc = views.framework_head(master, fw, used)
        doc.pop("offers", None)
        doc["roles"] = list(fw.roles)
        doc.update({s: by_fw[fw.id][s] for s in STATES})
        doc["slave_ids"] = sorted(fw_agents[fw.id])
        frameworks.append(doc)
    head = views.state_head(master, now, {})
    return {"hostname": head["hostname"], "cluster": "", "id": head["id"],
            "leader_info": head["leader_info"], "start_time": head["start_time"],
            "version": head["version"], "slaves": agents, "frameworks": frameworks,
            "unreachable_slaves": head["unreachable_slaves"]}
