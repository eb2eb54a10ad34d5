"""Milli-unit quantity helpers of the allocator (plain dicts: cheap in the inner loop)."""
from __future__ import annotations

from collections.abc import Mapping

from mesos_common.resources import Resources
from mesos_master.allocator.sorter import Quantities

MIN_CPUS = 10      # milli-units: Mesos' default --min_allocatable_resources cpus:0.01|mem:32
MIN_MEM = 32000


def milli(res: Resources) -> Quantities:
    """Scalar quantities summed over roles, in milli-units (exact sums, unlike floats)."""
    return res.milli_quantities()


def sum_chunks(chunks: list[Resources]) -> Resources:
    out = chunks[0]
    for c in chunks[1:]:
        out = out + c
    return out


def allocatable(q: Mapping[str, int]) -> bool:
    return q.get("cpus", 0) >= MIN_CPUS or q.get("mem", 0) >= MIN_MEM


def take_chunk(chunks: list[Resources], res: Resources) -> list[Resources] | None:
    """Remove the chunk equal to `res` (fast path of recover); None if there is none."""
    for i, c in enumerate(chunks):
        if c is res or c == res:
            del chunks[i]
            return chunks
    return None


def fits_headroom(headroom: Quantities, q: Mapping[str, int]) -> bool:
    """Giving `q` away still leaves every unmet quota need covered."""
    for n, v in headroom.items():
        if v < 0 or (n in q and v - q[n] < 0):
            return False
    return True


def take_headroom(headroom: Quantities, q: Mapping[str, int]) -> None:
    for n, v in q.items():
        if n in headroom:
            headroom[n] -= v
