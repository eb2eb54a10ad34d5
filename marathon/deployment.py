"""The pure step executor: given an app's target and its tasks, what to kill and launch now.

Called on every tick for every app, so the same rule keeps apps at their declared state
(replacing failed tasks) and carries out deployments (scale, rolling restart, stop). A
rolling restart honours the upgrade strategy: never fewer than
`ceil(instances * minimumHealthCapacity)` healthy tasks, never more than
`instances + floor(instances * maximumOverCapacity)` tasks, and old tasks are killed only
once enough new ones are healthy. A task on an agent the master wants back (an inverse offer:
drain or maintenance) is replaced the same way, as if its config were old.
"""
from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

from attrs import frozen

from marathon.model import executor_checks, marathon_checks
from marathon.tracker import ACTIVE, TaskRecord

RUNNING = "TASK_RUNNING"


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
    version: str = app.get("versionInfo", {}).get("lastConfigChangeAt") or app["version"]
    return version


def _current(t: TaskRecord, app: dict[str, Any]) -> bool:
    """Launched with the app's config, on an agent it may keep (not one being drained)."""
    return not t.draining and (t.config_version or t.version) == config_version(app)


def _ready_fn(app: dict[str, Any]) -> Callable[[TaskRecord], bool]:
    """Whether a task counts for a deployment: running, not known to be unhealthy, and
    past its readiness check when the app has one (no checks: running is enough)."""
    n, ex = len(marathon_checks(app)), executor_checks(app)
    gate = bool(app.get("readinessChecks"))
    if not n and not ex:
        if gate:
            return lambda t: t.state == RUNNING and t.ready
        return lambda t: t.state == RUNNING
    return lambda t: t.state == RUNNING and t.healthy(n, ex) is not False and (t.ready or not gate)


def _split(app: dict[str, Any], live: Sequence[TaskRecord]) -> tuple[list[TaskRecord],
                                                                    list[TaskRecord]]:
    """(current, old): old ones need replacing (launched with an older config version, or
    on an agent being drained)."""
    cv = config_version(app)
    new: list[TaskRecord] = []
    old: list[TaskRecord] = []
    for t in live:
        (new if not t.draining and (t.config_version or t.version) == cv else old).append(t)
    return new, old


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


def _all_current(app: dict[str, Any], tasks: Sequence[TaskRecord]) -> tuple[int, int] | None:
    """One pass for the common case: (live, live and ready) when every active task runs
    the app's current config and none is being killed or replaced; else None."""
    cv, ready = config_version(app), _ready_fn(app)
    live = n_ready = 0
    for t in tasks:
        if t.state not in ACTIVE:
            continue
        if t.killing or t.unreachable_inactive or t.draining or \
                (t.config_version or t.version) != cv:
            return None
        live += 1
        n_ready += ready(t)
    return live, n_ready


def scale_only(app: dict[str, Any], live: int) -> AppActions | None:
    """`step` when every active task runs the current config and none is dying (`live` of
    them): launch up to `instances`; None when there are too many (the full step picks
    whom to kill). The service calls it with counts it keeps, skipping the scan."""
    n = int(app["instances"])
    return AppActions(n - live, ()) if live <= n else None


def settled(app: dict[str, Any], live: int, ready: int) -> Progress:
    """`progress` in that same case."""
    n = int(app["instances"])
    return Progress(ready == n and live == n, ready, 0)


def step(app: dict[str, Any] | None, tasks: Sequence[TaskRecord]) -> AppActions:
    """The kills and launch count for one app now (`app=None`: the app is being removed)."""
    if app is not None:
        fast = _all_current(app, tasks)
        acts = scale_only(app, fast[0]) if fast is not None else None
        if acts is not None:
            return acts
    live = [t for t in tasks if t.state in ACTIVE and not t.killing
            and not t.unreachable_inactive]
    if app is None:
        return AppActions(0, tuple(t.id for t in live))
    target = int(app["instances"])
    new, old = _split(app, live)
    kills: list[TaskRecord] = []
    if len(new) > target:  # scale down: kill surplus new ones, by killSelection
        kills += _kill_order(new, app.get("killSelection", "YOUNGEST_FIRST"))[:len(new) - target]
        dying = {t.id for t in kills}
        new = [t for t in new if t.id not in dying]
    dying_old = [t for t in tasks if t.state in ACTIVE and t.killing
                 and not t.unreachable_inactive and not _current(t, app)]
    if not old and not dying_old:  # no replacement under way: a plain scale
        return AppActions(max(0, target - len(new)), tuple(t.id for t in kills))
    ready = _ready_fn(app)
    min_healthy, max_total = _bounds(target, app.get("upgradeStrategy", {}))
    # As Marathon's TaskReplaceActor: old tasks count while they run (a failed probe on one
    # is the health checker's business, not a licence to kill it); new ones once ready.
    capacity = len([t for t in new if ready(t)]) + len([t for t in old if t.running])
    may_kill = max(0, capacity - min_healthy)
    order = sorted(_kill_order(old, "OLDEST_FIRST"),
                   key=lambda t: (t.running, ready(t)))  # stable: age kept within
    for t in order:
        if not t.running:
            kills.append(t)  # not started: killing it costs no capacity
        elif may_kill > 0:
            kills.append(t)
            may_kill -= 1
    # As Marathon, an instance counts against maximumOverCapacity until it is terminal:
    # old ones being killed still hold resources (and may yet run for a grace period).
    room = max_total - sum(1 for t in tasks if t.state in ACTIVE and not t.unreachable_inactive)
    launch = max(0, min(target - len(new), room))
    return AppActions(launch, tuple(dict.fromkeys(t.id for t in kills)))


def progress(app: dict[str, Any] | None, tasks: Sequence[TaskRecord]) -> Progress:
    if app is not None:
        fast = _all_current(app, tasks)
        if fast is not None:
            return settled(app, *fast)
    live = [t for t in tasks if t.state in ACTIVE]
    if app is None:
        return Progress(not live, 0, len(live))
    is_ready = _ready_fn(app)
    new, old = _split(app, live)
    ready = [t for t in new if not t.killing and is_ready(t)]
    old += [t for t in new if t.killing]
    return Progress(len(ready) == int(app["instances"]) and not old
                    and len(live) == int(app["instances"]), len(ready), len(old))
