"""The published OpenAPI document of the Marathon API, and schemathesis against a real
Marathon (with --http_credentials, on a master without agents, so that no generated command
runs): every operation, with generated paths, queries and bodies, answers without a 5xx
(503 aside), and no secret reaches a log."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis.core.result import Err

from marathon.openapi import document
from marathon.schema import APP_SCHEMA
from tests.integration.marathon_helpers import start_marathon
from tests.integration.security_helpers import grep_secrets

pytestmark = pytest.mark.slow

AUTH = ("ops", "op-pw-not-in-logs")
EXAMPLES = 50  # per operation (about 20 operations): well under a minute


def test_the_document_carries_the_validators_app_schema() -> None:
    doc = document()
    app = doc["components"]["schemas"]["App"]
    assert app["properties"] == APP_SCHEMA["properties"] and app["not"] == APP_SCHEMA["not"]
    refs = {json.dumps(op.get("requestBody", {})) for item in doc["paths"].values()
            for op in item.values()}
    assert any("#/components/schemas/App" in r for r in refs)


def test_schemathesis_finds_no_server_error(cluster, tmp_path: Path) -> None:
    cluster.start_master()
    marathon = start_marathon(tmp_path, cluster.master_addr, 0,
                              f"--http_credentials={AUTH[0]}:{AUTH[1]}")
    base = marathon.field("http")
    served = requests.get(f"{base}/v2/openapi.json", auth=AUTH, timeout=10)
    assert served.status_code == 200 and served.json() == json.loads(json.dumps(document()))
    assert requests.get(f"{base}/v2/openapi.json", timeout=10).status_code == 401
    schema = schemathesis.openapi.from_dict(served.json())
    session = requests.Session()
    session.auth = AUTH
    seen: dict[str, set[int]] = {}

    def explore(operation: Any) -> None:
        @settings(max_examples=EXAMPLES, deadline=None, database=None, derandomize=True,
                  phases=[Phase.explicit, Phase.generate],
                  suppress_health_check=list(HealthCheck))
        @given(case=operation.as_strategy())
        def answers(case) -> None:
            r = case.call(base_url=base, session=session, timeout=10)
            seen.setdefault(operation.label, set()).add(r.status_code)
            assert r.status_code < 500 or r.status_code == 503, \
                (case.method, case.formatted_path, case.body, r.status_code, r.text[:500])

        answers()

    for result in schema.get_all_operations():
        if isinstance(result, Err):
            raise result.err()  # an operation schemathesis cannot read
        explore(result.ok())
    assert len(seen) >= 20, sorted(seen)
    assert any(s < 300 for codes in seen.values() for s in codes)
    assert requests.get(f"{base}/ping", timeout=10).text == "pong"  # still serving
    logs = {p.name: p.read_text() for p in (tmp_path / "logs").glob("*.log")}
    logs |= {p.name: p.read_text() for p in cluster.root.glob("**/*.log")}
    assert not grep_secrets(logs)
    assert not [name for name, text in logs.items() if AUTH[1] in text]
