"""What goes into the Marathon core (events) and what comes out (effects); plain data.

Events: the API's commands (answered by one `Reply` effect: its value, or the `ApiError` /
`ValidationFailed` that refused it, in which case nothing changed), the scheduler
callbacks, the control tick, the runtime's flush before a commit, health-probe results.
Effects: driver calls (launch, decline, kill, revive, suppress, reconcile), store writes and
the commit that makes them durable, events to publish, waking the offer pump, the reply.
"""
from __future__ import annotations

from typing import Any

from attrs import frozen

from mesos_common import messages as m

# ---------------------------------------------------------------- API commands


@frozen
class CreateApp:
    raw: Any
    force: bool = False


@frozen
class UpdateApp:
    """PUT/PATCH of one app: creates it when missing; `{"version": v}` rolls back."""
    app_id: str
    raw: Any
    force: bool = False
    partial: bool = True


@frozen
class UpdateApps:
    raws: Any
    force: bool = False
    partial: bool = True


@frozen
class DeleteApp:
    app_id: str
    force: bool = False


@frozen
class RestartApp:
    app_id: str
    force: bool = False


@frozen
class ScaleApp:
    app_id: str
    instances: int
    force: bool = False


@frozen
class KillTasks:
    ids: tuple[str, ...]
    scale: bool = False
    force: bool = False


@frozen
class CancelDeployment:
    deployment_id: str
    force: bool = False


@frozen
class ResetDelay:
    app_id: str


@frozen
class CreateGroup:
    group_id: str
    raw: Any
    force: bool = False


@frozen
class UpdateGroup:
    """PUT of a group: a new tree, `{"scaleBy": f}` or `{"version": v}` (rollback)."""
    group_id: str
    raw: Any
    force: bool = False


@frozen
class DryRun:
    """The steps an UpdateGroup would deploy, deploying nothing."""
    group_id: str
    raw: Any


@frozen
class DeleteGroup:
    group_id: str
    force: bool = False


@frozen
class Subscribe:
    """Add an HTTP callback URL for events."""
    url: str


@frozen
class Unsubscribe:
    url: str


# ---------------------------------------------------------------- scheduler callbacks


@frozen
class Registered:
    framework_id: str
    master_info: Any = None


@frozen
class Reregistered:
    master_info: Any = None


@frozen
class Offers:
    offers: tuple[m.Offer, ...]


@frozen
class InverseOffers:
    inverse_offers: tuple[m.InverseOffer, ...]


@frozen
class OfferRescinded:
    offer_id: str


@frozen
class StatusUpdate:
    status: m.TaskStatus


@frozen
class Disconnected:
    pass


# ---------------------------------------------------------------- from the runtime


@frozen
class Tick:
    """The control tick: every app (periodic), or just `only` (after a health change)."""
    only: frozenset[str] | None = None


@frozen
class PlaceBacklog:
    """Match the oldest waiting offer (the runtime's pump feeds these in time slices)."""


@frozen
class ForgetOffers:
    """Drop the offers waiting (matching them failed: they time out on the master)."""


@frozen
class Flush:
    """Before a commit: drive the apps whose tasks changed (unless not `drive`: the last
    commit of a term), stage the task records; answered by a `Commit` effect."""
    drive: bool = True


@frozen
class FlushCost:
    """The last Flush took `seconds` of our time: space dirty-app ticks by ten times that."""
    seconds: float


@frozen
class ReadinessResult:
    """One readiness probe of a task: `result` is Marathon's readinessCheckResult shape."""
    task_id: str
    ready: bool
    result: dict[str, Any]


@frozen
class HealthResult:
    """One Marathon-side probe of check `index` of a task."""
    task_id: str
    index: int
    alive: bool
    cause: str = ""


@frozen
class Streams:
    """How many event streams listen now."""
    count: int


# ---------------------------------------------------------------- effects


@frozen
class Launch:
    offer_id: str
    tasks: tuple[m.TaskInfo, ...]


@frozen
class AcceptInverseOffers:
    """None of our tasks is left on the agents: the master may take them."""
    inverse_offer_ids: tuple[str, ...]


@frozen
class Decline:
    offer_id: str
    refuse_seconds: float


@frozen
class Kill:
    task_id: str
    agent_id: str | None


@frozen
class Revive:
    pass


@frozen
class Suppress:
    pass


@frozen
class Reconcile:
    tasks: tuple[m.ReconcileTask, ...]  # empty: implicit (every task the master knows)


@frozen
class Put:
    kind: str
    key: str
    doc: Any


@frozen
class PutAll:
    """Many documents of one kind (the task records staged for a commit) in one effect."""
    kind: str
    docs: dict[str, Any]


@frozen
class Delete:
    kind: str
    key: str


@frozen
class Commit:
    """Make every write so far durable (before the reply, before the burst's sends)."""


@frozen
class Publish:
    event_type: str
    payload: dict[str, Any]


@frozen
class WakePump:
    """Offers wait in the backlog."""


@frozen
class Reply:
    value: Any = None
    error: Exception | None = None
