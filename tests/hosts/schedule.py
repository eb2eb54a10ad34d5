"""Fault schedules for chaos rounds, drawn from a seed (pure: no clock, no IO).

A round's faults depend only on (seed, round number, the cluster's host names), so a failing
round replays with `--seed S --only-round R`. Faults fall into classes that never overlap in
time within a class, which keeps every round recoverable: at most one master fault at once
(a quorum of three survives), one Marathon fault, one agent fault, one degraded link.
"""
from __future__ import annotations

import math
import random
from typing import Any

from attrs import asdict, frozen

# kind -> class. Targets named `leader:*` are resolved when the fault starts.
KINDS: dict[str, str] = {
    "kill_master_leader": "master",
    "partition_master_leader": "master",
    "one_way_master_leader": "master",
    "kill_marathon_leader": "marathon",
    "partition_marathon_leader": "marathon",
    "kill_agent": "agent",
    "partition_agent": "agent",
    "pause_agent": "agent",
    "loss": "link",
    "delay": "link",
}


@frozen
class Fault:
    at: float        # seconds into the round
    kind: str
    target: str      # a host name, or `leader:master` / `leader:marathon`
    duration: float  # healed (or the process restarted) this long after `at`
    probability: float = 0.0  # loss
    delay: float = 0.0        # delay: seconds added, and up to `jitter` more
    jitter: float = 0.0

    @property
    def cls(self) -> str:
        return KINDS[self.kind]

    @property
    def end(self) -> float:
        return self.at + self.duration

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Fault:
        if d.get("kind") not in KINDS:
            raise ValueError(f"unknown fault kind {d.get('kind')!r}")
        return cls(**d)


def _target(kind: str, rng: random.Random, agents: list[str], hosts: list[str]) -> str:
    cls = KINDS[kind]
    if cls in ("master", "marathon"):
        return f"leader:{cls}"
    if cls == "agent":
        return rng.choice(agents)
    return rng.choice(hosts)


def round_faults(seed: int, round_no: int, agents: list[str], hosts: list[str],
                 length: float = 30.0, max_faults: int = 5) -> list[Fault]:
    """The faults of round `round_no`: 1..max_faults of them, each starting within the first
    two thirds of `length` and over by its end, none overlapping another of its class."""
    rng = random.Random(f"corral-chaos:{seed}:{round_no}")
    busy: dict[str, list[tuple[float, float]]] = {}
    out: list[Fault] = []
    for _ in range(rng.randint(1, max_faults)):
        kind = rng.choice(sorted(KINDS))
        at = round(rng.uniform(0, length * 2 / 3), 1)
        duration = round(rng.uniform(3, max(3.0, length - at)), 1)
        duration = min(duration, math.floor((length - at) * 10) / 10)
        spans = busy.setdefault(KINDS[kind], [])
        if duration <= 0 or any(at < e and s < at + duration for s, e in spans):
            continue
        spans.append((at, at + duration))
        out.append(Fault(
            at=at, kind=kind, target=_target(kind, rng, agents, hosts), duration=duration,
            probability=round(rng.uniform(0.05, 0.3), 2) if kind == "loss" else 0.0,
            delay=round(rng.uniform(0.05, 0.5), 2) if kind == "delay" else 0.0,
            jitter=round(rng.uniform(0.0, 0.5), 2) if kind == "delay" else 0.0))
    return sorted(out, key=lambda f: (f.at, f.kind))


def driver_actions(seed: int, round_no: int, length: float,
                   period: float = 1.5) -> list[tuple[float, str, int]]:
    """The client's changes during a round: (at, action, value), action `roll` (a new
    version of the web app) or `scale` (the worker app to `value` instances)."""
    rng = random.Random(f"corral-chaos-driver:{seed}:{round_no}")
    out = []
    t = rng.uniform(0, period)
    while t < length:
        if rng.random() < 0.4:
            out.append((round(t, 2), "roll", rng.randint(0, 10**6)))
        else:
            out.append((round(t, 2), "scale", rng.randint(1, 6)))
        t += rng.uniform(period / 2, period * 1.5)
    return out
