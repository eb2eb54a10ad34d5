"""The ZooKeeper election recipe both elections use (masters: `json.info_` znodes holding their
info as JSON, cf. Mesos's LeaderContender; Marathons: `member_` znodes holding `host:port`).

Each contender owns an ephemeral sequential znode `<dir>/<prefix><seq>`; the lowest sequence
number leads. A children watch on `<dir>` reports, on the asyncio loop (`LoopBridge`),
`on_group(leader_znode, leader_data, size)`; the pure `mesos_common.leadership.Leadership`
core decides what it means. The blocking methods run in worker threads, never on the loop.
"""
from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable
from typing import Any

from mesos_common.leader import leader_znode, make_zk_client, parse_zk
from mesos_common.zk_bridge import LoopBridge

log = logging.getLogger("mesos_common.election")


class Candidacy(LoopBridge):
    def __init__(self, zk_url: str, session_timeout: float, loop: asyncio.AbstractEventLoop,
                 on_group: Callable[[str | None, Any, int], None],
                 on_session: Callable[[str], None], *, prefix: str, data: bytes,
                 decode: Callable[[bytes], Any], subdir: str = "") -> None:
        spec = parse_zk(zk_url)
        super().__init__(make_zk_client(spec.hosts, timeout=session_timeout), loop, on_session)
        self.path = spec.path
        self.dir = f"{spec.path}/{subdir}" if subdir else spec.path
        self.prefix = prefix
        self.data = data
        self.znode: str | None = None  # our <prefix><seq> while we contend
        self._decode = decode
        self._on_group = on_group
        self._stale: list[str] = []  # withdrawn znodes not deleted yet
        self._contending = threading.Lock()  # contend() runs on worker threads

    # --------------------------------------------------------------- blocking (worker thread)

    def start(self, timeout: float) -> None:
        """Connect, create our candidacy znode and start watching the group."""
        from kazoo.recipe.watchers import ChildrenWatch
        self.listen()
        self.client.start(timeout=timeout)
        self.client.ensure_path(self.dir)
        self.contend()
        ChildrenWatch(self.client, self.dir, self._children, allow_session_lost=True)

    def contend(self) -> None:
        """(Re)create our ephemeral sequential znode; a new session needs a new one, and has
        at most one: a start retried after a timeout can race the reconnection's re-contend,
        and a second znode of ours would lead while we waited behind it, with no leader."""
        with self._contending:
            self._purge()  # an old candidacy left behind must not block the line
            self.znode = self._ours() or self.client.create(
                f"{self.dir}/{self.prefix}", self.data, ephemeral=True,
                sequence=True).rsplit("/", 1)[1]
        log.info("contending for leadership as %s/%s", self.dir, self.znode)
        self.refresh()  # in case the watch already ran

    def _ours(self) -> str | None:
        """Our session's candidacy znode, if it has one already (not one we withdrew)."""
        from kazoo.exceptions import NoNodeError
        session = self.client.client_id[0] if self.client.client_id else None
        if session is None:
            return None
        for child in self.client.get_children(self.dir):
            if not child.startswith(self.prefix) or child in self._stale:
                continue
            try:
                _, stat = self.client.get(f"{self.dir}/{child}")
            except NoNodeError:
                continue
            if stat.ephemeralOwner == session:
                return child
        return None

    def withdraw(self) -> None:
        """Delete our znode (leaving the line); `contend` joins again at its end."""
        if self.znode is not None:
            self._stale.append(self.znode)
            self.znode = None
        self._purge()

    def refresh(self) -> None:
        self._children(self.client.get_children(self.dir))

    def _purge(self) -> None:
        """Delete the candidacies we withdrew (kept for a retry if ZooKeeper fails us)."""
        from kazoo.exceptions import NoNodeError
        while self._stale:
            try:
                self.client.delete(f"{self.dir}/{self._stale[0]}")
            except NoNodeError:
                pass
            self._stale.pop(0)

    def _children(self, children: list[str]) -> None:
        """Watch callback (kazoo thread): find the leader and read its data."""
        from kazoo.exceptions import KazooException, NoNodeError
        leader = leader_znode(children, self.prefix)
        data = None
        size = sum(1 for c in children if c.startswith(self.prefix))
        if leader is not None:
            try:
                data = self._decode(self.client.get(f"{self.dir}/{leader}")[0])
            except NoNodeError:
                return  # gone already: the watch fires again with the new list
            except (KazooException, ValueError) as e:  # UnicodeDecodeError is a ValueError
                log.warning("cannot read leader znode %s: %s", leader, e)
        self._post(self._on_group, leader, data, size)

    @property
    def fence(self) -> str | None:
        """Our znode's path: a write checked against it fails once it is gone."""
        return None if self.znode is None else f"{self.dir}/{self.znode}"


async def contend_again(candidacy: Candidacy, withdraw: bool = False) -> bool:
    """A new znode (after the session expired, or at the end of the line after withdrawing
    ours), in worker threads; False when ZooKeeper failed us (retried on reconnection)."""
    try:
        if withdraw:
            await asyncio.to_thread(candidacy.withdraw)
        await asyncio.to_thread(candidacy.contend)
        return True
    except Exception as e:
        log.warning("re-contending failed: %s (will retry on reconnection)", e)
        return False
