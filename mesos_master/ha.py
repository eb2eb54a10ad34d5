"""The HA side of the master runtime: contending, taking over, and fencing.

Rules (cf. Mesos, which exits on losing leadership):
- A master acts (offers, registry writes, answering peers) only while it is elected *and* its
  ZooKeeper connection is up. SUSPENDED fences it at once: events are not processed, timers are
  held, peers are told "not leader". If the connection comes back within the session timeout the
  session (and our znode, hence leadership) survived: unfence and replay the held timers.
- LOST (the session expired), still suspended after the session timeout (it must have expired:
  another master may lead by now), another master's znode sorting first, or a registry
  compare-and-set failing: abdicate, i.e. exit with status 1 for the supervisor to restart us.
- A standby that loses its session contends again with a new znode on reconnection.
"""
from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any, Hashable

from mesos_common import effects as fx
from mesos_master.election import Contender
from mesos_master.registry.zookeeper import ZkRegistry

if TYPE_CHECKING:
    from mesos_master.server import MasterServer

log = logging.getLogger("mesos_master.ha")


class HaState:
    def __init__(self, server: MasterServer) -> None:
        self.server = server
        self.fenced = False
        self.leader: dict[str, Any] | None = None  # the elected leader's info (maybe us)
        self.group_size = 0
        self.leader_znode: str | None = None
        self.held_timers: list[Hashable] = []
        self.contender: Contender | None = None
        self._deadline: asyncio.TimerHandle | None = None
        self._electing = False
        self._recontending = False
        self._lost = False  # our session expired while standing by: contend again

    async def start(self) -> None:
        """Join the election (retrying until ZooKeeper answers); kazoo does the rest."""
        s = self.server
        assert s.opts.zk is not None
        self.contender = Contender(s.opts.zk, s.opts.zk_session_timeout, s.info(),
                                   asyncio.get_running_loop(), self._on_group, self._on_session)
        delay = 0.25
        while True:
            try:
                await asyncio.to_thread(self.contender.start, 5.0)
                return
            except Exception as e:
                log.warning("cannot join the election at %s: %s; retrying in %.1fs",
                            s.opts.zk, e, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)

    def close(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
        if self.contender is not None:
            self.contender.close()

    # --------------------------------------------------------------- election

    def _on_group(self, leader: str | None, info: dict[str, Any] | None, size: int) -> None:
        c, s = self.contender, self.server
        if c is None:
            return
        self.group_size = size
        self.leader_znode = leader
        self.leader = info if leader is not None else None
        ours = leader is not None and leader == c.znode
        if s.master is not None and not ours:
            return self.abdicate(f"another master leads now ({leader})")
        if ours and s.master is None and not self._electing and not self.fenced:
            if size < s.opts.quorum:
                log.info("first in line, waiting for a quorum of %d masters (have %d)",
                         s.opts.quorum, size)
                return
            self._electing = True
            s._spawn(self._take_over())

    async def _take_over(self) -> None:
        c, s = self.contender, self.server
        assert c is not None
        registry = ZkRegistry(c.client, c.path, timeout=s.opts.zk_session_timeout)
        try:
            await asyncio.to_thread(registry.open)
        except Exception as e:
            self._electing = False
            return self.abdicate(f"cannot take over the registry: {e}")
        self._electing = False
        if self.fenced or s.master is not None or self.leader_znode != c.znode:
            return
        log.info("elected leader (%s/%s); %d agent(s) in the registry", c.path, c.znode,
                 len(registry.load().admitted))
        s._lead(registry)

    # --------------------------------------------------------------- session

    def _on_session(self, state: str) -> None:
        s = self.server
        if state == "SUSPENDED":
            if s.master is not None and not self.fenced:
                log.warning("ZooKeeper connection lost: fenced (no offers, no registry writes) "
                            "until it is back or the session expires")
                self.fenced = True
                self._deadline = asyncio.get_running_loop().call_later(
                    s.opts.zk_session_timeout, self.abdicate,
                    "ZooKeeper session presumed expired")
        elif state == "LOST":
            if s.master is not None:
                return self.abdicate("ZooKeeper session expired")
            if self.contender is not None:
                self.contender.znode = None
                self._lost = True
        elif state == "CONNECTED":
            if self._deadline is not None:
                self._deadline.cancel()
                self._deadline = None
            if s.master is not None and self.fenced:
                log.info("ZooKeeper connection back within the session: acting again")
                self.fenced = False
                held, self.held_timers = self.held_timers, []
                for key in held:
                    s.feed(fx.TimerFired(key))
            elif self._lost and not self._recontending:
                self._lost, self._recontending = False, True
                s._spawn(self._recontend())

    async def _recontend(self) -> None:
        assert self.contender is not None
        try:
            await asyncio.to_thread(self.contender.contend)
        except Exception as e:
            log.warning("re-contending failed: %s (will retry on reconnection)", e)
        finally:
            self._recontending = False

    def abdicate(self, reason: str) -> None:
        """Stop acting for good: the process exits (status 1) and is restarted afresh."""
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None
        was = self.server.master is not None
        self.fenced = True
        if isinstance(self.server.registry, ZkRegistry):
            self.server.registry.fence()
        if was:
            log.error("lost leadership: %s; exiting", reason)
        else:
            log.error("%s; exiting", reason)
        self.server.stop(exit_code=1)
