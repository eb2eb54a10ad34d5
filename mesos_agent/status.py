"""Status-update manager: every task's updates reach the master in order, at least once.

Mesos's TaskStatusUpdateManager, as a pure object. Each task has a FIFO stream of updates;
only the head is in flight. The head is resent with exponential backoff until an ack with its
uuid arrives; then the next one goes out. Acks for anything but the head (stale, duplicate)
are ignored, so nothing acknowledged is ever resent and nothing unacknowledged is forgotten.
A stream is closed when its terminal update is acknowledged. While the agent is disconnected
the manager is paused: updates queue up and go out on `resend_all` after re-registration.

Retries share one timer (`TIMER`): the manager keeps every in-flight head's due time in a heap
and asks for one wake-up at the earliest. A timer per stream cost the agent's runtime a set
and a cancel per update (2,000 of each for 1,000 launched tasks), for retries that almost
never fire. Each head is still resent at its own due time with its own backoff.
"""
from __future__ import annotations

import heapq
import math
from collections import deque
from collections.abc import Hashable
from typing import Any

from attrs import define, field, frozen

from mesos_common import task_states
from mesos_common.effects import CancelTimer, Send, SetTimer
from mesos_common.messages import StatusUpdate, TaskStatus

TIMER = "status_update"  # the one retry timer's key
MAX_QUEUED_PER_TASK = 64  # a task makes a handful of updates; more means a bug upstream
STALE_SLACK = 64  # stale due times tolerated beyond twice the heads in flight
# Mesos src/slave/constants.hpp: STATUS_UPDATE_RETRY_INTERVAL_MIN / _MAX.
RETRY_INTERVAL_MIN = 10.0
RETRY_INTERVAL_MAX = 600.0


@frozen
class RetryPolicy:
    """Backoff between resends of one head: by default Mesos's, 10 s doubling to 10 min.
    Short intervals made retry storms at scale (100k tasks: every unacknowledged update
    resent every few seconds while the framework was still catching up); a lost update is
    rare, and one is resent at once when the agent re-registers anyway. Tests and the
    simulation inject shorter ones."""

    initial: float = RETRY_INTERVAL_MIN
    max: float = RETRY_INTERVAL_MAX


@define
class _Stream:
    framework_id: str
    queue: deque[TaskStatus] = field(factory=deque)
    interval: float = 0.0
    due: float | None = None  # when the in-flight head is resent; None: not in flight


