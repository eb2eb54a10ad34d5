"""The HA runtime without ZooKeeper: standby HTTP answers, ZeroMQ "not leader" replies, and
fencing on SUSPENDED / LOST session states (HaState fed the states kazoo would report)."""
from __future__ import annotations

import asyncio
import logging
from typing import Any

from aiohttp.test_utils import TestClient, TestServer

from mesos_common import effects as fx
from mesos_common import messages as m
from mesos_master.ha import HaState
from mesos_master.http import make_app
from mesos_master.registry.base import AdmitAgent, MemoryRegistry
from mesos_master.server import MasterServer, ServerOptions
from tests.helpers import wait_for_async

LEADER = {"id": "L", "hostname": "leader.example", "ip": "10.0.0.1", "port": 5050,
          "zmq_endpoint": "tcp://10.0.0.1:5049", "version": "1.11.0"}


class Standby:
    """What http.make_app needs from a server that is not leading."""

    def __init__(self, leader: dict[str, Any] | None) -> None:
        self.master = None
        self.flags: dict[str, str] = {}
        self.hostname, self.http_port = "me", 1
        self.leading = False
        self._leader = leader

    def info(self) -> dict[str, Any]:
        return {"id": "S"}

    def leader_info(self) -> dict[str, Any] | None:
        return self._leader


async def _get(service: Any, paths: list[str]) -> dict[str, tuple[int, Any, str | None]]:
    client = TestClient(TestServer(make_app(service)))
    await client.start_server()
    try:
        out = {}
        for path in paths:
            r = await client.get(path, allow_redirects=False)
            body = await r.json() if r.content_type == "application/json" else None
            out[path] = (r.status, body, r.headers.get("Location"))
        return out
    finally:
        await client.close()


def test_standby_redirects_to_the_leader_and_serves_its_info() -> None:
    out = asyncio.run(_get(Standby(LEADER), ["/master/redirect", "/master/state?x=1",
                                             "/metrics/snapshot", "/master/info", "/health"]))
    assert out["/master/redirect"][0] == 307
    assert out["/master/redirect"][2] == "//leader.example:5050"
    assert out["/master/state?x=1"][:1] == (307,)
    assert out["/master/state?x=1"][2] == "http://leader.example:5050/master/state?x=1"
    assert out["/metrics/snapshot"][2] == "http://leader.example:5050/metrics/snapshot"
    assert out["/master/info"][:2] == (200, LEADER)
    assert out["/health"][0] == 200


def test_without_a_leader_everything_but_health_is_503() -> None:
    out = asyncio.run(_get(Standby(None), ["/master/redirect", "/master/state",
                                           "/master/info", "/health"]))
    assert [out[p][0] for p in ("/master/redirect", "/master/state", "/master/info")] == \
        [503, 503, 503]
    assert out["/health"][0] == 200


class _Host:
    """Stands in for a contender whose znode leads: the election picks us."""

    znode = "json.info_0000000001"


async def _leading_server() -> MasterServer:
    """A master elected through its HA edge, with an in-memory registry instead of ZooKeeper."""
    server = MasterServer(ServerOptions(port=0, zmq_port=0, registry="in_memory",
                                        zk="zk://127.0.0.1:1/x", zk_session_timeout=0.2),
                          master_id="M")
    server.ha = HaState(server, None, 1, 0.2, open_registry=lambda _: MemoryRegistry())
    server.ha.contender = _Host()  # type: ignore[assignment]
    server._tg = asyncio.TaskGroup()
    await server._tg.__aenter__()
    server.ha.group_changed(_Host.znode, {"id": "M"}, 1)
    for _ in range(100):
        if server.leading:
            break
        await asyncio.sleep(0.01)
    assert server.leading
    return server


def test_suspended_fences_then_reconnect_resumes_with_held_timers() -> None:
    async def scenario() -> tuple[list[Any], bool, bool, bool, int]:
        server = await _leading_server()
        seen: list[Any] = []

        def record(event: Any, now: float) -> list[Any]:
            seen.append(event)
            return []
        assert server.master is not None
        server.master.handle = record  # type: ignore[method-assign]  # the core replaced
        server.ha.session_changed("SUSPENDED")
        fenced = server.ha.fenced and not server.leading
        server.feed(fx.TimerFired(("heartbeat",)))        # held, not processed
        server._persists.append(AdmitAgent("S1", "h"))
        server._flush_persists()                          # refused while fenced
        done = server._queue.pop()
        assert server.registry is not None
        wrote = done.ok or bool(server.registry.load().admitted)
        before = list(seen)
        server.ha.session_changed("CONNECTED")
        await asyncio.sleep(0.3)  # past the (cancelled) session deadline
        return before + ["|"] + seen, fenced, wrote, server.leading, server.exit_code
    events, fenced, wrote, leading, code = asyncio.run(scenario())
    assert fenced and not wrote and leading and code == 0
    assert events == ["|", fx.TimerFired(("heartbeat",))]


