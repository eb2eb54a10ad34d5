"""GPU detection through a fake `nvidia-smi` on PATH (the real code path), the agent's
`gpus` resource, and devices handed to tasks: CUDA_VISIBLE_DEVICES, Docker device requests."""
from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from mesos_agent import gpus
from mesos_agent.containerizer.base import LaunchError
from mesos_agent.containerizer.docker_options import create_request
from mesos_agent.containerizer.gpu import VISIBLE, GpuDevices, assigned
from mesos_agent.containerizer.isolation import Usage
from mesos_agent.probe import agent_resources
from mesos_agent.recovery import MISSING, RUNNING_FOUND, Found
from mesos_common.messages import CommandInfo, ContainerInfo, DockerInfo, TaskInfo
from mesos_common.resources import Resources

UUIDS = ["GPU-1b2c3d4e-0000-1111-2222-333344445555", "GPU-9f8e7d6c-aaaa-bbbb-cccc-ddddeeeeffff"]
SMI = "".join(f"GPU {i}: NVIDIA A100-SXM4-40GB (UUID: {u})\n" for i, u in enumerate(UUIDS))


def fake_smi(bin_dir: Path, output: str = SMI, rc: int = 0) -> Path:
    """An `nvidia-smi` that prints `output` for `-L` (and fails otherwise)."""
    bin_dir.mkdir(parents=True, exist_ok=True)
    smi = bin_dir / "nvidia-smi"
    smi.write_text(f"#!/bin/sh\n[ \"$1\" = -L ] || exit 9\ncat <<'EOF'\n{output}EOF\nexit {rc}\n")
    smi.chmod(0o755)
    return bin_dir


@pytest.fixture
def smi_path(tmp_path, monkeypatch) -> Path:
    d = fake_smi(tmp_path / "bin")
    monkeypatch.setenv("PATH", f"{d}:/usr/bin:/bin")
    monkeypatch.setattr(gpus, "_nvml", lambda: None)  # this machine's NVML, if any, not asked
    return d


def test_parse_smi_lines() -> None:
    found = gpus.parse_smi(SMI + "some other line\n")
    assert found == [gpus.Gpu(0, "NVIDIA A100-SXM4-40GB", UUIDS[0]),
                     gpus.Gpu(1, "NVIDIA A100-SXM4-40GB", UUIDS[1])]


def test_detect_and_advertise_unless_resources_say_otherwise(smi_path, tmp_path) -> None:
    assert [g.uuid for g in gpus.detect()] == UUIDS
    assert agent_resources(str(tmp_path), "cpus:1").scalar("gpus") == 2
    assert agent_resources(str(tmp_path), "cpus:1;gpus:1").scalar("gpus") == 1
    assert agent_resources(str(tmp_path), "gpus:0").scalar("gpus") == 0


