"""Who leads among several Marathons (`--zk`), and what leading means.

Election: each Marathon owns an ephemeral sequential znode `<zk path>/leader/member_<seq>`
holding its `host:port`; the lowest sequence number leads, everyone watches the children.
kazoo runs in its own threads; `Elector` hands every report to the asyncio loop.

A *term* is one stretch of leadership: only then does a Marathon build `MarathonServer`
from the store and run the scheduler driver, the control tick, the health checker and the
callback poster. A term ends (the driver stops with failover, the state is dropped, the
store closed) when:
- the ZooKeeper connection is SUSPENDED or the session LOST: we stop at once, since another
  Marathon may lead as soon as our session expires (Marathon exits here; we step down and
  stay up as a standby, which also keeps serving and proxying the API);
- `DELETE /v2/leader` abdicates: once the term is over we delete our znode and contend again
  at the end of the line, so another Marathon takes over;
- another znode sorts first (ours is gone).
Every store transaction checks our znode (`ZkStore.fence`), so a Marathon whose session
expired cannot write even if it has not noticed yet. Without `--zk` (embedded mode) the node
leads alone and an abdication just starts a fresh term.
"""
from __future__ import annotations

import asyncio
import logging
from typing import Any, Callable

from mesos_common.leader import make_zk_client, parse_zk
from mesos_common.zk_bridge import LoopBridge

log = logging.getLogger("marathon.leadership")

PREFIX = "member_"
TERM_RETRY = 1.0


def leader_of(children: list[str]) -> str | None:
    """The member znode with the lowest sequence number."""
    seqs = [(int(c[len(PREFIX):]), c) for c in children
            if c.startswith(PREFIX) and c[len(PREFIX):].isdigit()]
    return min(seqs)[1] if seqs else None


class Elector(LoopBridge):
    """Our candidacy and the children watch (blocking methods run in worker threads)."""

    def __init__(self, zk_url: str, me: str, session_timeout: float,
                 loop: asyncio.AbstractEventLoop,
                 on_leader: Callable[[str | None, str | None], None],
                 on_session: Callable[[str], None]) -> None:
        spec = parse_zk(zk_url)
        super().__init__(make_zk_client(spec.hosts, timeout=session_timeout), loop, on_session)
        self.path = spec.path
        self.dir = f"{spec.path}/leader"
        self.me = me
        self.znode: str | None = None
        self._stale: list[str] = []  # withdrawn znodes not deleted yet
        self._on_leader = on_leader

    def start(self, timeout: float) -> None:
        from kazoo.recipe.watchers import ChildrenWatch
        self.listen()
        self.client.start(timeout=timeout)
        self.client.ensure_path(self.dir)
        self.contend()
        ChildrenWatch(self.client, self.dir, self._children, allow_session_lost=True)

    def contend(self) -> None:
        self._purge()  # an old candidacy left behind must not block the line
        created = self.client.create(f"{self.dir}/{PREFIX}", self.me.encode(),
                                     ephemeral=True, sequence=True)
        self.znode = created.rsplit("/", 1)[1]
        log.info("contending for leadership as %s/%s", self.dir, self.znode)
        self.refresh()

    def withdraw(self) -> None:
        """Delete our znode (leaving the line); contend() joins again at its end."""
        if self.znode is not None:
            self._stale.append(self.znode)
            self.znode = None
        self._purge()

    def _purge(self) -> None:
        """Delete the candidacies we withdrew (kept for a retry if ZooKeeper fails us)."""
        from kazoo.exceptions import NoNodeError
        while self._stale:
            try:
                self.client.delete(f"{self.dir}/{self._stale[0]}")
            except NoNodeError:
                pass
            self._stale.pop(0)

    def refresh(self) -> None:
        self._children(self.client.get_children(self.dir))

    @property
    def fence(self) -> str | None:
        return None if self.znode is None else f"{self.dir}/{self.znode}"

    def _children(self, children: list[str]) -> None:
        from kazoo.exceptions import KazooException, NoNodeError
        leader = leader_of(children)
        addr = None
        if leader is not None:
            try:
                addr = self.client.get(f"{self.dir}/{leader}")[0].decode()
            except NoNodeError:
                return  # gone already: the watch fires again
            except (KazooException, UnicodeDecodeError) as e:
                log.warning("cannot read leader znode %s: %s", leader, e)
        self._post(self._on_leader, leader, addr)


