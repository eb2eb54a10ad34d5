"""Marathon as a pure state machine: `MarathonCore.handle(event, now) -> list[effect]`.

Events and effects are marathon/core_events.py's; the handlers live by subject in
core_apps.py / core_groups.py (the API's commands), core_scheduler.py (scheduler callbacks,
offers, health results) and core_base.py (deployments, the control tick, commits); this
module composes the tables each of those exports beside its handlers and routes, with one
table lookup on the event type. A command's answer is one
`Reply` effect: its value, or the ApiError / ValidationFailed that refused it (a refused
command changes nothing). No sockets, clocks, threads or disk in here: the runtime
(marathon/server.py) performs the effects, and the simulation drives this same class.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

from marathon import core_apps, core_groups, core_scheduler
from marathon import core_events as ev
from marathon.core_apps import AppCommands
from marathon.core_groups import GroupCommands
from marathon.core_scheduler import SchedulerHandlers
from marathon.errors import ApiError
from marathon.model import ValidationFailed

__all__ = ["COMMANDS", "EVENTS", "MarathonCore"]


class MarathonCore(AppCommands, GroupCommands, SchedulerHandlers):
    """See the module docstring. State (`self.state`) is only changed through `handle`."""

    def handle(self, event: Any, now: float) -> list[Any]:
        self.now = now
        self._fx = []
        handler = EVENTS.get(type(event))  # the common case (status updates) first
        if handler is not None:
            handler(self, event)
        else:
            command = COMMANDS.get(type(event))
            if command is None:
                raise AssertionError(f"Marathon core got an unknown event {event!r}")
            try:
                value = command(self, event)
            except (ApiError, ValidationFailed) as e:
                self._fx.append(ev.Reply(error=e))
            else:
                self._fx.append(ev.Reply(value))
        out, self._fx = self._fx, []
        return out

    def _tick(self, e: ev.Tick) -> None:
        self.tick(e.only)

    def _flush_event(self, e: ev.Flush) -> None:
        self._flush(e.drive)

    def _flush_cost_event(self, e: ev.FlushCost) -> None:
        self._flush_cost(e.seconds)

    def _forget_offers(self, e: ev.ForgetOffers) -> None:
        self.state.offer_backlog.clear()

    def _streams(self, e: ev.Streams) -> None:
        self.state.streams = e.count


#: The API's commands (the handler's return value is the Reply), from the tables beside them.
COMMANDS: dict[type, Callable[[MarathonCore, Any], Any]] = {
    **core_apps.COMMANDS, **core_groups.COMMANDS,
}
#: Everything else: scheduler callbacks (core_scheduler), the runtime's ticks, flushes, streams.
EVENTS: dict[type, Callable[[MarathonCore, Any], None]] = {
    **core_scheduler.EVENTS,
    ev.Tick: MarathonCore._tick,
    ev.ForgetOffers: MarathonCore._forget_offers,
    ev.Flush: MarathonCore._flush_event,
    ev.FlushCost: MarathonCore._flush_cost_event,
    ev.Streams: MarathonCore._streams,
}
