"""The HA edge of the master runtime: the ZooKeeper election and registry, driven by the pure
`mesos_common.leadership.Leadership` core (which holds the rules: when to take over, fence,
unfence, abdicate). Every ZooKeeper call runs in a worker thread, never on the event loop;
kazoo's reports reach the loop through the Contender (`mesos_common.zk_bridge`).

The server is reached only through the small `Host` protocol below, so this module and
`server.py` do not import each other.
"""
from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Coroutine, Hashable
from typing import Any, Protocol

from mesos_common import effects as fx
from mesos_common import leadership as ld
from mesos_common.election import contend_again
from mesos_common.runtime import Performers, Timers
from mesos_master.election import Contender
from mesos_master.registry.base import Registry
from mesos_master.registry.zookeeper import ZkRegistry

log = logging.getLogger("mesos_master.ha")


class Host(Protocol):
    """What the HA edge needs from the master server."""

    registry: Registry | None

    def info(self) -> dict[str, Any]: ...
    def lead(self, registry: Registry) -> None: ...
    def feed(self, event: Any) -> None: ...
    def stop(self, exit_code: int | None = None) -> None: ...
    def spawn(self, coro: Coroutine[Any, Any, Any]) -> None: ...


class HaState:
    def __init__(self, host: Host, zk: str | None, quorum: int, session_timeout: float,
                 open_registry: Callable[[Contender | None], Registry] | None = None) -> None:
        self.host = host
        self.zk = zk
        self.session_timeout = session_timeout
        self.core = ld.Leadership(quorum=quorum, session_timeout=session_timeout)
        self.held_timers: list[Hashable] = []
        self.contender: Contender | None = None
        self._open_registry = open_registry or self._open_zk_registry
        self._opened: Registry | None = None  # what TakeOver opened, until Lead
        self._timers = Timers(lambda key: self._feed(fx.TimerFired(key)), clock=time.time)
        self._perform = Performers({
            ld.TakeOver: self._take_over, ld.Lead: self._lead, ld.Fence: self._fence,
            ld.Unfence: self._unfence, ld.Abdicate: self._abdicate, ld.Recontend: self._recontend,
            fx.SetTimer: lambda e: self._timers.set(e.key, e.at),
            fx.CancelTimer: lambda e: self._timers.cancel(e.key),
            fx.Log: self._log}).perform

    @property
    def fenced(self) -> bool:
        return self.core.fenced

    @property
    def leader(self) -> dict[str, Any] | None:
        """The elected leader's info (maybe ours)."""
        info = self.core.leader_info
        return info if isinstance(info, dict) else None

    async def start(self) -> None:
        """Join the election (retrying until ZooKeeper answers); kazoo does the rest."""
        assert self.zk is not None
        self.contender = Contender(self.zk, self.session_timeout, self.host.info(),
                                   asyncio.get_running_loop(), self.group_changed,
                                   self.session_changed)
        delay = 0.25
        while True:
            try:
                await asyncio.to_thread(self.contender.start, 5.0)
                return
            except Exception as e:
                log.warning("cannot join the election at %s: %s; retrying in %.1fs",
                            self.zk, e, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)

    async def close(self) -> None:
        """Leave the election (closing the client deletes our znode: a quick handover),
        in a worker thread like every ZooKeeper call."""
        self._timers.close()
        if self.contender is not None:
            await asyncio.to_thread(self.contender.close)

    # ------------------------------------------------------------------ reports -> core

    def group_changed(self, leader: str | None, info: dict[str, Any] | None, size: int) -> None:
        ours = self.contender.znode if self.contender is not None else None
        self._feed(ld.GroupChanged(leader, info, size, ours))

    def session_changed(self, state: str) -> None:
        if state == "LOST" and self.contender is not None:
            self.contender.znode = None  # it died with the session
        self._feed(ld.SessionChanged(state))

    def registry_refused(self, reason: str) -> None:
        """A fenced registry write (another leader took over): stop at once."""
        self._feed(ld.WriteRefused(reason))

    def _feed(self, event: object) -> None:
        self._perform(self.core.handle(event, time.time()))

    # ------------------------------------------------------------------ effects

    def _take_over(self, _: ld.TakeOver) -> None:
        self.host.spawn(self._open())

    async def _open(self) -> None:
        try:
            registry = await asyncio.to_thread(self._open_registry, self.contender)
        except Exception as e:
            return self._feed(ld.TakeoverDone(False, str(e)))
        self._opened = registry
        self._feed(ld.TakeoverDone(True))
        if self._opened is registry:  # not led with: drop it
            self._opened = None
            registry.close()

    def _open_zk_registry(self, c: Contender | None) -> Registry:
        assert c is not None
        registry = ZkRegistry(c.client, c.path, timeout=self.session_timeout)
        registry.open()
        log.info("elected leader (%s/%s); %d agent(s) in the registry", c.path, c.znode,
                 len(registry.load().admitted))
        return registry

    def _lead(self, _: ld.Lead) -> None:
        registry, self._opened = self._opened, None
        assert registry is not None
        self.host.lead(registry)

    def _fence(self, _: ld.Fence) -> None:
        pass  # `fenced` is the core's; the server checks it before acting

    def _unfence(self, _: ld.Unfence) -> None:
        held, self.held_timers = self.held_timers, []
        for key in held:
            self.host.feed(fx.TimerFired(key))

    def _abdicate(self, effect: ld.Abdicate) -> None:
        """Stop acting for good: the process exits (status 1) and is restarted afresh."""
        if isinstance(self.host.registry, ZkRegistry):
            self.host.registry.fence()
        if effect.was_leader:
            log.error("lost leadership: %s; exiting", effect.reason)
        else:
            log.error("%s; exiting", effect.reason)
        self.host.stop(exit_code=1)

    def _recontend(self, _: ld.Recontend) -> None:
        self.host.spawn(self._contend_again())

    async def _contend_again(self) -> None:
        assert self.contender is not None
        self._feed(ld.RecontendDone(await contend_again(self.contender)))

    def _log(self, effect: fx.Log) -> None:
        log.log(logging.getLevelName(effect.level.upper()), "%s", effect.text)

