"""Finding the leading master: `--master host:port[,host:port]` or `zk://h:p[,h:p]/path`.

HTTP form: peers read `/master/info` (a standby master answers with the leader's info).
ZooKeeper form (Mesos's layout): every contending master owns an ephemeral sequential znode
`<path>/json.info_<seq>` holding its info as JSON; the lowest sequence number is the leader.
`LeaderWatch` keeps a children watch on `<path>` so a runtime hears about a new leader at once
instead of waiting for heartbeats to go silent.
"""
from __future__ import annotations

import asyncio
import json
import logging
import os
import ssl
import threading
import urllib.error
import urllib.request
from collections.abc import Callable
from typing import Any

from attrs import frozen

log = logging.getLogger("mesos_common.leader")

ZNODE_PREFIX = "json.info_"


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
    curve_public_key: str | None = None  # z85; set when the master's ROUTER is a CURVE server

    @classmethod
    def from_json(cls, data: dict) -> MasterInfo:
        try:
            key = data.get("zmq_curve_public_key")
            return cls(id=str(data["id"]), hostname=str(data["hostname"]), ip=str(data["ip"]),
                       port=int(data["port"]), zmq_endpoint=str(data["zmq_endpoint"]),
                       version=str(data.get("version", "")),
                       curve_public_key=str(key) if key else None)
        except (KeyError, TypeError, ValueError, AttributeError) as e:
            raise DetectError(f"malformed master info: {e}") from None


@frozen
class ZkSpec:
    hosts: str  # kazoo's "h1:p1,h2:p2"
    path: str   # "/corral"


def parse_zk(spec: str) -> ZkSpec:
    """`zk://[user:pass@]h1:p1,h2:p2/path` -> hosts and an absolute, non-root path."""
    rest = spec.strip().removeprefix("zk://")
    hosts, slash, path = rest.partition("/")
    hosts = hosts.rpartition("@")[2]  # digest credentials are not supported; ignore them
    path = "/" + path.strip("/")
    if not slash or path == "/" or not hosts:
        raise DetectError(f"invalid ZooKeeper URL {spec!r}: expected zk://host:port[,...]/path")
    for part in hosts.split(","):
        host, sep, port = part.rpartition(":")
        if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise DetectError(f"invalid ZooKeeper address {part!r} in {spec!r}")
    return ZkSpec(hosts, path)


def parse_master_spec(spec: str) -> list[tuple[str, int]]:
    """`host:port[,host:port...]` -> addresses (zk:// specs go through `parse_zk`)."""
    spec = spec.strip()
    if spec.startswith("zk://"):
        raise DetectError("a zk:// spec has no HTTP addresses; use detect()")
    out = []
    for part in spec.split(","):
        part = part.strip().removeprefix("http://").removeprefix("https://").rstrip("/")
        host, sep, port = part.rpartition(":")
        if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise DetectError(f"invalid master address {part!r}: expected host:port")
        out.append((host, int(port)))
    return out


def validate_master_spec(spec: str) -> None:
    """Raise DetectError now for a spec `detect` could never use (both forms)."""
    if spec.strip().startswith("zk://"):
        parse_zk(spec)
    else:
        parse_master_spec(spec)


def sequence_of(name: str, prefix: str = ZNODE_PREFIX) -> int | None:
    """`json.info_0000000012` -> 12; None for znodes that are not contenders."""
    if not name.startswith(prefix):
        return None
    digits = name[len(prefix):]
    return int(digits) if digits.isdigit() else None


def leader_znode(children: list[str], prefix: str = ZNODE_PREFIX) -> str | None:
    """The contender with the lowest sequence number, i.e. the leader (Mesos semantics)."""
    seqs = [(s, c) for c in children if (s := sequence_of(c, prefix)) is not None]
    return min(seqs)[1] if seqs else None


def _fetch(host: str, port: int, timeout: float, scheme: str = "http") -> MasterInfo:
    """GET /master/info; over HTTPS the certificate is checked against the system's CAs or
    the file in LIBPROCESS_SSL_CA_FILE (Mesos's variable)."""
    context = None
    if scheme == "https":
        context = ssl.create_default_context(cafile=os.environ.get("LIBPROCESS_SSL_CA_FILE"))
    with urllib.request.urlopen(f"{scheme}://{host}:{port}/master/info", timeout=timeout,
                                context=context) as resp:
        return MasterInfo.from_json(json.loads(resp.read()))


