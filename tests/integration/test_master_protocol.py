"""The real `python -m mesos_master` process, spoken to with raw ZeroMQ DEALER sockets.

A fake agent and fake frameworks (plain DEALER sockets + mesos_common.codec) drive one task
through its life; /master/state and /metrics/snapshot must show it; then 1,000 malformed or
random frames hit the ROUTER and the master must still serve a new framework; finally the
master restarts on the same work dir and recognises the agent's id. The master process is
stopped by pid in a fixture finalizer, failing or not.
"""
from __future__ import annotations

import json
import os
import signal
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgpack
import pytest
import zmq
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from mesos_common import codec
from mesos_common import messages as m
from mesos_common import task_states as ts
from mesos_common.daemons import Daemon, python_module, spawn
from mesos_common.resources import Resources

ROOT = Path(__file__).resolve().parents[2]
AGENT_RES = "cpus:4;mem:2048;disk:1000;ports:[31000-31009]"


class MasterProcess:
    """Start/stop `python -m mesos_master` on free ports; remembers its work dir."""

    def __init__(self, work_dir: Path) -> None:
        self.work_dir = work_dir
        self.daemon: Daemon | None = None

    def start(self) -> None:
        env = dict(os.environ, PYTHONPATH=str(ROOT))
        self.daemon = spawn("master", python_module(
            "mesos_master", "--ip=127.0.0.1", "--port=0", "--zmq_port=0",
            f"--work_dir={self.work_dir / 'master'}", "--allocation_interval=100ms",
            "--log_level=INFO"), self.work_dir / "master.log", "mesos-master: listening",
            env=env)

    def stop(self) -> None:
        if self.daemon is not None:
            self.daemon.stop(timeout=10, sig=signal.SIGTERM)

    @property
    def http(self) -> str:
        assert self.daemon is not None
        return self.daemon.field("http")

    @property
    def zmq(self) -> str:
        assert self.daemon is not None
        return self.daemon.field("zmq")

    def get(self, path: str) -> Any:
        with urllib.request.urlopen(self.http + path, timeout=5) as r:
            body = r.read()
            return json.loads(body) if body else r.status


@pytest.fixture
def master(tmp_path: Path) -> Iterator[MasterProcess]:
    proc = MasterProcess(tmp_path)
    proc.start()
    try:
        yield proc
    finally:
        proc.stop()
        if proc.daemon is not None and proc.daemon.alive():  # pragma: no cover
            proc.daemon.kill9()


@pytest.fixture
def zctx() -> Iterator[zmq.Context]:
    ctx = zmq.Context()
    yield ctx
    ctx.destroy(linger=0)


class Peer:
    """A DEALER socket that sends messages and waits for one of a given type."""

    def __init__(self, ctx: zmq.Context, endpoint: str, identity: bytes) -> None:
        self.sock = ctx.socket(zmq.DEALER)
        self.sock.setsockopt(zmq.IDENTITY, identity)
        self.sock.setsockopt(zmq.LINGER, 0)
        self.sock.connect(endpoint)
        self.seen: list[Any] = []

    def send(self, msg: Any) -> None:
        self.sock.send(codec.encode(msg))

    def expect(self, kind: type, timeout: float = 10.0) -> Any:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.sock.poll(int(max(0.0, deadline - time.monotonic()) * 1000) + 1):
                msg = codec.decode(self.sock.recv())
                self.seen.append(msg)
                if isinstance(msg, kind):
                    return msg
        raise AssertionError(f"no {kind.__name__} within {timeout}s; saw {self.seen[-5:]}")

    def close(self) -> None:
        self.sock.close(linger=0)


def _agent_info() -> m.AgentInfo:
    return m.AgentInfo("fake-agent", 5051, Resources.parse(AGENT_RES), {"rack": "r1"})


