"""What every part of the Marathon core shares: the state, the effects being collected, the
deployments and the control loop that drives apps toward their definitions.

All decisions are the pure modules' (`model` validates, `planner` plans, `deployment.step`
says what to kill and launch, `launch_queue.match` packs offers); this keeps the state and
turns decisions into effects. Every change is written (`Put`/`Delete`) as it is made; the
runtime makes the writes durable (`Commit`) before it answers or sends anything for them.
"""
from __future__ import annotations

import copy
import logging
import uuid
from collections.abc import Callable, Iterable
from typing import Any

from marathon import core_events as ev
from marathon import deployment as dep
from marathon import model, views
from marathon.core_state import Deployment, MarathonState, Options
from marathon.errors import ApiError
from marathon.model import timestamp
from marathon.planner import STOP, plan
from marathon.tracker import TaskRecord
from mesos_common import messages as m

log = logging.getLogger("marathon.core")

MAX_ROOT_VERSIONS = 50
# A Revive can be lost (a ZeroMQ reconnect drops what was queued): while tasks wait and no
# offer came for this long, revive again (Marathon's --revive_offers_repetitions).
REVIVE_AGAIN_S = 10.0
# A Kill can be lost too: kill again tasks still alive this long after (--kill_retry_timeout).
KILL_RETRY_S = 10.0
# The master tells no one when an unreachable agent re-registers (Mesos): ask after the tasks
# we hold unreachable this often, so that the surplus of a healed partition is seen and killed.
UNREACHABLE_RECONCILE_S = 5.0
SERVICE_PORTS = (10000, 20000)
# Deferred, status updates only mark their app dirty; dirty apps are driven at most this
# often (their tick scans their tasks; flushes come every few milliseconds under load).
DIRTY_TICK_INTERVAL = 0.1