class StatusUpdateManager:
    """Per-task FIFO of TaskStatus with retry-until-acked; returns effects, does no IO."""

    def __init__(self, policy: RetryPolicy | None = None, paused: bool = False) -> None:
        self.policy = policy or RetryPolicy()
        self.paused = paused
        self._streams: dict[str, _Stream] = {}
        # (due, task id) per head sent; an entry is stale once its stream's `due` differs
        # (acked, resent, removed, paused) and is dropped when it reaches the top.
        self._dues: list[tuple[float, str]] = []
        self._in_flight = 0  # streams whose `due` is set
        self._armed: float | None = None  # when TIMER fires; None: not set

    # ------------------------------------------------------------ inputs

    def add(self, framework_id: str, status: TaskStatus, now: float) -> list[Any]:
        """Queue `status`; send it at once when it is the head and we are connected."""
        assert status.uuid is not None, "status updates from the agent carry a uuid"
        stream = self._streams.get(status.task_id)
        if stream is None:
            stream = self._streams[status.task_id] = _Stream(framework_id)
        if any(s.uuid == status.uuid for s in stream.queue):
            return []  # the same update twice: deliver it once
        assert not self.has_terminal(status.task_id), "no update may follow a terminal one"
        assert len(stream.queue) < MAX_QUEUED_PER_TASK, f"too many updates for {status.task_id}"
        stream.queue.append(status)
        if len(stream.queue) == 1 and not self.paused:
            return self._send_head(status.task_id, stream, now)
        return []

    def restore(self, framework_id: str, statuses: tuple[TaskStatus, ...]) -> None:
        """Re-queue checkpointed unacknowledged updates (recovery; sent on `resend_all`)."""
        if statuses:
            self._streams[statuses[0].task_id] = _Stream(framework_id, deque(statuses))

    def ack(self, task_id: str, uuid: bytes, now: float) -> list[Any]:
        """Pop the head when `uuid` names it and send the next; ignore any other ack."""
        stream = self._streams.get(task_id)
        if stream is None or not stream.queue or stream.queue[0].uuid != uuid:
            return []
        acked = stream.queue.popleft()
        self._landed(stream)
        if stream.queue:
            return [] if self.paused else self._send_head(task_id, stream, now)
        if task_states.is_terminal(acked.state):
            del self._streams[task_id]
        return self._disarm_if_idle()

    def on_timer(self, key: Hashable, now: float) -> list[Any]:
        """Resend every head due by `now`, each doubling its interval up to the max; then
        ask for the next wake-up."""
        if key != TIMER:
            return []
        self._armed = None
        if self.paused:
            return []
        dues, streams = self._dues, self._streams
        due_now: dict[str, _Stream] = {}  # a head sent twice at one time has two entries
        while dues and dues[0][0] <= now:
            due, task_id = heapq.heappop(dues)
            stream = streams.get(task_id)
            if stream is not None and stream.due == due:  # else stale: acked, resent, removed
                due_now[task_id] = stream
        effects: list[Any] = []
        self._armed = -math.inf  # the resends set no timer of their own: `_arm` does
        for task_id, stream in due_now.items():
            stream.interval = min(stream.interval * 2, self.policy.max)
            effects += self._send_head(task_id, stream, now, stream.interval)
        return effects + self._arm()

    def resend_all(self, now: float) -> list[Any]:
        """Unpause (after (re-)registration) and send every stream's head afresh."""
        self.paused = False
        effects: list[Any] = []
        for task_id, stream in self._streams.items():
            if stream.queue:
                effects += self._send_head(task_id, stream, now)
        return effects

    def pause(self) -> list[Any]:
        """Stop sending (the master is gone); queued updates wait for `resend_all`."""
        self.paused = True
        for stream in self._streams.values():
            stream.due = None
        self._in_flight = 0
        return self._disarm_if_idle()

    def remove(self, task_id: str) -> list[Any]:
        """Forget a task's stream (its framework was shut down): Mesos's cleanup()."""
        stream = self._streams.pop(task_id, None)
        if stream is None:
            return []
        self._landed(stream)
        return self._disarm_if_idle()

    # ------------------------------------------------------------ queries

    def head(self, task_id: str) -> TaskStatus | None:
        stream = self._streams.get(task_id)
        return stream.queue[0] if stream is not None and stream.queue else None

    def pending(self, task_id: str) -> tuple[TaskStatus, ...]:
        """Unacknowledged updates of a task, oldest (in flight) first."""
        stream = self._streams.get(task_id)
        return tuple(stream.queue) if stream is not None else ()

    def has_terminal(self, task_id: str) -> bool:
        stream = self._streams.get(task_id)
        return stream is not None and any(task_states.is_terminal(s.state) for s in stream.queue)

    def unacked(self) -> list[tuple[str, TaskStatus]]:
        """(framework_id, status) for every unacknowledged update, in per-task order."""
        return [(s.framework_id, st) for s in self._streams.values() for st in s.queue]

    def task_ids(self) -> list[str]:
        return list(self._streams)

    def check_invariants(self) -> None:
        for task_id, stream in self._streams.items():
            states = [s.state for s in stream.queue]
            assert all(s.task_id == task_id for s in stream.queue), task_id
            assert not any(task_states.is_terminal(s) for s in states[:-1]), (task_id, states)
            uuids = [s.uuid for s in stream.queue]
            assert len(set(uuids)) == len(uuids), f"duplicate uuid queued for {task_id}"
            assert stream.due is None or (stream.queue and not self.paused), task_id
        flying = {(s.due, tid) for tid, s in self._streams.items() if s.due is not None}
        assert len(flying) == self._in_flight, (len(flying), self._in_flight)
        assert flying <= set(self._dues), "every head in flight has its due time queued"
        assert len(self._dues) <= 2 * self._in_flight + STALE_SLACK, len(self._dues)
        if flying:
            assert self._armed is not None and self._armed <= min(flying)[0], self._armed

    # ------------------------------------------------------------ internals

    def _send_head(self, task_id: str, stream: _Stream, now: float,
                   interval: float | None = None) -> list[Any]:
        if stream.due is None:
            self._in_flight += 1
        stream.interval = self.policy.initial if interval is None else interval
        due = stream.due = now + stream.interval
        heapq.heappush(self._dues, (due, task_id))
        self._bound_dues()
        send = Send(None, StatusUpdate(stream.framework_id, stream.queue[0]))
        if self._armed is not None and self._armed <= due:
            return [send]  # the timer wakes us before this one is due
        self._armed = due
        return [send, SetTimer(TIMER, due)]

    def _landed(self, stream: _Stream) -> None:
        """The stream's head is no longer in flight (its heap entry goes stale)."""
        if stream.due is not None:
            stream.due = None
            self._in_flight -= 1
            self._bound_dues()

    def _bound_dues(self) -> None:
        """Drop the stale entries once they outnumber the live ones (plus some slack):
        they leave the heap only from its top, and behind a head backed off for minutes,
        every update sent and acked meanwhile would stay queued. Filtering the heap itself
        (not every stream) keeps this amortised O(1) per update."""
        dues = self._dues
        if len(dues) <= 2 * self._in_flight + STALE_SLACK:
            return
        streams = self._streams
        live = [(due, tid) for due, tid in dues
                if (s := streams.get(tid)) is not None and s.due == due]
        heapq.heapify(live)
        self._dues = live

    def _arm(self) -> list[Any]:
        """Set the timer for the earliest head in flight (none: nothing to set)."""
        dues, streams = self._dues, self._streams
        self._armed = None
        while dues:
            due, task_id = dues[0]
            stream = streams.get(task_id)
            if stream is not None and stream.due == due:
                self._armed = due
                return [SetTimer(TIMER, due)]
            heapq.heappop(dues)
        return []

    def _disarm_if_idle(self) -> list[Any]:
        """Nothing in flight: drop the due times and the timer."""
        if self._in_flight:
            return []
        self._dues.clear()
        if self._armed is None:
            return []
        self._armed = None
        return [CancelTimer(TIMER)]
