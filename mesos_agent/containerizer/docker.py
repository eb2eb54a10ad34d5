"""Tasks as Docker containers, through the Docker engine's API (the `docker` SDK).

A slice of Mesos's docker containerizer: a TaskInfo with `container.type == "DOCKER"` runs
its image with the task's command (`sh -c` for shell commands), environment, network (HOST,
or BRIDGE with port mappings whose host ports must come from the task's `ports`), volumes,
privileged flag and extra `parameters`; cpu shares/quota and the memory limit come from the
task's resources. The sandbox is bind-mounted at /mnt/mesos/sandbox and the container's
stdout/stderr are streamed into the sandbox files. Containers carry labels naming this agent
(its work_dir) and the task, so a restarted agent finds its own. Kill = `docker stop` with
the task's grace period (SIGTERM, then SIGKILL); a container is removed once it has ended.

The SDK blocks, so every call runs in a thread of this containerizer's own pool (the log
streams and `wait`s each hold one for a container's life).
"""
from __future__ import annotations

import asyncio
import logging
import os
import re
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable, TypeVar

import docker
import docker.errors
from attrs import define, field

from mesos_agent.containerizer.base import LaunchError, task_environment
from mesos_agent.containerizer.sandbox import make_sandbox
from mesos_agent.containerizer.isolation import Usage
from mesos_agent.recovery import EXITED_FOUND, MISSING, RUNNING_FOUND, Found
from mesos_common.messages import DockerInfo, TaskInfo

log = logging.getLogger(__name__)

SANDBOX_MOUNT = "/mnt/mesos/sandbox"
LABEL_AGENT = "io.corral.agent"
LABEL_TASK = "io.corral.task_id"
LABEL_FRAMEWORK = "io.corral.framework_id"
MIN_MEMORY_MB = 6  # the engine refuses less
MEMORY_LIMITATION = "memory"
T = TypeVar("T")

# `parameters` keys we understand (docker run flags) -> how they change run() kwargs.
_LIST_PARAMS = {"env": "environment", "add-host": "extra_hosts", "dns": "dns",
                "cap-add": "cap_add", "cap-drop": "cap_drop", "security-opt": "security_opt"}
_SCALAR_PARAMS = {"hostname": "hostname", "user": "user", "workdir": "working_dir",
                  "entrypoint": "entrypoint", "shm-size": "shm_size", "pids-limit": "pids_limit",
                  "memory-swap": "memswap_limit", "network": "network", "init": "init"}


@define
class _Container:
    id: str
    pid: int
    killed: bool = False
    logs: list[asyncio.Future[None]] = field(factory=list)
    exited: asyncio.Future[dict[str, Any]] | None = None


def _name(task_id: str, sandbox: str) -> str:
    safe = re.sub(r"[^a-zA-Z0-9_.-]", "_", task_id)[:100]
    return f"corral-{safe}-{os.path.basename(sandbox)[:12]}"


def run_options(task_id: str, framework_id: str, task: TaskInfo, sandbox: str,
                agent_label: str, base_env: dict[str, str]) -> dict[str, Any]:
    """`containers.run` keyword arguments for a task (pure; raises LaunchError)."""
    assert task.container is not None and task.container.docker is not None
    info: DockerInfo = task.container.docker
    env = task_environment(task_id, framework_id, task, SANDBOX_MOUNT, base_env)
    kw: dict[str, Any] = {
        "image": info.image, "detach": True, "name": _name(task_id, sandbox),
        "labels": {LABEL_AGENT: agent_label, LABEL_TASK: task_id, LABEL_FRAMEWORK: framework_id},
        "environment": env, "privileged": info.privileged,
        "volumes": {sandbox: {"bind": SANDBOX_MOUNT, "mode": "rw"}},
        "working_dir": SANDBOX_MOUNT,
    }
    cmd = task.command
    if cmd is not None and cmd.shell and cmd.value:
        kw["entrypoint"], kw["command"] = ["/bin/sh", "-c"], [cmd.value]
    elif cmd is not None and (cmd.value or cmd.arguments):
        kw["command"] = ([cmd.value] if cmd.value else []) + list(cmd.arguments)
    for v in task.container.volumes:
        if not v.host_path:
            raise LaunchError(f"volume {v.container_path}: only host_path volumes are supported")
        kw["volumes"][v.host_path] = {"bind": v.container_path,
                                      "mode": "ro" if v.mode.upper() == "RO" else "rw"}
    cpus, mem = task.resources.scalar("cpus"), task.resources.scalar("mem")
    if cpus > 0:
        kw["cpu_shares"] = max(2, int(cpus * 1024))
        kw["nano_cpus"] = int(cpus * 1e9)
    if mem > 0:
        kw["mem_limit"] = f"{max(MIN_MEMORY_MB, int(mem))}m"
    kw.update(_network(info, task))
    _apply_parameters(kw, info.parameters)
    return kw