def _run_one_task(zctx: zmq.Context, master: MasterProcess):
    agent = Peer(zctx, master.zmq, b"agent-1")
    agent.send(m.RegisterAgent(_agent_info(), version="1.11.0"))
    agent_id = agent.expect(m.AgentRegistered).agent_id
    fw = Peer(zctx, master.zmq, b"framework-1")
    fw.send(m.Subscribe(m.FrameworkInfo("test-fw", user="root", failover_timeout=600.0)))
    fw_id = fw.expect(m.Subscribed).framework_id
    (offer,) = fw.expect(m.Offers).offers
    assert offer.agent_id == agent_id and offer.resources == Resources.parse(AGENT_RES)
    task = m.TaskInfo("sleeper", "task-1", agent_id, Resources.parse("cpus:1;mem:256"),
                      m.CommandInfo("sleep 100"))
    fw.send(m.Accept(fw_id, (offer.id,), (m.Operation("LAUNCH", (task,)),)))
    run = agent.expect(m.RunTask)
    assert run.task == task and run.framework.id == fw_id
    uuid = b"\x01" * 16
    agent.send(m.StatusUpdate(fw_id, m.TaskStatus("task-1", ts.RUNNING, agent_id=agent_id,
                                                  uuid=uuid, timestamp=time.time())))
    update = fw.expect(m.Update)
    assert (update.framework_id, update.status.state, update.status.uuid) == (
        fw_id, ts.RUNNING, uuid)
    fw.send(m.Acknowledge(fw_id, agent_id, "task-1", uuid))
    assert agent.expect(m.StatusUpdateAck) == m.StatusUpdateAck(fw_id, agent_id, "task-1", uuid)
    return agent, fw, agent_id, fw_id, task


def _check_views(master: MasterProcess, agent_id: str, fw_id: str) -> None:
    assert master.get("/health") == 200
    assert master.get("/master/info")["zmq_endpoint"] == master.zmq
    state = master.get("/master/state")
    (slave,) = state["slaves"]
    assert slave["id"] == agent_id and slave["resources"]["cpus"] == 4.0
    assert slave["used_resources"]["cpus"] == 1.0 and slave["attributes"] == {"rack": "r1"}
    (framework,) = state["frameworks"]
    assert framework["id"] == fw_id and framework["tasks"][0]["state"] == ts.RUNNING
    assert master.get("/state.json")["id"] == state["id"]
    snap = master.get("/metrics/snapshot")
    assert snap["master/cpus_total"] == 4.0 and snap["master/mem_total"] == 2048.0
    assert snap["master/cpus_used"] == 1.0 and snap["master/tasks_running"] == 1.0
    assert snap["master/slaves_active"] == 1.0 and snap["master/elected"] == 1.0


# ---------------------------------------------------------------- garbage

_scalars = st.one_of(st.none(), st.booleans(), st.integers(-2**63, 2**64 - 1),
                     st.floats(allow_nan=True), st.text(max_size=20), st.binary(max_size=20))
_values = st.recursive(_scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner, max_size=4)),
    max_leaves=12)
_type_names = st.sampled_from([c.__name__ for c in m.MESSAGE_TYPES] + ["Nope", "", "Offer"])
_field_names = st.sampled_from(["agent_info", "framework_info", "framework_id", "offer_ids",
                                "status", "tasks", "task_id", "uuid", "agent_id", "extra"])


def _pack(obj: Any) -> bytes:
    return msgpack.packb(obj, use_bin_type=True)


_frames = st.one_of(
    st.binary(max_size=300).map(lambda b: [b]),  # random bytes
    st.builds(lambda t, v, f: [_pack({"type": t, "v": v, **f})], _type_names,  # bad maps
              st.one_of(st.just(1), _scalars), st.dictionaries(_field_names, _values,
                                                                max_size=4)),
    _values.map(lambda v: [_pack(v)]),  # valid msgpack, not a message
    st.lists(st.binary(max_size=40), min_size=2, max_size=4),  # multi-frame
    st.builds(lambda t: [_pack({"type": t, "v": 1, "framework_id": "x", "unknown": 1})],
              _type_names),  # extra fields
)


