"""The scheduler driver as a pure state machine: events in, effects out.

Everything a Mesos scheduler driver decides (when to (re)subscribe, heartbeat, give up on a
silent master, which callback an event maps to, when to acknowledge an update, what to do
with a command while disconnected) lives here, with no sockets, clocks or threads, so that it
can be tested with exact effect lists and driven by a simulation. The asyncio runtime in
`frameworks.driver` detects the master, feeds events and performs the effects in order.

States::

    disconnected --MasterConnected--> subscribing --Subscribed--> subscribed
         ^                                 |  (no answer after N tries)     |
         +----------- Redetect ------------+<--- master silent / unknown ---+
    any --Error / stop()--> stopped   (every later event is ignored)

Commands (`launch`, `decline`, `kill`, ...) are methods returning effects. While not
subscribed they are dropped with a Log effect, as the Mesos drivers do; tasks given to
`launch` then are reported back at once as TASK_LOST (reason REASON_MASTER_DISCONNECTED,
no uuid, so nothing to acknowledge), so a framework never waits for tasks that were never
sent. Callbacks are effects too: `Callback(name, args)` names the `Scheduler` method; the
runtime calls it with the driver prepended. An implicit Acknowledge is returned *after* the
status_update Callback, so the runtime sends it only once the callback has returned.
"""
from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import attrs
from attrs import frozen

from mesos_common import messages as m
from mesos_common import task_states
from mesos_common.effects import (  # noqa: F401
    CancelTimer,
    LeaderChanged,
    Log,
    MasterConnected,
    Received,
    Redetect,
    Send,
    SetTimer,
    TimerFired,
)

DISCONNECTED = "disconnected"
SUBSCRIBING = "subscribing"
SUBSCRIBED = "subscribed"
STOPPED = "stopped"

SUBSCRIBE_TIMER = "subscribe"
HEARTBEAT_TIMER = "heartbeat"
MASTER_TIMER = "master_timeout"
ALL_TIMERS = (SUBSCRIBE_TIMER, HEARTBEAT_TIMER, MASTER_TIMER)

MASTER_DISCONNECTED = "REASON_MASTER_DISCONNECTED"


# ---------------------------------------------------------------- SDK effects
# (the events and effects it shares with the agent core are in mesos_common.effects)

@frozen
class Callback:
    """Invoke `Scheduler.<name>(driver, *args)`; user code, so the runtime guards it."""

    name: str
    args: tuple[Any, ...] = ()



@frozen
class Abort:
    """The framework cannot go on (e.g. the master sent Error): the runtime stops."""

    reason: str


Effect = Any


