"""Framework lifecycle (subscribe, failover, liveness, teardown) and the offer cycle
(allocation -> Offers -> Accept/Decline/rescind)."""
from __future__ import annotations

import math
from collections import deque
from collections.abc import Iterator

import attrs

from mesos_common import messages as m
from mesos_common import task_states as ts
from mesos_common.resources import Resources
from mesos_master import validation
from mesos_master.allocator.base import OfferGrant
from mesos_master.core_auth import AuthHandlers
from mesos_master.core_base import DONE, MessageTable
from mesos_master.core_drain import DrainHandlers
from mesos_master.core_executors import ExecutorHandlers
from mesos_master.core_reservations import ReservationHandlers
from mesos_master.state import Framework, Offer, Task

REASON_INVALID_OFFERS = "REASON_INVALID_OFFERS"
REASON_TASK_INVALID = "REASON_TASK_INVALID"
REASON_FRAMEWORK_REMOVED = "REASON_FRAMEWORK_REMOVED"
REASON_TASK_UNAUTHORIZED = "REASON_TASK_UNAUTHORIZED"
# Tasks of one ACCEPT booked between two pieces of `Master.handle_in_pieces`: one
# transport batch of RunTasks (transport.BATCH_MAX), so the first goes out after ~0.5 ms of
# booking instead of after the whole ACCEPT (~5-10 ms for 1,000 tasks).
ACCEPT_PIECE = 64


