"""Leader election through ZooKeeper, Mesos style (cf. Mesos LeaderContender / ZooKeeperMasterDetector).

Each master creates an ephemeral sequential znode `<path>/json.info_<seq>` holding its info as
JSON; the lowest sequence number leads. A children watch on `<path>` tells every master (and
every agent and framework, see mesos_common.leader) who leads now. kazoo runs in its own threads;
everything it reports is handed to the asyncio loop with `call_soon_threadsafe`, so the server
only ever sees `on_group(leader_znode, leader_info, size)` and `on_session(state)` on its loop.
Session states: "CONNECTED", "SUSPENDED" (connection lost, session may live on), "LOST" (expired).
"""
from __future__ import annotations

import asyncio
import json
import logging
import threading
from typing import Any, Callable

from mesos_common.leader import ZNODE_PREFIX, DetectError, leader_znode, make_zk_client, parse_zk
from mesos_common.zk_bridge import LoopBridge

log = logging.getLogger("mesos_master.election")


class Contender(LoopBridge):
    def __init__(self, zk_url: str, session_timeout: float, info: dict[str, Any],
                 loop: asyncio.AbstractEventLoop,
                 on_group: Callable[[str | None, dict[str, Any] | None, int], None],
                 on_session: Callable[[str], None]) -> None:
        spec = parse_zk(zk_url)
        super().__init__(make_zk_client(spec.hosts, timeout=session_timeout), loop, on_session)
        self.path = spec.path
        self.info = info
        self.znode: str | None = None  # our json.info_<seq> name while we contend
        self._contending = threading.Lock()  # contend() runs on worker threads
        self._on_group = on_group

    # --------------------------------------------------------------- blocking (worker thread)

    def start(self, timeout: float) -> None:
        """Connect, create our candidacy znode and start watching the group (blocking)."""
        from kazoo.recipe.watchers import ChildrenWatch
        self.listen()
        self.client.start(timeout=timeout)
        self.client.ensure_path(self.path)
        self.contend()
        ChildrenWatch(self.client, self.path, self._children, allow_session_lost=True)

    def contend(self) -> None:
        """(Re)create our ephemeral sequential znode; a new session needs a new one, and has
        at most one: a start retried after a timeout can race the reconnection's re-contend,
        and a second znode of ours would lead while we waited behind it, with no leader."""
        with self._contending:
            self.znode = self._ours() or self.client.create(
                f"{self.path}/{ZNODE_PREFIX}", json.dumps(self.info).encode(),
                ephemeral=True, sequence=True).rsplit("/", 1)[1]
        log.info("contending for leadership as %s/%s", self.path, self.znode)
        self._children(self.client.get_children(self.path))  # in case the watch already ran

    def _ours(self) -> str | None:
        """Our session's candidacy znode, if it has one already."""
        from kazoo.exceptions import NoNodeError
        session = self.client.client_id[0] if self.client.client_id else None
        for child in self.client.get_children(self.path):
            if not child.startswith(ZNODE_PREFIX):
                continue
            try:
                _, stat = self.client.get(f"{self.path}/{child}")
            except NoNodeError:
                continue
            if session is not None and stat.ephemeralOwner == session:
                return child
        return None

    def _children(self, children: list[str]) -> None:
        """Watch callback (kazoo thread): find the leader and read its info."""
        from kazoo.exceptions import KazooException, NoNodeError
        leader = leader_znode(children)
        info = None
        size = sum(1 for c in children if c.startswith(ZNODE_PREFIX))
        if leader is not None:
            try:
                data, _ = self.client.get(f"{self.path}/{leader}")
                info = json.loads(data)
            except NoNodeError:
                return  # gone already: the watch fires again with the new list
            except (KazooException, ValueError) as e:
                log.warning("cannot read leader znode %s: %s", leader, e)
        self._post(self._on_group, leader, info, size)


__all__ = ["Contender", "DetectError"]
