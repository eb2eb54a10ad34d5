"""NVIDIA GPUs on this machine, for the agent's `gpus` resource and for giving a task its
devices: NVML (the `nvidia-ml-py` package) when importable, else `nvidia-smi -L`.

Either way the result is the list of devices by index, name and UUID; a machine without a
driver (no NVML library, no `nvidia-smi`) has none, and a failing probe is logged and
counts as none rather than stopping the agent.
"""
from __future__ import annotations

import logging
import re
import shutil
import subprocess
from typing import Any

from attrs import frozen

log = logging.getLogger("mesos_agent.gpus")

_SMI_LINE = re.compile(r"^GPU (\d+): (.*?) \(UUID: ([^)]+)\)\s*$")


@frozen
class Gpu:
    index: int
    name: str
    uuid: str


def parse_smi(text: str) -> list[Gpu]:
    """`nvidia-smi -L` output: `GPU 0: NAME (UUID: GPU-...)` lines (others are skipped)."""
    out = []
    for line in text.splitlines():
        m = _SMI_LINE.match(line.strip())
        if m:
            out.append(Gpu(int(m.group(1)), m.group(2), m.group(3)))
    return out


def _nvml() -> list[Gpu] | None:
    """The devices NVML sees; None when NVML is not there to ask."""
    try:
        import pynvml
    except ImportError:
        return None
    try:
        pynvml.nvmlInit()
    except Exception as e:  # NVMLError: no driver on this machine
        log.debug("NVML: %s", e)
        return None
    try:
        out = []
        for i in range(pynvml.nvmlDeviceGetCount()):
            h = pynvml.nvmlDeviceGetHandleByIndex(i)
            out.append(Gpu(i, _text(pynvml.nvmlDeviceGetName(h)),
                           _text(pynvml.nvmlDeviceGetUUID(h))))
        return out
    finally:
        pynvml.nvmlShutdown()


def _text(v: Any) -> str:
    return v.decode() if isinstance(v, bytes) else str(v)


def _smi(timeout: float) -> list[Gpu]:
    exe = shutil.which("nvidia-smi")
    if exe is None:
        return []
    try:
        r = subprocess.run([exe, "-L"], capture_output=True, text=True, timeout=timeout)
    except (OSError, subprocess.TimeoutExpired) as e:
        log.warning("nvidia-smi -L failed: %s; no GPUs", e)
        return []
    if r.returncode != 0:
        log.warning("nvidia-smi -L exited with %d: %s; no GPUs", r.returncode,
                    r.stderr.strip()[:200])
        return []
    return parse_smi(r.stdout)


def detect(timeout: float = 10.0) -> list[Gpu]:
    found = _nvml()
    return found if found is not None else _smi(timeout)


def visible_devices(gpus: list[Gpu]) -> str:
    """CUDA_VISIBLE_DEVICES for these devices (by UUID: stable whatever the numbering)."""
    return ",".join(g.uuid for g in gpus)
