"""The ZooKeeper pieces against a real private ZooKeeper: registry compare-and-set, zk://
detection and the leader watch."""
from __future__ import annotations

import asyncio
import json

import pytest

from mesos_common.leader import DetectError, LeaderWatch, detect, make_zk_client
from mesos_master.registry.base import (
    AdmitAgent,
    MarkReachable,
    MarkUnreachable,
    MemoryRegistry,
    RegistryOperation,
    RemoveAgent,
)
from mesos_master.registry.zookeeper import FencedError, ZkRegistry
from tests.helpers import wait_for_async

OPS: list[RegistryOperation] = [
    AdmitAgent("S1", "h1"), AdmitAgent("S2", "h2"), AdmitAgent("S1", "dup"),
    MarkUnreachable("S1", 5.0), MarkReachable("S1", "h1b"), RemoveAgent("S2"), RemoveAgent("S9")]


@pytest.fixture
def client(zookeeper):
    c = make_zk_client(zookeeper.hosts)
    c.start(timeout=10)
    try:
        yield c
    finally:
        c.stop()
        c.close()


def test_registry_matches_memory_and_survives_a_new_leader(client):
    reg, mem = ZkRegistry(client, "/corral"), MemoryRegistry()
    reg.open()
    assert [reg.apply(op) for op in OPS] == [mem.apply(op) for op in OPS]
    assert reg.load() == mem.load()
    successor = ZkRegistry(client, "/corral")
    successor.open()  # what a newly elected leader does
    assert successor.load() == mem.load()
    with pytest.raises(FencedError):  # the deposed leader can no longer write
        reg.apply(AdmitAgent("S3", "h3"))
    with pytest.raises(FencedError):
        reg.apply(AdmitAgent("S4", "h4"))
    assert successor.apply(AdmitAgent("S3", "h3"))
    assert "S3" in json.loads(client.get("/corral/registry")[0])["admitted"]


def _info(i: str) -> bytes:
    return json.dumps({"id": i, "hostname": "h", "ip": "127.0.0.1", "port": 1,
                       "zmq_endpoint": f"tcp://127.0.0.1:{i}", "version": "1"}).encode()


def test_detect_follows_the_lowest_znode_and_the_watch_reports_changes(client, zookeeper):
    url = zookeeper.url()
    with pytest.raises(DetectError):
        asyncio.run(detect(url))
    first = client.create("/corral/json.info_", _info("1"), ephemeral=True, sequence=True,
                          makepath=True)
    client.create("/corral/json.info_", _info("2"), ephemeral=True, sequence=True)
    client.create("/corral/registry", b"{}")

    async def scenario() -> tuple[str, list[str | None], str]:
        seen: list[str | None] = []
        watch = LeaderWatch(url, seen.append, asyncio.get_running_loop())
        try:
            before = (await detect(url)).id
            await watch.run()
            # The watch's first report (what detect() saw) is not passed on, and nothing
            # public says it came: give it 0.3 s before the leader changes.
            await asyncio.sleep(0.3)
            client.delete(first)
            await wait_for_async(lambda: seen, timeout=5, what="the new leader reported")
            return before, seen, (await detect(url)).id
        finally:
            watch.close()
    before, seen, after = asyncio.run(scenario())
    assert (before, after) == ("1", "2")
    assert len(seen) == 1 and seen[0] is not None and seen[0] != first.rsplit("/", 1)[1]
