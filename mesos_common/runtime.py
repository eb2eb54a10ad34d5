"""What every runtime around a pure core does the same way: arm the core's timers on the
event loop, look up the performer of each effect, and hold effects behind a commit.

The cores say *when* (`SetTimer.at`, in core time) and *what* (an effect type); a runtime
says *how*. Core time is whatever clock the runtime feeds `handle`: wall time for the
daemons (the master's and agent's timers survive a restart in the registry and checkpoints),
loop time for the SDK driver and the agent fleet. `Timers` maps it onto the loop's clock.

`CommitBarrier` is the agent's write-ahead rule (effects after a checkpoint wait for it).
The SDK driver's hold differs: a whole burst's sends wait for the scheduler's `batch_done`
(Marathon's commit), go out yielding to the loop, and lose their acknowledgements if the
commit failed; it stays in frameworks/driver.py.
"""
from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable, Hashable, Iterable
from typing import Any


class UnknownEffect(AssertionError):
    """A core returned an effect its runtime has no performer for: a bug, never ignored."""


class Performers(dict[type, Callable[..., Any]]):
    """Effect type -> the runtime's function performing it.

    A plain dict lookup on the hot path (`performers[type(e)](e)`), which raises
    `UnknownEffect` on a type it does not hold instead of skipping it."""

    def __missing__(self, kind: type) -> Callable[..., Any]:
        raise UnknownEffect(f"no performer for {kind.__name__} in this runtime")

    def perform(self, effects: Iterable[Any]) -> None:
        for e in effects:
            self[type(e)](e)


class Timers:
    """The core's timers, one per key, as event-loop handles.

    `clock` is the core's clock when it is not the loop's (`time.time` for cores fed wall
    time); a deadline then becomes a delay from now. `on_fire(key)` runs when one is due;
    the key is dropped from the table first unless `keep_fired`, for a runtime that queues
    the firing and checks with `take` that it was not re-armed or cancelled meanwhile."""

    def __init__(self, on_fire: Callable[[Hashable], None],
                 clock: Callable[[], float] | None = None, *, keep_fired: bool = False) -> None:
        self._on_fire = on_fire
        self._clock = clock
        self._keep = keep_fired
        self._handles: dict[Hashable, asyncio.TimerHandle] = {}
        self._loop: asyncio.AbstractEventLoop | None = None

    def set(self, key: Hashable, at: float) -> None:
        old = self._handles.get(key)
        if old is not None:
            old.cancel()
        loop = self._loop
        if loop is None:
            loop = self._loop = asyncio.get_running_loop()
        if self._clock is not None:
            at = loop.time() + max(0.0, at - self._clock())
        self._handles[key] = loop.call_at(at, self._fired, key)

    def cancel(self, key: Hashable) -> None:
        handle = self._handles.pop(key, None)
        if handle is not None:
            handle.cancel()

    def current(self, key: Hashable) -> asyncio.TimerHandle | None:
        return self._handles.get(key)

    def take(self, key: Hashable, handle: asyncio.TimerHandle | None) -> bool:
        """A kept firing is still due: `handle` is still the key's (then it is dropped)."""
        if handle is None or self._handles.get(key) is not handle:
            return False
        del self._handles[key]
        return True

    def close(self) -> None:
        for handle in self._handles.values():
            handle.cancel()
        self._handles.clear()

    def __len__(self) -> int:
        return len(self._handles)

    def __contains__(self, key: Hashable) -> bool:
        return key in self._handles

    def _fired(self, key: Hashable) -> None:
        if not self._keep:
            self._handles.pop(key, None)
        self._on_fire(key)


class CommitBarrier:
    """Effects that must wait for a commit: nothing is sent before what it reports is
    durable. A runtime queues effects with `add`, puts `hold(seq)` where the ones after it
    depend on commit number `seq`, and calls `committed(seq)` when that commit is durable;
    `drain` performs, in order, everything not behind an undurable hold, and says whether
    it stopped at one (the runtime then starts the commit)."""

    def __init__(self, perform: Callable[[Any], None]) -> None:
        self._perform = perform
        self._queue: deque[Any] = deque()  # effects, and _Hold markers between them
        self.durable = 0  # the highest commit number known durable

    def add(self, effect: Any) -> None:
        self._queue.append(effect)

    def hold(self, seq: int) -> None:
        self._queue.append(_Hold(seq))

    def committed(self, seq: int) -> None:
        self.durable = max(self.durable, seq)

    def drain(self) -> bool:
        """Perform what may go; True when stopped at a hold still waiting for its commit.
        `perform` must not raise (a runtime logs a failed effect and goes on)."""
        q = self._queue
        while q:
            head = q[0]
            if type(head) is _Hold:
                if head.seq > self.durable:
                    return True
                q.popleft()
                continue
            q.popleft()
            self._perform(head)
        return False


class _Hold:
    __slots__ = ("seq",)

    def __init__(self, seq: int) -> None:
        self.seq = seq