class SchedulerCore:
    """One framework's view of its master. Not thread-safe: one runtime thread feeds it."""

    def __init__(self, framework_info: m.FrameworkInfo, implicit_acknowledgements: bool = True,
                 *, subscribe_backoff: float = 0.5, subscribe_backoff_max: float = 10.0,
                 redetect_after: int = 4, heartbeat_misses: int = 3) -> None:
        assert subscribe_backoff > 0 and subscribe_backoff_max >= subscribe_backoff
        assert redetect_after >= 1 and heartbeat_misses >= 1
        self.framework_info = framework_info
        self.implicit_acknowledgements = implicit_acknowledgements
        self.state = DISCONNECTED
        self.master_info: dict[str, Any] = {}
        self.heartbeat_interval = 0.0
        self.stop_reason = ""
        self._backoff0 = subscribe_backoff
        self._backoff_max = subscribe_backoff_max
        self._backoff = subscribe_backoff
        self._redetect_after = redetect_after
        self._misses = heartbeat_misses
        self._attempts = 0  # unanswered Subscribes since the last Subscribed
        self._last_heard = 0.0
        self._ever_subscribed = framework_info.id is not None

    # ------------------------------------------------------------ queries

    @property
    def framework_id(self) -> str | None:
        return self.framework_info.id

    @property
    def subscribed(self) -> bool:
        return self.state == SUBSCRIBED

    @property
    def stopped(self) -> bool:
        return self.state == STOPPED

    # ------------------------------------------------------------ events

    def handle(self, event: Any, now: float) -> list[Effect]:
        """Feed one event; returns the effects to perform, in order (one table lookup on
        the event type, EVENTS; a received message: one more, MESSAGES)."""
        if self.state == STOPPED:
            return []
        handler = EVENTS.get(type(event))
        if handler is None:
            raise TypeError(f"SchedulerCore cannot handle {type(event).__name__}")  # our bug
        return handler(self, event, now)

    def _on_master_connected(self, event: MasterConnected, now: float) -> list[Effect]:
        out: list[Effect] = []
        if self.state == SUBSCRIBED:  # the runtime moved on without us asking: say so
            out += self._forget_master()
            out.append(Callback("disconnected", ()))
        self.master_info = dict(event.master_info)
        self.state = SUBSCRIBING
        out += [Send(None, m.Subscribe(self.framework_info)),
                SetTimer(SUBSCRIBE_TIMER, now + self._backoff)]
        return out

    def _on_leader_changed(self, event: LeaderChanged, now: float) -> list[Effect]:
        reason = f"a new leading master was elected ({event.znode})"
        if self.state == SUBSCRIBED:
            return self._lose_master(reason)
        if self.state == SUBSCRIBING:
            self.state = DISCONNECTED
            return [CancelTimer(SUBSCRIBE_TIMER), Log("info", reason), Redetect(reason)]
        return []

    def _on_timer(self, event: TimerFired, now: float) -> list[Effect]:
        if event.key == SUBSCRIBE_TIMER and self.state == SUBSCRIBING:
            return self._subscribe_timeout(now)
        if event.key == HEARTBEAT_TIMER and self.state == SUBSCRIBED:
            return [Send(None, m.Heartbeat()),
                    SetTimer(HEARTBEAT_TIMER, now + self.heartbeat_interval)]
        if event.key == MASTER_TIMER and self.state == SUBSCRIBED:
            deadline = self._last_heard + self._misses * self.heartbeat_interval
            if now < deadline:
                return [SetTimer(MASTER_TIMER, deadline)]
            return self._lose_master(
                f"master silent for {now - self._last_heard:.1f}s "
                f"({self._misses} heartbeat intervals)")
        return []  # a stale timer from an earlier state

    def _on_received(self, event: Received, now: float) -> list[Effect]:
        self._last_heard = now
        handler = MESSAGES.get(type(event.msg))
        if handler is None:
            return [Log("warning", f"ignoring unexpected {type(event.msg).__name__} "
                                   f"from master: {event.msg!r}"[:500])]
        return handler(self, event.msg, now)

    # ------------------------------------------------------------ messages

    def _on_subscribed(self, msg: m.Subscribed, now: float) -> list[Effect]:
        again = self._ever_subscribed
        self._ever_subscribed = True
        self.framework_info = attrs.evolve(self.framework_info, id=msg.framework_id)
        self.master_info["id"] = msg.master_id
        self.heartbeat_interval = msg.heartbeat_interval
        self.state = SUBSCRIBED
        self._attempts, self._backoff = 0, self._backoff0
        out: list[Effect] = [CancelTimer(SUBSCRIBE_TIMER),
                             Log("info", f"subscribed with framework id {msg.framework_id}")]
        if self.heartbeat_interval > 0:
            out += [SetTimer(HEARTBEAT_TIMER, now + self.heartbeat_interval),
                    SetTimer(MASTER_TIMER, now + self._misses * self.heartbeat_interval)]
        info = dict(self.master_info)
        out.append(Callback("reregistered", (info,)) if again
                   else Callback("registered", (msg.framework_id, info)))
        return out

    def _on_heartbeat(self, msg: m.Heartbeat, now: float) -> list[Effect]:
        return []  # `_last_heard` is all a heartbeat is for

    def _on_offers(self, msg: m.Offers, now: float) -> list[Effect]:
        if not self.subscribed:
            return [Log("debug", f"dropping {len(msg.offers)} offer(s): not subscribed")]
        return [Callback("resource_offers", (list(msg.offers),))]

    def _on_inverse_offers(self, msg: m.InverseOffers, now: float) -> list[Effect]:
        if not self.subscribed:
            return []
        return [Callback("inverse_offers", (list(msg.inverse_offers),))]

    def _on_rescind(self, msg: m.Rescind, now: float) -> list[Effect]:
        if not self.subscribed:
            return []
        return [Callback("offer_rescinded", (msg.offer_id,))]

    def _on_update(self, msg: m.Update, now: float) -> list[Effect]:
        if not self.subscribed:
            return [Log("debug", f"dropping update for task {msg.status.task_id}: not "
                                 "subscribed (the agent will resend it)")]
        st = msg.status
        out: list[Effect] = [Callback("status_update", (st,))]
        if self.implicit_acknowledgements and st.uuid is not None and st.agent_id:
            out.append(Send(None, m.Acknowledge(self._fid(), st.agent_id, st.task_id, st.uuid)))
        return out

    def _on_agent_lost(self, msg: m.AgentLost, now: float) -> list[Effect]:
        if not self.subscribed:
            return []
        return [Callback("agent_lost", (msg.agent_id,))]

    def _on_framework_message(self, msg: m.FrameworkMessage, now: float) -> list[Effect]:
        if not self.subscribed:
            return []
        return [Callback("framework_message", (msg.executor_id, msg.agent_id, msg.data))]

    def _on_executor_lost(self, msg: m.ExecutorLost, now: float) -> list[Effect]:
        if not self.subscribed:
            return []
        return [Callback("executor_lost", (msg.executor_id, msg.agent_id, msg.status))]

    def _on_error(self, msg: m.Error, now: float) -> list[Effect]:
        out = self._cancel_timers()
        self.state = STOPPED
        self.stop_reason = msg.message
        return out + [Log("error", f"master reported a fatal error: {msg.message}"),
                      Callback("error", (msg.message,)), Abort(msg.message)]

    def _on_protocol_error(self, msg: m.ProtocolError, now: float) -> list[Effect]:
        if msg.message.startswith("not leader") and self.state == SUBSCRIBED:
            return self._lose_master(f"{msg.message}: re-detecting")
        if msg.message.startswith("not leader") and self.state == SUBSCRIBING:
            self.state = DISCONNECTED  # a standby: find the leader now, not after retries
            return [CancelTimer(SUBSCRIBE_TIMER), Log("info", f"{msg.message}: re-detecting"),
                    Redetect(msg.message)]
        if msg.in_reply_to == "Heartbeat" and self.state == SUBSCRIBED:
            return self._lose_master(f"master does not know us ({msg.message}): "
                                     "it restarted or failed over")
        # Wire-level rejections are SDK or version bugs, not the framework's business;
        # a rejected Subscribe is simply retried on the backoff timer.
        return [Log("warning", f"master rejected {msg.in_reply_to or 'a message'}: "
                               f"{msg.message}")]

    # ------------------------------------------------------------ transitions

    def _subscribe_timeout(self, now: float) -> list[Effect]:
        self._attempts += 1
        self._backoff = min(self._backoff * 2, self._backoff_max)
        if self._attempts % self._redetect_after == 0:
            self.state = DISCONNECTED
            reason = f"no answer to {self._attempts} Subscribe attempts"
            return [Log("warning", reason), Redetect(reason)]
        return [Send(None, m.Subscribe(self.framework_info)),
                SetTimer(SUBSCRIBE_TIMER, now + self._backoff)]

    def _lose_master(self, reason: str) -> list[Effect]:
        out = self._forget_master()
        self.state = DISCONNECTED
        return out + [Log("warning", reason), Callback("disconnected", ()), Redetect(reason)]

    def _forget_master(self) -> list[Effect]:
        return [CancelTimer(HEARTBEAT_TIMER), CancelTimer(MASTER_TIMER)]

    def _cancel_timers(self) -> list[Effect]:
        return [CancelTimer(k) for k in ALL_TIMERS]

    def _fid(self) -> str:
        fid = self.framework_info.id
        assert fid is not None, "subscribed without a framework id"
        return fid

    # ------------------------------------------------------------ commands

    def _not_subscribed(self, what: str) -> list[Effect]:
        if self.stopped:  # a stopped driver does nothing at all (Mesos returns its status)
            return []
        return [Log("warning", f"ignoring {what}: not subscribed to a master ({self.state})")]

    def launch(self, offer_ids: Iterable[str], tasks: Iterable[m.TaskInfo],
               refuse_seconds: float | None = None) -> list[Effect]:
        """Accept offers with one LAUNCH; no tasks means decline (as pymesos does)."""
        offer_ids, tasks = tuple(offer_ids), tuple(tasks)
        if not tasks:
            return self.decline(offer_ids, refuse_seconds)
        if not self.subscribed:
            return self._not_subscribed(f"launch of {len(tasks)} task(s)") + [
                Callback("status_update", (_lost(t),)) for t in tasks if not self.stopped]
        op = m.Operation("LAUNCH", tasks)
        return [Send(None, m.Accept(self._fid(), offer_ids, (op,), refuse_seconds))]

    def accept(self, offer_ids: Iterable[str], operations: Iterable[m.Operation],
               refuse_seconds: float | None = None) -> list[Effect]:
        """Accept offers with any operations (RESERVE / UNRESERVE / LAUNCH, in order)."""
        offer_ids, ops = tuple(offer_ids), tuple(operations)
        if not self.subscribed:
            tasks = [t for op in ops for t in op.tasks]
            return self._not_subscribed(f"accept with {len(ops)} operation(s)") + [
                Callback("status_update", (_lost(t),)) for t in tasks if not self.stopped]
        return [Send(None, m.Accept(self._fid(), offer_ids, ops, refuse_seconds))]

    def decline(self, offer_ids: Iterable[str],
                refuse_seconds: float | None = None) -> list[Effect]:
        offer_ids = tuple(offer_ids)
        if not self.subscribed:
            return self._not_subscribed(f"decline of {len(offer_ids)} offer(s)")
        return [Send(None, m.Decline(self._fid(), offer_ids, refuse_seconds))]

    def answer_inverse_offers(self, ids: Iterable[str], accept: bool) -> list[Effect]:
        ids = tuple(ids)
        if not self.subscribed:
            return self._not_subscribed(f"answer to {len(ids)} inverse offer(s)")
        kind = m.AcceptInverseOffers if accept else m.DeclineInverseOffers
        return [Send(None, kind(self._fid(), ids))]

    def kill(self, task_id: str, agent_id: str | None = None) -> list[Effect]:
        if not self.subscribed:
            return self._not_subscribed(f"kill of task {task_id}")
        return [Send(None, m.Kill(self._fid(), task_id, agent_id))]

    def acknowledge(self, agent_id: str, task_id: str, uuid: bytes) -> list[Effect]:
        if not self.subscribed:  # the agent resends unacknowledged updates
            return self._not_subscribed(f"acknowledgement for task {task_id}")
        return [Send(None, m.Acknowledge(self._fid(), agent_id, task_id, uuid))]

    def send_framework_message(self, executor_id: str, agent_id: str,
                               data: bytes) -> list[Effect]:
        """Best effort, as in Mesos: dropped when not subscribed."""
        if not self.subscribed:
            return self._not_subscribed(f"message to executor {executor_id}")
        return [Send(None, m.FrameworkMessage(self._fid(), agent_id, executor_id, data))]

    def shutdown_executor(self, executor_id: str, agent_id: str) -> list[Effect]:
        if not self.subscribed:
            return self._not_subscribed(f"shutdown of executor {executor_id}")
        return [Send(None, m.ShutdownExecutor(self._fid(), agent_id, executor_id))]

    def reconcile(self, tasks: Iterable[m.ReconcileTask] = ()) -> list[Effect]:
        """Empty `tasks`: implicit reconciliation (the master reports all it knows)."""
        if not self.subscribed:
            return self._not_subscribed("reconciliation")
        return [Send(None, m.Reconcile(self._fid(), tuple(tasks)))]

    def revive(self, roles: Iterable[str] = ()) -> list[Effect]:
        if not self.subscribed:
            return self._not_subscribed("revive")
        return [Send(None, m.Revive(self._fid(), tuple(roles)))]

    def suppress(self, roles: Iterable[str] = ()) -> list[Effect]:
        if not self.subscribed:
            return self._not_subscribed("suppress")
        return [Send(None, m.Suppress(self._fid(), tuple(roles)))]

    def teardown(self) -> list[Effect]:
        """Unregister: the master kills every task of the framework and forgets it."""
        return self.stop(failover=False)

    def stop(self, failover: bool = False) -> list[Effect]:
        """Stop driving. Without failover, tear the framework down if we can reach the
        master; with it, just go quiet so a new instance can re-subscribe with our id."""
        if self.state == STOPPED:
            return []
        out = self._cancel_timers()
        if not failover:
            if self.subscribed:
                out.append(Send(None, m.Teardown(self._fid())))
            elif self.framework_id is not None:
                out.append(Log("warning", "not subscribed: cannot tear down framework "
                                          f"{self.framework_id}; the master removes it "
                                          "after its failover timeout"))
        self.state = STOPPED
        self.stop_reason = "failover" if failover else "stopped"
        return out


