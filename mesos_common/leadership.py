"""Leadership through a ZooKeeper election as a pure state machine (no kazoo, no loop, no clock).

The runtime (`mesos_master/ha.py`) owns the ZooKeeper client; it feeds what the election recipe
reports (the group's leader, our session's state) and what its own work ended with (opening the
durable state, re-contending), and performs the effects. The rules it encodes (cf. Mesos, which
exits when it loses leadership, and kazoo's `KazooState`):

- Act only while elected *and* connected. SUSPENDED fences a leader at once (no offers, no
  durable writes; timers are held); CONNECTED within the session timeout unfences it, since the
  session, our znode and so leadership survived.
- Abdicate (for a master: exit, for the supervisor to restart it afresh) when the session is
  LOST, when still suspended after the session timeout (it must have expired, another member
  may lead by now), when another member's znode sorts first, or when taking over fails.
- Lead only with a quorum of members in the group.
- A standby whose session expired contends again, with a new znode, once reconnected.
"""
from __future__ import annotations

from typing import Any, Callable

from attrs import define, frozen

from mesos_common.effects import CancelTimer, Log, SetTimer, TimerFired

#: The timer that ends a suspension: past it the session must have expired.
SESSION_DEADLINE = ("leadership", "session-deadline")


# ----------------------------------------------------------------------------- events

@frozen
class GroupChanged:
    """The election's members changed: `leader` is the znode that sorts first, `ours` ours."""

    leader: str | None
    info: Any
    size: int
    ours: str | None


@frozen
class SessionChanged:
    state: str  # "CONNECTED" | "SUSPENDED" | "LOST"


@frozen
class TakeoverDone:
    """The durable state was opened (`ok`) or could not be (`error`)."""

    ok: bool
    error: str = ""


@frozen
class RecontendDone:
    ok: bool


@frozen
class WriteRefused:
    """The durable state refused a write as fenced: another member took over."""

    reason: str


# ----------------------------------------------------------------------------- effects

@frozen
class TakeOver:
    """Open the durable state for leading; answer with TakeoverDone."""


@frozen
class Lead:
    """Act as the leader with what TakeOver opened."""


@frozen
class Fence:
    """Stop acting until Unfence or Abdicate: no offers, no writes, timers held."""


@frozen
class Unfence:
    """Act again, firing the timers held meanwhile."""


@frozen
class Abdicate:
    """Stop acting for good (the master exits)."""

    reason: str
    was_leader: bool


@frozen
class Recontend:
    """Create a new candidacy znode (the old one died with the session); answer RecontendDone."""


@define
class Leadership:
    quorum: int
    session_timeout: float
    leading: bool = False
    fenced: bool = False
    done: bool = False  # abdicated: nothing more happens
    leader: str | None = None
    leader_info: Any = None
    group_size: int = 0
    _first: bool = False  # our znode sorts first
    _electing: bool = False
    _lost: bool = False  # our session expired while standing by: contend again
    _recontending: bool = False
    _deadline_set: bool = False

    @property
    def acting(self) -> bool:
        return self.leading and not self.fenced

    def handle(self, event: object, now: float) -> list[object]:
        if self.done:
            return []
        return _HANDLERS[type(event)](self, event, now)

    # ------------------------------------------------------------------------ handlers

    def _on_group(self, ev: GroupChanged, now: float) -> list[object]:
        self.group_size = ev.size
        self.leader = ev.leader
        self.leader_info = ev.info if ev.leader is not None else None
        ours = self._first = ev.leader is not None and ev.leader == ev.ours
        if self.leading and not ours:
            return self._abdicate(f"another master leads now ({ev.leader})")
        if not ours or self.leading or self._electing or self.fenced:
            return []
        if ev.size < self.quorum:
            return [Log("info", f"first in line, waiting for a quorum of {self.quorum} "
                                f"members (have {ev.size})")]
        self._electing = True
        return [TakeOver()]

    def _on_takeover(self, ev: TakeoverDone, now: float) -> list[object]:
        if not self._electing:
            return []  # not asked for (a stale answer): the runtime drops what it opened
        self._electing = False
        if not ev.ok:
            return self._abdicate(f"cannot take over the registry: {ev.error}")
        if self.fenced or self.leading or not self._first:
            return []  # the runtime drops what it opened
        self.leading = True
        return [Lead()]

    def _on_session(self, ev: SessionChanged, now: float) -> list[object]:
        if ev.state == "SUSPENDED":
            if not self.leading or self.fenced:
                return []
            self.fenced = self._deadline_set = True
            return [Log("warning", "ZooKeeper connection lost: fenced (no offers, no registry "
                                   "writes) until it is back or the session expires"),
                    Fence(), SetTimer(SESSION_DEADLINE, now + self.session_timeout)]
        if ev.state == "LOST":
            if self.leading:
                return self._abdicate("ZooKeeper session expired")
            self._lost = True
            return []
        out: list[object] = self._cancel_deadline()
        if self.leading and self.fenced:
            self.fenced = False
            return out + [Log("info", "ZooKeeper connection back within the session: acting "
                                      "again"), Unfence()]
        if self._lost and not self._recontending:
            self._lost, self._recontending = False, True
            out.append(Recontend())
        return out

    def _on_recontended(self, ev: RecontendDone, now: float) -> list[object]:
        self._recontending = False
        if not ev.ok:
            self._lost = True  # try again on the next reconnection
        return []

    def _on_write_refused(self, ev: WriteRefused, now: float) -> list[object]:
        return self._abdicate(f"registry write refused: {ev.reason}")

    def _on_timer(self, ev: TimerFired, now: float) -> list[object]:
        if ev.key != SESSION_DEADLINE or not self._deadline_set:
            return []
        self._deadline_set = False
        return self._abdicate("ZooKeeper session presumed expired")

    # ------------------------------------------------------------------------ helpers

    def _cancel_deadline(self) -> list[object]:
        if not self._deadline_set:
            return []
        self._deadline_set = False
        return [CancelTimer(SESSION_DEADLINE)]

    def _abdicate(self, reason: str) -> list[object]:
        was = self.leading
        out = self._cancel_deadline()
        self.fenced = self.done = True
        self.leading = self._electing = False
        return out + [Abdicate(reason, was)]


_HANDLERS: dict[type, Callable[[Leadership, Any, float], list[object]]] = {
    GroupChanged: Leadership._on_group,
    TakeoverDone: Leadership._on_takeover,
    SessionChanged: Leadership._on_session,
    RecontendDone: Leadership._on_recontended,
    TimerFired: Leadership._on_timer,
    WriteRefused: Leadership._on_write_refused,
}
