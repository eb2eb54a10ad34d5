"""Who leads among several Marathons (`--zk`), and what leading means.

Election: the shared recipe (mesos_common.election) with znodes
`<zk path>/leader/member_<seq>` holding each Marathon's `host:port`; the lowest sequence
number leads. The rules are the pure `mesos_common.leadership.Leadership` core's, with the
policy `stay_up`: losing leadership steps down and stays up as a standby (Marathon itself
exits), which also keeps serving and proxying the API. `Node` is its runtime: it feeds the
election's reports to the core and performs the effects; every ZooKeeper call runs in a
worker thread.

A *term* is one stretch of leadership: only then does a Marathon build `MarathonServer`
from the store and run the scheduler driver, the control tick, the health checker and the
callback poster. A term ends (the driver stops with failover, the state is dropped, the
store closed) when:
- the ZooKeeper connection is SUSPENDED or the session LOST: we stop at once, since another
  Marathon may lead as soon as our session expires;
- `DELETE /v2/leader` abdicates: once the term is over we delete our znode and contend again
  at the end of the line, so another Marathon takes over (a term that ends by itself or
  fails does the same);
- another znode sorts first (ours is gone).
Every store transaction checks our znode (`ZkStore.fence`), so a Marathon whose session
expired cannot write even if it has not noticed yet. Without `--zk` (embedded mode) the node
is the only member of its group: it leads alone and an abdication just starts a fresh term.
"""
from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Callable, Coroutine
from typing import Any

from mesos_common import leadership as ld
from mesos_common.effects import Log
from mesos_common.election import Candidacy, contend_again
from mesos_common.leader import leader_znode
from mesos_common.runtime import Performers

log = logging.getLogger("marathon.leadership")

PREFIX = "member_"
TERM_RETRY = 1.0
EMBEDDED = "embedded"  # the one member of an embedded node's group


def leader_of(children: list[str]) -> str | None:
    """The member znode with the lowest sequence number."""
    return leader_znode(children, PREFIX)


