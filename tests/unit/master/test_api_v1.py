"""The v1 scheduler API's pure translation and its HTTP edge with a stand-in master."""
from __future__ import annotations

import asyncio
import base64
import json
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from mesos_common import effects as fx
from mesos_common import messages as m
from mesos_common import recordio
from mesos_common.resources import Resources
from mesos_common.v1_calls import V1Error
from mesos_master.api_v1 import convert, scheduler
from mesos_master.api_v1.scheduler import SchedulerApi, Stream

FID = "M-F1"
CPUS = [{"name": "cpus", "type": "SCALAR", "scalar": {"value": 0.1}},
        {"name": "mem", "type": "SCALAR", "scalar": {"value": 32}}]


def _task(tid: str, **extra: Any) -> dict[str, Any]:
    return {"name": tid, "task_id": {"value": tid}, "agent_id": {"value": "S1"},
            "resources": CPUS, "command": {"value": "true"}, **extra}


def test_subscribe_info_is_lenient_as_the_mesos_parser() -> None:
    info = convert.framework_info({"name": "n", "user": "u", "roles": "r1", "unknown": 1,
                                   "capabilities": [{"type": "GPU_RESOURCES"}, "junk"],
                                   "failover_timeout": 100}, None)
    assert (info.roles, info.capabilities, info.failover_timeout) == (("r1",), ("GPU_RESOURCES",),
                                                                      100.0)
    assert convert.framework_info({"name": "n", "user": "u", "role": "r2"}, "F9").roles == ("r2",)
    assert convert.framework_info({"name": "n", "user": "u"}, "F9").id == "F9"
    with pytest.raises(V1Error):
        convert.framework_info({"name": "n", "roles": 3}, None)


def test_calls_become_the_messages_a_zeromq_framework_sends() -> None:
    uuid = base64.b64encode(b"u" * 16).decode()
    cases: dict[str, tuple[dict[str, Any], object]] = {
        "DECLINE": ({"decline": {"offer_ids": [{"value": "O1"}],
                                 "filters": {"refuse_seconds": 4294967295}}},
                    m.Decline(FID, ("O1",), convert.MAX_REFUSE_SECONDS)),
        "KILL": ({"kill": {"task_id": {"value": "t"}}}, m.Kill(FID, "t", None)),
        "ACKNOWLEDGE": ({"acknowledge": {"agent_id": {"value": "S1"}, "task_id": {"value": "t"},
                                         "uuid": uuid}}, m.Acknowledge(FID, "S1", "t", b"u" * 16)),
        "RECONCILE": ({"reconcile": {"tasks": [{"task_id": {"value": "t"}}]}},
                      m.Reconcile(FID, (m.ReconcileTask("t", None),))),
        "REVIVE": ({"revive": {"roles": ["a"]}}, m.Revive(FID, ("a",))),
        "SUPPRESS": ({}, m.Suppress(FID, ())),
        "TEARDOWN": ({}, m.Teardown(FID)),
    }
    for kind, (body, want) in cases.items():
        assert convert.CALLS[kind]({"type": kind, **body}, FID) == want, kind
    with pytest.raises(V1Error, match="uuid"):
        convert.CALLS["ACKNOWLEDGE"]({"acknowledge": {"agent_id": {"value": "S1"},
                                                      "task_id": {"value": "t"},
                                                      "uuid": "%%"}}, FID)


