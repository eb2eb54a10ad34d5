"""Operator calls are answered once their registry write is done, also when the registry
writes off the event loop (ZooKeeper does: `remote`): a real MasterServer over a registry that
takes its time in a worker thread, and over one whose writes fail."""
from __future__ import annotations

import asyncio
import json
import time
import urllib.error
import urllib.request
from typing import Any

from mesos_common import effects as fx
from mesos_common import messages as m
from mesos_master.registry.base import MemoryRegistry, RegistryOperation
from mesos_master.server import MasterServer, ServerOptions
from tests.unit.master.harness import agent_info


class RemoteRegistry(MemoryRegistry):
    """A MemoryRegistry that is written the way ZkRegistry is: in a worker thread, slowly."""

    remote = True

    def __init__(self, fail: bool = False) -> None:
        super().__init__()
        self.fail = fail

    def apply_many(self, ops: list[RegistryOperation]) -> list[bool]:
        time.sleep(0.05)
        if self.fail and not any(type(op).__name__ == "AdmitAgent" for op in ops):
            raise OSError("disk full")
        return super().apply_many(ops)


def _post(url: str, body: Any) -> int:
    req = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST",
                                 headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return int(r.status)
    except urllib.error.HTTPError as e:
        return int(e.code)


async def _exercise(server: MasterServer) -> list[int]:
    started = asyncio.Event()
    run = asyncio.create_task(server.run(ready=lambda s: started.set()))
    try:
        await asyncio.wait_for(started.wait(), 10)
        server.feed(fx.Received(b"agent-1", m.RegisterAgent(agent_info("h1"))))
        for _ in range(200):
            if server.master is not None and server.master.agents:
                break
            await asyncio.sleep(0.02)
        assert server.master is not None
        (agent_id,) = server.master.agents
        base = f"http://127.0.0.1:{server.http_port}"
        calls: list[tuple[str, Any]] = [
            ("/api/v1", {"type": "DRAIN_AGENT", "drain_agent": {"agent_id": {"value": agent_id}}}),
            ("/api/v1", {"type": "UPDATE_WEIGHTS", "update_weights": {
                "weight_infos": [{"role": "ads", "weight": 2.0}]}}),
            ("/weights", [{"role": "web", "weight": 3.0}]),
            ("/api/v1", {"type": "REACTIVATE_AGENT",
                         "reactivate_agent": {"agent_id": {"value": agent_id}}}),
        ]
        return [await asyncio.to_thread(_post, base + path, body) for path, body in calls]
    finally:
        server.stop()
        await asyncio.wait_for(run, 10)


def _server(registry: RemoteRegistry) -> MasterServer:
    return MasterServer(ServerOptions(port=0, zmq_port=0, registry="in_memory"),
                        registry=registry, master_id="M")


def test_answers_wait_for_a_remote_registry() -> None:
    registry = RemoteRegistry()
    assert asyncio.run(_exercise(_server(registry))) == [200, 200, 200, 200]
    state = registry.load()
    assert state.weights == {"ads": 2.0, "web": 3.0} and state.deactivated == {}


def test_a_failed_remote_write_is_an_error_answer() -> None:
    registry = RemoteRegistry(fail=True)
    assert asyncio.run(_exercise(_server(registry))) == [503, 503, 503, 200]
    assert registry.load().deactivated == {} and registry.load().weights == {}
