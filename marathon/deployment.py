"""The pure step executor: given an app's target and its tasks, what to kill and launch now.

Called on every tick for every app, so the same rule keeps apps at their declared state
(replacing failed tasks) and carries out deployments (scale, rolling restart, stop). A
rolling restart honours the upgrade strategy: never fewer than
`ceil(instances * minimumHealthCapacity)` healthy tasks, never more than
`instances + floor(instances * maximumOverCapacity)` tasks, and old tasks are killed only
once enough new ones are healthy.
"""
from __future__ import annotations

import math
from typing import Any, Sequence

from attrs import frozen

from marathon.model import executor_checks, marathon_checks
from marathon.tracker import TaskRecord


@frozen
class AppActions:
    launch: int
    kill: tuple[str, ...]


@frozen
class Progress:
    """Whether an app has reached its target (deployment step done)."""

    done: bool
    new_ready: int
    old_left: int


def config_version(app: dict[str, Any]) -> str:
    """Tasks launched before this version need replacing; scaling does not change it."""
    return app.get("versionInfo", {}).get("lastConfigChangeAt") or app["version"]


def _current(t: TaskRecord, app: dict[str, Any]) -> bool:
    return (t.config_version or t.version) == config_version(app)


def _ready(t: TaskRecord, app: dict[str, Any]) -> bool:
    """Running, and not known to be unhealthy (no checks: running is enough)."""
    return t.running and t.healthy(len(marathon_checks(app)), executor_checks(app)) is not False


def _kill_order(tasks: Sequence[TaskRecord], selection: str) -> list[TaskRecord]:
    """Tasks in the order they should die: not-yet-running first, then by killSelection."""
    youngest = selection != "OLDEST_FIRST"
    return sorted(tasks, key=lambda t: (t.running, -t.staged_at if youngest else t.staged_at))


def _bounds(instances: int, strategy: dict[str, Any]) -> tuple[int, int]:
    min_healthy = math.ceil(instances * float(strategy.get("minimumHealthCapacity", 1)))
    max_total = instances + math.floor(instances * float(strategy.get("maximumOverCapacity", 1)))
    if min_healthy >= max_total:  # {1, 0}: allow one over so that the upgrade can move
        max_total = min_healthy + 1
    return min_healthy, max_total


def step(app: dict[str, Any] | None, tasks: Sequence[TaskRecord]) -> AppActions:
    """The kills and launch count for one app now (`app=None`: the app is being removed)."""
    live = [t for t in tasks if t.active and not t.killing and not t.unreachable_inactive]
    if app is None:
        return AppActions(0, tuple(t.id for t in live))
    target = int(app["instances"])
    new = [t for t in live if _current(t, app)]
    old = [t for t in live if not _current(t, app)]
    kills: list[TaskRecord] = []
    if len(new) > target:  # scale down: kill surplus new ones, by killSelection
        kills += _kill_order(new, app.get("killSelection", "YOUNGEST_FIRST"))[:len(new) - target]
        new = new[:0] + [t for t in new if t not in kills]
    dying_old = [t for t in tasks if t.active and t.killing and not _current(t, app)
                 and not t.unreachable_inactive]
    if not old and not dying_old:  # no replacement under way: a plain scale
        return AppActions(max(0, target - len(new)), tuple(t.id for t in kills))
    min_healthy, max_total = _bounds(target, app.get("upgradeStrategy", {}))
    # As Marathon's TaskReplaceActor: old tasks count while they run (a failed probe on one
    # is the health checker's business, not a licence to kill it); new ones once ready.
    capacity = len([t for t in new if _ready(t, app)]) + len([t for t in old if t.running])
    may_kill = max(0, capacity - min_healthy)
    order = sorted(_kill_order(old, "OLDEST_FIRST"),
                   key=lambda t: (t.running, _ready(t, app)))  # stable: age kept within
    for t in order:
        if not t.running:
            kills.append(t)  # not started: killing it costs no capacity
        elif may_kill > 0:
            kills.append(t)
            may_kill -= 1
    # As Marathon, an instance counts against maximumOverCapacity until it is terminal:
    # old ones being killed still hold resources (and may yet run for a grace period).
    active = [t for t in tasks if t.active and not t.unreachable_inactive]
    room = max_total - len(active)
    launch = max(0, min(target - len(new), room))
    return AppActions(launch, tuple(dict.fromkeys(t.id for t in kills)))


def progress(app: dict[str, Any] | None, tasks: Sequence[TaskRecord]) -> Progress:
    live = [t for t in tasks if t.active]
    if app is None:
        return Progress(not live, 0, len(live))
    ready = [t for t in live if _current(t, app) and _ready(t, app) and not t.killing]
    old = [t for t in live if not _current(t, app) or t.killing]
    return Progress(len(ready) == int(app["instances"]) and not old
                    and len(live) == int(app["instances"]), len(ready), len(old))