class CoreBase:
    def __init__(self, state: MarathonState, options: Options,
                 new_uuid: Callable[[], uuid.UUID], deferred: bool = False) -> None:
        self.state = state
        self.options = options
        self.new_uuid = new_uuid
        # deferred (the daemon): offers wait for the pump, and dirty apps are driven and
        # changes committed once per burst (Flush); otherwise every callback settles itself
        self.deferred = deferred
        self.now = 0.0
        self._fx: list[Any] = []
        self._dirty_ticked_at: float | None = None

    # ------------------------------------------------------------ effects

    def _put(self, kind: str, key: str, doc: Any) -> None:
        self._fx.append(ev.Put(kind, key, doc))

    def _delete(self, kind: str, key: str) -> None:
        self._fx.append(ev.Delete(kind, key))

    def _publish(self, event_type: str, **payload: Any) -> None:
        self._fx.append(ev.Publish(event_type, payload))

    # ------------------------------------------------------------ helpers

    def new_version(self) -> str:
        """A timestamp strictly after every earlier version (ms resolution)."""
        t = self.now
        v = timestamp(t)
        while v <= self.state.last_version:
            t += 0.001
            v = timestamp(t)
        self.state.last_version = v
        return v

    def add_task(self, t: TaskRecord) -> None:
        st = self.state
        st.tasks[t.id] = t
        st.by_app.setdefault(t.app_id, {})[t.id] = t
        st.tally.add(t)
        self._save_task(t)

    def drop_task(self, task_id: str) -> None:
        st = self.state
        t = st.tasks.pop(task_id, None)
        if t is not None:
            st.tally.remove(t)
            per_app = st.by_app.get(t.app_id, {})
            per_app.pop(task_id, None)
            if not per_app:
                st.by_app.pop(t.app_id, None)
        st.dirty_tasks.discard(task_id)
        self._delete("task", task_id)

    def _save_task(self, t: TaskRecord) -> None:
        self.state.dirty_tasks.add(t.id)  # serialised once per commit, however often changed

    def _save_meta(self) -> None:
        st = self.state
        self._put("meta", "framework_id", st.framework_id)
        self._put("meta", "groups", st.groups)
        self._put("meta", "root_version", st.root_version)
        self._put("meta", "subscriptions", st.subscriptions)

    # ------------------------------------------------------------ commits

    def _settle(self) -> None:
        """Not deferred, a callback's changes are driven and committed at once."""
        if not self.deferred:
            self._flush()

    def _flush(self, drive: bool = True) -> None:
        """Drive the apps whose tasks changed, stage the task records, commit. Deferred,
        dirty apps are driven at most every DIRTY_TICK_INTERVAL (or ten times what the
        last flush cost, `FlushCost`); the periodic full tick covers every app anyway."""
        st = self.state
        self._dirty_ticked_at = None
        if drive and st.dirty and (not self.deferred or self.now >= st.dirty_tick_at):
            dirty, st.dirty = st.dirty, set()
            self.tick(dirty)
            self._dirty_ticked_at = self.now
            st.dirty_tick_at = self.now + DIRTY_TICK_INTERVAL
        self._stage_tasks()
        self._fx.append(ev.Commit())

    def _flush_cost(self, seconds: float) -> None:
        if self._dirty_ticked_at is not None:  # at most ~10% of the loop on dirty ticks
            self.state.dirty_tick_at = max(self.state.dirty_tick_at,
                                           self._dirty_ticked_at + 10 * seconds)

    def _stage_tasks(self) -> None:
        st = self.state
        dirty, st.dirty_tasks = st.dirty_tasks, set()
        tasks = st.tasks
        docs = {tid: tasks[tid].to_store() for tid in dirty if tid in tasks}
        if docs:
            self._fx.append(ev.PutAll("task", docs))

    # ------------------------------------------------------------ deployments

    def start_deployment(self, target: dict[str, dict[str, Any] | None], force: bool,
                         restart: Iterable[str] = ()) -> Deployment:
        """Write new definitions (None = remove) and start the deployment that gets there.

        Raises ApiError(409) when an affected app is locked by a running deployment
        (unless `force`, which cancels those deployments without rollback).
        """
        st = self.state
        affected = set(target)
        locking = [d for d in st.deployments.values() if d.affected & affected]
        if locking and not force:
            raise ApiError(409, {
                "message": "App is locked by one or more deployments. Override with the option "
                           f"'?force=true'. View details at '/v2/deployments/{locking[0].id}'.",
                "deployments": [{"id": d.id} for d in locking]})
        for d in locking:
            self._finish(d, ok=False, reason="overridden by a forced deployment")
        version = next((doc["version"] for doc in target.values() if doc), None) \
            or self.new_version()
        original = {a: st.apps[a] for a in affected if a in st.apps}
        for aid, doc in target.items():
            if doc is None:
                self._delete("app", aid)
                st.apps.pop(aid, None)
            else:
                self._put("version", f"{aid}@{doc['version']}", doc)
                self._put("app", aid, doc)
                st.versions[f"{aid}@{doc['version']}"] = doc
                st.apps[aid] = doc
        new = {a: d for a, d in target.items() if d is not None}
        d = Deployment(id=str(self.new_uuid()), version=version,
                       steps=plan(original, new, frozenset(restart)), affected=affected,
                       original=original, target=new)
        st.root_version = version
        self._save_meta()
        self._remember_root(version)
        self._publish("group_change_success", groupId="/", version=version)
        if d.steps:
            st.deployments[d.id] = d
            self._put("deployment", d.id, d.to_store())
            self._publish_plan("deployment_info", d)
        self.tick()
        return d

    def _remember_root(self, version: str) -> None:
        """Keep the last MAX_ROOT_VERSIONS snapshots of which app versions made the root."""
        st = self.state
        snap = {aid: app["version"] for aid, app in st.apps.items()}
        self._put("root", version, snap)
        st.root_history[version] = snap
        for old in sorted(st.root_history)[:-MAX_ROOT_VERSIONS]:
            self._delete("root", old)
            del st.root_history[old]

    def _plan_json(self, d: Deployment) -> dict[str, Any]:
        return {"id": d.id, "version": d.version,
                "original": views.group_doc(d.original, d.version),
                "target": views.group_doc(d.target, d.version),
                "steps": [{"actions": [a.to_json() for a in s]} for s in d.steps]}

    def _publish_plan(self, kind: str, d: Deployment) -> None:
        step = d.steps[min(d.current, len(d.steps) - 1)] if d.steps else ()
        self._publish(kind, plan=self._plan_json(d),
                      currentStep={"actions": [a.to_json() for a in step]})

    def _finish(self, d: Deployment, ok: bool, reason: str = "") -> None:
        self.state.deployments.pop(d.id, None)
        self._delete("deployment", d.id)
        if ok:
            self._publish("deployment_success", id=d.id, plan=self._plan_json(d))
        else:
            self._publish("deployment_failed", id=d.id, plan=self._plan_json(d),
                          reason=reason)

    def _advance(self, d: Deployment) -> None:
        while d.current < len(d.steps):
            for a in d.steps[d.current]:
                app = None if a.action == STOP else self.state.apps.get(a.app)
                if a.action != "StartApplication" and not self._progress_done(a.app, app):
                    return
                if a.action == STOP:
                    self._publish("app_terminated_event", appId=a.app)
            self._publish_plan("deployment_step_success", d)
            d.current += 1
            if d.current < len(d.steps):
                self._put("deployment", d.id, d.to_store())
                self._publish_plan("deployment_info", d)
        self._finish(d, ok=True)

    # ------------------------------------------------------------ the control loop

    def tick(self, only: Iterable[str] | None = None) -> None:
        """Drive apps toward their definitions and deployments forward (`only`: just
        those apps, after a status update; the periodic full tick covers the rest)."""
        st, now = self.state, self.now
        if only is None:
            self._unreachable(now)
            self._kill_again(now)
            self._give_back_agents()
            if now - st.reconciled_at >= self.options.reconcile_interval:
                self._reconcile()
            ids = set(st.apps) | set(st.by_app)
            st.wants = {}
            st.dirty.clear()
        else:
            ids = set(only)
        for d in list(st.deployments.values()):
            self._advance(d)
        for aid in sorted(ids):
            self._drive(aid, now)
        if st.wants and (st.suppressed or self._revive_again(now)):
            self._fx.append(ev.Revive())
            st.suppressed = False
            st.revived_at = now
        elif not st.wants and not st.suppressed and not self._waiting():
            self._fx.append(ev.Suppress())
            st.suppressed = True

    def _fast(self, aid: str, app: dict[str, Any] | None) -> tuple[int, int] | None:
        """(active, killing) from the counts when no task needs a closer look (no health
        checks, every active task current), else None: the control loop must scan."""
        if app is None or app.get("healthChecks") or app.get("readinessChecks"):
            return None
        return self.state.tally.all_current(aid, dep.config_version(app))

    def _progress_done(self, aid: str, app: dict[str, Any] | None) -> bool:
        fast = self._fast(aid, app)
        if fast is not None and app is not None:
            return dep.settled(app, *fast).done
        return dep.progress(app, self.state.tasks_of(aid)).done

    def _drive(self, aid: str, now: float) -> None:
        st = self.state
        app = st.effective_app(aid)
        fast = self._fast(aid, app)
        acts = dep.scale_only(app, fast[0]) if app is not None and fast is not None else None
        if acts is None:
            acts = dep.step(app, st.tasks_of(aid))
        for tid in acts.kill:
            self.kill(tid)
        st.wants.pop(aid, None)
        if app is not None and acts.launch > 0:
            b = st.backoffs.get(aid)
            if b is None or b.until <= now:
                st.wants[aid] = acts.launch
            st.queued_since.setdefault(aid, now)
        else:
            st.queued_since.pop(aid, None)
            st.offer_log.forget(aid)

    def _unreachable(self, now: float) -> None:
        """unreachableStrategy: replace tasks away for inactiveAfterSeconds, forget (and
        kill, should they return) those away for expungeAfterSeconds."""
        st = self.state
        if not st.tally.any_in("TASK_UNREACHABLE"):
            return
        away_tasks = [t for t in st.tasks.values() if t.state == "TASK_UNREACHABLE"]
        if away_tasks and now - st.unreachable_reconciled_at >= UNREACHABLE_RECONCILE_S:
            st.unreachable_reconciled_at = now
            self._fx.append(ev.Reconcile(tuple(m.ReconcileTask(t.id, t.agent_id)
                                               for t in away_tasks)))
        for t in list(st.tasks.values()):
            if t.state != "TASK_UNREACHABLE" or t.unreachable_since is None:
                continue
            strategy = (st.apps.get(t.app_id) or {}).get("unreachableStrategy", {})
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

    def _give_back_agents(self) -> None:
        """Accept the inverse offers of agents none of our tasks runs on any more."""
        st = self.state
        for agent in [a for a, until in st.unavailable_until.items() if until <= self.now]:
            del st.unavailable_until[agent]
        if not st.inverse_offers:
            return
        busy = {t.agent_id for t in st.tasks.values() if t.active}
        done = sorted(a for a in st.inverse_offers if a not in busy)
        if done:
            self._fx.append(ev.AcceptInverseOffers(tuple(st.inverse_offers.pop(a) for a in done)))

    def _revive_again(self, now: float) -> bool:
        st = self.state
        return now - max(st.revived_at, st.last_offer_at) >= REVIVE_AGAIN_S

    def _waiting(self) -> bool:
        """Some app is only held back by its launch delay: keep offers coming."""
        st = self.state
        return any(aid in st.queued_since for aid in st.backoffs)

    def kill(self, task_id: str) -> None:
        t = self.state.tasks.get(task_id)
        if t is None:
            return
        t.killing = True
        self._save_task(t)
        self.state.kill_sent[t.id] = self.now
        self._fx.append(ev.Kill(t.id, t.agent_id))

    def _kill_again(self, now: float) -> None:
        """Tasks we asked to die that still live after KILL_RETRY_S (or since a restart);
        only the ones being killed are looked at, not every task."""
        st = self.state
        for tid, at in list(st.kill_sent.items()):
            t = st.tasks.get(tid)
            if t is None or not t.active:
                del st.kill_sent[tid]
            elif now - at >= KILL_RETRY_S and t.state != "TASK_UNREACHABLE":
                self.kill(tid)

    def _reconcile(self) -> None:
        st = self.state
        st.offer_backlog.clear()  # offers of an earlier subscription are void
        st.reconciled_at = self.now
        st.suppressed = False
        self._fx.append(ev.Revive())
        if st.tasks:
            self._fx.append(ev.Reconcile(tuple(m.ReconcileTask(t.id, t.agent_id)
                                               for t in st.tasks.values())))
        self._fx.append(ev.Reconcile(()))  # implicit: learn of tasks we have no record of

    # ------------------------------------------------------------ building versions

    def _assign_ports(self, doc: dict[str, Any], previous: dict[str, Any] | None) -> None:
        """Port 0 in portDefinitions / servicePort 0 in portMappings -> a free service port,
        keeping the ports the previous version had at the same index."""
        used = {p for aid, app in self.state.apps.items() if aid != doc["id"]
                for p in views.service_ports(app) if p}
        prev = views.service_ports(previous) if previous else []
        if "portDefinitions" in doc:
            items, key = doc["portDefinitions"], "port"
        else:
            items, key = (doc.get("container") or {}).get("portMappings", []), "servicePort"
        nxt = SERVICE_PORTS[0]
        for i, p in enumerate(items):
            if p.get(key):
                continue
            if i < len(prev) and prev[i] and prev[i] not in used:
                p[key] = prev[i]
            else:
                while nxt in used:
                    nxt += 1
                if nxt >= SERVICE_PORTS[1]:
                    raise ApiError(422, {"message": "no service ports left"})
                p[key] = nxt
            used.add(p[key])

    def _versioned(self, doc: dict[str, Any], previous: dict[str, Any] | None,
                   version: str, scale_only: bool = False) -> dict[str, Any]:
        doc = copy.deepcopy(doc)
        self._assign_ports(doc, previous)
        doc["version"] = version
        last_config = (previous or {}).get("versionInfo", {}).get("lastConfigChangeAt")
        if previous is None or not scale_only:
            last_config = version
        doc["versionInfo"] = {"lastScalingAt": version, "lastConfigChangeAt": last_config}
        return doc

    def _changed(self, old: dict[str, Any], cur: dict[str, Any] | None,
                 version: str) -> dict[str, Any]:
        """`old`'s definition as a new version (a rollback), scaling only when it can."""
        doc = {k: v for k, v in old.items() if k not in ("version", "versionInfo")}
        scale_only = cur is not None and not model.needs_restart(cur, old)
        return self._versioned(doc, cur, version, scale_only)