def _network(info: DockerInfo, task: TaskInfo) -> dict[str, Any]:
    net = info.network.upper()
    if net == "HOST":
        if info.port_mappings:
            raise LaunchError("port_mappings need network BRIDGE")
        return {"network_mode": "host"}
    if net == "NONE":
        return {"network_mode": "none"}
    if net != "BRIDGE":
        raise LaunchError(f"unsupported docker network {info.network!r}")
    allowed = task.resources.ranges("ports")
    ports: dict[str, int] = {}
    for m in info.port_mappings:
        if not any(lo <= m.host_port <= hi for lo, hi in allowed):
            raise LaunchError(f"host port {m.host_port} is not in the task's ports resources")
        ports[f"{m.container_port}/{m.protocol.lower()}"] = m.host_port
    return {"network_mode": "bridge", "ports": ports}


def _apply_parameters(kw: dict[str, Any], params: tuple[tuple[str, str], ...]) -> None:
    for key, value in params:
        key = key.lstrip("-")
        if key == "label":
            k, _, v = value.partition("=")
            kw["labels"].setdefault(k, v)
        elif key == "env":
            k, _, v = value.partition("=")
            kw["environment"][k] = v
        elif key in _LIST_PARAMS:
            name = _LIST_PARAMS[key]
            if name == "extra_hosts":
                h, _, ip = value.partition(":")
                kw.setdefault(name, {})[h] = ip
            else:
                kw.setdefault(name, []).append(value)
        elif key in _SCALAR_PARAMS:
            kw[_SCALAR_PARAMS[key]] = (value.lower() in ("1", "true", "yes")
                                       if key == "init" else value)
        else:
            raise LaunchError(f"unsupported docker parameter {key!r}")


