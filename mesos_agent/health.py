"""Health probes the agent runs for its tasks (Mesos-native health checks): one probe per
call, the runtime loops and feeds the results to the core as `HealthResult`s.

COMMAND runs `sh -c` in the task's sandbox with the task's environment, as the task's user
(inside the container, through `docker exec`, for Docker tasks): never with more rights
than the task has; HTTP GETs `scheme://127.0.0.1:port/path`
(2xx and 3xx are healthy); TCP connects to `127.0.0.1:port`. Every probe has the check's
timeout; a probe that cannot even be attempted counts as a failure with the reason.

Probes run from the host. Mesos probes a container from inside its network, so a framework
may name a BRIDGE container's own port: `on_host` turns it into the host port it is
published on.
"""
from __future__ import annotations

import asyncio
import os
import signal

import aiohttp
import attrs

from mesos_agent.containerizer.users import UnknownUser, account
from mesos_common.messages import HealthCheck, TaskInfo

HOST = "127.0.0.1"


def on_host(check: HealthCheck, task: TaskInfo) -> HealthCheck:
    """The check with a BRIDGE container's port replaced by its published host port (a
    port that is already one of the task's host ports stays)."""
    c = task.container
    if check.port is None or c is None or c.docker is None or c.docker.network != "BRIDGE":
        return check
    mappings = c.docker.port_mappings
    if any(m.host_port == check.port for m in mappings):
        return check
    for m in mappings:
        if m.container_port == check.port:
            return attrs.evolve(check, port=m.host_port)
    return check


async def probe(check: HealthCheck, sandbox: str, env: dict[str, str],
                container_id: str | None = None, user: str | None = None) -> tuple[bool, str]:
    """(healthy, why not) of one probe."""
    timeout = max(0.1, check.timeout_seconds)
    try:
        if check.type == "COMMAND":
            return await _command(check, sandbox, env, container_id, timeout, user)
        if check.port is None:
            return False, f"{check.type} health check without a port"
        if check.type == "HTTP":
            return await _http(check, timeout)
        return await _tcp(check.port, timeout)
    except TimeoutError:
        return False, f"{check.type} health check timed out after {timeout:g}s"
    except (OSError, aiohttp.ClientError) as e:
        return False, f"{check.type} health check failed: {e}"


async def _http(check: HealthCheck, timeout: float) -> tuple[bool, str]:
    path = check.path if check.path.startswith("/") else f"/{check.path}"
    url = f"{check.scheme}://{HOST}:{check.port}{path}"
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=timeout)) as s:
        async with s.get(url, allow_redirects=False, ssl=False) as r:
            if 200 <= r.status < 400:
                return True, ""
            return False, f"GET {url} returned {r.status}"


async def _tcp(port: int, timeout: float) -> tuple[bool, str]:
    _, writer = await asyncio.wait_for(asyncio.open_connection(HOST, port), timeout)
    writer.close()
    try:
        await writer.wait_closed()
    except OSError:
        pass
    return True, ""


async def _command(check: HealthCheck, sandbox: str, env: dict[str, str],
                   container_id: str | None, timeout: float,
                   user: str | None) -> tuple[bool, str]:
    cmd = check.command
    if cmd is None or not (cmd.value or cmd.arguments):
        return False, "COMMAND health check without a command"
    uid: int | None = None  # None: as the agent
    gid: int | None = None
    groups: list[int] | None = None
    if user:
        try:
            acct = account(user)
        except UnknownUser as e:
            return False, f"COMMAND health check not run: {e}"
        if not acct.is_current():
            uid, gid, groups = acct.uid, acct.gid, list(acct.groups)
    argv = (["/bin/sh", "-c", cmd.value] if cmd.shell
            else list(cmd.arguments) or [cmd.value])
    if container_id:
        argv = ["docker", "exec", container_id, *argv]
    full_env = {**env, **cmd.environment}
    proc = await asyncio.create_subprocess_exec(
        *argv, cwd=sandbox if os.path.isdir(sandbox) else None, env=full_env,
        stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL, start_new_session=True,
        user=uid, group=gid, extra_groups=groups)
    try:
        rc = await asyncio.wait_for(proc.wait(), timeout)
    except TimeoutError:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        await proc.wait()
        raise
    except asyncio.CancelledError:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        raise
    return (rc == 0), f"command exited with status {rc}"
