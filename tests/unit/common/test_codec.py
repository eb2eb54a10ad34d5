"""Strict decoding: every malformed input becomes a DecodeError value, never an exception."""
from __future__ import annotations

import sys

import attrs
import msgpack
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mesos_common import codec
from mesos_common import messages as m
from mesos_common.resources import Resources

RES = Resources.parse("cpus:1;mem:128;ports:[31000-31002]")
TASK = m.TaskInfo(name="t", task_id="t1", agent_id="a1", resources=RES,
                  command=m.CommandInfo(value="echo hi", environment={"A": "b"}),
                  container=m.ContainerInfo(type="DOCKER", docker=m.DockerInfo(
                      image="busybox", network="BRIDGE",
                      port_mappings=(m.PortMapping(host_port=31000, container_port=80),),
                      parameters=(("env", "X=1"),))),
                  labels={"k": "v"}, data=b"\x00\x01")

SAMPLES = [
    m.Heartbeat(),
    m.ProtocolError(message="bad", in_reply_to="Kill"),
    m.RegisterAgent(agent_info=m.AgentInfo(hostname="h", port=5051, resources=RES,
                                           attributes={"rack": "r1", "n": 2.0},
                                           containerizers=("docker", "mesos"))),
    m.ReregisterAgent(agent_id="a1", agent_info=m.AgentInfo(hostname="h", port=1, resources=RES),
                      tasks=(m.TaskRecord(framework_id="f", task=TASK, state="TASK_RUNNING"),),
                      frameworks=(m.FrameworkInfo(name="fw", id="f"),)),
    m.StatusUpdate(framework_id="f", status=m.TaskStatus(task_id="t1", state="TASK_RUNNING",
                                                         uuid=b"u" * 16, healthy=True)),
    m.Accept(framework_id="f", offer_ids=("o1", "o2"),
             operations=(m.Operation(type="LAUNCH", tasks=(TASK,)),), refuse_seconds=1.5),
    m.Offers(offers=(m.Offer(id="o", framework_id="f", agent_id="a", hostname="h", resources=RES),
                     m.Offer(id="o2", framework_id="f", agent_id="a", hostname="h",
                             resources=RES, containerizers=("mesos",)))),
    m.Reconcile(framework_id="f", tasks=(m.ReconcileTask(task_id="t1"),)),
    m.Subscribe(framework_info=m.FrameworkInfo(name="fw", roles=("a", "b"), failover_timeout=60)),
]


@pytest.mark.parametrize("msg", SAMPLES, ids=lambda x: type(x).__name__)
def test_round_trip(msg):
    assert codec.decode(codec.encode(msg)) == msg


def test_every_message_type_round_trips_with_its_defaults_only():
    for cls in m.MESSAGE_TYPES:
        frame = msgpack.packb({"type": cls.__name__, "v": 1})
        out = codec.decode(frame)
        if isinstance(out, codec.DecodeError):
            assert "missing field" in out.message, out
        else:
            assert type(out) is cls


def pack(d):
    return msgpack.packb(d, use_bin_type=True)


BAD = [
    (b"", "malformed"),
    (b"\xc1", "malformed"),
    (pack([1, 2]), "expected a map"),
    (pack({"v": 1}), "no string 'type'"),
    (pack({"type": "Nope", "v": 1}), "unknown message type"),
    (pack({"type": "Heartbeat", "v": 99}), "unsupported version"),
    (pack({"type": "Heartbeat"}), "unsupported version"),
    (pack({"type": "Kill", "v": 1, "framework_id": 3, "task_id": "x"}), "expected string"),
    (pack({"type": "Kill", "v": 1, "task_id": "x"}), "missing field(s) framework_id"),
    (pack({"type": "Kill", "v": 1, "framework_id": "f", "task_id": "x", "zz": 1}),
     "unknown field 'zz'"),
    (pack({"type": "Update", "v": 1, "status": {"task_id": "x", "state": "BAD"}}),
     "unknown task state"),
    (pack({"type": "Update", "v": 1, "status": "x"}), "expected map"),
    (pack({"type": "Update", "v": 1, "status": {"task_id": "x", "state": "TASK_RUNNING",
                                                  "agent_id": 7}}),
     "status.agent_id: expected string"),
    (pack({"type": "Update", "v": 1, "status": {"task_id": None, "state": "TASK_RUNNING"}}),
     "status.task_id: expected string, got NoneType"),
    (pack({"type": "Update", "v": 1, "status": {"task_id": "x", "state": "TASK_RUNNING",
                                                  "healthy": 1}}),
     "status.healthy: expected boolean"),
    (pack({"type": "Kill", "v": 1, "framework_id": "f", "task_id": "x", 1: 2}), "map key"),
    (pack({"type": "Decline", "v": 1, "framework_id": "f", "offer_ids": "o"}), "expected list"),
    (pack({"type": "Decline", "v": 1, "framework_id": "f", "offer_ids": [],
           "refuse_seconds": True}), "expected number"),
    (pack({"type": "Accept", "v": 1, "framework_id": "f", "offer_ids": [],
           "operations": [{"type": "DESTROY"}]}), "operations[0]"),
    (pack({"type": "Offers", "v": 1, "offers": [{"id": "o", "framework_id": "f", "agent_id": "a",
           "hostname": "h", "resources": [{"name": "cpus", "type": "SCALAR"}]}]}), "resources"),
    (pack({"type": "Offers", "v": 1, "offers": [{"id": "o", "framework_id": "f", "agent_id": "a",
           "hostname": "h", "resources": [{"name": "cpus", "type": "SCALAR",
                                           "scalar": {"value": -1}}]}]}), "resources"),
]


