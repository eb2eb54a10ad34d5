"""The scheduler side of the Marathon core: registration, offers, status updates, and the
results of Marathon's own health probes."""
from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from marathon import core_events as ev
from marathon import deployment as dep
from marathon import launch_queue as lq
from marathon.core_base import CoreBase
from marathon.model import marathon_checks, new_task_id, timestamp
from marathon.tracker import FAILED, TERMINAL, Health, TaskRecord
from mesos_common import messages as m

log = logging.getLogger("marathon.core")

OFFER_MAX_AGE = 30.0  # a backlog offer older than this is dropped (the master times it out)
# launches that failed before the task ever ran, through no fault of the app: no backoff
NOT_THE_APPS_FAULT = frozenset({"REASON_INVALID_OFFERS", "REASON_MASTER_DISCONNECTED"})


class SchedulerHandlers(CoreBase):
    def registered(self, e: ev.Registered) -> None:
        log.info("registered as framework %s", e.framework_id)
        self.state.framework_id = e.framework_id
        self._save_meta()
        self._reconcile()
        self._settle()

    def reregistered(self, e: ev.Reregistered) -> None:
        log.info("re-registered with master %s", (e.master_info or {}).get("id"))
        self._reconcile()

    def disconnected(self, e: ev.Disconnected) -> None:
        log.warning("disconnected from the master")
        self.state.offer_backlog.clear()

    def offers(self, e: ev.Offers) -> None:
        st = self.state
        st.last_offer_at = self.now
        if self.deferred:
            st.offer_backlog.update((o.id, (o, self.now)) for o in e.offers)
            self._fx.append(ev.WakePump())
            return
        self._match_offers(e.offers)
        self._settle()

    def place_backlog(self, e: ev.PlaceBacklog) -> None:
        """Match the oldest backlog offer; the driver sends its launches and declines
        after its next burst's commit."""
        st = self.state
        if not st.offer_backlog:
            return
        offer, since = st.offer_backlog.pop(next(iter(st.offer_backlog)))
        if self.now - since > OFFER_MAX_AGE:
            log.warning("dropping offer %s: %.0fs in the backlog", offer.id, self.now - since)
            return
        self._match_offers((offer,))

    def _match_offers(self, offers: tuple[m.Offer, ...]) -> None:
        st = self.state
        for offer in offers:
            st.agent_attrs[offer.agent_id] = dict(offer.attributes)
        apps = {a: app for a, n in st.wants.items()
                if n > 0 and (app := st.effective_app(a)) is not None}
        placed = {a: [lq.Placement(t.host, st.agent_attrs.get(t.agent_id, {}))
                      for t in st.tasks_of(a) if t.active]
                  for a, app in apps.items() if app.get("constraints")}
        for offer in offers:
            st.offers_seen += 1
            if offer.agent_id in st.inverse_offers or \
                    st.unavailable_until.get(offer.agent_id, 0.0) > self.now:
                st.offers_declined += 1  # wanted back for maintenance: nothing new there
                self._fx.append(ev.Decline(offer.id, self.options.decline_seconds))
                continue
            wants = [lq.Want(app, st.wants[a]) for a, app in apps.items()
                     if st.wants.get(a, 0) > 0]
            launches = lq.match(offer, wants, placed,
                                lambda aid: new_task_id(aid, self.new_uuid()))
            st.offer_log.record(offer, wants, {ln.app_id for ln in launches}, placed,
                                self.now)
            if not launches:
                st.offers_declined += 1
                self._fx.append(ev.Decline(offer.id, self.options.decline_seconds))
                continue
            for ln in launches:
                t = TaskRecord(id=ln.task.task_id, app_id=ln.app_id, version=ln.version,
                               agent_id=offer.agent_id, host=offer.hostname,
                               ports=list(ln.ports), staged_at=self.now,
                               config_version=dep.config_version(apps[ln.app_id]))
                self.add_task(t)
                st.wants[ln.app_id] -= 1
                if ln.app_id in placed:
                    placed[ln.app_id].append(lq.Placement(offer.hostname, offer.attributes))
            self._fx.append(ev.Launch(offer.id, tuple(ln.task for ln in launches)))

    def inverse_offers(self, e: ev.InverseOffers) -> None:
        """The master wants these agents back: our tasks there become old ones, replaced
        elsewhere within each app's upgrade strategy before they are killed (deployment.step);
        the inverse offer is accepted once none is left (`_give_back_agents`)."""
        st = self.state
        agents = {io.agent_id: io.id for io in e.inverse_offers}
        st.inverse_offers.update(agents)
        for io in e.inverse_offers:
            if io.duration is not None:
                st.unavailable_until[io.agent_id] = io.start + io.duration
        for t in st.tasks.values():
            if t.agent_id in agents and t.active and not t.draining:
                log.info("task %s is on agent %s, wanted back: replacing it", t.id, t.agent_id)
                t.draining = True
                self._save_task(t)
                st.dirty.add(t.app_id)
        self._settle()

    def offer_rescinded(self, e: ev.OfferRescinded) -> None:
        self.state.offer_backlog.pop(e.offer_id, None)

    def status_update(self, e: ev.StatusUpdate) -> None:
        st, s, now = self.state, e.status, self.now
        t = st.tasks.get(s.task_id)
        if t is None:
            # Not TASK_UNREACHABLE: the master answers a Kill of one with that state again,
            # and killing it once more would loop at network speed (found by the
            # simulation, seed 5). Should its agent come back, reconciliation reports it.
            if s.state not in TERMINAL and s.state != "TASK_UNREACHABLE":
                log.info("killing unknown task %s (%s)", s.task_id, s.state)
                self._fx.append(ev.Kill(s.task_id, s.agent_id))
            return
        t.state = s.state
        if s.healthy is not None:
            self._mesos_health(t, s)
        if s.state == "TASK_UNREACHABLE":
            t.unreachable_since = t.unreachable_since or now
        else:
            t.unreachable_since, t.unreachable_inactive = None, False
        if s.state == "TASK_RUNNING" and t.started_at is None:
            t.started_at = now
            st.backoffs.pop(t.app_id, None)
        if st.listening():
            self._publish("status_update_event", slaveId=t.agent_id, taskId=t.id,
                          taskStatus=s.state, message=s.message, appId=t.app_id,
                          host=t.host, ipAddresses=[{"ipAddress": t.host, "protocol": "IPv4"}],
                          ports=t.ports, version=t.version)
        if s.state in TERMINAL:
            self.drop_task(t.id)
            if s.state in FAILED or (s.state != "TASK_KILLED" and not t.killing):
                self._failed(t, s, now)
        else:
            self._save_task(t)
        st.dirty.add(t.app_id)
        self._settle()

    def _mesos_health(self, t: TaskRecord, s: m.TaskStatus) -> None:
        """The agent-run check's verdict: the agent sends one when it changes (and the
        grace period is the agent's), so each counts."""
        if t.mesos_health is None:
            t.mesos_health = Health()
        was = t.mesos_healthy
        t.mesos_healthy = s.healthy
        t.mesos_health.record(bool(s.healthy), self.now, s.message)
        if was != s.healthy and self.state.listening():
            self._publish("health_status_changed_event", appId=t.app_id,
                          instanceId=t.instance_id, version=t.version, alive=s.healthy)

    def _failed(self, t: TaskRecord, s: m.TaskStatus, now: float) -> None:
        app = self.state.apps.get(t.app_id)
        self.state.last_failures[t.app_id] = {
            "appId": t.app_id, "host": t.host, "message": s.message, "state": s.state,
            "taskId": t.id, "instanceId": t.instance_id, "timestamp": timestamp(now),
            "version": t.version, "slaveId": t.agent_id}
        if app is not None and not t.killing and s.reason not in NOT_THE_APPS_FAULT:
            self.state.backoffs.setdefault(t.app_id, lq.Backoff()).failed(app, now)

    def readiness_result(self, e: ev.ReadinessResult) -> None:
        """Record one readiness probe; a task once ready stays ready (Marathon stops
        probing it), and its deployment step may move on."""
        t = self.state.tasks.get(e.task_id)
        if t is None or t.ready or not t.running:
            return
        t.readiness = dict(e.result, taskId=t.id, ready=e.ready)
        self._save_task(t)
        if e.ready:
            t.ready = True
            self.tick([t.app_id])

    def health_result(self, e: ev.HealthResult) -> None:
        """Record one probe result; a task that failed too often is killed and replaced."""
        t = self.state.tasks.get(e.task_id)
        app = self.state.apps.get(t.app_id) if t is not None else None
        checks = marathon_checks(app) if app is not None else []
        if t is None or e.index >= len(checks):
            return  # gone, or its app changed while the probe ran
        hc, now = checks[e.index], self.now
        while len(t.health) <= e.index:
            t.health.append(Health())
        h = t.health[e.index]
        was = h.alive
        in_grace = not e.alive and h.first_success is None and t.started_at is not None \
            and now - t.started_at < hc.get("gracePeriodSeconds", 300)
        if in_grace:
            h.last_failure, h.last_failure_cause = now, e.cause
        else:
            h.record(e.alive, now, e.cause)
        if not e.alive:
            limit = int(hc.get("maxConsecutiveFailures", 3))
            if limit and h.consecutive_failures >= limit and not t.killing:
                log.info("killing unhealthy task %s: %s", t.id, e.cause)
                self._publish("unhealthy_instance_kill_event", appId=t.app_id, taskId=t.id,
                              instanceId=t.instance_id, version=t.version,
                              reason=e.cause, host=t.host, slaveId=t.agent_id)
                self.kill(t.id)
        if was != h.alive:
            self._publish("health_status_changed_event", appId=t.app_id,
                          instanceId=t.instance_id, version=t.version, alive=h.alive)
            self.tick([t.app_id])


#: The scheduler's callbacks and results handled here (marathon/core.py composes the table).
EVENTS: dict[type, Callable[[SchedulerHandlers, Any], None]] = {
    ev.Registered: SchedulerHandlers.registered,
    ev.Reregistered: SchedulerHandlers.reregistered,
    ev.Offers: SchedulerHandlers.offers,
    ev.OfferRescinded: SchedulerHandlers.offer_rescinded,
    ev.InverseOffers: SchedulerHandlers.inverse_offers,
    ev.StatusUpdate: SchedulerHandlers.status_update,
    ev.Disconnected: SchedulerHandlers.disconnected,
    ev.PlaceBacklog: SchedulerHandlers.place_backlog,
    ev.HealthResult: SchedulerHandlers.health_result,
    ev.ReadinessResult: SchedulerHandlers.readiness_result,
}
