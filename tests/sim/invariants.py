"""Checks run after every simulation step; each raises AssertionError with what broke.

Safety: the cores' own invariants; no agent runs more than its capacity (so nothing was
offered twice); a task runs on one agent at most; a framework sees each task's agent updates
in an order the state table allows. Liveness (after healing): every job finished and every
status update acknowledged.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from mesos_common import task_states as ts
from mesos_common.resources import Resources

if TYPE_CHECKING:
    from tests.sim.cluster import SimCluster


def cores_consistent(c: "SimCluster") -> None:
    if c.master.up and c.master.core is not None:
        c.master.core.check_invariants()
    for a in c.agents.values():
        if a.up and a.core is not None:
            a.core.check_invariants()


def capacity_respected(c: "SimCluster") -> None:
    for a in c.agents.values():
        used = Resources()
        for p in a.procs.values():
            used = used + p.resources
        assert a.total.contains(used), f"{a.name} runs {used} beyond its {a.total}"


def one_home_per_task(c: "SimCluster") -> None:
    homes: dict[tuple[str, str], str] = {}
    for a in c.agents.values():
        for task_id, p in a.procs.items():
            key = (p.framework_id, task_id)
            assert key not in homes, f"task {key} runs on {homes[key]} and {a.name}"
            homes[key] = a.name


def updates_in_order(c: "SimCluster") -> None:
    """Agent updates of a task reach its framework in the agent's order (duplicates aside)."""
    for f in c.frameworks.values():
        for task_id, seen in f.seen.items():
            if len(seen) < 2:
                continue
            uuid, state = seen[-1]
            earlier = {u for u, _ in seen[:-1]}
            if uuid in earlier:
                continue
            prev = [s for u, s in seen[:-1]][-1]
            assert prev == state or ts.can_transition(prev, state), \
                f"{f.name} saw task {task_id} go {prev} -> {state}"


SAFETY = [cores_consistent, capacity_respected, one_home_per_task, updates_in_order]


def converged(c: "SimCluster") -> bool:
    """Every job finished and nothing left to acknowledge."""
    if not all(f.policy is not None and f.policy.done() for f in c.frameworks.values()):
        return False
    for a in c.agents.values():
        if not a.up or a.core is None or a.core.updates.task_ids():
            return False
    return True
