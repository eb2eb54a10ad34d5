"""Marathon's glue: the API's commands, the scheduler callbacks, the store and the clock.

All decisions are made by the pure modules (`model` validates, `planner` plans,
`deployment.step` says what to kill and launch, `launch_queue.match` packs offers); this
class keeps the state, persists every change before answering, and turns decisions into
driver calls. Everything runs on one asyncio loop; the only lock orders the daemon's
commits, whose disk writes run in a worker thread (service_commit.py).
"""
from __future__ import annotations

import logging
import time
import uuid
from typing import Any, Callable, Iterable

from attrs import define

from mesos_common import messages as m
from marathon import deployment as dep
from marathon import launch_queue as lq
from marathon.apps import AppsMixin, ApiError
from marathon.events import EventBus
from marathon.groups import GroupsMixin
from marathon import model
from marathon.model import new_task_id, timestamp
from marathon.planner import Action, STOP, plan
from marathon.service_commit import DIRTY_TICK_INTERVAL, CommitMixin  # noqa: F401 (re-export)
from marathon.store import Store
from marathon.tracker import FAILED, TERMINAL, Tally, TaskRecord
from marathon import views

log = logging.getLogger("marathon.service")

__all__ = ["ApiError", "Deployment", "MarathonService", "Options"]
MAX_ROOT_VERSIONS = 50
OFFER_MAX_AGE = 30.0  # a backlog offer older than this is dropped (the master times it out)
# launches that failed before the task ever ran, through no fault of the app: no backoff
NOT_THE_APPS_FAULT = frozenset({"REASON_INVALID_OFFERS", "REASON_MASTER_DISCONNECTED"})
# A Revive can be lost (a ZeroMQ reconnect drops what was queued): while tasks wait and no
# offer came for this long, revive again (Marathon's --revive_offers_repetitions).
REVIVE_AGAIN_S = 10.0
# A Kill can be lost too: kill again tasks still alive this long after (--kill_retry_timeout).
KILL_RETRY_S = 10.0
# The master tells no one when an unreachable agent re-registers (Mesos): ask after the tasks
# we hold unreachable this often, so that the surplus of a healed partition is seen and killed.
UNREACHABLE_RECONCILE_S = 5.0


@define
class Options:
    master: str = ""
    hostname: str = "127.0.0.1"
    http_port: int = 8080
    framework_name: str = "marathon"
    failover_timeout: float = 7 * 86400.0
    tick_interval: float = 1.0
    decline_seconds: float = 5.0
    reconcile_interval: float = 600.0  # Marathon's --reconciliation_interval


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


