"""What this machine offers (psutil), `--resources` overrides, and `--attributes` parsing.

Like Mesos: cpus, mem, disk, ports and NVIDIA GPUs (mesos_agent/gpus.py) are probed; any
resource *named* in `--resources` (even as `gpus:0`) replaces the probed one (all its
roles), the others keep their probed values. Memory and disk
keep a reserve for the OS and the agent: `total - min(1 GB, total / 2)` for memory and
`free - min(5 GB, free / 2)` for the work dir's filesystem (Mesos reserves 10 GB of disk;
5 GB matches mesos-local's split of the machine).
"""
from __future__ import annotations

import os
import re

import psutil

from mesos_agent import gpus
from mesos_common.messages import AttributeValue
from mesos_common.resources import Resources

MB = 2**20
MEM_RESERVE_MB = 1024
DISK_RESERVE_MB = 5120
DEFAULT_PORTS = (31000, 32000)
_NUMBER = re.compile(r"^[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?$")
_ATTR_NAME = re.compile(r"^[A-Za-z0-9_.\-/]+$")


class AttributeParseError(ValueError):
    """Invalid `--attributes` text."""


def _existing(path: str) -> str:
    """The nearest existing ancestor of `path` (the work dir may not exist yet)."""
    path = os.path.abspath(path)
    while not os.path.exists(path) and os.path.dirname(path) != path:
        path = os.path.dirname(path)
    return path


def _reserved(total_mb: float, reserve_mb: float) -> float:
    return float(max(0, int(total_mb - min(reserve_mb, total_mb / 2))))


def probe_resources(work_dir: str) -> Resources:
    """cpus (logical), mem and disk (MB, after the reserve), NVIDIA GPUs and the default
    port range."""
    cpus = psutil.cpu_count(logical=True) or 1
    mem = _reserved(psutil.virtual_memory().total / MB, MEM_RESERVE_MB)
    disk = _reserved(psutil.disk_usage(_existing(work_dir)).free / MB, DISK_RESERVE_MB)
    lo, hi = DEFAULT_PORTS
    n_gpus = len(gpus.detect())
    return Resources.parse(f"cpus:{cpus};mem:{mem:.0f};disk:{disk:.0f};ports:[{lo}-{hi}]"
                           + (f";gpus:{n_gpus}" if n_gpus else ""))


def override(probed: Resources, text: str | None) -> Resources:
    """`probed` with every resource named in `text` replaced by `text`'s value(s).

    Raises mesos_common.resources.ResourceError for invalid text."""
    if not text or not text.strip():
        return probed
    given = Resources.parse(text)
    # named with a zero (`gpus:0`) counts too: that resource is then not offered at all
    names = set(given.names()) | {re.split(r"[(:]", part.strip(), maxsplit=1)[0]
                                  for part in text.split(";") if part.strip()}
    kept = [item for item in probed.to_json() if item["name"] not in names]
    return Resources.from_json(kept) + given


def agent_resources(work_dir: str, text: str | None) -> Resources:
    return override(probe_resources(work_dir), text)


def parse_attributes(text: str | None) -> dict[str, AttributeValue]:
    """`rack:r1;zone:a;level:3` -> {"rack": "r1", "zone": "a", "level": 3.0}.

    Numbers become floats (Mesos SCALAR), anything else stays text (ranges and sets such as
    `[1-10]` or `{a,b}` are kept as their text). Raises AttributeParseError with the bad part."""
    out: dict[str, AttributeValue] = {}
    for part in (text or "").split(";"):
        part = part.strip()
        if not part:
            continue
        name, sep, value = part.partition(":")
        name, value = name.strip(), value.strip()
        if not sep or not value:
            raise AttributeParseError(f"invalid attribute {part!r}: expected name:value")
        if not _ATTR_NAME.match(name):
            raise AttributeParseError(f"invalid attribute name {name!r} in {part!r}")
        if name in out:
            raise AttributeParseError(f"attribute {name!r} given twice")
        out[name] = float(value) if _NUMBER.match(value) else value
    return out
