"""Offer filters (DECLINE's `refuse_seconds`), kept per agent as a bit mask.

The allocator asks "which frameworks may not get this agent now?" once per agent per cycle,
so the answer is one int per agent: bit `i` set means the framework with index `i` refused
the agent and its filter has not expired. Expiry dates live beside it (framework index ->
until) and the agent remembers the earliest one, so expiry costs nothing until it is due and
then one pass over that agent's filters. Expiry floats are interned: a burst of declines at one
instant shares one float object instead of millions (the Mesos DeclineOffers benchmark ends
with every framework filtering every agent).
"""
from __future__ import annotations

import math

MAX_REFUSE_SECONDS = 365 * 24 * 3600.0  # Mesos caps filters at a year, too
NEVER = math.inf


class AgentFilters:
    __slots__ = ("mask", "until", "next_expiry")

    def __init__(self) -> None:
        self.mask = 0
        self.until: dict[int, float] = {}
        self.next_expiry = NEVER

    def add(self, index: int, until: float) -> None:
        old = self.until.get(index)
        if old is None or until > old:
            self.until[index] = until
        self.mask |= 1 << index
        if until < self.next_expiry:
            self.next_expiry = until

    def expire(self, now: float) -> None:
        """Drop filters whose time has come (call when `now >= next_expiry`)."""
        keep = {i: u for i, u in self.until.items() if u > now}
        mask = 0
        for i in keep:
            mask |= 1 << i
        self.until, self.mask = keep, mask
        self.next_expiry = min(keep.values(), default=NEVER)

    def clear(self, index: int) -> None:
        if self.until.pop(index, None) is not None:
            self.mask &= ~(1 << index)

    def filtered(self, index: int, now: float) -> bool:
        until = self.until.get(index)
        return until is not None and until > now


class ExpiryInterner:
    """One float object per distinct expiry time (memory, see the module docstring)."""

    def __init__(self) -> None:
        self._cache: dict[float, float] = {}

    def __call__(self, now: float, refuse_seconds: float) -> float | None:
        if math.isnan(refuse_seconds) or refuse_seconds <= 0:
            return None
        until = now + min(refuse_seconds, MAX_REFUSE_SECONDS)
        if len(self._cache) > 4096:
            self._cache.clear()
        return self._cache.setdefault(until, until)
