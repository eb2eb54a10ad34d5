"""Simulated agents for the scale benchmarks: `mesos_agent.fleet` processes beside a cluster."""
from __future__ import annotations

from pathlib import Path

from mesos_common.daemons import Daemon, LocalCluster, python_module, spawn

PER_FLEET = 4000  # each simulated agent holds two fds; the open-file limit here is 20,000


def agent_resources(tasks: int, agents: int) -> str:
    """Room for tasks of 0.01 cpus and 1 MB each, spread evenly, plus some slack."""
    per_agent = -(-tasks // agents)
    return f"cpus:{per_agent * 0.01 + 1:.2f};mem:{per_agent + 64};disk:1000;ports:[31000-31010]"


def start_fleets(cluster: LocalCluster, agents: int, resources: str, *extra: str
                 ) -> list[Daemon]:
    """Start `agents` simulated agents against the cluster's master, PER_FLEET per process
    (`extra`: more fleet flags). If one fails to start, those already started are stopped."""
    return spawn_fleets(cluster.master_addr, cluster.root / "logs", agents, resources, *extra)


def spawn_fleets(master: str, logs: Path, agents: int, resources: str, *extra: str
                 ) -> list[Daemon]:
    """The same for any master spec (host:port or zk://...), logs under `logs`."""
    fleets: list[Daemon] = []
    try:
        for first in range(0, agents, PER_FLEET):
            fleets.append(spawn(f"fleet{first}", python_module(
                "mesos_agent.fleet", f"--master={master}",
                f"--agents={min(PER_FLEET, agents - first)}", f"--first_index={first}",
                f"--resources={resources}", "--log_level=WARNING", *extra),
                logs / f"fleet{first}.log", "mesos-agent-fleet: started", timeout=600))
    except BaseException:
        for f in fleets:
            f.stop()
        raise
    return fleets