def test_accept_keeps_command_and_executor_tasks_and_refuses_what_is_not_built() -> None:
    body = {"accept": {"offer_ids": [{"value": "O1"}], "filters": {"refuse_seconds": 5},
                       "operations": [
                           {"type": "LAUNCH", "launch": {"task_infos": [
                               _task("a", data=base64.b64encode(b"hi").decode(),
                                     kill_policy={"grace_period": {"nanoseconds": 2_000_000_000}},
                                     labels={"labels": [{"key": "k", "value": "v"}]}),
                               {**_task("b"), "executor": {"executor_id": {"value": "e"}}},
                               {**_task("x"), "executor": {
                                   "executor_id": {"value": "e"}, "command": {"value": "run"},
                                   "resources": [{"name": "mem", "type": "SCALAR",
                                                  "scalar": {"value": 32}}]}}]}},
                           {"type": "LAUNCH_GROUP", "launch_group": {"task_group": {
                               "tasks": [_task("c")]}}},
                           {"type": "RESERVE", "reserve": {"resources": [
                               {"name": "cpus", "type": "SCALAR", "scalar": {"value": 1},
                                "role": "web", "reservation": {"principal": "p"}}]}},
                           {"type": "CREATE", "create": {"volumes": []}}]}}
    launch = convert.accept(body, FID)
    reserve, op = launch.accept.operations
    assert reserve == m.Operation("RESERVE", resources=Resources.parse("cpus(web):1"))
    task, with_executor = op.tasks
    assert with_executor.executor == m.ExecutorInfo("e", m.CommandInfo("run"),
                                                    Resources.parse("mem:32"))
    assert (task.task_id, task.data, task.kill_grace_period, task.labels) == \
        ("a", b"hi", 2.0, {"k": "v"})
    assert task.resources == Resources.parse("cpus:0.1;mem:32")
    assert launch.accept.offer_ids == ("O1",) and launch.accept.refuse_seconds == 5
    assert [(t, why.split(" ")[0]) for t, _, why in launch.refused] == \
        [("b", "an"), ("c", "LAUNCH_GROUP"), ("", "offer")]


def test_command_uris_go_to_the_fetcher() -> None:
    uris = [{"value": "http://h/app.tgz", "cache": True},
            {"value": "/opt/tool", "executable": True, "output_file": "bin/tool"}]
    body: dict[str, Any] = {"accept": {"offer_ids": [{"value": "O1"}], "operations": [
        {"type": "LAUNCH", "launch": {"task_infos": [
            {**_task("a"), "command": {"value": "./bin/tool", "uris": uris}}]}}]}}
    [task] = convert.accept(body, FID).accept.operations[0].tasks
    assert task.command is not None
    assert task.command.uris == (m.URI("http://h/app.tgz", cache=True),
                                 m.URI("/opt/tool", executable=True, output_file="bin/tool"))
    body["accept"]["operations"][0]["launch"]["task_infos"][0]["command"]["uris"] = [{}]
    with pytest.raises(V1Error, match="uris"):
        convert.accept(body, FID)


def test_events_have_the_shapes_pymesos_needs() -> None:
    info = convert.master_info({"id": "M", "hostname": "h", "ip": "127.0.0.1", "port": 5050,
                                "version": "1.11.0"})
    assert info["address"] == {"hostname": "h", "ip": "127.0.0.1", "port": 5050}
    with_uuid = m.Update(m.TaskStatus("t", "TASK_RUNNING", agent_id="S1", uuid=b"x" * 16))
    ev = convert.event(with_uuid, info)
    assert ev is not None and ev["update"]["status"]["agent_id"] == {"value": "S1"}
    assert base64.b64decode(ev["update"]["status"]["uuid"]) == b"x" * 16
    no_agent = convert.event(m.Update(m.TaskStatus("t", "TASK_LOST", uuid=b"x" * 16)), info)
    assert no_agent is not None and "uuid" not in no_agent["update"]["status"]
    assert convert.event(m.Error("gone"), info) == {"type": "ERROR", "error": {"message": "gone"}}
    assert convert.event(m.AgentLost("S1"), info) == {"type": "FAILURE",
                                                       "failure": {"agent_id": {"value": "S1"}}}
    sub = convert.event(m.Subscribed(FID, "M", 15.0), info)
    assert sub is not None and sub["subscribed"]["framework_id"] == {"value": FID}
    offer = m.Offer("O1", FID, "S1", "h", Resources.parse("cpus:1;ports:[1-2]"),
                    {"rack": "r1", "level": 2.0})
    o = convert.event(m.Offers((offer,)), info)
    assert o is not None and o["offers"]["offers"][0]["attributes"] == [
        {"name": "level", "type": "SCALAR", "scalar": {"value": 2.0}},
        {"name": "rack", "type": "TEXT", "text": {"value": "r1"}}]


def test_recordio_framing() -> None:
    data = recordio.record({"type": "HEARTBEAT"})
    assert data == b'20\n{"type":"HEARTBEAT"}'
    events, rest = recordio.split(data + data[:5])
    assert events == [{"type": "HEARTBEAT"}] and rest == data[:5]


