"""An in-process Marathon API (MarathonServer + MemoryStore + fake driver) for contract tests."""
from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from marathon.http.app import make_app
from marathon.server import MarathonServer
from marathon.store import MemoryStore
from marathon.tracker import TaskRecord


class FakeDriver:
    """Records the driver calls the service makes (unit tests only)."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, tuple[Any, ...]]] = []

    def __getattr__(self, name: str):
        if name.startswith("_"):
            raise AttributeError(name)
        return lambda *args: self.calls.append((name, args))

    def named(self, name: str) -> list[tuple[Any, ...]]:
        return [a for n, a in self.calls if n == name]


class Api:
    """Synchronous wrapper around aiohttp's TestClient (one loop per test)."""

    def __init__(self, svc: MarathonServer) -> None:
        self.svc = svc
        self.loop = asyncio.new_event_loop()

        async def start() -> TestClient:
            client = TestClient(TestServer(make_app(svc)))
            await client.start_server()
            return client
        self.client = self.loop.run_until_complete(start())

    def call(self, method: str, path: str, body: Any = None, raw: str | None = None,
             headers: dict[str, str] | None = None) -> tuple[int, Any, Any]:
        async def go():
            data = raw if raw is not None else (None if body is None else json.dumps(body))
            r = await self.client.request(method, path, data=data, headers={
                "Content-Type": "application/json", "Accept": "application/json",
                **(headers or {})})
            text = await r.text()
            try:
                parsed = json.loads(text) if text else None
            except json.JSONDecodeError:
                parsed = text
            return r.status, parsed, r.headers
        return self.loop.run_until_complete(go())

    def get(self, path, **kw):
        return self.call("GET", path, **kw)

    def post(self, path, body=None, **kw):
        return self.call("POST", path, body, **kw)

    def put(self, path, body=None, **kw):
        return self.call("PUT", path, body, **kw)

    def delete(self, path, **kw):
        return self.call("DELETE", path, **kw)

    def run(self, coro):
        return self.loop.run_until_complete(coro)

    def close(self) -> None:
        self.loop.run_until_complete(self.client.close())
        self.loop.close()


def add_task(svc: MarathonServer, app_id: str, n: int = 1, state: str = "TASK_RUNNING",
             host: str = "10.0.0.1") -> list[TaskRecord]:
    """Tasks as if launched and running for the app's current config."""
    app = svc.state.apps[app_id]
    out = []
    for _ in range(n):
        from marathon.model import new_task_id
        t = TaskRecord(id=new_task_id(app_id, svc.core.new_uuid()), app_id=app_id,
                       version=app["version"], agent_id="agent-1", host=host, ports=[31000],
                       staged_at=svc.now(), state=state, started_at=svc.now(),
                       config_version=app["versionInfo"]["lastConfigChangeAt"])
        svc.core.add_task(t)
        out.append(t)
    return out


@pytest.fixture
def svc() -> MarathonServer:
    s = MarathonServer(MemoryStore())
    s.driver = FakeDriver()
    return s


@pytest.fixture
def api(svc: MarathonServer) -> Iterator[Api]:
    a = Api(svc)
    try:
        yield a
    finally:
        a.close()
