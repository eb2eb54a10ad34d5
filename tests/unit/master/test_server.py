"""The runtime around the core: effects performed, core bugs contained, HTTP views, flags."""
from __future__ import annotations

import asyncio
import gc
import json
import logging
import time
import urllib.request
from typing import Any

import pytest
import zmq

from mesos_common import codec
from mesos_common import effects as fx
from mesos_common import messages as m
from mesos_common.resources import Resources
from mesos_master import main as master_main
from mesos_master.registry.base import AdmitAgent, MemoryRegistry
from mesos_master.server import MasterServer, ServerOptions


def _server(**kw: Any) -> MasterServer:
    opts = ServerOptions(port=0, zmq_port=0, registry="in_memory", **kw)
    return MasterServer(opts, registry=MemoryRegistry(), master_id="M")


def test_core_bug_is_logged_and_the_next_event_still_runs(caplog) -> None:
    server = _server()
    server.master = server._make_master()
    calls: list[Any] = []

    def handle(event: Any, now: float) -> list[Any]:
        calls.append(event)
        if len(calls) == 1:
            raise RuntimeError("boom")
        if len(calls) == 2:
            return [fx.Log("info", "fine"), fx.Persist(AdmitAgent("S1", "h"))]
        return []

    server.master.handle = handle  # type: ignore[method-assign]
    with caplog.at_level(logging.INFO):
        server.feed(fx.Start())
        server.feed(fx.Start())
    assert server.core_errors == 1
    assert "boom" in caplog.text and "Traceback" in caplog.text
    # Persist ran against the registry and came back as PersistDone (a third event)
    assert len(calls) == 3 and calls[-1] == fx.PersistDone(AdmitAgent("S1", "h"), True)
    assert server.registry is not None
    assert server.registry.load().admitted == {"S1": "h"}


def _get(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=5) as r:
        body = r.read()
        return r.status, (json.loads(body) if body else None), r.headers


def _get_raw(url: str) -> tuple[str, bytes]:
    with urllib.request.urlopen(url, timeout=5) as r:
        return r.headers["Content-Type"], r.read()


async def _exercise(server: MasterServer) -> dict[str, Any]:
    started = asyncio.Event()
    run = asyncio.create_task(server.run(ready=lambda s: started.set()))
    await asyncio.wait_for(started.wait(), 10)
    base = f"http://127.0.0.1:{server.http_port}"
    out: dict[str, Any] = {}
    await asyncio.sleep(0.1)
    time.sleep(0.3)  # hold the loop: the lag probe must see it
    await asyncio.sleep(0.2)
    for path in ("/health", "/version", "/master/info", "/master/state", "/state",
                 "/master/state.json", "/metrics/snapshot", "/master/flags", "/master/tasks"):
        out[path] = await asyncio.to_thread(_get, base + path)
    out["jsonp"] = await asyncio.to_thread(_get_raw, base + "/master/state?jsonp=cb.x")

    def zmq_roundtrip() -> list[Any]:
        ctx = zmq.Context()
        try:
            sock = ctx.socket(zmq.DEALER)
            sock.setsockopt(zmq.LINGER, 0)
            sock.connect(server.zmq_endpoint)
            sock.send(b"\xc1garbage")
            sock.send(codec.encode(m.Heartbeat()))
            sock.send(codec.encode(m.RegisterAgent(m.AgentInfo("h", 1, Resources.parse(
                "cpus:1;mem:64")))))
            got: list[Any] = []
            while len(got) < 3 and sock.poll(5000):
                got.append(codec.decode(sock.recv()))
            return got
        finally:
            ctx.destroy(linger=0)
    out["zmq"] = await asyncio.to_thread(zmq_roundtrip)
    redirect = urllib.request.Request(base + "/master/redirect", method="GET")
    opener = urllib.request.build_opener(_NoRedirect)
    try:
        await asyncio.to_thread(opener.open, redirect)
    except urllib.error.HTTPError as e:
        out["redirect"] = (e.code, e.headers["Location"])
    server.stop()
    await asyncio.wait_for(run, 10)
    return out


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