def make_zk_client(hosts: str, timeout: float = 10.0) -> Any:
    """A KazooClient with our defaults (kazoo is imported lazily: only HA users need it)."""
    from kazoo.client import KazooClient
    from kazoo.retry import KazooRetry
    kazoo_log = logging.getLogger("kazoo.client")
    if kazoo_log.level == logging.NOTSET:  # its INFO lines (each connect/close) are noise here
        kazoo_log.setLevel(logging.WARNING)
    return KazooClient(hosts=hosts, timeout=timeout,
                       connection_retry=KazooRetry(max_tries=-1, delay=0.1, max_delay=1.0),
                       logger=logging.getLogger("kazoo.client"))


def read_leader(client: Any, path: str) -> tuple[str, MasterInfo] | None:
    """(znode name, info) of the current leader, or None when nobody leads (blocking)."""
    from kazoo.exceptions import NoNodeError
    for _ in range(5):  # the leader may vanish between listing and reading: look again
        try:
            name = leader_znode(client.get_children(path))
        except NoNodeError:
            return None
        if name is None:
            return None
        try:
            data, _stat = client.get(f"{path}/{name}")
        except NoNodeError:
            continue
        try:
            return name, MasterInfo.from_json(json.loads(data))
        except ValueError as e:
            raise DetectError(f"leader znode {path}/{name} holds bad JSON: {e}") from None
    return None


def _detect_zk(spec: str, timeout: float) -> MasterInfo:
    zk = parse_zk(spec)
    client = make_zk_client(zk.hosts, timeout=max(timeout, 2.0))
    try:
        client.start(timeout=timeout)
    except Exception as e:  # kazoo raises its own timeout type
        client.close()
        raise DetectError(f"cannot reach ZooKeeper {zk.hosts}: {e}") from None
    try:
        found = read_leader(client, zk.path)
    except DetectError:
        raise
    except Exception as e:
        raise DetectError(f"reading {zk.path} from ZooKeeper failed: {e}") from None
    finally:
        client.stop()
        client.close()
    if found is None:
        raise DetectError(f"no leading master in {spec}")
    return found[1]


async def detect(spec: str, timeout: float = 2.0) -> MasterInfo:
    """The leader's info; raises DetectError when there is none (or nobody answers)."""
    if spec.strip().startswith("zk://"):
        return await asyncio.to_thread(_detect_zk, spec.strip(), timeout)
    errors = []
    scheme = "https" if "https://" in spec else "http"
    for host, port in parse_master_spec(spec):
        try:
            return await asyncio.to_thread(_fetch, host, port, timeout, scheme)
        except (OSError, urllib.error.URLError, ValueError, DetectError) as e:
            errors.append(f"{host}:{port}: {e}")
    raise DetectError("no master answered: " + "; ".join(errors))


class LeaderWatch:
    """Calls `on_change(leader_znode | None)` on the event loop whenever the lowest
    `json.info_*` child of a zk:// spec changes. A no-op for HTTP specs.

    Runs its own kazoo client (kazoo is threaded); `close()` stops it. Failures to reach
    ZooKeeper are logged and retried by kazoo; they never reach the caller.
    """

    def __init__(self, spec: str, on_change: Callable[[str | None], None],
                 loop: asyncio.AbstractEventLoop) -> None:
        self._on_change = on_change
        self._loop = loop
        self._client: Any = None
        self._last: str | None = None
        self._seen = False
        self._lock = threading.Lock()
        if spec.strip().startswith("zk://"):
            self._zk = parse_zk(spec)
            self._client = make_zk_client(self._zk.hosts)

    async def run(self) -> None:
        """Connect and arm the watch (retrying until it works); kazoo keeps it armed after."""
        if self._client is None:
            return
        delay = 0.25
        while True:
            try:
                await asyncio.to_thread(self._arm)
                return
            except Exception as e:  # ZooKeeper unreachable: keep trying, quietly
                log.warning("leader watch on %s: %s; retrying in %.1fs", self._zk.hosts, e, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)

    def _arm(self) -> None:
        from kazoo.recipe.watchers import ChildrenWatch
        client = self._client
        if client is None:
            return
        client.start(timeout=3.0)
        client.ensure_path(self._zk.path)
        ChildrenWatch(client, self._zk.path, self._children, allow_session_lost=True)

    def _children(self, children: list[str]) -> None:
        leader = leader_znode(children)
        with self._lock:
            first, self._seen = not self._seen, True
            if leader == self._last or first:  # the first report is what detect() saw
                self._last = leader
                return
            self._last = leader
        try:
            self._loop.call_soon_threadsafe(self._on_change, leader)
        except RuntimeError:  # the loop is closed: we are shutting down
            pass

    def close(self) -> None:
        if self._client is not None:
            try:
                self._client.stop()
                self._client.close()
            except Exception:
                log.debug("closing the leader watch failed", exc_info=True)
            self._client = None