@pytest.mark.parametrize("frame,expect", BAD)
def test_bad_frames_give_decode_errors(frame, expect):
    out = codec.decode(frame)
    assert isinstance(out, codec.DecodeError)
    assert expect in out.message


def test_oversized_frame_rejected_before_parsing():
    out = codec.decode(b"\x00" * (codec.MAX_MESSAGE_BYTES + 1))
    assert isinstance(out, codec.DecodeError) and "exceeds" in out.message


def test_deep_nesting_is_an_error_not_a_crash():
    frame = b"\x91" * 100_000 + b"\xc0"  # 100k nested one-element arrays
    assert isinstance(codec.decode(frame), codec.DecodeError)
    inner = pack({"type": "Heartbeat", "v": 1})
    frame = b"\x83\xa4type\xa9Heartbeat\xa1v\x01\xa1x" + b"\x91" * 100_000 + b"\xc0"
    assert isinstance(codec.decode(frame), codec.DecodeError)
    assert not isinstance(codec.decode(inner), codec.DecodeError)


json_like = st.recursive(
    st.none() | st.booleans() | st.integers(-2**63, 2**64 - 1) | st.floats() | st.text(max_size=8)
    | st.binary(max_size=8),
    lambda c: st.lists(c, max_size=4) | st.dictionaries(st.text(max_size=8), c, max_size=4),
    max_leaves=20)


@settings(max_examples=300)
@given(st.binary(max_size=200))
def test_random_bytes_never_raise(frame):
    codec.decode(frame)


@settings(max_examples=300)
@given(st.sampled_from([c.__name__ for c in m.MESSAGE_TYPES]),
       st.dictionaries(st.sampled_from(["framework_id", "task_id", "offer_ids", "status", "offers",
                                        "agent_info", "tasks", "uuid", "x"]),
                       json_like, max_size=4))
def test_random_fields_never_raise(mtype, fields):
    out = codec.decode(pack({"type": mtype, "v": 1, **fields}))
    assert isinstance(out, (codec.DecodeError, *m.MESSAGE_TYPES))


def test_to_dict_from_dict_round_trip():
    assert codec.from_dict(m.TaskInfo, codec.to_dict(TASK)) == TASK
    with pytest.raises(ValueError, match="task_id"):
        codec.from_dict(m.TaskInfo, {"name": "x", "task_id": 3, "agent_id": "a", "resources": []})


def test_decoded_optional_and_interned_fields_keep_their_values():
    """The generated decoders' fast paths: exact types taken as they are, None where a field
    may be None, strings of interned fields shared."""
    st1 = m.TaskStatus("t1", "TASK_RUNNING", agent_id="A-" + "S1", healthy=None, message="")
    st2 = m.TaskStatus("t2", "TASK_RUNNING", agent_id="A-" + "S1", healthy=True, timestamp=3)
    a, b = (codec.decode(codec.encode(m.Update(s))).status for s in (st1, st2))
    assert (a, b) == (st1, attrs.evolve(st2, timestamp=3.0))
    assert a.agent_id is b.agent_id and a.healthy is None and b.healthy is True


def _fast_and_strict(mtype: str, body: dict) -> tuple[object, object]:
    """What the generated fast decoder and the strict decoder make of one message body."""
    def run(conv):
        try:
            return conv(dict(body))
        except Exception as e:  # noqa: BLE001
            return e
    return run(codec._MSG_FAST[mtype]), run(codec._MSG_DECODERS[mtype])


