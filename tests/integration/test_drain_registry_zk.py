"""Deactivated and draining agents in the ZooKeeper registry, against a real private
ZooKeeper: a new leader reads what the old one wrote, and a node written before the field
existed still loads."""
from __future__ import annotations

import json
from typing import Any

from mesos_master.registry.base import (
    DRAINED,
    DRAINING,
    AdmitAgent,
    AgentDrain,
    MarkUnreachable,
    MemoryRegistry,
    RegistryOperation,
    RemoveAgent,
    UpdateAgentDrain,
)
from mesos_master.registry.zookeeper import ZkRegistry
from tests.integration.test_ha_zookeeper import client

__all__ = ["client"]

OPS: list[RegistryOperation] = [
    AdmitAgent("S1", "h1"), AdmitAgent("S2", "h2"), AdmitAgent("S3", "h3"),
    UpdateAgentDrain("S1", True, AgentDrain(DRAINING, 5.0, False, 1000.0)),
    UpdateAgentDrain("S2", True), UpdateAgentDrain("S9", True),
    UpdateAgentDrain("S3", True, AgentDrain(DRAINING, None, True, 1200.0)),
    MarkUnreachable("S1", 5.0),
    UpdateAgentDrain("S3", True, AgentDrain(DRAINED, None, True, 1200.0)),
    RemoveAgent("S3"),
]


def test_a_new_leader_reads_deactivated_and_draining_agents(client: Any) -> None:
    reg, mem = ZkRegistry(client, "/corral"), MemoryRegistry()
    reg.open()
    assert reg.apply_many(OPS[:3]) == mem.apply_many(OPS[:3])
    assert [reg.apply(op) for op in OPS[3:]] == [mem.apply(op) for op in OPS[3:]]
    successor = ZkRegistry(client, "/corral")
    successor.open()
    assert successor.load() == mem.load()
    assert successor.load().deactivated == {
        "S1": AgentDrain(DRAINING, 5.0, False, 1000.0), "S2": None}
    assert successor.apply(UpdateAgentDrain("S2", False))
    again = ZkRegistry(client, "/corral")
    again.open()
    assert again.load().deactivated == {"S1": AgentDrain(DRAINING, 5.0, False, 1000.0)}


def test_a_node_written_before_the_field_existed_loads(client: Any) -> None:
    client.create("/old/registry", json.dumps({"admitted": {"S1": "h1"}, "unreachable": {},
                                               "weights": {}, "quotas": {}}).encode(),
                  makepath=True)
    reg = ZkRegistry(client, "/old")
    reg.open()
    assert reg.load().admitted == {"S1": "h1"} and reg.load().deactivated == {}
    assert reg.apply(UpdateAgentDrain("S1", True))
    assert json.loads(client.get("/old/registry")[0])["deactivated"] == {"S1": None}