def test_server_serves_http_and_zmq_and_stops() -> None:
    server = _server(flags={"port": "0"})
    out = asyncio.run(_exercise(server))
    assert out["/health"][0] == 200 and out["/health"][1] is None
    version = out["/version"][1]["version"]
    assert all(p.isdigit() for p in version.split(".")) and version >= "1.0.0"
    info = out["/master/info"][1]
    assert info == {"id": "M", "hostname": "127.0.0.1", "ip": "127.0.0.1",
                    "port": server.http_port, "zmq_endpoint": server.zmq_endpoint,
                    "version": "1.11.0", "address": {"hostname": "127.0.0.1", "ip": "127.0.0.1",
                                                     "port": server.http_port}}
    assert out["/master/state"][1]["id"] == "M" == out["/state"][1]["id"]
    assert out["/master/state.json"][1]["pid"] == f"master@127.0.0.1:{server.http_port}"
    snapshot = out["/metrics/snapshot"][1]
    assert snapshot["master/elected"] == 1.0
    assert snapshot["master/event_loop_lag_max_ms"] >= 250  # the loop was held for 300 ms
    assert out["/master/tasks"][1] == {"tasks": []}
    kind, body = out["jsonp"]
    assert kind.startswith("text/javascript") and body.startswith(b"cb.x(")
    assert body.endswith(b");") and json.loads(body[5:-2])["id"] == "M"
    assert out["/master/flags"][1] == {"flags": {"port": "0"}}
    err, hb, registered = out["zmq"]
    assert isinstance(err, m.ProtocolError) and "malformed" in err.message
    assert isinstance(hb, m.ProtocolError) and hb.in_reply_to == "Heartbeat"
    assert isinstance(registered, m.AgentRegistered) and registered.master_id == "M"
    assert out["redirect"] == (307, f"//127.0.0.1:{server.http_port}")


def test_flags(monkeypatch: pytest.MonkeyPatch) -> None:
    opts, level = master_main.options_from_argv(["--registry=in_memory",
                                                 "--agent_ping_timeout=2secs"])
    assert (opts.ip, opts.port, opts.zmq_port, opts.registry, level) == (
        "127.0.0.1", 5050, 5049, "in_memory", "INFO")
    assert opts.agent_ping_timeout == 2.0 and opts.heartbeat_interval is None
    assert opts.allocation_interval == 0.1 and opts.offer_timeout == 60.0  # finite by default
    monkeypatch.setenv("MESOS_OFFER_TIMEOUT", "30secs")
    opts, _ = master_main.options_from_argv(["--work_dir=/tmp/x", "--heartbeat_interval=1secs"])
    assert opts.offer_timeout == 30.0 and opts.heartbeat_interval == 1.0
    assert opts.registry == "sqlite" and opts.flags["work_dir"] == "/tmp/x"
    with pytest.raises(SystemExit) as exc:
        master_main.options_from_argv([])  # sqlite needs --work_dir
    assert exc.value.code == 2


async def _flooded(server: MasterServer, count: int) -> list[float]:
    """Queue `count` messages at the master while its loop is held; then record, at every
    turn of the loop, how many the master had handled."""
    started = asyncio.Event()
    run = asyncio.create_task(server.run(ready=lambda s: started.set()))
    await asyncio.wait_for(started.wait(), 10)
    ctx = zmq.Context()
    try:
        sock = ctx.socket(zmq.DEALER)
        sock.setsockopt(zmq.LINGER, 0)
        sock.connect(server.zmq_endpoint)
        frame = codec.encode(m.Heartbeat())  # unknown peer: each one is answered and counted
        for _ in range(count):
            sock.send(frame)
        time.sleep(1.0)  # the loop stays held while libzmq's I/O thread queues the frames
        seen: list[float] = []
        deadline = time.monotonic() + 30
        while (not seen or seen[-1] < count) and time.monotonic() < deadline:
            assert server.master is not None
            seen.append(server.master.counters["dropped_messages"])
            await asyncio.sleep(0)
        return seen
    finally:
        ctx.destroy(linger=0)
        server.stop()
        await asyncio.wait_for(run, 10)


def test_a_flood_of_messages_does_not_starve_the_event_loop() -> None:
    """The receive loop drains bursts without returning to the loop, but must yield between
    bursts: otherwise timers (heartbeats), HTTP and the lag probe wait for the whole flood."""
    server = _server()
    seen = asyncio.run(_flooded(server, 5000))
    assert seen[-1] == 5000
    assert len({v for v in seen if 0 < v < 5000}) >= 5  # other tasks ran between bursts


async def _full_collection(server: MasterServer) -> dict[str, Any]:
    started = asyncio.Event()
    run = asyncio.create_task(server.run(ready=lambda s: started.set()))
    await asyncio.wait_for(started.wait(), 10)
    try:
        frozen_before = gc.get_freeze_count()
        gc.collect()
        for _ in range(100):  # the lag probe freezes at its next wake-up
            await asyncio.sleep(0.05)
            if gc.get_freeze_count() > frozen_before:
                break
        return {**server.runtime_metrics(), "frozen_before": frozen_before}
    finally:
        server.stop()
        await asyncio.wait_for(run, 10)


def test_survivors_of_a_full_collection_are_frozen_and_collections_are_timed() -> None:
    server = _server(gc_freeze=True)
    thresholds = gc.get_threshold()
    try:
        out = asyncio.run(_full_collection(server))
    finally:
        gc.unfreeze()
        gc.set_threshold(*thresholds)
    assert out["master/gc_full_collections"] >= 1
    assert out["master/gc_frozen_objects"] > out["frozen_before"]
    assert out["master/gc_pause_max_ms"] > 0
    assert server.gc._on_gc not in gc.callbacks  # removed when the server stops