def test_a_reader_that_lets_the_buffer_fill_is_disconnected(monkeypatch) -> None:
    monkeypatch.setattr(scheduler, "MAX_BUFFERED_BYTES", 100)
    stream = Stream("s")
    stream.push(b"x" * 60)
    assert not stream.closed
    stream.push(b"x" * 60)
    assert stream.closed
    assert asyncio.run(stream.next_chunk()) is None


class Host:
    def __init__(self, leading: bool = True, leader: dict[str, Any] | None = None) -> None:
        self.leading = leading
        self._leader = leader
        self.fed: list[Any] = []

    def info(self) -> dict[str, Any]:
        return {"id": "M", "hostname": "h", "ip": "127.0.0.1", "port": 5050, "version": "1.11.0"}

    def leader_info(self) -> dict[str, Any] | None:
        return self._leader

    def feed(self, event: Any) -> None:
        self.fed.append(event)


async def _client(host: Host) -> tuple[TestClient, SchedulerApi]:
    api = SchedulerApi(host)
    app = web.Application()
    app.router.add_post("/api/v1/scheduler", api.handle)
    client = TestClient(TestServer(app))
    await client.start_server()
    return client, api


def test_bad_calls_get_400_with_a_message_and_standbys_redirect() -> None:
    async def scenario() -> list[tuple[int, str]]:
        out = []
        client, _ = await _client(Host())
        try:
            for body in ("{", "[]", json.dumps({"type": "NOPE", "framework_id": {"value": FID}}),
                         json.dumps({"type": "KILL", "framework_id": {"value": FID},
                                     "kill": {"task_id": {"value": "t"}}})):
                r = await client.post("/api/v1/scheduler", data=body)
                out.append((r.status, await r.text()))
        finally:
            await client.close()
        for host in (Host(False, {"hostname": "lead", "port": 5050}), Host(False, None)):
            client, _ = await _client(host)
            try:
                r = await client.post("/api/v1/scheduler", data="{}", allow_redirects=False)
                out.append((r.status, r.headers.get("Location", "")))
            finally:
                await client.close()
        return out
    out = asyncio.run(scenario())
    assert [s for s, _ in out] == [400, 400, 400, 400, 307, 503]
    assert "invalid JSON" in out[0][1] and "unknown call type" in out[2][1]
    assert "SUBSCRIBE first" in out[3][1]
    assert out[4][1] == "//lead:5050/api/v1/scheduler"


def test_a_subscription_streams_recordio_and_its_calls_reach_the_core() -> None:
    async def scenario() -> tuple[list[Any], list[Any], int]:
        host = Host()
        client, api = await _client(host)
        try:
            r = await client.post("/api/v1/scheduler", data=json.dumps(
                {"type": "SUBSCRIBE", "subscribe": {"framework_info": {"name": "n", "user": "u"}}}))
            assert r.status == 200 and r.headers["Transfer-Encoding"] == "chunked"
            sid = r.headers["Mesos-Stream-Id"]
            [sub] = host.fed
            peer = sub.peer
            api.deliver(peer, m.Subscribed(FID, "M", 15.0))
            api.deliver(peer, m.Heartbeat())
            buf = b""
            events: list[Any] = []
            while len(events) < 2:
                buf += await r.content.readany()
                got, buf = recordio.split(buf)
                events += got
            kill = await client.post("/api/v1/scheduler", headers={"Mesos-Stream-Id": sid},
                                     data=json.dumps({"type": "KILL",
                                                      "framework_id": {"value": FID},
                                                      "kill": {"task_id": {"value": "t"}}}))
            api.deliver(peer, m.Error("framework removed"))  # closes the stream
            await r.content.read()
            return events, host.fed, kill.status
        finally:
            await client.close()
    events, fed, status = asyncio.run(scenario())
    assert [e["type"] for e in events] == ["SUBSCRIBED", "HEARTBEAT"]
    assert status == 202
    assert isinstance(fed[0].msg, m.Subscribe)
    assert fed[1] == fx.Received(fed[0].peer, m.Heartbeat())  # the open stream's heartbeat
    assert fed[2] == fx.Received(fed[0].peer, m.Kill(FID, "t", None))