def _lost(task: m.TaskInfo) -> m.TaskStatus:
    return m.TaskStatus(task_id=task.task_id, state=task_states.LOST, agent_id=task.agent_id,
                        message="Master disconnected", reason=MASTER_DISCONNECTED,
                        source="SOURCE_MASTER")


EVENTS: dict[type, Callable[[SchedulerCore, Any, float], list[Effect]]] = {
    MasterConnected: SchedulerCore._on_master_connected,
    LeaderChanged: SchedulerCore._on_leader_changed,
    TimerFired: SchedulerCore._on_timer,
    Received: SchedulerCore._on_received,
}

MESSAGES: dict[type, Callable[[SchedulerCore, Any, float], list[Effect]]] = {
    m.Subscribed: SchedulerCore._on_subscribed,
    m.Heartbeat: SchedulerCore._on_heartbeat,
    m.Offers: SchedulerCore._on_offers,
    m.Rescind: SchedulerCore._on_rescind,
    m.InverseOffers: SchedulerCore._on_inverse_offers,
    m.Update: SchedulerCore._on_update,
    m.AgentLost: SchedulerCore._on_agent_lost,
    m.FrameworkMessage: SchedulerCore._on_framework_message,
    m.ExecutorLost: SchedulerCore._on_executor_lost,
    m.Error: SchedulerCore._on_error,
    m.ProtocolError: SchedulerCore._on_protocol_error,
}
