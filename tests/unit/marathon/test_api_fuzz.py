"""Random methods, paths, query strings and bodies: never a 500, always a JSON answer."""
from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from marathon.server import MarathonServer
from marathon.store import MemoryStore
from tests.unit.marathon.conftest import Api, FakeDriver, add_task

SEGMENTS = st.sampled_from(["v2", "apps", "tasks", "versions", "restart", "groups", "queue",
                            "delay", "deployments", "web", "prod", "*", "", "..", "X",
                            "web.instance-5b8f4a2e-e3a1-11ea-9f34-0242ac110002._app.1",
                            "2020-08-21T10:00:00.000Z", "delete", "info", "leader"])
QUERIES = st.sampled_from(["", "?force=True", "?force=maybe", "?scale=true&wipe=true",
                           "?embed=app.tasks&embed=x", "?scale=False", "?host=*",
                           "?partialUpdate=false", "?dryRun=true", "?status=running"])
BODIES = st.one_of(st.none(), st.just("{"), st.just("[1, 2"), st.just("null"),
                   st.just('{"ids": [1]}'), st.just('{"scaleBy": "x"}'),
                   st.just('{"version": "nope"}'), st.just('[{"id": "x"}]'),
                   st.just("[" * 5000 + "]" * 5000),
                   st.dictionaries(st.sampled_from(["id", "cmd", "instances", "apps", "groups",
                                                    "ids", "cpus"]),
                                   st.one_of(st.integers(), st.text(max_size=5),
                                             st.lists(st.text(max_size=3), max_size=2)),
                                   max_size=4).map(json.dumps))


@pytest.fixture(scope="module")
def fuzz_api():
    svc = MarathonServer(MemoryStore())
    svc.driver = FakeDriver()
    a = Api(svc)
    a.post("/v2/apps", {"id": "/prod/web", "cmd": "sleep 1", "instances": 2})
    add_task(svc, "/prod/web", 2)
    try:
        yield a
    finally:
        a.close()


@settings(max_examples=400, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(method=st.sampled_from(["GET", "POST", "PUT", "PATCH", "DELETE"]),
       segs=st.lists(SEGMENTS, min_size=1, max_size=6), query=QUERIES, body=BODIES)
def test_no_request_makes_the_api_fail(fuzz_api, method, segs, query, body):
    path = "/" + "/".join(segs).lstrip("/")  # "//x" would be a host to the client
    if path.rstrip("/").endswith("/v2/events"):
        return  # the stream never ends
    status, answer, headers = fuzz_api.call(method, path + query, raw=body)
    assert status < 500, (method, path, query, body, answer)
    if status not in (202, 204):
        assert headers["Content-Type"].startswith("application/json") or path == "/ping"
