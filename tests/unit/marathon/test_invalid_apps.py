"""1,000 generated invalid app definitions: each answered 4xx with a message, none half-created.

Each example starts from a valid definition and breaks it in one of the ways Marathon
rejects (bad id, negative or mistyped resources, cmd and args together, no command at all,
bad constraints, out-of-range upgrade strategy, unknown keys, bad health checks, duplicate
ports, bodies that are not objects, unparseable text), optionally with more junk on top.
"""
from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from marathon.server import MarathonServer
from marathon.store import MemoryStore
from tests.unit.marathon.conftest import Api, FakeDriver

VALID = {"id": "/fuzz/app", "cmd": "sleep 100", "cpus": 0.1, "mem": 32, "instances": 1}
json_scalars = st.one_of(st.none(), st.booleans(), st.integers(-10**6, 10**6),
                         st.floats(allow_nan=False, allow_infinity=False), st.text(max_size=8))
json_values = st.recursive(json_scalars, lambda c: st.one_of(
    st.lists(c, max_size=3), st.dictionaries(st.text(max_size=6), c, max_size=3)), max_leaves=8)
bad_ids = st.one_of(
    st.sampled_from(["", "/", "UPPER", "has space", "-lead", "trail-", "a/tasks",
                     "a/versions", "a/restart", "under_score", "a/../..", "é"]),
    st.text(alphabet="ABC_!@#$% ", min_size=1, max_size=10),
    json_values.filter(lambda v: not isinstance(v, str)))
negative = st.one_of(st.integers(max_value=-1), st.floats(max_value=-0.001, allow_nan=False,
                                                          allow_infinity=False))
not_number = st.one_of(st.text(max_size=5), st.booleans(), st.lists(st.integers(), max_size=2))


def _set(key, values):
    return values.map(lambda v: (lambda d: d.update({key: v})))


MUTATIONS = st.one_of(
    _set("id", bad_ids),
    *[_set(k, st.one_of(negative, not_number)) for k in ("cpus", "mem", "disk")],
    _set("instances", st.one_of(negative, not_number,
                                st.floats(0.1, 9.9).filter(lambda f: not f.is_integer()))),
    st.lists(st.text(max_size=5), max_size=3).map(  # cmd and args together
        lambda v: (lambda d: d.update(args=v, cmd=d.get("cmd") or "sleep 1"))),
    st.just(lambda d: (d.pop("cmd", None), d.pop("args", None))),  # no cmd, args, container
    _set("cmd", st.one_of(st.just(""), st.integers(), st.lists(st.text(), max_size=2))),
    _set("constraints", st.one_of(
        st.lists(st.lists(st.text(max_size=4), min_size=0, max_size=1), min_size=1, max_size=2),
        st.just([["hostname", "UNIQUE", "x"]]), st.just([["rack", "GROUP_BY", "two"]]),
        st.just([["rack", "MAX_PER"]]), st.just([["rack", "LIKE", "("]]),
        st.just([["rack", "BOGUS", "x"]]), st.just([["a", "LIKE", "x", "y"]]))),
    _set("upgradeStrategy", st.fixed_dictionaries(
        {"minimumHealthCapacity": st.one_of(st.floats(1.01, 100), negative)})),
    _set("upgradeStrategy", st.fixed_dictionaries(
        {"maximumOverCapacity": st.one_of(st.floats(1.01, 100), negative, st.text())})),
    st.builds(lambda k, v: (lambda d: d.update({"x-" + k: v})), st.text(max_size=6),
              json_values.filter(lambda v: v is not None)),  # null = absent
    _set("healthChecks", st.one_of(
        st.just([{"protocol": "GOPHER"}]), st.just([{"portIndex": 5}]),
        st.just([{"protocol": "COMMAND"}]), st.just([{"intervalSeconds": 0}]),
        st.lists(st.just({"protocol": "MESOS_TCP"}), min_size=2, max_size=3))),
    _set("portDefinitions", st.one_of(st.just([{"port": 80}, {"port": 80}]),
                                      st.just([{"port": 70000}]),
                                      st.just([{"name": "Bad Name"}]))),
    _set("backoffFactor", st.one_of(st.floats(-5, 0.99), not_number)),
    _set("killSelection", st.text(max_size=6)),
    _set("env", st.one_of(st.lists(st.text(), max_size=2),
                          st.dictionaries(st.text(min_size=1, max_size=4), st.integers(),
                                          min_size=1, max_size=2))),
    _set("container", st.one_of(st.just({"type": "DOCKER", "docker": {}}),
                                st.just({"type": "ROCKET"}), st.just({"docker": {"image": ""}}))),
    _set("unreachableStrategy", st.one_of(st.just("sometimes"),
                                          st.just({"inactiveAfterSeconds": -1}))),
)


@st.composite
def invalid_bodies(draw):
    kind = draw(st.integers(0, 19))
    if kind == 0:
        return draw(st.text(max_size=20).filter(lambda s: not _is_json(s)))  # unparseable
    if kind == 1:
        return json.dumps(draw(st.one_of(json_scalars, st.lists(json_values, max_size=3))))
    doc = dict(VALID)
    for mutate in draw(st.lists(MUTATIONS, min_size=1, max_size=3)):
        mutate(doc)
    return json.dumps(doc)


def _is_json(s: str) -> bool:
    try:
        json.loads(s)
        return True
    except ValueError:
        return False


@pytest.fixture(scope="module")
def shared_api():
    svc = MarathonServer(MemoryStore())
    svc.driver = FakeDriver()
    a = Api(svc)
    try:
        yield a
    finally:
        a.close()


@settings(max_examples=1000, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                    HealthCheck.too_slow])
@given(body=invalid_bodies())
def test_invalid_definitions_are_rejected_without_side_effects(shared_api, body):
    svc = shared_api.svc
    before = (dict(svc.state.apps), dict(svc.state.versions), dict(svc.state.deployments))
    status, answer, headers = shared_api.call("POST", "/v2/apps", raw=body)
    assert 400 <= status < 500, (status, body, answer)
    assert headers["Content-Type"].startswith("application/json")
    assert isinstance(answer, dict) and isinstance(answer.get("message"), str) \
        and answer["message"], answer
    if status == 422:
        assert answer["details"] and all(d["path"] and d["errors"] for d in answer["details"])
    assert (svc.state.apps, svc.state.versions, svc.state.deployments) == before
    assert svc.store.load("app") == {} and svc.store.load("version") == {}
    # the server is still fine: a valid definition is accepted right after
    assert shared_api.get("/v2/apps")[0] == 200
