"""The Marathon core's one state record, its options and its deployments (pure).

`MarathonState` holds everything the core decides from: app definitions and versions, task
records (indexed per app and counted per app by `tracker.Tally`), deployments, groups and
the scheduler-side bookkeeping (wants, backoffs, offers waiting, kills in flight). It is
rebuilt from the store alone after a restart (`from_store`); only the core changes it, and
readers (views, the HTTP layer, the health checker, the simulation) only read it.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

from attrs import define, field

from marathon import launch_queue as lq
from marathon.model import timestamp
from marathon.offer_log import OfferLog
from marathon.planner import Action
from marathon.tracker import Tally, TaskRecord
from mesos_common import messages as m


@define
class Options:
    master: str = ""
    hostname: str = "127.0.0.1"
    http_port: int = 8080
    framework_name: str = "marathon"
    mesos_role: str = "*"
    failover_timeout: float = 7 * 86400.0
    tick_interval: float = 1.0
    decline_seconds: float = 5.0
    reconcile_interval: float = 600.0  # Marathon's --reconciliation_interval
    mesos_user: str = ""  # FrameworkInfo.user ("": none, tasks run as the agents' default)


@define
class Deployment:
    id: str
    version: str
    steps: list[tuple[Action, ...]]
    affected: set[str]
    original: dict[str, Any]
    target: dict[str, Any]
    current: int = 0

    def to_store(self) -> dict[str, Any]:
        return {"id": self.id, "version": self.version, "current": self.current,
                "steps": [[[a.action, a.app] for a in s] for s in self.steps],
                "affected": sorted(self.affected), "original": self.original,
                "target": self.target}

    @classmethod
    def from_store(cls, d: dict[str, Any]) -> Deployment:
        return cls(id=d["id"], version=d["version"], current=d["current"],
                   steps=[tuple(Action(a, b) for a, b in s) for s in d["steps"]],
                   affected=set(d["affected"]), original=d["original"], target=d["target"])

    def pending_apps(self) -> set[str]:
        """Apps whose action lies in a step not reached yet."""
        return {a.app for s in self.steps[self.current + 1:] for a in s}


@define(eq=False)
class MarathonState:
    apps: dict[str, dict[str, Any]] = field(factory=dict)
    versions: dict[str, dict[str, Any]] = field(factory=dict)
    tasks: dict[str, TaskRecord] = field(factory=dict)
    by_app: dict[str, dict[str, TaskRecord]] = field(factory=dict)
    tally: Tally = field(factory=Tally)
    deployments: dict[str, Deployment] = field(factory=dict)
    framework_id: str | None = None
    groups: dict[str, dict[str, Any]] = field(factory=dict)
    root_version: str = ""
    # root version -> {app id: app version}: what group versions and rollback read
    root_history: dict[str, dict[str, str]] = field(factory=dict)
    last_version: str = ""
    subscriptions: list[str] = field(factory=list)
    last_failures: dict[str, dict[str, Any]] = field(factory=dict)
    backoffs: dict[str, lq.Backoff] = field(factory=dict)
    queued_since: dict[str, float] = field(factory=dict)
    wants: dict[str, int] = field(factory=dict)
    offers_seen: int = 0
    offers_declined: int = 0
    offer_log: OfferLog = field(factory=OfferLog)  # why waiting apps' offers went unused
    suppressed: bool = False
    revived_at: float = 0.0
    last_offer_at: float = 0.0
    reconciled_at: float = 0.0
    unreachable_reconciled_at: float = 0.0  # the latest reconciliation of unreachable tasks
    agent_attrs: dict[str, dict[str, Any]] = field(factory=dict)  # agent id -> attributes
    # Offers wait here (deferred) for the runtime's pump, so that a big Offers message does
    # not hold the event loop (and the API) for seconds: id -> (offer, since)
    offer_backlog: dict[str, tuple[m.Offer, float]] = field(factory=dict)
    # task id -> when its Kill went out (-inf: not since this process started)
    kill_sent: dict[str, float] = field(factory=dict)
    dirty: set[str] = field(factory=set)  # apps whose tasks changed since their last tick
    dirty_tick_at: float = 0.0  # deferred: dirty apps are not driven again before this
    dirty_tasks: set[str] = field(factory=set)  # task records to write at the next commit
    # agent id -> the inverse offer asking for it back (drain / maintenance); accepted once
    # none of our tasks runs there any more
    inverse_offers: dict[str, str] = field(factory=dict)
    unavailable_until: dict[str, float] = field(factory=dict)  # agent id -> window end
    streams: int = 0  # event streams listening (the core skips building unread events)

    @classmethod
    def from_store(cls, load: Callable[[str], dict[str, Any]], now: float) -> MarathonState:
        """What a restarted Marathon knows: the store's documents, nothing else."""
        meta = load("meta")
        versions = load("version")
        st = cls(apps=load("app"), versions=versions,
                 deployments={k: Deployment.from_store(v)
                              for k, v in load("deployment").items()},
                 framework_id=meta.get("framework_id"), groups=meta.get("groups", {}),
                 root_version=meta.get("root_version") or timestamp(now),
                 root_history=load("root"),
                 last_version=max([v.split("@")[-1] for v in versions] or [""]),
                 subscriptions=meta.get("subscriptions", []),
                 revived_at=now, last_offer_at=now, reconciled_at=now)
        for k, v in load("task").items():
            t = TaskRecord.from_store(v)
            st.tasks[k] = t
            st.by_app.setdefault(t.app_id, {})[t.id] = t
            st.tally.add(t)
            if t.killing:
                st.kill_sent[t.id] = float("-inf")
        return st

    # ------------------------------------------------------------ reads

    def tasks_of(self, app_id: str) -> list[TaskRecord]:
        return list(self.by_app.get(app_id, {}).values())

    def deployments_of(self, app_id: str) -> list[Deployment]:
        return [d for d in self.deployments.values() if app_id in d.affected]

    def effective_app(self, aid: str) -> dict[str, Any] | None:
        """What the app should look like now: its original while its step is pending."""
        for d in self.deployments.values():
            if aid in d.pending_apps():
                return d.original.get(aid)
        return self.apps.get(aid)

    def group_exists(self, gid: str) -> bool:
        prefix = gid.rstrip("/") + "/"
        return gid == "/" or gid in self.groups or any(a.startswith(prefix) for a in self.apps)

    def apps_under(self, gid: str) -> list[str]:
        prefix = gid.rstrip("/") + "/"
        return [a for a in self.apps if a.startswith(prefix)]

    def listening(self) -> bool:
        """Whether a published event would reach anyone (event streams or callback URLs)."""
        return self.streams > 0 or bool(self.subscriptions)
