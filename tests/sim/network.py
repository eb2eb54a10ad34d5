"""SimNetwork: seeded delivery between simulated nodes (TigerBeetle's packet-simulator knobs).

Each (src, dst) path is FIFO, as a ZeroMQ/TCP connection is: a message never overtakes an
earlier one on its path, but paths are independent, so messages from different peers
interleave in any order. Loss, duplication, delay, partitions and clogging are per seed.
"""
from __future__ import annotations

import random
from typing import Any

from attrs import define, field


@define
class NetworkOptions:
    loss: float = 0.0  # probability a message is dropped
    duplicate: float = 0.0  # probability it is delivered twice
    delay_min: float = 0.0005
    delay_mean: float = 0.005  # extra exponential delay (s)
    clog_probability: float = 0.0  # chance per step that a random path clogs for a while
    clog_mean: float = 1.0


@define
class SimNetwork:
    rng: random.Random
    options: NetworkOptions
    partitioned: set[str] = field(factory=set)  # nodes cut off from everyone
    _path_tail: dict[tuple[str, str], float] = field(factory=dict)
    _clogged_until: dict[tuple[str, str], float] = field(factory=dict)
    sent: int = 0
    dropped: int = 0

    def deliveries(self, src: str, dst: str, now: float) -> list[float]:
        """Times at which a message sent now from src to dst arrives (empty: lost)."""
        self.sent += 1
        if src in self.partitioned or dst in self.partitioned:
            self.dropped += 1
            return []
        o = self.options
        if self.rng.random() < o.loss:
            self.dropped += 1
            return []
        path = (src, dst)
        if o.clog_probability and self.rng.random() < o.clog_probability:
            self._clogged_until[path] = now + self.rng.expovariate(1 / o.clog_mean)
        copies = 2 if self.rng.random() < o.duplicate else 1
        out = []
        for _ in range(copies):
            at = now + o.delay_min + self.rng.expovariate(1 / o.delay_mean)
            at = max(at, self._path_tail.get(path, 0.0), self._clogged_until.get(path, 0.0))
            self._path_tail[path] = at
            out.append(at)
        return out

    def heal(self) -> None:
        self.partitioned.clear()
        self._clogged_until.clear()
        self.options = NetworkOptions(delay_min=self.options.delay_min,
                                      delay_mean=self.options.delay_mean)

    def describe(self) -> dict[str, Any]:
        return {"sent": self.sent, "dropped": self.dropped}