def test_no_driver_or_a_failing_smi_means_no_gpus(tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(gpus, "_nvml", lambda: None)
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    assert gpus.detect() == []
    monkeypatch.setenv("PATH", str(fake_smi(tmp_path / "bad", "NVIDIA-SMI has failed\n", 9)))
    assert gpus.detect() == []


class Inner:
    """Records what it was asked to launch (the wrapper's only collaborator)."""

    def __init__(self, survived: bool = True) -> None:
        self.launched: dict[str, TaskInfo] = {}
        self.ended: dict[str, asyncio.Event] = {}
        self.survived = survived  # whether recovered containers are still there

    async def launch(self, task_id: str, framework_id: str, task: TaskInfo, sandbox: str) -> int:
        self.launched[task_id] = task
        self.ended[task_id] = asyncio.Event()
        return 1

    async def wait(self, task_id: str) -> tuple[int | None, int | None]:
        await self.ended[task_id].wait()
        del self.launched[task_id]
        return 0, None

    async def kill(self, task_id: str, grace_period: float) -> None:
        if task_id in self.ended:
            self.ended[task_id].set()

    async def recover(self, task_id: str, framework_id: str, task: TaskInfo, sandbox: str,
                      handle: str) -> Found:
        self.launched[task_id] = task
        self.ended[task_id] = asyncio.Event()
        return Found(RUNNING_FOUND if self.survived else MISSING, pid=1 if self.survived else None)

    def containers(self) -> set[str]:
        return set(self.launched) if self.survived else set()

    async def usage(self, task_id: str) -> Usage | None:
        return None

    def limitation(self, task_id: str) -> str | None:
        return None

    def handle(self, task_id: str) -> str:
        return ""


def command_of(task: TaskInfo) -> CommandInfo:
    assert task.command is not None
    return task.command


def gpu_task(tid: str, n: float, container: ContainerInfo | None = None) -> TaskInfo:
    return TaskInfo(name=tid, task_id=tid, agent_id="A1",
                    resources=Resources.parse(f"cpus:0.1;mem:32;gpus:{n:g}" if n else
                                              "cpus:0.1;mem:32"),
                    command=CommandInfo("nvidia-smi"), container=container)


def test_tasks_get_exactly_their_devices_until_they_end(tmp_path) -> None:
    async def go():
        inner = Inner()
        c = GpuDevices(inner, gpus.parse_smi(SMI), str(tmp_path))
        await c.launch("a", "F", gpu_task("a", 1), "/s")
        await c.launch("plain", "F", gpu_task("plain", 0), "/s")
        await c.launch("b", "F", gpu_task("b", 1), "/s")
        with pytest.raises(LaunchError, match="asks for 1 GPU.* 0 of this agent's 2 are free"):
            await c.launch("c", "F", gpu_task("c", 1), "/s")
        env = {t: command_of(inner.launched[t]).environment for t in inner.launched}
        assert env["a"][VISIBLE] == UUIDS[0] and env["b"][VISIBLE] == UUIDS[1]
        assert VISIBLE not in env["plain"]
        inner.ended["a"].set()
        await c.wait("a")
        assert c.free() == [UUIDS[0]]
        await c.launch("d", "F", gpu_task("d", 1), "/s")
        assert assigned(inner.launched["d"]) == [UUIDS[0]]
        # a restarted agent: what its recovered tasks hold is read back, the rest is free
        restarted = Inner()
        again = GpuDevices(restarted, gpus.parse_smi(SMI), str(tmp_path))
        await again.recover("b", "F", gpu_task("b", 1), "/s", "")
        assert again.free() == [UUIDS[0]]
        assert assigned(restarted.launched["b"]) == [UUIDS[1]]
        # "d" did not survive: its devices are free
        gone = GpuDevices(Inner(survived=False), gpus.parse_smi(SMI), str(tmp_path))
        await gone.recover("d", "F", gpu_task("d", 1), "/s", "")
        assert sorted(gone.free()) == sorted(UUIDS)
    asyncio.run(go())


def test_docker_tasks_get_a_device_request_for_their_devices(tmp_path) -> None:
    async def go():
        inner = Inner()
        c = GpuDevices(inner, gpus.parse_smi(SMI), str(tmp_path))
        docker = ContainerInfo(type="DOCKER", docker=DockerInfo(image="cuda"))
        await c.launch("g", "F", gpu_task("g", 2, docker), "/s")
        return inner.launched["g"]
    _, body = create_request("g", "F", asyncio.run(go()), "/w/box", "/w", {})
    assert body["HostConfig"]["DeviceRequests"] == [
        {"Driver": "nvidia", "DeviceIDs": UUIDS, "Capabilities": [["gpu"]]}]
    _, plain = create_request("p", "F", gpu_task("p", 0, ContainerInfo(
        type="DOCKER", docker=DockerInfo(image="busybox"))), "/w/box", "/w", {})
    assert "DeviceRequests" not in plain["HostConfig"]
