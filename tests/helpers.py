"""Small helpers shared by tests: polling, HTTP JSON, process-group inspection."""
from __future__ import annotations

import json
import os
import time
import urllib.request
from typing import Any, Callable

import psutil


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
