"""Sorters: the order in which roles (or a role's frameworks) are considered for resources.

The Mesos seam (src/master/allocator/mesos/sorter/sorter.hpp): a sorter knows its clients,
what each has been allocated and the total pool, and answers "in which order?". The DRF sorter
orders by dominant share (max over resources of allocated/total, divided by the client's
weight), ties by name. Shares are cached: an allocation change re-positions one client in a
sorted list (bisect, O(log n) + a memmove), and only a change of the total marks the sorter
dirty so that every share is recomputed once, lazily, at the next `entries()`.

Quantities are plain `dict[str, int]` of milli-units (Resources' own fixed point), so the
allocator's inner loop never builds Resources objects just to compare shares.

`entries()` is the allocator's hot path: a list of `(share, name, index)` of the *active*
clients in order, where `index` is the small int the caller gave the client (it doubles as a
bit position in filter masks).
"""
from __future__ import annotations

import bisect
import random
from collections.abc import Mapping, Sequence
from typing import Protocol

Quantities = dict[str, int]
Entry = tuple[float, str, int]


def dominant_share(alloc: Mapping[str, int], total: Mapping[str, int], weight: float) -> float:
    """DRF: max over resources of allocated/total (resources with a zero total ignored)."""
    s = 0.0
    for name, v in alloc.items():
        t = total.get(name)
        if t:
            x = v / t
            if x > s:
                s = x
    return s / weight


class Sorter(Protocol):
    def __contains__(self, name: object) -> bool: ...
    def add(self, name: str, index: int) -> None: ...
    def remove(self, name: str) -> None: ...
    def activate(self, name: str) -> None: ...
    def deactivate(self, name: str) -> None: ...
    def update_weight(self, name: str, weight: float) -> None: ...
    def set_total(self, total: Quantities) -> None: ...
    def allocated(self, name: str, q: Mapping[str, int]) -> None: ...
    def unallocated(self, name: str, q: Mapping[str, int]) -> None: ...
    def allocation(self, name: str) -> Quantities: ...
    def share(self, name: str) -> float: ...
    def entries(self) -> Sequence[Entry]: ...
    def entry(self, index: int) -> Entry: ...
    def sort(self) -> list[str]: ...


class _Client:
    __slots__ = ("name", "index", "weight", "alloc", "key", "active")

    def __init__(self, name: str, index: int) -> None:
        self.name, self.index, self.weight = name, index, 1.0
        self.alloc: Quantities = {}
        self.key: Entry = (0.0, name, index)
        self.active = False


def _add_q(into: Quantities, q: Mapping[str, int], sign: int) -> None:
    for n, v in q.items():
        left = into.get(n, 0) + sign * v
        if left > 0:
            into[n] = left
        else:
            into.pop(n, None)


class DRFSorter:
    """Dominant Resource Fairness with weights; see the module docstring."""

    def __init__(self) -> None:
        self._clients: dict[str, _Client] = {}
        self._by_index: dict[int, _Client] = {}
        self._order: list[Entry] = []
        self._total: Quantities = {}
        self._dirty = False

    def __contains__(self, name: object) -> bool:
        return name in self._clients

    def __len__(self) -> int:
        return len(self._clients)

    def add(self, name: str, index: int) -> None:
        if name in self._clients:
            return
        c = _Client(name, index)
        c.key = (dominant_share(c.alloc, self._total, c.weight), name, index)
        self._clients[name] = c
        self._by_index[index] = c

    def remove(self, name: str) -> None:
        c = self._clients.pop(name, None)
        if c is not None:
            self.deactivate_client(c)
            del self._by_index[c.index]

    def activate(self, name: str) -> None:
        c = self._clients[name]
        if not c.active:
            c.active = True
            if not self._dirty:
                bisect.insort(self._order, c.key)

    def deactivate(self, name: str) -> None:
        c = self._clients.get(name)
        if c is not None:
            self.deactivate_client(c)

    def deactivate_client(self, c: _Client) -> None:
        if c.active:
            c.active = False
            if not self._dirty:
                del self._order[bisect.bisect_left(self._order, c.key)]

    def active(self, name: str) -> bool:
        c = self._clients.get(name)
        return c is not None and c.active

    def update_weight(self, name: str, weight: float) -> None:
        c = self._clients[name]
        c.weight = weight
        self._reposition(c)

    def weight(self, name: str) -> float:
        return self._clients[name].weight

    def set_total(self, total: Quantities) -> None:
        """A new pool (agents came or went): every share changes, recompute lazily."""
        self._total = total
        self._dirty = True

    def allocated(self, name: str, q: Mapping[str, int]) -> None:
        c = self._clients[name]
        alloc = c.alloc
        for n, v in q.items():
            alloc[n] = alloc.get(n, 0) + v
        if not self._dirty:
            self._reposition(c)

    def unallocated(self, name: str, q: Mapping[str, int]) -> None:
        c = self._clients[name]
        _add_q(c.alloc, q, -1)
        self._reposition(c)

    def _reposition(self, c: _Client) -> None:
        if self._dirty:
            return
        key = (dominant_share(c.alloc, self._total, c.weight), c.name, c.index)
        if c.active:
            order = self._order
            if len(order) == 1:  # e.g. the only active role: nothing to reorder
                order[0] = key
            else:
                del order[bisect.bisect_left(order, c.key)]
                bisect.insort(order, key)
        c.key = key

    def allocation(self, name: str) -> Quantities:
        return dict(self._clients[name].alloc)

    def share(self, name: str) -> float:
        self._clean()
        return self._clients[name].key[0]

    def _clean(self) -> None:
        if self._dirty:
            total = self._total
            for c in self._clients.values():
                c.key = (dominant_share(c.alloc, total, c.weight), c.name, c.index)
            self._order = sorted(c.key for c in self._clients.values() if c.active)
            self._dirty = False

    def entries(self) -> list[Entry]:
        self._clean()
        return self._order

    def entry(self, index: int) -> Entry:
        return self._by_index[index].key

    def sort(self) -> list[str]:
        return [e[1] for e in self.entries()]


class RandomSorter(DRFSorter):
    """Same bookkeeping, but a weighted random order each time it is asked (Mesos' random
    sorter): clients with a higher weight tend to come first."""

    def __init__(self, rng: random.Random | None = None) -> None:
        super().__init__()
        self._rng = rng or random.Random(0)

    def entries(self) -> list[Entry]:
        self._clean()
        rng = self._rng
        keyed = sorted(self._order, key=lambda e: -rng.random() ** (
            1.0 / self._by_index[e[2]].weight))
        return keyed