def _throw_garbage(zctx: zmq.Context, endpoint: str, n: int) -> int:
    socks = [Peer(zctx, endpoint, f"chaos-{i}".encode()) for i in range(4)]
    sent = [0]

    @settings(max_examples=n, database=None, deadline=None, derandomize=True,
              phases=[Phase.generate], suppress_health_check=list(HealthCheck))
    @given(st.integers(0, 3), _frames)
    def throw(which: int, frames: list[bytes]) -> None:
        socks[which].sock.send_multipart(frames)
        sent[0] += 1

    throw()
    replies = 0
    for s in socks:  # drain the ProtocolError replies
        while s.sock.poll(300):
            s.sock.recv()
            replies += 1
    for s in socks:
        s.close()
    assert replies > 0, "the master answered no malformed frame with a ProtocolError"
    return sent[0]


# ---------------------------------------------------------------- the test

def test_master_protocol_end_to_end(master: MasterProcess, zctx: zmq.Context) -> None:
    agent, fw, agent_id, fw_id, task = _run_one_task(zctx, master)
    _check_views(master, agent_id, fw_id)
    fw.send(m.Suppress(fw_id))  # leave the rest of the agent to the next framework
    for offer in [o for msg in fw.seen if isinstance(msg, m.Offers) for o in msg.offers][1:]:
        fw.send(m.Decline(fw_id, (offer.id,), refuse_seconds=3600))

    sent = _throw_garbage(zctx, master.zmq, 1000)
    assert sent >= 1000
    assert master.daemon is not None and master.daemon.alive()
    assert master.get("/health") == 200
    fw2 = Peer(zctx, master.zmq, b"framework-2")
    fw2.send(m.Subscribe(m.FrameworkInfo("after-chaos", user="root")))
    fw2_id = fw2.expect(m.Subscribed).framework_id
    fw.send(m.Heartbeat())
    agent.send(m.Heartbeat())
    (offer,) = fw2.expect(m.Offers, timeout=15.0).offers
    assert offer.agent_id == agent_id and offer.framework_id == fw2_id
    assert offer.resources == Resources.parse(AGENT_RES) - task.resources
    assert master.get("/metrics/snapshot")["master/dropped_messages"] >= 1000.0
    for p in (agent, fw, fw2):
        p.close()

    # a restarted master on the same work dir recognises the agent's id
    master.stop()
    master.start()
    agent = Peer(zctx, master.zmq, b"agent-1-again")
    agent.send(m.Heartbeat())
    assert agent.expect(m.ProtocolError).in_reply_to == "Heartbeat"
    fw_info = m.FrameworkInfo("test-fw", user="root", id=fw_id, failover_timeout=600.0)
    agent.send(m.ReregisterAgent(agent_id, _agent_info(), tasks=(
        m.TaskRecord(fw_id, task, ts.RUNNING),), frameworks=(fw_info,)))
    again = agent.expect(m.AgentReregistered)
    assert again.agent_id == agent_id and again.master_id != ""
    state = master.get("/master/state")
    assert [s["id"] for s in state["slaves"]] == [agent_id]
    (framework,) = state["frameworks"]
    assert framework["id"] == fw_id and framework["recovered"] and not framework["connected"]
    assert master.get("/metrics/snapshot")["master/cpus_used"] == 1.0
    stranger = Peer(zctx, master.zmq, b"stranger")
    stranger.send(m.ReregisterAgent("never-admitted", _agent_info()))
    assert stranger.expect(m.ShutdownAgent).reason
    agent.close()
    stranger.close()
    master.stop()
    log = (master.work_dir / "master.log").read_text()
    assert "master core failed" not in log and "Traceback" not in log, log[-3000:]
