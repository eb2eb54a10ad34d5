"""How a DOCKER TaskInfo becomes the engine's create-container request (pure; raises
LaunchError for what cannot run).

A slice of Mesos's docker containerizer: the image with the task's command (`sh -c` for shell
commands; without a shell the image's entrypoint gets the arguments), environment, user,
network (HOST, NONE, or BRIDGE with port mappings whose host ports must come from the task's
`ports`), volumes (host paths, paths relative to the sandbox, Docker named volumes),
privileged flag and `parameters` (docker run flags, the common ones mapped, any other refused);
cpu shares/quota and the memory limit from the task's resources. The sandbox is bind-mounted
at /mnt/mesos/sandbox. Labels name this agent (its work_dir) and the task, so a restarted
agent finds its own containers.
"""
from __future__ import annotations

import os
import pwd
import re
from collections.abc import Callable
from typing import Any

from mesos_agent.containerizer.base import LaunchError, task_environment
from mesos_agent.containerizer.gpu import assigned
from mesos_common.messages import DockerInfo, TaskInfo, Volume

SANDBOX_MOUNT = "/mnt/mesos/sandbox"
LABEL_AGENT = "io.corral.agent"
LABEL_TASK = "io.corral.task_id"
LABEL_FRAMEWORK = "io.corral.framework_id"
MIN_MEMORY_MB = 6  # the engine refuses less
_VOLUME_NAME = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_.-]*$")
_SIZE = re.compile(r"^(\d+(?:\.\d+)?)\s*([kmgtp]?)b?$", re.IGNORECASE)


def container_name(task_id: str, sandbox: str) -> str:
    safe = re.sub(r"[^a-zA-Z0-9_.-]", "_", task_id)[:100]
    return f"corral-{safe}-{os.path.basename(sandbox)[:12]}"


def size_bytes(text: str) -> int:
    """docker's sizes: `512m`, `1g`, `1024` (bytes), `-1` (unlimited, for memory-swap)."""
    if text.strip() == "-1":
        return -1
    m = _SIZE.match(text.strip())
    if m is None:
        raise LaunchError(f"bad size {text!r} (e.g. 512m, 1g)")
    return int(float(m.group(1)) * 1024 ** " kmgtp".index(m.group(2).lower() or " "))


def resolve_user(user: str) -> str:
    """A task's user as the engine should run it: `uid:gid` of this agent's user of that
    name (as Mesos switches to the agent's user), a numeric id as given, else the name for
    the image's own passwd to resolve (the engine refuses the start when it cannot)."""
    if user.replace(":", "").isdigit():
        return user
    try:
        pw = pwd.getpwnam(user)
    except KeyError:
        return user
    return f"{pw.pw_uid}:{pw.pw_gid}"


def create_request(task_id: str, framework_id: str, task: TaskInfo, sandbox: str,
                   agent_label: str, base_env: dict[str, str]) -> tuple[str, dict[str, Any]]:
    """(container name, body of POST /containers/create) for a task."""
    assert task.container is not None and task.container.docker is not None
    info: DockerInfo = task.container.docker
    env = task_environment(task_id, framework_id, task, SANDBOX_MOUNT, base_env)
    host: dict[str, Any] = {"Binds": [f"{sandbox}:{SANDBOX_MOUNT}:rw"],
                            "Privileged": info.privileged}
    body: dict[str, Any] = {
        "Image": info.image, "Env": env,
        "Labels": {LABEL_AGENT: agent_label, LABEL_TASK: task_id,
                   LABEL_FRAMEWORK: framework_id},
        "WorkingDir": SANDBOX_MOUNT, "HostConfig": host,
    }
    cmd = task.command
    if cmd is not None and cmd.shell and cmd.value:
        body["Entrypoint"], body["Cmd"] = ["/bin/sh", "-c"], [cmd.value]
    elif cmd is not None and (cmd.value or cmd.arguments):
        body["Cmd"] = ([cmd.value] if cmd.value else []) + list(cmd.arguments)
    if cmd is not None and cmd.user:
        body["User"] = resolve_user(cmd.user)
    host["Binds"] += [_bind(v, sandbox) for v in task.container.volumes]
    cpus, mem = task.resources.scalar("cpus"), task.resources.scalar("mem")
    if cpus > 0:
        host["CpuShares"] = max(2, int(cpus * 1024))
        host["NanoCpus"] = int(cpus * 1e9)
    if mem > 0:
        host["Memory"] = max(MIN_MEMORY_MB, int(mem)) * 2**20
    devices = assigned(task)
    if devices:  # exactly the task's GPUs (as `docker run --gpus device=...`)
        host["DeviceRequests"] = [{"Driver": "nvidia", "DeviceIDs": devices,
                                   "Capabilities": [["gpu"]]}]
    _network(info, task, body)
    for key, value in info.parameters:
        _parameter(body, key.lstrip("-"), value)
    body["Env"] = [f"{k}={v}" for k, v in env.items()]
    return container_name(task_id, sandbox), body


