"""The agent's v1 executor API over HTTP, in front of a real agent core (no daemons)."""
from __future__ import annotations

import asyncio
import base64
import time
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from mesos_agent.core import Agent
from mesos_agent.events import EndExecutorStream, LaunchTask, TaskLaunched, ToExecutor
from mesos_agent.executor_api import ExecutorApi
from mesos_common import task_states as ts
from mesos_common.effects import Received
from mesos_common.messages import RunTask
from mesos_common.recordio import split
from tests.unit.agent.test_core import registered_agent
from tests.unit.agent.test_executor_core import FW, etask


class Host:
    """The runtime's part: feed the core, hand its executor effects to the API."""

    def __init__(self) -> None:
        self.agent = registered_agent()
        self.core: Agent | None = self.agent  # the protocol's type: None before registering
        self.api = ExecutorApi(self, time.time)
        self.launches: list[LaunchTask] = []

    def feed(self, event: Any) -> None:
        for e in self.agent.handle(event, time.time()):
            if isinstance(e, ToExecutor):
                self.api.deliver(e.framework_id, e.executor_id, e.msg)
            elif isinstance(e, EndExecutorStream):
                self.api.end(e.framework_id, e.executor_id)
            elif isinstance(e, LaunchTask):
                self.launches.append(e)


CALL = {"framework_id": {"value": "F1"}, "executor_id": {"value": "E1"}}


async def _events(resp, n: int) -> list[dict]:
    buf = b""
    out: list[dict] = []
    while len(out) < n:
        buf += await asyncio.wait_for(resp.content.readany(), 10)
        got, buf = split(buf)
        out += got
    return out


def test_subscribe_launch_update_and_the_refusals() -> None:
    async def run() -> None:
        host = Host()
        app = web.Application()
        app.router.add_post("/api/v1/executor", host.api.handle)
        async with TestClient(TestServer(app)) as client:
            r = await client.post("/api/v1/executor", json={"type": "SUBSCRIBE", **CALL})
            assert r.status == 400 and "unknown executor" in await r.text()
            r = await client.post("/api/v1/executor", data=b"{nope")
            assert r.status == 400 and "invalid JSON" in await r.text()
            host.feed(Received(b"", RunTask(FW, etask("t1"))))
            [launch] = host.launches
            host.feed(TaskLaunched(launch.task.task_id, 42))
            update = {"type": "UPDATE", **CALL, "update": {"status": {
                "task_id": {"value": "t1"}, "state": "TASK_RUNNING",
                "uuid": base64.b64encode(b"u" * 16).decode()}}}
            r = await client.post("/api/v1/executor", json=update)
            assert r.status == 400 and "not subscribed" in await r.text()
            stream = await client.post("/api/v1/executor", json={"type": "SUBSCRIBE", **CALL})
            assert stream.status == 200
            subscribed, launched = await _events(stream, 2)
            assert subscribed["type"] == "SUBSCRIBED"
            assert subscribed["subscribed"]["executor_info"]["executor_id"] == {"value": "E1"}
            assert subscribed["subscribed"]["framework_info"]["id"] == {"value": "F1"}
            assert launched["type"] == "LAUNCH"
            assert launched["launch"]["task"]["task_id"] == {"value": "t1"}
            assert base64.b64decode(launched["launch"]["task"]["data"]) == b"payload"
            r = await client.post("/api/v1/executor", json=update)
            assert r.status == 202
            assert host.agent.tasks()["t1"].state == ts.RUNNING
            r = await client.post("/api/v1/executor", json={"type": "NOPE", **CALL})
            assert r.status == 400
            beats = asyncio.create_task(host.api.heartbeats(0.05))
            try:
                [beat] = await _events(stream, 1)
                assert beat == {"type": "HEARTBEAT"}
            finally:
                beats.cancel()
            host.api.close()
    asyncio.run(run())