def test_still_suspended_after_the_session_timeout_or_lost_means_exit(caplog) -> None:
    async def scenario(state: str) -> tuple[int, bool]:
        server = await _leading_server()
        server.ha.session_changed(state)
        await wait_for_async(server._stop.is_set, timeout=5, what="the master stopping")
        return server.exit_code, server._stop.is_set()
    with caplog.at_level(logging.ERROR):
        assert asyncio.run(scenario("SUSPENDED")) == (1, True)
        assert asyncio.run(scenario("LOST")) == (1, True)
    assert "lost leadership" in caplog.text


def test_standby_answers_zeromq_peers_with_not_leader() -> None:
    server = MasterServer(ServerOptions(port=0, zmq_port=0, registry="in_memory"),
                          registry=MemoryRegistry(), master_id="S")
    server.ha.group_changed("json.info_0000000001", LEADER, 1)  # not ours: we stand by
    sent: list[Any] = []

    class Transport:
        def send(self, peer: bytes, msg: Any) -> None:
            sent.append((peer, msg))
    server.transport = Transport()  # type: ignore[assignment]
    assert not server.leading
    server._not_leader(b"p", m.Heartbeat())
    server._not_leader(b"p", m.ProtocolError("x", "y"))  # never an error for an error
    assert sent == [(b"p", m.ProtocolError("not leader, leader is L at tcp://10.0.0.1:5049",
                                           in_reply_to="Heartbeat"))]


def test_ha_flags(capsys) -> None:
    import pytest

    from mesos_master.main import options_from_argv
    opts, _ = options_from_argv(["--zk=zk://h1:2181,h2:2181/corral", "--quorum=2",
                                 "--zk_session_timeout=3secs", "--agent_reregister_timeout=1mins"])
    assert (opts.zk, opts.quorum, opts.zk_session_timeout, opts.agent_reregister_timeout) == \
        ("zk://h1:2181,h2:2181/corral", 2, 3.0, 60.0)
    assert opts.work_dir is None  # no local registry needed in HA mode
    for bad, why in ((["--zk=zk://h1:2181"], "--zk"), (["--zk=zk://h:1/c"], "--quorum")):
        with pytest.raises(SystemExit) as e:
            options_from_argv(bad)
        assert e.value.code == 2 and why in capsys.readouterr().err


def test_a_remote_registry_is_written_off_the_loop_one_group_at_a_time() -> None:
    """A ZooKeeper write waits on the network: the loop serves on while it is under way, the
    operations persisted meanwhile wait for it and go as the next group, and the core hears
    PersistDone for each only after its write."""
    import threading

    class SlowRemote(MemoryRegistry):
        remote = True

        def __init__(self) -> None:
            super().__init__()
            self.release = threading.Event()
            self.groups: list[list[Any]] = []

        def apply_many(self, ops: list[Any]) -> list[bool]:
            self.groups.append(list(ops))
            assert self.release.wait(5)
            return super().apply_many(ops)

    async def scenario() -> tuple[list[Any], list[Any], list[list[Any]]]:
        registry = SlowRemote()
        server = MasterServer(ServerOptions(port=0, zmq_port=0, registry="in_memory"),
                              registry=registry, master_id="M")
        server.master = server._make_master()
        seen: list[Any] = []

        def record(event: Any, now: float) -> list[list[Any]]:
            seen.append(event)
            return [[]]
        server.master.handle_in_pieces = record  # type: ignore[method-assign]  # core replaced
        async with asyncio.TaskGroup() as tg:
            server._tg = tg
            server._persists.append(AdmitAgent("S1", "h1"))
            server.feed(None)                       # the first group starts writing
            server._persists.append(AdmitAgent("S2", "h2"))
            server.feed(fx.TimerFired(("tick",)))   # served while the write is under way
            await asyncio.sleep(0.05)
            during = list(seen)
            registry.release.set()
            await wait_for_async(
                lambda: len([e for e in seen if isinstance(e, fx.PersistDone)]) == 2)
        return during, seen, registry.groups

    during, seen, groups = asyncio.run(scenario())
    assert during == [fx.TimerFired(("tick",))]
    assert groups == [[AdmitAgent("S1", "h1")], [AdmitAgent("S2", "h2")]]
    assert seen[1:] == [fx.PersistDone(AdmitAgent("S1", "h1"), True),
                        fx.PersistDone(AdmitAgent("S2", "h2"), True)]