class Node:
    """One Marathon's place in the election and its leadership terms (loop thread only).

    `term(node) -> coroutine` runs one term and must return soon after `node.ended` is set;
    it sets `node.service` while the service is ready. `run()` lasts until cancelled.
    """

    def __init__(self, me: str, term: Callable[[Node], Any], zk_url: str | None = None,
                 session_timeout: float = 10.0) -> None:
        self.me = me
        self.zk_url = zk_url
        self.session_timeout = session_timeout
        self._term = term
        self.elector: Elector | None = None
        self._service: Any = None
        self._serving = asyncio.Event()
        self.leader: str | None = None if zk_url else me  # host:port of the leader
        self.leading = False  # elected; the term may still be starting
        self.ended = asyncio.Event()  # set to end the current term
        self.terms = 0
        self._elected = asyncio.Event()
        self._suspended = False
        self._rejoin = False
        self._contending = False  # between stepping down and our new znode
        self._need_contend = False  # the session expired: our znode is gone
        self._leader_znode: str | None = None
        self._tg: asyncio.TaskGroup | None = None
        self._closing = False
        self._joined = False  # the elector has started once (later CONNECTEDs are news)

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
                tg.create_task(self._terms())
        finally:
            self._tg = None
            if self.elector is not None:
                self.elector.close()

    def _ours(self) -> bool:
        return self.elector is None or (self.elector.znode is not None
                                        and self._leader_znode == self.elector.znode)

    async def _terms(self) -> None:
        if self.zk_url is None:
            self._elected.set()
            self.leading = True
        else:
            await self._join()
        while not self._closing:
            await self._elected.wait()
            self._elected.clear()
            if self._closing:
                return
            if not self.leading or not self._ours() or self._suspended:
                self.leading = False
                continue
            self.ended.clear()
            self.terms += 1
            log.info("elected leader (term %d): recovering state", self.terms)
            try:
                await self._term(self)
                if not self.ended.is_set():
                    self.step_down("the term ended by itself", rejoin=True)
            except Exception:
                log.exception("leadership term failed")
                self.step_down("the term failed", rejoin=True)
                await asyncio.sleep(TERM_RETRY)  # not a tight loop if the store is broken
            finally:
                self.service = None
            log.info("leadership term %d over", self.terms)
            if self._closing:
                return
            if self._rejoin:
                self._rejoin = False
                if self.elector is not None:
                    await self._recontend(withdraw=True)
            if self.zk_url is None:
                self.leading = True
                self._elected.set()

    async def _join(self) -> None:
        loop = asyncio.get_running_loop()
        self.elector = Elector(self.zk_url, self.me, self.session_timeout, loop,
                               self._on_leader, self._on_session)
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

    async def _recontend(self, withdraw: bool) -> None:
        assert self.elector is not None
        self._contending = True
        try:
            if withdraw:
                await asyncio.to_thread(self.elector.withdraw)
            await asyncio.to_thread(self.elector.contend)
            self._need_contend = False
        except Exception as e:
            log.warning("re-contending failed: %s (will retry on reconnection)", e)
            self._need_contend = True
        finally:
            self._contending = False
        if not self._need_contend:
            await asyncio.to_thread(self.elector.refresh)

    # -------------------------------------------------------------- elector reports

    def _on_leader(self, znode: str | None, addr: str | None) -> None:
        e = self.elector
        if e is None:
            return
        self.leader = addr
        self._leader_znode = znode
        ours = znode is not None and znode == e.znode
        if ours and not self.leading and not self._suspended and not self._contending:
            self.leading = True
            self._elected.set()
        elif not ours and self.leading:
            self.step_down(f"another Marathon leads now ({addr})")

    def _on_session(self, state: str) -> None:
        if state == "SUSPENDED":
            self._suspended = True
            if self.leading:
                self.step_down("ZooKeeper connection lost")
        elif state == "LOST":
            self._suspended = True
            if self.elector is not None:
                self.elector.znode = None
            self._need_contend = True
            if self.leading:
                self.step_down("ZooKeeper session expired")
        elif state == "CONNECTED":
            self._suspended = False
            if not self._contending and self._joined and self._tg is not None:
                self._tg.create_task(self._reconnected())

    async def _reconnected(self) -> None:
        """Back on ZooKeeper: contend again if our znode died with the session, else look
        again at who leads (it may still be us: nobody else could have led meanwhile)."""
        try:
            if self._need_contend:
                await self._recontend(withdraw=False)
            elif self.elector is not None:
                await asyncio.to_thread(self.elector.refresh)
        except Exception as e:
            log.warning("after reconnecting to ZooKeeper: %s", e)

    # -------------------------------------------------------------- stepping down

    def step_down(self, reason: str, rejoin: bool = False) -> None:
        """Stop acting as leader now (the term winds down on the loop)."""
        if self.leading:
            log.warning("stepping down as leader: %s", reason)
        self.service = None  # the API stops serving from our state at once
        self.leading = False
        if rejoin and self.elector is not None:
            self._rejoin = self._contending = True  # ignore our old znode from now on
        if self.zk_url is not None and self.leader == self.me:
            self.leader = None  # until the election says who leads
        self.ended.set()

    def close(self) -> None:
        """Shut down: end the term; `run()` returns after it (and leaves the election)."""
        self._closing = True
        self.step_down("shutting down")
        self._elected.set()

    def abdicate(self) -> None:
        """DELETE /v2/leader: give up leadership and rejoin the election."""
        self.step_down("abdication requested over the API", rejoin=True)
