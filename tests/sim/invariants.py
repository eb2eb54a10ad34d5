"""Checks run after every simulation step; each raises AssertionError with what broke.

Safety: the cores' own invariants; no agent runs more than its capacity (so nothing was
offered twice); a task runs on one agent at most; a framework sees each task's agent updates
in an order the state table allows; Marathon's commit contract: an app whose creation was
answered survives crashes, and no task agents run stays unknown to Marathon for longer than
about a reconciliation. Health: a task failing its Mesos health checks is killed within
the checks' bound; a task reported healthy=false is never healthy to Marathon. Liveness
(after healing): every job finished, every status update acknowledged, and Marathon's apps
run their instances, none of them reported unhealthy.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from marathon.model import executor_checks, marathon_checks
from marathon.views import app_info
from mesos_common import task_states as ts
from mesos_common.resources import Resources

if TYPE_CHECKING:
    from tests.sim.cluster import FrameworkNode, SimCluster
    from tests.sim.sim_marathon import MarathonNode


def cores_consistent(c: SimCluster) -> None:
    if c.master.up and c.master.core is not None:
        c.master.core.check_invariants()
    for a in c.agents.values():
        if a.up and a.core is not None:
            a.core.check_invariants()


def capacity_respected(c: SimCluster) -> None:
    for a in c.agents.values():
        used = Resources()
        for p in a.procs.values():
            used = used + p.resources
        assert a.total.contains(used.flatten()), f"{a.name} runs {used} beyond its {a.total}"


def one_home_per_task(c: SimCluster) -> None:
    homes: dict[tuple[str, str], str] = {}
    for a in c.agents.values():
        for task_id, p in a.procs.items():
            key = (p.framework_id, task_id)
            assert key not in homes, f"task {key} runs on {homes[key]} and {a.name}"
            homes[key] = a.name


def updates_in_order(c: SimCluster) -> None:
    """Agent updates of a task reach its framework in the agent's order (duplicates aside)."""
    schedulers: list[FrameworkNode | MarathonNode] = [*c.frameworks.values()]
    if c.marathon is not None:
        schedulers.append(c.marathon)
    for f in schedulers:
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


def upgrade_strategy_respected(c: SimCluster) -> None:
    """Marathon's kills and launches during upgrades stayed within the app's bounds
    (checked where it decides: tests/sim/sim_marathon.py)."""
    if c.marathon is not None and c.marathon.violations:
        raise AssertionError(c.marathon.violations[0])


def answered_apps_survive(c: SimCluster) -> None:
    """An app whose create was answered (so committed) exists in every later Marathon,
    crashes or not, until a delete of it is answered; an answered scale, upgrade or restart
    is never rolled back by a crash (the app's version never goes below it)."""
    node = c.marathon
    if node is None or node.state is None:
        return
    lost = sorted(set(node.answered) - set(node.state.apps))
    assert not lost, f"Marathon lost app(s) {lost} after answering their creation"
    for aid, version in sorted(node.answered.items()):
        now = node.state.apps[aid]["version"]
        assert now >= version, \
            f"Marathon's {aid} is back at version {now} after answering a change to {version}"


UNKNOWN_TASK_LIMIT = 75.0  # two reconciliation intervals (30 s) and a kill retry's slack


def no_task_unknown_for_long(c: SimCluster) -> None:
    """A task of Marathon's framework that agents run and a subscribed Marathon has no record
    of (e.g. launched, then Marathon lost the uncommitted record in a crash) is adopted or
    killed within about a reconciliation: it never lingers unknown."""
    node = c.marathon
    if node is None:
        return
    svc = node.state
    if svc is None or node.core is None or not node.core.subscribed:
        node.unknown_since.clear()
        return
    unknown = {t for a in c.agents.values() if a.up for t, p in a.procs.items()
               if p.framework_id == svc.framework_id and t not in svc.tasks}
    for t in set(node.unknown_since) - unknown:
        del node.unknown_since[t]
    for t in sorted(unknown):
        since = node.unknown_since.setdefault(t, c.now)
        assert c.now - since <= UNKNOWN_TASK_LIMIT, \
            f"agents have run task {t} unknown to Marathon for {c.now - since:.0f}s"


HEALTH_KILL_SLACK = 1.0  # the kill (0.01 s in the simulation) and event ordering