class DockerContainerizer:
    def __init__(self, work_dir: str, client: Any | None = None,
                 base_env: dict[str, str] | None = None) -> None:
        self.work_dir = work_dir
        self.agent_label = os.path.abspath(work_dir)
        self.client = client if client is not None else docker.from_env(timeout=120)
        self.base_env = dict(base_env or {})
        self._pool = ThreadPoolExecutor(max_workers=512, thread_name_prefix="docker")
        self._containers: dict[str, _Container] = {}
        self._limits: dict[str, str] = {}

    async def _call(self, fn: Callable[..., T], *args: Any, **kw: Any) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool, lambda: fn(*args, **kw))

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)

    # ------------------------------------------------------------ launch

    async def launch(self, task_id: str, framework_id: str, task: TaskInfo, sandbox: str) -> int:
        if task_id in self._containers:
            raise LaunchError(f"task {task_id} is already running")
        make_sandbox(sandbox)
        kw = run_options(task_id, framework_id, task, sandbox, self.agent_label, self.base_env)
        assert task.container is not None and task.container.docker is not None
        await self._ensure_image(task.container.docker)
        try:
            c = await self._call(self.client.containers.run, **kw)
        except docker.errors.APIError as e:
            await self._remove_by_name(kw["name"])
            raise LaunchError(f"docker run {kw['image']}: {e.explanation or e}") from None
        c = await self._call(self.client.containers.get, c.id)
        pid = int(c.attrs["State"].get("Pid") or 0)
        self._adopt(task_id, c.id, pid, sandbox, since=None)
        log.info("task %s: container %s (pid %d) from %s", task_id, c.id[:12], pid, kw["image"])
        return pid

    async def _ensure_image(self, info: DockerInfo) -> None:
        if not info.force_pull_image:
            try:
                await self._call(self.client.images.get, info.image)
                return
            except docker.errors.ImageNotFound:
                pass
            except docker.errors.APIError as e:
                raise LaunchError(f"cannot inspect image {info.image}: {e}") from None
        try:
            await self._call(self.client.images.pull, info.image)
        except docker.errors.APIError as e:
            raise LaunchError(f"Failed to pull image {info.image}: "
                              f"{e.explanation or e}") from None

    async def _remove_by_name(self, name: str) -> None:
        try:
            c = await self._call(self.client.containers.get, name)
            await self._call(c.remove, force=True)
        except docker.errors.APIError:
            pass

    def _adopt(self, task_id: str, cid: str, pid: int, sandbox: str,
               since: float | None) -> None:
        entry = _Container(cid, pid)
        entry.exited = asyncio.ensure_future(self._call(self._wait_blocking, cid))
        for stream, fname in (("stdout", "stdout"), ("stderr", "stderr")):
            entry.logs.append(asyncio.ensure_future(self._call(
                self._stream_logs, cid, stream, os.path.join(sandbox, fname), since)))
        self._containers[task_id] = entry

    def _wait_blocking(self, cid: str) -> dict[str, Any]:
        return self.client.api.wait(cid, timeout=None)  # type: ignore[no-any-return]

    def _stream_logs(self, cid: str, stream: str, path: str, since: float | None) -> None:
        """Copy one of the container's streams into a sandbox file until it ends."""
        kw: dict[str, Any] = {"stdout": stream == "stdout", "stderr": stream == "stderr",
                              "stream": True, "follow": True}
        if since is not None:
            kw["since"] = int(since)
        try:
            with open(path, "ab", buffering=0) as out:
                for chunk in self.client.api.logs(cid, **kw):
                    out.write(chunk)
        except (docker.errors.APIError, OSError) as e:
            log.warning("container %s: %s log stream ended: %s", cid[:12], stream, e)
        except Exception:  # a connection dropped mid-stream (engine restart): not fatal
            log.exception("container %s: %s log stream failed", cid[:12], stream)

    # ------------------------------------------------------------ wait / kill

    async def wait(self, task_id: str) -> tuple[int | None, int | None]:
        c = self._containers[task_id]
        assert c.exited is not None
        try:
            result = await asyncio.shield(c.exited)
            code = int(result.get("StatusCode", -1))
        except Exception as e:
            log.error("task %s: waiting for container %s failed: %s", task_id, c.id[:12], e)
            code = -1
        try:
            info = await self._call(self.client.api.inspect_container, c.id)
            state = info.get("State", {})
            if state.get("OOMKilled"):
                self._limits[task_id] = MEMORY_LIMITATION
        except docker.errors.APIError:
            pass
        await asyncio.wait(c.logs, timeout=5.0)
        await self._remove(c.id)
        self._containers.pop(task_id, None)
        if code < 0:
            return None, None
        if code > 128 and (c.killed or task_id in self._limits):
            return None, code - 128  # the engine reports a signal death as 128 + signal
        return code, None

    async def _remove(self, cid: str) -> None:
        try:
            await self._call(self.client.api.remove_container, cid, force=True, v=True)
        except docker.errors.NotFound:
            pass
        except docker.errors.APIError as e:
            log.error("cannot remove container %s: %s", cid[:12], e)

    async def kill(self, task_id: str, grace_period: float) -> None:
        c = self._containers.get(task_id)
        if c is None or (c.exited is not None and c.exited.done()):
            return
        c.killed = True
        try:
            if grace_period <= 0:
                await self._call(self.client.api.kill, c.id)
            else:
                await self._call(self.client.api.stop, c.id, timeout=max(1, round(grace_period)))
        except docker.errors.NotFound:
            pass
        except docker.errors.APIError as e:
            log.warning("task %s: docker stop %s: %s", task_id, c.id[:12], e)

    def containers(self) -> set[str]:
        return set(self._containers)

    async def usage(self, task_id: str) -> Usage | None:
        """From `docker stats` (one shot)."""
        c = self._containers.get(task_id)
        if c is None:
            return None
        try:
            st = await self._call(self.client.api.stats, c.id, stream=False, one_shot=True)
        except docker.errors.APIError:
            return None
        mem, cpu = st.get("memory_stats") or {}, (st.get("cpu_stats") or {}).get("cpu_usage", {})
        detail = mem.get("stats") or {}
        rss = detail.get("total_rss", detail.get("rss", detail.get("anon", mem.get("usage"))))
        user, system = cpu.get("usage_in_usermode"), cpu.get("usage_in_kernelmode")
        return Usage(mem_rss_bytes=rss, mem_limit_bytes=mem.get("limit"),
                     cpus_user_time_secs=None if user is None else user / 1e9,
                     cpus_system_time_secs=None if system is None else system / 1e9)

    def limitation(self, task_id: str) -> str | None:
        return self._limits.pop(task_id, None)

    def handle(self, task_id: str) -> str:
        c = self._containers.get(task_id)
        return c.id if c is not None else ""

    def container_id(self, task_id: str) -> str | None:
        c = self._containers.get(task_id)
        return c.id if c is not None else None

    # ------------------------------------------------------------ recovery

    async def recover(self, task_id: str, framework_id: str, task: TaskInfo, sandbox: str,
                      handle: str) -> Found:
        """Find the task's container by id, else by labels; reattach when it runs."""
        c = None
        if handle:
            try:
                c = await self._call(self.client.containers.get, handle)
            except docker.errors.NotFound:
                c = None
        if c is None:
            found = await self._call(self.client.containers.list, all=True, filters={
                "label": [f"{LABEL_AGENT}={self.agent_label}", f"{LABEL_TASK}={task_id}"]})
            c = found[0] if found else None
        if c is None:
            return Found(MISSING)
        state = c.attrs.get("State", {})
        if state.get("Running"):
            pid = int(state.get("Pid") or 0)
            self._adopt(task_id, c.id, pid, sandbox, since=_mtime(sandbox))
            log.info("task %s: reattached to container %s", task_id, c.id[:12])
            return Found(RUNNING_FOUND, pid=pid)
        code = int(state.get("ExitCode", -1))
        await self._remove(c.id)
        return Found(EXITED_FOUND, exit_code=code if code >= 0 else None)

    async def remove_orphans(self, known: set[str]) -> list[str]:
        """Remove this agent's containers that no checkpointed task owns."""
        found = await self._call(self.client.containers.list, all=True,
                                 filters={"label": f"{LABEL_AGENT}={self.agent_label}"})
        gone = []
        for c in found:
            if c.labels.get(LABEL_TASK) not in known:
                await self._remove(c.id)
                gone.append(f"container {c.id[:12]}")
        return gone


def _mtime(sandbox: str) -> float:
    try:
        return max(os.stat(os.path.join(sandbox, f)).st_mtime for f in ("stdout", "stderr"))
    except OSError:
        return time.time()