class MarathonService(AppsMixin, GroupsMixin, CommitMixin):
    def __init__(self, store: Store, options: Options | None = None,
                 clock: Callable[[], float] = time.time,
                 new_uuid: Callable[[], uuid.UUID] = uuid.uuid1,
                 work_clock: Callable[[], float] = time.perf_counter) -> None:
        self.store = store
        self.work_clock = work_clock  # measures our own ticks' cost (a simulation passes 0)
        self.options = options or Options()
        self.clock = clock
        self.new_uuid = new_uuid
        self.events = EventBus(clock)
        self.driver: Any = None
        self.apps: dict[str, dict[str, Any]] = store.load("app")
        self.versions: dict[str, dict[str, Any]] = store.load("version")
        self.tasks: dict[str, TaskRecord] = {k: TaskRecord.from_store(v)
                                             for k, v in store.load("task").items()}
        self._by_app: dict[str, dict[str, TaskRecord]] = {}
        self.tally = Tally()
        for t in self.tasks.values():
            self._by_app.setdefault(t.app_id, {})[t.id] = t
            self.tally.add(t)
        self.deployments: dict[str, Deployment] = {
            k: Deployment.from_store(v) for k, v in store.load("deployment").items()}
        meta = store.load("meta")
        self.framework_id: str | None = meta.get("framework_id")
        self.groups: dict[str, dict[str, Any]] = meta.get("groups", {})
        self.root_version: str = meta.get("root_version") or timestamp(clock())
        # root version -> {app id: app version}: what group versions and rollback read
        self.root_history: dict[str, dict[str, str]] = store.load("root")
        self.last_version = max([v.split("@")[-1] for v in self.versions] or [""])
        self.last_failures: dict[str, dict[str, Any]] = {}
        self.backoffs: dict[str, lq.Backoff] = {}
        self.queued_since: dict[str, float] = {}
        self.wants: dict[str, int] = {}
        self.subscriptions: list[str] = meta.get("subscriptions", [])
        self.offers_seen = self.offers_declined = 0
        self.suppressed = False
        self.revived_at = self.last_offer_at = self.reconciled_at = clock()
        self.unreachable_reconciled_at = self.reconciled_at
        self.leader = f"{self.options.hostname}:{self.options.http_port}"
        self._attrs: dict[str, dict[str, Any]] = {}  # agent id -> attributes (constraints)
        self._init_commit()  # deferred, dirty apps and task records, the write in flight
        # Deferred: offers wait here and the daemon's pump matches them in time slices, so
        # a big Offers message does not hold the event loop (and the API) for seconds.
        self.offer_backlog: dict[str, tuple[m.Offer, float]] = {}  # id -> (offer, since)
        self.on_backlog: Callable[[], None] | None = None
        # task id -> when its Kill went out (-inf: not since this process started)
        self._kill_sent: dict[str, float] = {t.id: float("-inf")
                                             for t in self.tasks.values() if t.killing}

    # ------------------------------------------------------------ helpers

    def now(self) -> float:
        return self.clock()

    def new_version(self) -> str:
        """A timestamp strictly after every earlier version (ms resolution)."""
        t = self.now()
        v = timestamp(t)
        while v <= self.last_version:
            t += 0.001
            v = timestamp(t)
        self.last_version = v
        return v

    def tasks_of(self, app_id: str) -> list[TaskRecord]:
        return list(self._by_app.get(app_id, {}).values())

    def add_task(self, t: TaskRecord) -> None:
        self.tasks[t.id] = t
        self._by_app.setdefault(t.app_id, {})[t.id] = t
        self.tally.add(t)
        self._save_task(t)

    def drop_task(self, task_id: str) -> None:
        t = self.tasks.pop(task_id, None)
        if t is not None:
            self.tally.remove(t)
            per_app = self._by_app.get(t.app_id, {})
            per_app.pop(task_id, None)
            if not per_app:
                self._by_app.pop(t.app_id, None)
        self._dirty_tasks.discard(task_id)
        self.store.delete("task", task_id)

    def deployments_of(self, app_id: str) -> list[Deployment]:
        return [d for d in self.deployments.values() if app_id in d.affected]

    def _save_meta(self) -> None:
        self.store.put("meta", "framework_id", self.framework_id)
        self.store.put("meta", "groups", self.groups)
        self.store.put("meta", "root_version", self.root_version)
        self.store.put("meta", "subscriptions", self.subscriptions)

    # ------------------------------------------------------------ deployments

    def start_deployment(self, target: dict[str, dict[str, Any] | None], force: bool,
                         restart: Iterable[str] = ()) -> Deployment:
        """Commit new definitions (None = remove) and start the deployment that gets there.

        Raises ApiError(409) when an affected app is locked by a running deployment
        (unless `force`, which cancels those deployments without rollback).
        """
        affected = set(target)
        locking = [d for d in self.deployments.values() if d.affected & affected]
        if locking and not force:
            raise ApiError(409, {
                "message": "App is locked by one or more deployments. Override with the option "
                           f"'?force=true'. View details at '/v2/deployments/{locking[0].id}'.",
                "deployments": [{"id": d.id} for d in locking]})
        for d in locking:
            self._finish(d, ok=False, reason="overridden by a forced deployment")
        version = next((doc["version"] for doc in target.values() if doc), None) \
            or self.new_version()
        original = {a: self.apps[a] for a in affected if a in self.apps}
        for aid, doc in target.items():  # the store first: a failed write changes nothing here
            if doc is None:
                self.store.delete("app", aid)
                self.apps.pop(aid, None)
            else:
                self.store.put("version", f"{aid}@{doc['version']}", doc)
                self.store.put("app", aid, doc)
                self.versions[f"{aid}@{doc['version']}"] = doc
                self.apps[aid] = doc
        new = {a: d for a, d in target.items() if d is not None}
        d = Deployment(id=str(self.new_uuid()), version=version,
                       steps=plan(original, new, frozenset(restart)), affected=affected,
                       original=original, target=new)
        self.root_version = version
        self._save_meta()
        self._remember_root(version)
        if d.steps:
            self.deployments[d.id] = d
            self.store.put("deployment", d.id, d.to_store())
            self.events.publish("group_change_success", groupId="/", version=version)
            self._publish_plan("deployment_info", d)
        else:
            self.events.publish("group_change_success", groupId="/", version=version)
        self.tick()
        return d

    def _remember_root(self, version: str) -> None:
        """Keep the last MAX_ROOT_VERSIONS snapshots of which app versions made the root."""
        snap = {aid: app["version"] for aid, app in self.apps.items()}
        self.store.put("root", version, snap)
        self.root_history[version] = snap
        for old in sorted(self.root_history)[:-MAX_ROOT_VERSIONS]:
            self.store.delete("root", old)
            del self.root_history[old]

    def _plan_json(self, d: Deployment) -> dict[str, Any]:
        return {"id": d.id, "version": d.version,
                "original": views.group_doc(d.original, d.version),
                "target": views.group_doc(d.target, d.version),
                "steps": [{"actions": [a.to_json() for a in s]} for s in d.steps]}

    def _publish_plan(self, kind: str, d: Deployment) -> None:
        step = d.steps[min(d.current, len(d.steps) - 1)] if d.steps else ()
        self.events.publish(kind, plan=self._plan_json(d),
                            currentStep={"actions": [a.to_json() for a in step]})

    def _finish(self, d: Deployment, ok: bool, reason: str = "") -> None:
        self.deployments.pop(d.id, None)
        self.store.delete("deployment", d.id)
        if ok:
            self.events.publish("deployment_success", id=d.id, plan=self._plan_json(d))
        else:
            self.events.publish("deployment_failed", id=d.id, plan=self._plan_json(d),
                                reason=reason)

    def cancel_deployment(self, dep_id: str, force: bool) -> Deployment | None:
        """Force: just drop it. Otherwise roll the affected apps back in a new deployment."""
        d = self.deployments.get(dep_id)
        if d is None:
            raise ApiError(404, {"message": f"DeploymentPlan {dep_id} does not exist"})
        self._finish(d, ok=False, reason="canceled")
        if force:
            return None
        target: dict[str, dict[str, Any] | None] = {}
        version = self.new_version()
        for aid in d.affected:
            old, cur = d.original.get(aid), self.apps.get(aid)
            if old is None:
                target[aid] = None
                continue
            doc = {k: v for k, v in old.items() if k not in ("version", "versionInfo")}
            scale_only = cur is not None and not model.needs_restart(cur, old)
            target[aid] = self._versioned(doc, cur, version, scale_only)
        return self.start_deployment(target, force=True)

    def _advance(self, d: Deployment) -> None:
        while d.current < len(d.steps):
            for a in d.steps[d.current]:
                app = None if a.action == STOP else self.apps.get(a.app)
                if a.action != "StartApplication" and not self._progress_done(a.app, app):
                    return
                if a.action == STOP:
                    self.events.publish("app_terminated_event", appId=a.app)
            self._publish_plan("deployment_step_success", d)
            d.current += 1
            if d.current < len(d.steps):
                self.store.put("deployment", d.id, d.to_store())
                self._publish_plan("deployment_info", d)
        self._finish(d, ok=True)

    # ------------------------------------------------------------ the control loop

    def effective_app(self, aid: str) -> dict[str, Any] | None:
        """What the app should look like now: its original while its step is pending."""
        for d in self.deployments.values():
            if aid in d.pending_apps():
                return d.original.get(aid)
        return self.apps.get(aid)

    def tick(self, only: Iterable[str] | None = None) -> None:
        """Drive apps toward their definitions and deployments forward (`only`: just
        those apps, after a status update; the periodic full tick covers the rest)."""
        now = self.now()
        if only is None:
            self._unreachable(now)
            self._kill_again(now)
            if self.driver is not None and now - self.reconciled_at >= \
                    self.options.reconcile_interval:
                self._reconcile(self.driver)
            ids = set(self.apps) | set(self._by_app)
            self.wants = {}
            self._dirty.clear()
        else:
            ids = set(only)
        for d in list(self.deployments.values()):
            self._advance(d)
        for aid in sorted(ids):
            self._drive(aid, now)
        if self.driver is not None:
            if self.wants and (self.suppressed or self._revive_again(now)):
                self.driver.revive_offers()
                self.suppressed = False
                self.revived_at = now
            elif not self.wants and not self.suppressed and not self._waiting():
                self.driver.suppress_offers()
                self.suppressed = True

    def _fast(self, aid: str, app: dict[str, Any] | None) -> tuple[int, int] | None:
        """(active, running) from the tally when the app has no health checks and all its
        active tasks are current and not dying: then step and progress need no scan."""
        if app is None or app.get("healthChecks"):
            return None
        return self.tally.all_current(aid, dep.config_version(app))

    def _progress_done(self, aid: str, app: dict[str, Any] | None) -> bool:
        fast = self._fast(aid, app)
        if fast is not None and app is not None:
            return dep.settled(app, *fast).done
        return dep.progress(app, self.tasks_of(aid)).done

    def _drive(self, aid: str, now: float) -> None:
        app = self.effective_app(aid)
        fast = self._fast(aid, app)
        acts = dep.scale_only(app, fast[0]) if app is not None and fast is not None else None
        if acts is None:
            acts = dep.step(app, self.tasks_of(aid))
        for tid in acts.kill:
            self.kill(tid)
        self.wants.pop(aid, None)
        if app is not None and acts.launch > 0:
            b = self.backoffs.get(aid)
            if b is None or b.until <= now:
                self.wants[aid] = acts.launch
            self.queued_since.setdefault(aid, now)
        else:
            self.queued_since.pop(aid, None)

    def _unreachable(self, now: float) -> None:
        """unreachableStrategy: replace tasks away for inactiveAfterSeconds, forget (and
        kill, should they return) those away for expungeAfterSeconds."""
        if not self.tally.any_in("TASK_UNREACHABLE"):
            return
        away_tasks = [t for t in self.tasks.values() if t.state == "TASK_UNREACHABLE"]
        if self.driver is not None and away_tasks and \
                now - self.unreachable_reconciled_at >= UNREACHABLE_RECONCILE_S:
            self.unreachable_reconciled_at = now
            self.driver.reconcile_tasks([m.ReconcileTask(t.id, t.agent_id) for t in away_tasks])
        for t in list(self.tasks.values()):
            if t.state != "TASK_UNREACHABLE" or t.unreachable_since is None:
                continue
            strategy = (self.apps.get(t.app_id) or {}).get("unreachableStrategy", {})
            if not isinstance(strategy, dict):  # "disabled": wait for it forever
                continue
            away = now - t.unreachable_since
            if away >= strategy.get("expungeAfterSeconds", 0) and \
                    away >= strategy.get("inactiveAfterSeconds", 0) and t.unreachable_inactive:
                log.info("expunging unreachable task %s", t.id)
                self.kill(t.id)  # should it come back; its status is then an unknown task's
                self.drop_task(t.id)
            elif away >= strategy.get("inactiveAfterSeconds", 0) and not t.unreachable_inactive:
                log.info("task %s unreachable for %.0fs: replacing it", t.id, away)
                t.unreachable_inactive = True
                self._save_task(t)

    def _revive_again(self, now: float) -> bool:
        return now - max(self.revived_at, self.last_offer_at) >= REVIVE_AGAIN_S

    def _waiting(self) -> bool:
        """Some app is only held back by its launch delay: keep offers coming."""
        return any(aid in self.queued_since for aid in self.backoffs)

    def kill(self, task_id: str) -> None:
        t = self.tasks.get(task_id)
        if t is None:
            return
        t.killing = True
        self._save_task(t)
        self._kill_sent[t.id] = float("-inf")  # not sent yet: the next full tick sends it
        if self.driver is not None:
            self._kill_sent[t.id] = self.now()
            self.driver.kill_task(t.id, t.agent_id)

    def _kill_again(self, now: float) -> None:
        """Tasks we asked to die that still live after KILL_RETRY_S (or since a restart);
        only the ones being killed are looked at, not every task."""
        for tid, at in list(self._kill_sent.items()):
            t = self.tasks.get(tid)
            if t is None or not t.active:
                del self._kill_sent[tid]
            elif now - at >= KILL_RETRY_S and t.state != "TASK_UNREACHABLE":
                self.kill(tid)

    # ------------------------------------------------------------ scheduler callbacks

    def registered(self, driver: Any, framework_id: str, master_info: dict[str, Any]) -> None:
        log.info("registered as framework %s", framework_id)
        self.framework_id = framework_id
        self._save_meta()
        self._reconcile(driver)
        self._settle()

    def reregistered(self, driver: Any, master_info: dict[str, Any]) -> None:
        log.info("re-registered with master %s", master_info.get("id"))
        self._reconcile(driver)

    def _reconcile(self, driver: Any) -> None:
        self.offer_backlog.clear()  # offers of an earlier subscription are void
        self.reconciled_at = self.now()
        self.suppressed = False
        driver.revive_offers()
        if self.tasks:
            driver.reconcile_tasks([m.ReconcileTask(t.id, t.agent_id)
                                    for t in self.tasks.values()])
        driver.reconcile_tasks([])  # implicit: learn of tasks we have no record of

    def resource_offers(self, driver: Any, offers: list[m.Offer]) -> None:
        now = self.last_offer_at = self.now()
        if self.deferred:
            self.offer_backlog.update((o.id, (o, now)) for o in offers)
            if self.on_backlog is not None:
                self.on_backlog()
            return
        self._match_offers(driver, offers)
        self._settle()

    def place_backlog(self, stop: Callable[[], bool]) -> bool:
        """Match backlog offers one at a time until `stop()`; True when some are left.
        Launches and declines go through the driver, which sends them after its next
        burst's commit."""
        while self.offer_backlog and not stop():
            offer, since = self.offer_backlog.pop(next(iter(self.offer_backlog)))
            if self.now() - since > OFFER_MAX_AGE:
                log.warning("dropping offer %s: %.0fs in the backlog", offer.id,
                            self.now() - since)
                continue
            self._match_offers(self.driver, [offer])
        return bool(self.offer_backlog)

    def _match_offers(self, driver: Any, offers: list[m.Offer]) -> None:
        for offer in offers:
            self._attrs[offer.agent_id] = dict(offer.attributes)
        apps = {a: self.effective_app(a) for a, n in self.wants.items() if n > 0}
        placed = {a: [lq.Placement(t.host, self._attrs.get(t.agent_id, {}))
                      for t in self.tasks_of(a) if t.active]
                  for a, app in apps.items() if app is not None and app.get("constraints")}
        for offer in offers:
            self.offers_seen += 1
            wants = [lq.Want(app, self.wants[a]) for a, app in apps.items()
                     if app is not None and self.wants.get(a, 0) > 0]
            launches = lq.match(offer, wants, placed,
                                lambda aid: new_task_id(aid, self.new_uuid()))
            if not launches:
                self.offers_declined += 1
                driver.decline_offer(offer.id, self.options.decline_seconds)
                continue
            now = self.now()
            for ln in launches:
                t = TaskRecord(id=ln.task.task_id, app_id=ln.app_id, version=ln.version,
                               agent_id=offer.agent_id, host=offer.hostname,
                               ports=list(ln.ports), staged_at=now,
                               config_version=dep.config_version(apps[ln.app_id]))
                self.add_task(t)
                self.wants[ln.app_id] -= 1
                if ln.app_id in placed:
                    placed[ln.app_id].append(lq.Placement(offer.hostname, offer.attributes))
            driver.launch_tasks(offer.id, [ln.task for ln in launches])

    def offer_rescinded(self, driver: Any, offer_id: str) -> None:
        self.offer_backlog.pop(offer_id, None)

    def status_update(self, driver: Any, st: m.TaskStatus) -> None:
        t = self.tasks.get(st.task_id)
        now = self.now()
        if t is None:
            # Not TASK_UNREACHABLE: the master answers a Kill of one with that state again,
            # and killing it once more would loop at network speed (found by the
            # simulation, seed 5). Should its agent come back, reconciliation reports it.
            if st.state not in TERMINAL and st.state != "TASK_UNREACHABLE":
                log.info("killing unknown task %s (%s)", st.task_id, st.state)
                driver.kill_task(st.task_id, st.agent_id)
            return
        t.state = st.state
        if st.healthy is not None:
            t.mesos_healthy = st.healthy
        if st.state == "TASK_UNREACHABLE":
            t.unreachable_since = t.unreachable_since or now
        else:
            t.unreachable_since, t.unreachable_inactive = None, False
        if st.state == "TASK_RUNNING" and t.started_at is None:
            t.started_at = now
            self.backoffs.pop(t.app_id, None)
        if self.events.listening():
            self.events.publish("status_update_event", slaveId=t.agent_id, taskId=t.id,
                                taskStatus=st.state, message=st.message, appId=t.app_id,
                                host=t.host, ipAddresses=[{"ipAddress": t.host,
                                                           "protocol": "IPv4"}],
                                ports=t.ports, version=t.version)
        if st.state in TERMINAL:
            self.drop_task(t.id)
            if st.state in FAILED or (st.state != "TASK_KILLED" and not t.killing):
                self._failed(t, st, now)
        else:
            self._save_task(t)
        self._dirty.add(t.app_id)
        self._settle()

    def _failed(self, t: TaskRecord, st: m.TaskStatus, now: float) -> None:
        app = self.apps.get(t.app_id)
        self.last_failures[t.app_id] = {
            "appId": t.app_id, "host": t.host, "message": st.message, "state": st.state,
            "taskId": t.id, "instanceId": t.instance_id, "timestamp": timestamp(now),
            "version": t.version, "slaveId": t.agent_id}
        if app is not None and not t.killing and st.reason not in NOT_THE_APPS_FAULT:
            self.backoffs.setdefault(t.app_id, lq.Backoff()).failed(app, now)

    def agent_lost(self, driver: Any, agent_id: str) -> None:
        log.warning("agent %s lost", agent_id)

    def disconnected(self, driver: Any) -> None:
        log.warning("disconnected from the master")
        self.offer_backlog.clear()

    def error(self, driver: Any, message: str) -> None:
        log.error("framework error from the master: %s", message)

    def framework_info(self) -> m.FrameworkInfo:
        return m.FrameworkInfo(name=self.options.framework_name, id=self.framework_id,
                               failover_timeout=self.options.failover_timeout,
                               hostname=self.options.hostname, checkpoint=True,
                               capabilities=("PARTITION_AWARE",))