def _assert_fast_agrees(mtype: str, body: dict) -> None:
    fast, strict = _fast_and_strict(mtype, body)
    if not isinstance(fast, Exception):  # the fast path may only accept what strict accepts
        assert not isinstance(strict, Exception), (body, strict)
        assert type(fast) is type(strict) and codec.encode(fast) == codec.encode(strict)


def _body(msg) -> dict:
    body = msgpack.unpackb(codec.encode(msg), raw=False)
    del body["type"], body["v"]
    return body


@pytest.mark.parametrize("msg", SAMPLES, ids=lambda x: type(x).__name__)
def test_fast_decoder_gives_the_strict_result(msg):
    fast, strict = _fast_and_strict(type(msg).__name__, _body(msg))
    assert fast == strict == msg


@settings(max_examples=400)
@given(st.sampled_from(SAMPLES), st.data())
def test_fast_decoder_accepts_only_what_the_strict_one_does(msg, data):
    """Fields of valid messages replaced, dropped or added, at the top and one level down."""
    body = _body(msg)
    target = body
    nested = [k for k, v in body.items() if isinstance(v, dict)]
    if nested and data.draw(st.booleans()):
        target = body[data.draw(st.sampled_from(nested))]
    keys = sorted(target) + ["x", "zz"]
    for _ in range(data.draw(st.integers(1, 3))):
        key = data.draw(st.sampled_from(keys))
        if data.draw(st.booleans()):
            target[key] = data.draw(json_like)
        else:
            target.pop(key, None)
    _assert_fast_agrees(type(msg).__name__, body)


@settings(max_examples=300)
@given(st.sampled_from([c.__name__ for c in m.MESSAGE_TYPES]),
       st.dictionaries(st.sampled_from(["framework_id", "task_id", "offer_ids", "status",
                                        "agent_id", "uuid", "tasks", "state", "x"]),
                       json_like, max_size=4))
def test_fast_decoder_on_random_fields(mtype, fields):
    _assert_fast_agrees(mtype, fields)


def test_fast_decoder_takes_ints_for_floats_and_interns():
    body = _body(m.StatusUpdate("f", m.TaskStatus("t1", "TASK_RUNNING", agent_id="A-" + "x",
                                                   uuid=b"u" * 16)))
    body["status"]["timestamp"] = 3
    out = codec.decode(msgpack.packb({"type": "StatusUpdate", "v": 1, **body}))
    assert out.status.timestamp == 3.0 and type(out.status.timestamp) is float
    assert out.status.agent_id is sys.intern("A-x")


RECORDS = [TASK.command, TASK, m.FrameworkInfo(name="fw", roles=("a", "b"), capabilities=("X",)),
           m.AgentInfo(hostname="h", port=1, resources=RES, attributes={"rack": "r1", "n": 2.0}),
           m.AgentInfo(hostname="h", port=1, resources=RES, containerizers=("docker", "mesos"))]


@settings(max_examples=400)
@given(st.sampled_from(RECORDS), st.data())
def test_fast_record_decoders_agree_on_nested_records(record, data):
    """Plain lists and maps (roles, arguments, environment, labels) are copied as they are
    by the fast path only when every item has exactly the declared type."""
    body = codec.to_dict(record)
    key = data.draw(st.sampled_from(sorted(body)))
    value = data.draw(st.one_of(json_like, st.lists(json_like, max_size=3),
                                st.dictionaries(st.text(max_size=3) | st.integers(), json_like,
                                                max_size=3)))
    body[key] = value
    cls = type(record)
    try:
        fast = codec._fast(cls)(dict(body))
    except Exception:  # noqa: BLE001 - the strict decoder decides
        return
    assert codec.from_dict(cls, body) == fast
    assert type(fast) is cls


def test_fields_to_dict_is_to_dict_restricted_to_the_fields_in_field_order():
    info = m.TaskInfo(name="t", task_id="t", agent_id="a", resources=Resources.parse("cpus:1"),
                      command=m.CommandInfo("sleep 1"), kill_grace_period=2.0)
    part = codec.fields_to_dict(m.TaskInfo, ["kill_grace_period", "command", "container"])
    full = codec.to_dict(info)
    assert list(part(info).items()) == [(k, full[k]) for k in ("command", "kill_grace_period")]
    with pytest.raises(ValueError, match="no field"):
        codec.fields_to_dict(m.TaskInfo, ["nope"])
