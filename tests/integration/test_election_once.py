"""A master's ZooKeeper session holds one candidacy znode at most, against a real server: a
start retried after a timeout and a reconnection's re-contend both call contend(), and a
second znode of ours would lead while we waited behind it (no master would lead)."""
from __future__ import annotations

import asyncio

from mesos_common.leader import ZNODE_PREFIX
from mesos_master.election import Contender


def test_contending_twice_in_one_session_keeps_one_znode(zookeeper):
    loop = asyncio.new_event_loop()
    c = Contender(zookeeper.url("/corral"), 5.0, {"id": "m1"}, loop,
                  lambda *a: None, lambda state: None)
    try:
        c.start(10.0)
        first = c.znode
        c.contend()
        assert c.znode == first
        ours = [x for x in c.client.get_children("/corral") if x.startswith(ZNODE_PREFIX)]
        assert ours == [first]
    finally:
        c.close()
        loop.close()
