"""`--wait`: follow a Marathon deployment to its end with a progress bar.

The outcome comes from Marathon's event stream (`deployment_success` / `deployment_failed`,
which a cancel from another shell also ends with), opened before the change is made so no
event is missed; progress (instances healthy / target, current step) from polling
`/v2/deployments` and the affected apps. Should the stream be unavailable, a deployment that
left the list counts as done when every affected app has its instances healthy.
"""
from __future__ import annotations

import contextlib
import json
import socket
import threading
import time
from typing import Any

from corral.errors import CliError

POLL = 0.5
NO_EVENT_GRACE = 3.0


class DeploymentFailed(CliError):
    pass


class Outcomes:
    """Deployment ends seen on the event stream, read by a thread until `close()`."""

    def __init__(self, marathon: Any) -> None:
        self.ended: dict[str, tuple[bool, str]] = {}
        self._lock = threading.Lock()
        self._resp: Any = None
        try:
            self._resp = marathon.request(
                "GET", "/v2/events", stream=True, timeout=30,
                headers={"Accept": "text/event-stream"},
                # the attached event comes at once: the stream is open (and subscribed)
                # when this returns, not at the first heartbeat
                params={"event_type": ["event_stream_attached", "deployment_success",
                                       "deployment_failed"]})
        except CliError:
            self._thread = None
            return
        self._thread = threading.Thread(target=self._read, name="corral-events", daemon=True)
        self._thread.start()

    def _read(self) -> None:
        try:
            for line in self._resp.iter_lines(decode_unicode=True):
                if line and line.startswith("data:"):
                    self._record(json.loads(line[5:]))
        except Exception:  # closed by close(), or the stream broke: polling decides then
            return

    def _record(self, ev: dict[str, Any]) -> None:
        kind = ev.get("eventType")
        if kind in ("deployment_success", "deployment_failed") and "id" in ev:
            with self._lock:
                self.ended[ev["id"]] = (kind == "deployment_success", str(ev.get("reason", "")))

    def get(self, dep_id: str) -> tuple[bool, str] | None:
        with self._lock:
            return self.ended.get(dep_id)

    @property
    def streaming(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def close(self) -> None:
        """End the stream now: shutting the socket down wakes the reader (closing the
        response alone would wait for the server's next heartbeat)."""
        if self._resp is not None:
            sock = getattr(getattr(self._resp.raw, "connection", None), "sock", None)
            if sock is not None:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
            self._resp.close()
        if self._thread is not None:
            self._thread.join(timeout=2)


def app_progress(marathon: Any, app_ids: list[str]) -> tuple[int, int]:
    """(healthy, target) summed over the apps (running counts as healthy without checks)."""
    from corral.client import ApiError
    healthy = target = 0
    for aid in app_ids:
        try:
            app = marathon.get(f"/v2/apps/{aid.strip('/')}")["app"]
        except ApiError as e:
            if e.status == 404:
                continue
            raise
        n = int(app.get("instances", 0))
        ok = app.get("tasksHealthy", 0) if app.get("healthChecks") else \
            app.get("tasksRunning", 0)
        target += n
        healthy += min(n, int(ok))
    return healthy, target


def _step(dep: dict[str, Any]) -> str:
    acts = ", ".join(f"{a.get('action')} {a.get('app')}" for a in dep.get("currentActions", []))
    return f"step {dep.get('currentStep')}/{dep.get('totalSteps')}" + (f": {acts}" if acts else "")


def follow(marathon: Any, dep_id: str, outcomes: Outcomes | None = None,
           timeout: float | None = None, apps: list[str] | None = None) -> None:
    """Block until deployment `dep_id` ends; raise DeploymentFailed if it failed or was
    cancelled (or `timeout` seconds passed)."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from corral.output import console
    own = outcomes is None
    events = outcomes or Outcomes(marathon)
    apps = list(apps or [])  # known before the first poll, which may find it over
    gone_since: float | None = None
    deadline = None if timeout is None else time.monotonic() + timeout
    progress = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                        TextColumn("healthy"), TimeElapsedColumn(), console=console(True),
                        transient=False)
    bar = progress.add_task(f"deployment {dep_id}", total=None)
    try:
        with progress:
            while True:
                ended = events.get(dep_id)
                deps = {d["id"]: d for d in marathon.get("/v2/deployments")}
                dep = deps.get(dep_id)
                if dep is not None:
                    apps = dep.get("affectedApps", apps)
                healthy, target = app_progress(marathon, apps)
                progress.update(bar, completed=healthy, total=target if apps else None,
                                description=_step(dep) if dep else f"deployment {dep_id}")
                if ended is not None:
                    ok, reason = ended
                    if not ok:
                        raise DeploymentFailed(f"deployment {dep_id} failed: {reason or 'unknown'}"
                                               + (" (the apps are being rolled back)"
                                                  if reason == "canceled" else ""))
                    return
                if dep is None:
                    gone_since = gone_since or time.monotonic()
                    if not events.streaming or time.monotonic() - gone_since > NO_EVENT_GRACE:
                        if healthy >= target:
                            return
                        raise DeploymentFailed(f"deployment {dep_id} ended with {healthy} of "
                                               f"{target} instances healthy")
                if deadline is not None and time.monotonic() > deadline:
                    raise DeploymentFailed(f"deployment {dep_id} still running after "
                                           f"{timeout:g}s")
                time.sleep(POLL)
    finally:
        if own:
            events.close()


def change(marathon: Any, wait: bool, make: Any, as_json: bool = False,
           timeout: float | None = None, apps: list[str] | None = None) -> Any:
    """Run `make()` (an API call answering `{"deploymentId": ...}`), report it, and with
    `wait` follow its deployment. The event stream is opened first."""
    from corral.output import emit_json, note
    events = Outcomes(marathon) if wait else None
    try:
        resp = make()
        dep = (resp or {}).get("deploymentId") if isinstance(resp, dict) else None
        if as_json:
            emit_json(resp)
        elif dep:
            note(f"deployment {dep} started")
        if wait and dep:
            follow(marathon, dep, events, timeout, apps)
            if not as_json:
                note(f"deployment {dep} finished")
        return resp
    finally:
        if events is not None:
            events.close()
