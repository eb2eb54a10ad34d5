"""Events cores receive and effects they return. Plain frozen data, no behaviour.

A runtime (asyncio server, simulation, test) feeds `handle(event, now)` and performs
the effects it gets back: that is the whole contract between a core and the world.
"""
from __future__ import annotations

from collections.abc import Hashable, Mapping
from typing import Any

from attrs import field, frozen

# ---------------------------------------------------------------- events

@frozen
class Received:
    """A decoded message from a peer (`peer` is the transport's connection id)."""

    peer: bytes
    msg: Any


@frozen
class TimerFired:
    key: Hashable


@frozen
class PersistDone:
    """A registry write finished (`ok` False: it failed and must not be acted on)."""

    op: Any
    ok: bool = True


@frozen
class Start:
    """First event after construction (and after recovery): lets a core arm its timers."""


# ---------------------------------------------------------------- effects

@frozen
class Send:
    """Send `msg` to `to` (a connection id; None for a client's single upstream)."""

    to: bytes | None
    msg: Any


@frozen
class SetTimer:
    """(Re)arm the timer `key` to fire at `at`; one timer per key."""

    key: Hashable
    at: float


@frozen
class CancelTimer:
    key: Hashable


@frozen
class Persist:
    """Apply a registry operation durably, then feed back `PersistDone(op)`."""

    op: Any


@frozen
class Log:
    level: str  # "debug" | "info" | "warning" | "error"
    text: str


# ---------------------------------------------------------------- shared by the client cores

@frozen
class MasterConnected:
    """The runtime found the leading master and pointed its connection at it: (re)register
    or (re)subscribe now.

    `master_info` is what detection returned (`/master/info`: id, hostname, ip, port,
    zmq_endpoint, ...). A client ignores registration replies from any master but
    `master_id` (a late message of a dead or deposed one); empty accepts any."""

    master_info: Mapping[str, Any] = field(factory=dict)

    @property
    def master_id(self) -> str:
        return str(self.master_info.get("id", ""))


@frozen
class LeaderChanged:
    """zk:// detection saw another master elected: leave the current one now, rather than
    after missing its heartbeats."""

    znode: str


@frozen
class Redetect:
    """The master is gone or does not know us: find the leader again, reconnect, and feed
    MasterConnected."""

    reason: str
