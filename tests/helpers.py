"""Small helpers shared by tests: polling, HTTP JSON, process-group inspection."""
from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import threading
import time
import urllib.request
from collections.abc import Callable
from typing import Any

import psutil

from frameworks.scheduler import Scheduler
from frameworks.tasks import ResourcesLeft
from mesos_common.daemons import python_module


def search(pattern: str, text: str) -> re.Match[str]:
    """`re.search` for a line the test needs: a clear failure naming the text if it is not there."""
    found = re.search(pattern, text)
    assert found is not None, f"no {pattern!r} in {text!r}"
    return found


def http_json(url: str, timeout: float = 5.0) -> Any:
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return json.loads(r.read())


def wait_for(pred: Callable[[], Any], timeout: float = 30.0, interval: float = 0.02,
             what: str = "condition") -> Any:
    """Poll `pred` until it returns something truthy (and return that); exceptions count as
    not yet (the thing polled may not be up) and the last one is reported on timeout."""
    deadline = time.monotonic() + timeout
    last_exc: Exception | None = None
    while time.monotonic() < deadline:
        try:
            v = pred()
            if v:
                return v
        except Exception as e:
            last_exc = e
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}"
                         + (f" (last error: {last_exc!r})" if last_exc else ""))


async def wait_for_async(pred: Callable[[], Any], timeout: float = 10.0, interval: float = 0.01,
                         what: str = "condition") -> Any:
    """`wait_for` inside an event loop: the loop runs between polls (what is polled is
    usually the loop's own doing). Exceptions are not swallowed: the state polled is ours."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        v = pred()
        if v:
            return v
        if loop.time() >= deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        await asyncio.sleep(interval)


def group_members(pgid: int) -> list[int]:
    """Live (non-zombie) processes in process group `pgid`."""
    out = []
    for p in psutil.process_iter(["status"]):
        try:
            if os.getpgid(p.pid) == pgid and p.info["status"] != psutil.STATUS_ZOMBIE:
                out.append(p.pid)
        except (ProcessLookupError, psutil.Error):
            continue
    return out


class TaskHolder(Scheduler):
    """Launches `count` long tasks (`command`) on the first offers it gets and records every
    status update; tests then kill agents or masters underneath it."""

    def __init__(self, count: int, command: str = "sleep 600", prefix: str = "t") -> None:
        self.count = count
        self.command = command
        self.prefix = prefix
        self.launched: dict[str, str] = {}  # task id -> agent id
        self.updates: list = []
        self.lock = threading.Lock()

    def resource_offers(self, driver, offers):
        for offer in offers:
            left, tasks = ResourcesLeft(offer), []
            while len(self.launched) < self.count:
                t = left.take(f"{self.prefix}{len(self.launched)}", self.command, cpus=0.1,
                              mem=16)
                if t is None:
                    break
                tasks.append(t)
                self.launched[t.task_id] = offer.agent_id
            driver.launch_tasks([offer.id], tasks, refuse_seconds=1)

    def status_update(self, driver, status):
        with self.lock:
            self.updates.append(status)

    def states(self) -> dict[str, str]:
        with self.lock:
            return {u.task_id: u.state for u in self.updates}


def start_mesos_local(*args: str, env: dict[str, str] | None = None
                      ) -> tuple[subprocess.Popen, str]:
    """`mesos-local` as a child in its own session; returns it and its output up to 'ready'."""
    proc = subprocess.Popen(python_module("mesos_master.local", *args), stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, start_new_session=True, env=env)
    lines: list[str] = []
    assert proc.stdout is not None
    for line in proc.stdout:
        lines.append(line)
        if "ready" in line:
            break
    return proc, "".join(lines)