class FrameworkHandlers(AuthHandlers, ExecutorHandlers, ReservationHandlers, DrainHandlers):

    # ---------------------------------------------------------------- subscription

    def _on_subscribe(self, msg: m.Subscribe, peer: bytes) -> None:
        info = msg.framework_info
        ref = self.peers.get(peer)
        if ref is not None and ref[0] == "agent":
            return self._protocol_error(peer, msg, "connection is an agent")
        error = self._subscribe_error(info)
        if error:
            self._log("warning", f"refused subscription from {peer!r}: {error}")
            return self._send(peer, m.Error(error))
        allowed, principal = self._framework_principal(peer, msg)
        if not allowed:
            return None
        if principal != info.principal:
            info = attrs.evolve(info, principal=principal)
        if ref is not None and info.id is None and ref[0] == "framework":
            fw = self.frameworks.get(ref[1])
            if fw is not None and fw.connected and fw.info.name == info.name:
                # A retried first Subscribe (its answer was slow or lost): same framework, as
                # Mesos answers a duplicate registration from a registered pid.
                fw.last_seen = self.now
                return self._send(peer, m.Subscribed(fw.id, self.config.master_id,
                                                     self.config.heartbeat_interval))
        if ref is not None and ref[1] != info.id:  # another framework on a reused connection:
            self._disconnect(self.frameworks[ref[1]], "its connection subscribed another one")
        fw_id = info.id or self.ids.next("F")
        info = attrs.evolve(info, id=fw_id, roles=info.roles or ("*",))
        fw = self.frameworks.get(fw_id)
        if fw is None:
            self.counters["messages_register_framework"] += 1
            fw = Framework(id=fw_id, info=info, peer=peer, registered_time=self.now,
                           last_seen=self.now)
            fw.completed_tasks = deque(maxlen=self.config.max_completed_tasks_per_framework)
            self.frameworks[fw_id] = fw
            self.allocator.add_framework(fw_id, fw.roles, {}, active=True)
        else:
            self.counters["messages_reregister_framework"] += 1
            self._resubscribe(fw, info, peer)
        self.allocator.set_gpu_capable(fw_id, "GPU_RESOURCES" in info.capabilities)
        self.peers[peer] = ("framework", fw_id)
        self._send(peer, m.Subscribed(fw_id, self.config.master_id,
                                      self.config.heartbeat_interval))
        self._ask_again(fw)
        self._log("info", f"framework {fw_id} ({info.name}) subscribed from {peer!r}")
        self._request_allocation()

    def _subscribe_error(self, info: m.FrameworkInfo) -> str | None:
        if info.id:
            error = validation.validate_id("framework id", info.id)
            if error:
                return error
            if self._is_completed_framework(info.id):
                return f"framework {info.id} has been removed"
        for role in info.roles:
            try:
                Resources.parse("cpus:1", default_role=role)
            except ValueError:
                return f"invalid role {role!r}"
        if not math.isfinite(info.failover_timeout) or info.failover_timeout < 0:
            return "failover_timeout must be a non-negative number"
        return None

    def _resubscribe(self, fw: Framework, info: m.FrameworkInfo, peer: bytes) -> None:
        """Failover: the new connection replaces the old one; its old offers are void."""
        if fw.peer is not None and fw.peer != peer:
            self._send(fw.peer, m.Error("framework failed over"))
            if self.peers.get(fw.peer) == ("framework", fw.id):
                del self.peers[fw.peer]
        for oid in sorted(fw.offers):
            self._recover_offer(self.offers[oid], None)
        fw.info, fw.peer, fw.last_seen = info, peer, self.now
        fw.connected, fw.recovered, fw.unregistered_time = True, False, None
        fw.reregistered_time = self.now
        fw.active = True
        self.allocator.add_framework(fw.id, fw.roles, {}, active=True)  # roles may change
        self._cancel(("framework_failover", fw.id))
        for task in fw.tasks.values():  # updates sent to the old connection may be lost:
            task.forwarded_at = None    # forward the next retries at once

    # ---------------------------------------------------------------- liveness, removal

    def _check_frameworks(self) -> None:
        for fw in sorted(self.frameworks.values(), key=lambda f: f.id):
            if fw.connected and self.now - fw.last_seen > self.config.framework_timeout:
                self._disconnect(fw, f"silent for {self.now - fw.last_seen:.1f}s")

    def _disconnect(self, fw: Framework, why: str) -> None:
        """No more offers; removed unless it re-subscribes within its failover_timeout."""
        self._log("warning", f"framework {fw.id} disconnected ({why}): deactivated, "
                             f"failover timeout {fw.info.failover_timeout}s")
        if fw.peer is not None and self.peers.get(fw.peer) == ("framework", fw.id):
            del self.peers[fw.peer]
        fw.peer, fw.connected, fw.active = None, False, False
        fw.unregistered_time = self.now
        self.allocator.deactivate_framework(fw.id)
        for oid in sorted(fw.offers):
            self._recover_offer(self.offers[oid], None)
        self._timer(("framework_failover", fw.id), self.now + fw.info.failover_timeout)

    def _failover_expired(self, fw_id: str) -> None:
        fw = self.frameworks.get(fw_id)
        if fw is not None and not fw.connected:
            self._log("warning", f"framework {fw_id} did not fail over in time: removing it")
            self._remove_framework(fw)

    def _on_teardown(self, msg: m.Teardown, peer: bytes) -> None:
        fw = self._framework_for(peer, msg, msg.framework_id)
        if fw is not None:
            self._remove_framework(fw)

    def _remove_framework(self, fw: Framework) -> None:
        """Rescind its offers, kill its tasks (ShutdownFramework), forget it."""
        for oid in sorted(fw.offers):
            self._drop_offer(self.offers[oid])
        agents = sorted({t.agent_id for t in fw.tasks.values()}
                        | {a.id for a in self.agents.values()  # idle executors stop too
                           if any(k[0] == fw.id for k in a.executors)})
        for agent_id in agents:
            agent = self.agents.get(agent_id)
            if agent is not None:
                self._send(agent.peer, m.ShutdownFramework(fw.id))
        for task in sorted(fw.tasks.values(), key=lambda t: t.id):
            agent = self.agents.get(task.agent_id)
            if not task.resources_recovered and agent is not None:
                agent.used = agent.used - task.resources
            task.resources_recovered = True  # allocator.remove_framework frees them below
            self._set_state(task, ts.KILLED)
            self._complete(fw, task)
        for task in list(fw.unreachable_tasks.values()):
            self._complete(fw, task)
        self._drop_executors(fw.id)
        self.allocator.remove_framework(fw.id)
        if fw.peer is not None and self.peers.get(fw.peer) == ("framework", fw.id):
            del self.peers[fw.peer]
        fw.peer, fw.connected, fw.active = None, False, False
        fw.unregistered_time = self.now
        del self.frameworks[fw.id]
        self.completed_frameworks.append(fw)
        self._cancel(("framework_failover", fw.id))
        self._request_allocation(agents)
        self._log("info", f"framework {fw.id} ({fw.info.name}) removed")

    # ---------------------------------------------------------------- offers

    def _allocate(self) -> None:
        agents = None if self._alloc_all else sorted(self._alloc_agents)
        self._alloc_all, self._alloc_agents = False, set()
        self.counters["allocation_runs"] += 1
        grants = self.allocator.allocate(self.now, agents)
        by_fw: dict[str, list[m.Offer]] = {}
        for grant in grants:
            offer = self._make_offer(grant)
            if offer is not None:
                by_fw.setdefault(grant.framework_id, []).append(offer)
        for fw_id, offers in by_fw.items():
            self._send(self.frameworks[fw_id].peer, m.Offers(tuple(offers)))

    def _make_offer(self, grant: OfferGrant) -> m.Offer | None:
        fw = self.frameworks.get(grant.framework_id)
        agent = self.agents.get(grant.agent_id)
        if fw is None or agent is None or not fw.active or not fw.connected:
            self._log("debug", f"grant {grant} is not offerable; recovered")
            self.allocator.recover(grant.framework_id, grant.agent_id, grant.resources,
                                   None, self.now)
            return None
        offer = Offer(self.ids.next("O"), fw.id, agent.id, grant.resources, self.now)
        self.offers[offer.id] = offer
        fw.offers.add(offer.id)
        agent.offers.add(offer.id)
        agent.offered = agent.offered + grant.resources
        if self.config.offer_timeout is not None:
            self._timer(("offer_timeout", offer.id), self.now + self.config.offer_timeout)
        return m.Offer(offer.id, fw.id, agent.id, agent.info.hostname, grant.resources,
                       dict(agent.info.attributes), agent.info.containerizers)

    def _offer_expired(self, offer_id: str) -> None:
        offer = self.offers.get(offer_id)
        if offer is not None:
            self._recover_offer(offer, None, rescind=True)

    def _refuse_seconds(self, value: float | None) -> float:
        if value is None or math.isnan(value):
            return self.config.default_refuse_seconds
        return value

    def _on_decline(self, msg: m.Decline, peer: bytes) -> None:
        fw = self._framework_for(peer, msg, msg.framework_id)
        if fw is None:
            return
        for oid in msg.offer_ids:
            offer = self.offers.get(oid)
            if offer is not None and offer.framework_id == fw.id:
                self._recover_offer(offer, self._refuse_seconds(msg.refuse_seconds))

    def _on_accept(self, msg: m.Accept, peer: bytes) -> None:
        steps = self._accept(msg, peer)
        if not self._pieces:
            for _ in steps:
                pass
        elif next(steps, DONE) is not DONE:
            self._rest = steps  # handle_in_pieces goes on from this pause

    def _accept(self, msg: m.Accept, peer: bytes) -> Iterator[None]:
        """The ACCEPT, pausing after every ACCEPT_PIECE tasks booked (`handle_in_pieces`
        hands out the effects so far there: Mesos's master, too, sends each RunTask as it
        goes through the LAUNCH). The offers are checked, as a whole, before any task."""
        fw = self._framework_for(peer, msg, msg.framework_id)
        if fw is None:
            return
        tasks = [t for op in msg.operations if op.type == "LAUNCH" for t in op.tasks]
        error = validation.validate_offers(fw.id, msg.offer_ids, self.offers)
        if error is not None:
            self._reject_accept(fw, msg, tasks, error)
            return
        offers = [self.offers[oid] for oid in msg.offer_ids]
        agent = self.agents[offers[0].agent_id]
        offered = Resources()
        for offer in offers:
            self._drop_offer(offer)
            offered = offered + offer.resources
        remaining, role, known = offered, sorted(fw.roles)[0], _KnownIds(fw)
        for op in msg.operations:  # reservations first, so that LAUNCHes may use them
            if op.type != "LAUNCH":
                done = self._offer_operation(fw, agent, op, remaining)
                if isinstance(done, str):  # dropped, as Mesos drops an invalid operation
                    self._log("warning", f"framework {fw.id}: {op.type} dropped: {done}")
                else:
                    remaining = done
        piece_from = remaining
        check_user = not self.config.auth.acls.empty
        for i, info in enumerate(tasks, 1):
            if info.executor is not None and info.executor.framework_id != fw.id:
                info = attrs.evolve(info, executor=attrs.evolve(info.executor,
                                                                framework_id=fw.id))
            extra = validation.executor_need(agent.executors, fw.id, info)
            error = validation.validate_task(info, agent_id=agent.id, remaining=remaining,
                                             known_task_ids=known, executor_resources=extra)
            denied = self._run_as_error(fw, info) if check_user and error is None else None
            if denied is not None:
                self.counters["tasks_error"] += 1
                self._master_update(fw, info.task_id, ts.ERROR, REASON_TASK_UNAUTHORIZED,
                                    denied, agent.id)
            elif error is not None:
                self.counters["tasks_error"] += 1
                self._master_update(fw, info.task_id, ts.ERROR, REASON_TASK_INVALID, error,
                                    agent.id)
            else:
                remaining = remaining - info.resources - extra
                if info.executor is not None:  # later tasks of this ACCEPT find it running
                    agent.executors.setdefault((fw.id, info.executor.executor_id),
                                               info.executor)
                task = Task(framework_id=fw.id, agent_id=agent.id, info=info,
                            state=ts.STAGING, role=role)
                task.record(ts.STAGING, self.now)
                fw.tasks[task.id] = task
                agent.tasks[(fw.id, task.id)] = task
                self._send(agent.peer, m.RunTask(fw.info, info, agent.epoch))
            if i % ACCEPT_PIECE == 0 and i < len(tasks):
                # What this piece's tasks use, in one addition: each was validated to fit
                # in what remained, so what remained before it minus what is left is
                # exactly their sum. The books balance at every pause.
                agent.used, piece_from = agent.used + (piece_from - remaining), remaining
                yield
        agent.used = agent.used + (piece_from - remaining)
        if remaining:
            self.allocator.recover(fw.id, agent.id, remaining,
                                   self._refuse_seconds(msg.refuse_seconds), self.now)
            self._request_allocation([agent.id])

    def _reject_accept(self, fw: Framework, msg: m.Accept, tasks: list[m.TaskInfo],
                       error: str) -> None:
        """Stale or foreign offers: no task runs, this framework's valid offers come back."""
        self._log("info", f"framework {fw.id}: invalid accept: {error}")
        for info in tasks:
            self._count_state(ts.DROPPED if fw.partition_aware else ts.LOST)
            self._master_update(fw, info.task_id, ts.DROPPED, REASON_INVALID_OFFERS,
                                f"invalid offers: {error}", info.agent_id or None)
        for oid in dict.fromkeys(msg.offer_ids):
            offer = self.offers.get(oid)
            if offer is not None and offer.framework_id == fw.id:
                self._recover_offer(offer, None)


class _KnownIds:
    """Task ids a framework may not reuse: live, unreachable (this check runs per task, so
    tasks accepted earlier in the same ACCEPT count too)."""

    def __init__(self, fw: Framework) -> None:
        self._fw = fw

    def __contains__(self, task_id: object) -> bool:
        return task_id in self._fw.tasks or task_id in self._fw.unreachable_tasks


#: The messages handled here (mesos_master/core.py composes the master's table).
MESSAGES: MessageTable[FrameworkHandlers] = {
    m.Subscribe: FrameworkHandlers._on_subscribe,
    m.Teardown: FrameworkHandlers._on_teardown,
    m.Decline: FrameworkHandlers._on_decline,
    m.Accept: FrameworkHandlers._on_accept,
}
