"""Finding the leading master: `--master host:port[,host:port]` (HTTP) -> its info.

Peers are told the master's HTTP address, as with Mesos, and read `/master/info` to learn
the ZeroMQ endpoint. A standby master answers with the leader's info (issue: HA).
"""
from __future__ import annotations

import asyncio
import json
import urllib.error
import urllib.request

from attrs import frozen


class DetectError(Exception):
    pass


@frozen
class MasterInfo:
    id: str
    hostname: str
    ip: str
    port: int
    zmq_endpoint: str
    version: str

    @classmethod
    def from_json(cls, data: dict) -> "MasterInfo":
        try:
            return cls(id=str(data["id"]), hostname=str(data["hostname"]), ip=str(data["ip"]),
                       port=int(data["port"]), zmq_endpoint=str(data["zmq_endpoint"]),
                       version=str(data.get("version", "")))
        except (KeyError, TypeError, ValueError) as e:
            raise DetectError(f"malformed master info: {e}") from None


def parse_master_spec(spec: str) -> list[tuple[str, int]]:
    """`host:port[,host:port...]` -> addresses; zk:// comes with the HA master."""
    spec = spec.strip()
    if spec.startswith("zk://"):
        raise DetectError("zk:// master detection is not supported yet; give host:port")
    out = []
    for part in spec.split(","):
        part = part.strip().removeprefix("http://").rstrip("/")
        host, sep, port = part.rpartition(":")
        if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise DetectError(f"invalid master address {part!r}: expected host:port")
        out.append((host, int(port)))
    return out


def _fetch(host: str, port: int, timeout: float) -> MasterInfo:
    with urllib.request.urlopen(f"http://{host}:{port}/master/info", timeout=timeout) as resp:
        return MasterInfo.from_json(json.loads(resp.read()))


async def detect(spec: str, timeout: float = 2.0) -> MasterInfo:
    """Ask each address in turn; raises DetectError when none answers."""
    errors = []
    for host, port in parse_master_spec(spec):
        try:
            return await asyncio.to_thread(_fetch, host, port, timeout)
        except (OSError, urllib.error.URLError, ValueError, DetectError) as e:
            errors.append(f"{host}:{port}: {e}")
    raise DetectError("no master answered: " + "; ".join(errors))
