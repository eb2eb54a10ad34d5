"""Starting Marathon next to a real cluster, and talking to its API, for integration tests."""
from __future__ import annotations

import json
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import psutil

from mesos_common.daemons import Daemon, free_port, python_module, spawn


def start_marathon(root: Path, master: str, port: int = 0, *extra: str) -> Daemon:
    return spawn("marathon", python_module(
        "marathon", f"--master={master}", f"--http_port={port or free_port()}",
        f"--work_dir={root / 'marathon'}", "--scale_apps_interval=0.5",
        "--decline_offer_duration=1secs", *extra),
        root / "logs" / "marathon.log", "marathon: listening")


class MarathonApi:
    def __init__(self, base: str) -> None:
        self.base = base

    def call(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        req = urllib.request.Request(
            self.base + path, method=method,
            data=None if body is None else json.dumps(body).encode(),
            headers={"Content-Type": "application/json", "Accept": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=10) as r:
                text = r.read()
                return r.status, json.loads(text) if text else None
        except urllib.error.HTTPError as e:
            text = e.read()
            return e.code, json.loads(text) if text else None

    def app(self, app_id: str) -> dict[str, Any]:
        status, body = self.call("GET", f"/v2/apps/{app_id.strip('/')}")
        assert status == 200, body
        return body["app"]

    def healthy_app(self, app_id: str) -> dict[str, Any] | None:
        """The app once exactly one of its tasks is healthy (a `wait_for` predicate)."""
        app = self.app(app_id)
        return app if app["tasksHealthy"] == 1 else None

    def deployments(self) -> list[dict[str, Any]]:
        return self.call("GET", "/v2/deployments")[1]


def http_ok(host: str, port: int, timeout: float = 2.0) -> bool:
    try:
        with urllib.request.urlopen(f"http://{host}:{port}/", timeout=timeout) as r:
            return r.status == 200
    except OSError:
        return False


def listener_pid(port: int) -> int | None:
    for c in psutil.net_connections(kind="tcp"):
        if c.status == psutil.CONN_LISTEN and c.laddr and c.laddr.port == port and c.pid:
            return c.pid
    return None