def _bind(v: Volume, sandbox: str) -> str:
    mode = v.mode.upper()
    if mode not in ("RO", "RW"):
        raise LaunchError(f"volume {v.container_path}: mode must be RO or RW, not {v.mode!r}")
    if not v.host_path:
        raise LaunchError(f"volume {v.container_path}: no hostPath (host paths and Docker "
                          "named volumes are supported)")
    if not v.container_path.startswith("/"):
        raise LaunchError(f"volume {v.container_path}: containerPath must be absolute")
    source = v.host_path
    if not source.startswith("/") and not _VOLUME_NAME.match(source):
        source = os.path.normpath(os.path.join(sandbox, source))  # relative to the sandbox
        if not source.startswith(sandbox.rstrip("/") + "/"):
            raise LaunchError(f"volume {v.container_path}: hostPath {v.host_path!r} leaves "
                              "the sandbox")
    return f"{source}:{v.container_path}:{mode.lower()}"


def _network(info: DockerInfo, task: TaskInfo, body: dict[str, Any]) -> None:
    host = body["HostConfig"]
    net = info.network.upper()
    if net in ("HOST", "NONE"):
        if info.port_mappings:
            raise LaunchError("port_mappings need network BRIDGE")
        host["NetworkMode"] = net.lower()
        return
    if net != "BRIDGE":
        raise LaunchError(f"unsupported docker network {info.network!r}")
    allowed = task.resources.ranges("ports")
    host["NetworkMode"] = "bridge"
    host["PortBindings"], body["ExposedPorts"] = {}, {}
    for m in info.port_mappings:
        if not any(lo <= m.host_port <= hi for lo, hi in allowed):
            raise LaunchError(f"host port {m.host_port} is not in the task's ports resources")
        key = f"{m.container_port}/{m.protocol.lower()}"
        body["ExposedPorts"][key] = {}
        host["PortBindings"].setdefault(key, []).append({"HostPort": str(m.host_port)})


def _kv(value: str, sep: str = "=") -> tuple[str, str]:
    k, found, v = value.partition(sep)
    if not k or not found:
        raise LaunchError(f"expected KEY{sep}VALUE, got {value!r}")
    return k, v


def _ulimit(value: str) -> dict[str, Any]:
    name, limits = _kv(value)
    soft, _, hard = limits.partition(":")
    return {"Name": name, "Soft": int(soft), "Hard": int(hard or soft)}


def _flag(value: str) -> bool:
    return value.strip().lower() in ("", "1", "true", "yes")


# docker run flags -> (where in the request, how the value is read, repeatable?)
_PARAMS: dict[str, tuple[str, Callable[[str], Any], bool]] = {
    "user": ("User", str, False), "u": ("User", str, False),
    "hostname": ("Hostname", str, False), "h": ("Hostname", str, False),
    "workdir": ("WorkingDir", str, False), "w": ("WorkingDir", str, False),
    "entrypoint": ("Entrypoint", lambda v: [v], False),
    "stop-signal": ("StopSignal", str, False),
    "volume": ("HostConfig.Binds", str, True), "v": ("HostConfig.Binds", str, True),
    "cap-add": ("HostConfig.CapAdd", str, True), "cap-drop": ("HostConfig.CapDrop", str, True),
    "add-host": ("HostConfig.ExtraHosts", str, True), "dns": ("HostConfig.Dns", str, True),
    "dns-search": ("HostConfig.DnsSearch", str, True),
    "security-opt": ("HostConfig.SecurityOpt", str, True),
    "group-add": ("HostConfig.GroupAdd", str, True),
    "ulimit": ("HostConfig.Ulimits", _ulimit, True),
    "memory-swap": ("HostConfig.MemorySwap", size_bytes, False),
    "memory-reservation": ("HostConfig.MemoryReservation", size_bytes, False),
    "shm-size": ("HostConfig.ShmSize", size_bytes, False),
    "pids-limit": ("HostConfig.PidsLimit", int, False),
    "oom-kill-disable": ("HostConfig.OomKillDisable", _flag, False),
    "read-only": ("HostConfig.ReadonlyRootfs", _flag, False),
    "init": ("HostConfig.Init", _flag, False),
    "privileged": ("HostConfig.Privileged", _flag, False),
    "network": ("HostConfig.NetworkMode", str, False),
    "net": ("HostConfig.NetworkMode", str, False),
    "ipc": ("HostConfig.IpcMode", str, False), "pid": ("HostConfig.PidMode", str, False),
}


def _parameter(body: dict[str, Any], key: str, value: str) -> None:
    if key in ("env", "e"):
        k, v = _kv(value) if "=" in value else (value, os.environ.get(value, ""))
        body["Env"][k] = v
    elif key in ("label", "l"):
        k, v = _kv(value) if "=" in value else (value, "")
        body["Labels"].setdefault(k, v)  # our own labels stay
    elif key == "sysctl":
        k, v = _kv(value)
        body["HostConfig"].setdefault("Sysctls", {})[k] = v
    elif key == "tmpfs":
        path, _, mount_options = value.partition(":")
        body["HostConfig"].setdefault("Tmpfs", {})[path] = mount_options
    elif key in _PARAMS:
        where, read, many = _PARAMS[key]
        try:
            parsed = read(value)
        except ValueError as e:
            raise LaunchError(f"docker parameter {key}={value!r}: {e}") from None
        target = body
        *parents, last = where.split(".")
        for p in parents:
            target = target.setdefault(p, {})
        if many:
            target.setdefault(last, []).append(parsed)
        else:
            target[last] = parsed
    else:
        known = ", ".join(sorted({"env", "label", "sysctl", "tmpfs", *_PARAMS}))
        raise LaunchError(f"unsupported docker parameter {key!r} (supported: {known})")
