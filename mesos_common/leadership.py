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

What losing leadership means is the policy `stay_up`. False (the master): `Abdicate`, the
process exits. True (Marathon): `StepDown`, the node stays up as a standby in the election;
SUSPENDED steps down at once rather than fencing (another may lead as soon as our session
expires), and `Resign` (`DELETE /v2/leader`, or a term that ended by itself) steps down and
rejoins at the end of the line (`Rejoin`: our znode withdrawn once the term is over, a new
one created; an election of the old one meanwhile is ignored).
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

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
class Resign:
    """Give up leading and rejoin at the end of the line (`stay_up` only)."""

    reason: str


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


@frozen
class StepDown:
    """Stop acting as the leader and stay a standby in the election (`stay_up`)."""

    reason: str


@frozen
class Rejoin:
    """Once the term is over, withdraw our znode and contend again at the end of the line;
    answer RecontendDone, then look at the group again (`Refresh`)."""


@frozen
class Refresh:
    """Read the group again and report it (GroupChanged): after a reconnection (`stay_up`)."""


@define
class Leadership:
    quorum: int
    session_timeout: float
    stay_up: bool = False  # losing leadership: StepDown and stand by (else Abdicate, exit)
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
    _rejoining: bool = False  # Rejoin under way: our old znode must not be elected again
    _suspended: bool = False
    _deadline_set: bool = False

    @property
    def acting(self) -> bool:
        return self.leading and not self.fenced

    def handle(self, event: object, now: float) -> list[object]:
        if self.done:
            return []
        return EVENTS[type(event)](self, event, now)

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
        if self._suspended or (self.stay_up and self._rejoining):
            return []  # not while ZooKeeper is away (or while rejoining the line)
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
        if self.fenced or self.leading or not self._first or self._suspended:
            return []  # the runtime drops what it opened; a reconnection elects again
        self.leading = True
        return [Lead()]

    def _on_session(self, ev: SessionChanged, now: float) -> list[object]:
        if self.stay_up:
            return self._on_session_standby(ev)
        if ev.state == "SUSPENDED":
            self._suspended = True
            if not self.leading or self.fenced:
                return []
            self.fenced = self._deadline_set = True
            return [Log("warning", "ZooKeeper connection lost: fenced (no offers, no registry "
                                   "writes) until it is back or the session expires"),
                    Fence(), SetTimer(SESSION_DEADLINE, now + self.session_timeout)]
        if ev.state == "LOST":
            self._suspended = True
            if self.leading:
                return self._abdicate("ZooKeeper session expired")
            self._lost = True
            return []
        self._suspended = False
        out: list[object] = self._cancel_deadline()
        if self.leading and self.fenced:
            self.fenced = False
            return out + [Log("info", "ZooKeeper connection back within the session: acting "
                                      "again"), Unfence()]
        if self._lost and not self._recontending:
            self._lost, self._recontending = False, True
            out.append(Recontend())
        elif self._first and not (self.leading or self._electing or self.fenced) \
                and self.group_size >= self.quorum:
            self._electing = True  # first in line all along: a take-over dropped meanwhile
            out.append(TakeOver())
        return out

    def _on_session_standby(self, ev: SessionChanged) -> list[object]:
        """`stay_up`: lose leadership at once on SUSPENDED or LOST, stand by, and once
        reconnected contend again (session lost) or look again at who leads."""
        if ev.state in ("SUSPENDED", "LOST"):
            self._suspended = True
            if ev.state == "LOST":
                self._lost = True
            if not self.leading:
                return []
            what = "connection lost" if ev.state == "SUSPENDED" else "session expired"
            return self._abdicate(f"ZooKeeper {what}")
        self._suspended = False
        if self._lost and not self._recontending and not self._rejoining:
            self._lost, self._recontending = False, True
            return [Recontend()]
        return [] if self._recontending or self._rejoining else [Refresh()]

    def _on_resign(self, ev: Resign, now: float) -> list[object]:
        if not self.stay_up:
            return self._abdicate(ev.reason)
        if not self.leading and not self._electing:
            return []
        out = self._abdicate(ev.reason)
        if self._rejoining:
            return out
        self._rejoining = True
        return out + [Rejoin()]

    def _on_recontended(self, ev: RecontendDone, now: float) -> list[object]:
        if self._rejoining:
            self._rejoining = False
            if not ev.ok:
                self._lost = True
            return [Refresh()] if ev.ok else []
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
        if self.stay_up:
            self.leading = self.fenced = self._electing = False
            return out + ([StepDown(reason)] if was else [])
        self.fenced = self.done = True
        self.leading = self._electing = False
        return out + [Abdicate(reason, was)]


EVENTS: dict[type, Callable[[Leadership, Any, float], list[object]]] = {
    GroupChanged: Leadership._on_group,
    TakeoverDone: Leadership._on_takeover,
    SessionChanged: Leadership._on_session,
    RecontendDone: Leadership._on_recontended,
    TimerFired: Leadership._on_timer,
    WriteRefused: Leadership._on_write_refused,
    Resign: Leadership._on_resign,
}