def failing_tasks_killed(c: SimCluster) -> None:
    """A task failing its health checks is killed once `consecutive_failures` checks have
    failed: probes run `delay_seconds` after its agent starts checking it (launch, or the
    agent's recovery), then `interval_seconds` after each result, and a failing one may take
    up to `timeout_seconds`; failures count from when it started failing, or, if it never
    passed one, from the end of `grace_period_seconds` (Mesos). So its process is gone by
    max(failing, start + grace, start + delay) + N * (interval + timeout) + timeout."""
    for a in c.agents.values():
        if not a.up:
            continue
        for task_id, p in a.procs.items():
            if p.check is None or p.fails_at is None or p.checks_since is None:
                continue
            chk = p.check
            counted = max(p.fails_at, p.checks_since + chk.grace_period_seconds,
                          p.checks_since + chk.delay_seconds)
            period = chk.interval_seconds + chk.timeout_seconds
            deadline = (counted + max(1, chk.consecutive_failures) * period
                        + chk.timeout_seconds + HEALTH_KILL_SLACK)
            assert c.now <= deadline, (
                f"{a.name} still runs {task_id}, failing its health checks since "
                f"t={p.fails_at:.1f} ({chk.consecutive_failures} failures kill it, every "
                f"{chk.interval_seconds}s, grace {chk.grace_period_seconds}s), "
                f"past t={deadline:.1f}")


def unhealthy_never_counted_healthy(c: SimCluster) -> None:
    """A task whose healthy=false update Marathon acknowledged is not healthy to Marathon
    (its deployments and its /v2/apps counts) until a healthy=true update reaches it."""
    node = c.marathon
    if node is None or node.state is None:
        return
    svc = node.state
    for task_id in sorted(node.unhealthy_acked):
        t = svc.tasks.get(task_id)
        app = svc.apps.get(t.app_id) if t is not None else None
        if t is None or app is None:
            continue
        h = t.healthy(len(marathon_checks(app)), executor_checks(app))
        assert h is not True, f"Marathon counts task {task_id} healthy after healthy=false"
        info = app_info(svc, app, set())
        counted = [x for x in svc.tasks_of(t.app_id) if x.state == "TASK_RUNNING"
                   and x.id not in node.unhealthy_acked and x.healthy(
                       len(marathon_checks(app)), executor_checks(app)) is True]
        assert info["tasksHealthy"] <= len(counted), \
            f"{t.app_id}: tasksHealthy {info['tasksHealthy']} counts unhealthy task {task_id}"


SAFETY = [cores_consistent, capacity_respected, one_home_per_task, updates_in_order,
          upgrade_strategy_respected, answered_apps_survive, no_task_unknown_for_long,
          failing_tasks_killed, unhealthy_never_counted_healthy]


def converged(c: SimCluster) -> bool:
    """Every job finished and nothing left to acknowledge."""
    if not all(f.policy is not None and f.policy.done() for f in c.frameworks.values()):
        return False
    for a in c.agents.values():
        if not a.up or a.core is None or a.core.updates.unacked():
            return False
    return c.marathon is None or not marathon_pending(c)


def marathon_pending(c: SimCluster) -> list[str]:
    """What keeps Marathon from having converged: every app runs its target instance count
    of its current config, no deployment is left, and the agents run exactly those tasks."""
    node = c.marathon
    assert node is not None
    svc = node.state
    if svc is None or node.core is None or not node.core.subscribed:
        return ["marathon not subscribed"]
    out = [f"deployment {d.id} of {sorted(d.affected)} at step {d.current}"
           for d in svc.deployments.values()]
    for aid, app in sorted(svc.apps.items()):
        version = app.get("versionInfo", {}).get("lastConfigChangeAt") or app["version"]
        tasks = svc.tasks_of(aid)
        good = [t for t in tasks if t.running and not t.killing and t.mesos_healthy is not False
                and (t.config_version or t.version) == version]  # health: converged means healthy
        if len(good) != int(app["instances"]) or len(tasks) != len(good):
            out.append(f"{aid}: {len(good)}/{app['instances']} current running of "
                       f"{len(tasks)} tasks")
    stray = sorted(t for t in svc.tasks if svc.tasks[t].app_id not in svc.apps)
    out += [f"task {t} of a deleted app" for t in stray[:3]]
    running = {t for a in c.agents.values() for t, p in a.procs.items()
               if p.framework_id == svc.framework_id}
    if running != set(svc.tasks):
        out.append(f"agents run {sorted(running - set(svc.tasks))[:3]} unknown to Marathon, "
                   f"Marathon has {sorted(set(svc.tasks) - running)[:3]} not running")
    return out