class Node:
    """One Marathon's place in the election and its leadership terms (loop thread only).

    `term(node) -> coroutine` runs one term and must return soon after `node.ended` is set;
    it sets `node.service` while the service is ready. `run()` lasts until `close()`.
    """

    def __init__(self, me: str, term: Callable[[Node], Any], zk_url: str | None = None,
                 session_timeout: float = 10.0) -> None:
        self.me = me
        self.zk_url = zk_url
        self.session_timeout = session_timeout
        self._term = term
        self.core = ld.Leadership(quorum=1, session_timeout=session_timeout, stay_up=True)
        self.elector: Candidacy | None = None
        self._service: Any = None
        self._serving = asyncio.Event()
        self.ended = asyncio.Event()  # set to end the current term
        self.terms = 0
        self._term_task: asyncio.Task[None] | None = None
        self._helpers: set[asyncio.Task[None]] = set()
        self._events: deque[object] = deque()
        self._feeding = False
        self._tg: asyncio.TaskGroup | None = None
        self._closing = False
        self._closed = asyncio.Event()
        self._joined = False  # the elector has started (later session reports are news)
        self._perform = Performers({
            ld.TakeOver: lambda e: self._feed(ld.TakeoverDone(True)),  # the term recovers
            ld.Lead: self._lead, ld.StepDown: self._step_down,
            ld.Rejoin: lambda e: self._spawn(self._rejoin()),
            ld.Recontend: lambda e: self._spawn(self._recontend()),
            ld.Refresh: lambda e: self._spawn(self._refresh()),
            Log: lambda e: log.log(logging.getLevelName(e.level.upper()), "%s", e.text)})

    @property
    def leading(self) -> bool:
        """Elected; the term may still be starting."""
        return self.core.leading

    @property
    def leader(self) -> str | None:
        """host:port of the leader, as far as we know (None while we step down)."""
        if self.zk_url is None:
            return self.me
        info = self.core.leader_info
        return None if info == self.me and not self.core.leading else info

    @property
    def service(self) -> Any:
        """The term's MarathonServer while it serves (None otherwise)."""
        return self._service

    @service.setter
    def service(self, svc: Any) -> None:
        self._service = svc
        (self._serving.set if svc is not None else self._serving.clear)()

    async def wait_service(self, timeout: float) -> Any:
        """The service, waiting up to `timeout` while an elected term recovers its state."""
        if self._service is None and self.leading:
            try:
                await asyncio.wait_for(self._serving.wait(), timeout)
            except TimeoutError:
                pass
        return self._service

    # -------------------------------------------------------------- the loop

    async def run(self) -> None:
        try:
            async with asyncio.TaskGroup() as tg:
                self._tg = tg
                if self.zk_url is None:
                    self._feed(ld.GroupChanged(EMBEDDED, self.me, 1, EMBEDDED))
                else:
                    self._spawn(self._join())
                await self._closed.wait()
                for task in self._helpers:
                    task.cancel()
        finally:
            self._tg = None
            if self.elector is not None:  # leaving the election, in a worker thread
                await asyncio.to_thread(self.elector.close)

    def close(self) -> None:
        """Shut down: end the term; `run()` returns after it (and leaves the election)."""
        self._closing = True
        self._feed(ld.Resign("shutting down"))
        self._step_down(ld.StepDown("shutting down"))
        self._closed.set()

    def abdicate(self) -> None:
        """DELETE /v2/leader: give up leadership and rejoin the election."""
        self._feed(ld.Resign("abdication requested over the API"))

    def _feed(self, event: object) -> None:
        """Run `event`, and the events its effects feed back, through the core in order."""
        self._events.append(event)
        if self._feeding:
            return
        self._feeding = True
        try:
            while self._events:
                now = asyncio.get_running_loop().time()
                self._perform.perform(self.core.handle(self._events.popleft(), now))
        finally:
            self._feeding = False

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        if self._tg is None or self._closing:
            coro.close()
            return
        task = self._tg.create_task(coro)
        self._helpers.add(task)
        task.add_done_callback(self._helpers.discard)

    # -------------------------------------------------------------- effects

    def _lead(self, _: ld.Lead) -> None:
        assert self._tg is not None
        self.ended.clear()
        self.terms += 1
        log.info("elected leader (term %d): recovering state", self.terms)
        self._term_task = self._tg.create_task(self._run_term())

    async def _run_term(self) -> None:
        try:
            await self._term(self)
            if not self.ended.is_set():
                self._feed(ld.Resign("the term ended by itself"))
        except Exception:
            log.exception("leadership term failed")
            self._feed(ld.Resign("the term failed"))
            await asyncio.sleep(TERM_RETRY)  # not a tight loop if the store is broken
        finally:
            self.service = None
        log.info("leadership term %d over", self.terms)

    def _step_down(self, effect: ld.StepDown) -> None:
        """Stop acting as leader now (the term winds down on the loop)."""
        if self._service is not None or not self.ended.is_set():
            log.warning("stepping down as leader: %s", effect.reason)
        self.service = None  # the API stops serving from our state at once
        self.ended.set()

    async def _rejoin(self) -> None:
        """Once the term is over: withdraw our znode and contend again at the end of the line."""
        if self._term_task is not None:
            await asyncio.wait([self._term_task])
        ok = True if self.elector is None else await contend_again(self.elector, withdraw=True)
        self._feed(ld.RecontendDone(ok))

    async def _recontend(self) -> None:
        """Our session expired with our znode: a new one, now that we are reconnected."""
        assert self.elector is not None
        self._feed(ld.RecontendDone(await contend_again(self.elector)))

    async def _refresh(self) -> None:
        if self.elector is None:
            return self._feed(ld.GroupChanged(EMBEDDED, self.me, 1, EMBEDDED))
        try:
            await asyncio.to_thread(self.elector.refresh)
        except Exception as e:
            log.warning("reading the election group: %s", e)

    # -------------------------------------------------------------- the election's reports

    async def _join(self) -> None:
        assert self.zk_url is not None
        self.elector = Candidacy(self.zk_url, self.session_timeout, asyncio.get_running_loop(),
                                 self._on_group, self._on_session, prefix=PREFIX,
                                 data=self.me.encode(), decode=bytes.decode, subdir="leader")
        delay = 0.25
        while not self._closing:
            try:
                await asyncio.to_thread(self.elector.start, 5.0)
                self._joined = True
                return
            except Exception as e:
                log.warning("cannot join the election at %s: %s; retrying in %.1fs",
                            self.zk_url, e, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)

    def _on_group(self, leader: str | None, addr: Any, size: int) -> None:
        e = self.elector
        if e is None or self._closing:
            return
        self._feed(ld.GroupChanged(leader, addr, size, e.znode))

    def _on_session(self, state: str) -> None:
        if self.elector is None or self._closing or not self._joined:
            return
        if state == "LOST":
            self.elector.znode = None  # it died with the session
        self._feed(ld.SessionChanged(state))
