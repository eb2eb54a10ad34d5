"""The Compose -> Marathon group translation (pure): every supported key, the errors bad input
gets (one line naming service and key), and properties over generated services."""
from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from corral import compose
from corral.cmd_stack import load_schema
from marathon import model

SCHEMA = load_schema()


def translate(doc, name="demo", **kw):
    unknown = compose.check(doc, SCHEMA)
    out = compose.to_group(doc, name, **kw)
    return out, unknown


def only_app(doc, **kw):
    out, _ = translate(doc, **kw)
    (app,) = out.group["apps"]
    return app


FULL = """
services:
  web:
    image: corral/busybox:test
    command: httpd -f -p 80
    entrypoint: ["/bin/sh", "-c"]
    environment: [A=1, B=two]
    env_file: web.env
    ports: ["31500:80", "8443/udp", {target: 9000, published: 31501}]
    labels: {tier: front}
    volumes: ["./data:/data:ro", "/var/log:/logs", "named:/cache"]
    healthcheck:
      test: ["CMD", "wget", "-q", "-O", "-", "http://127.0.0.1/"]
      interval: 2s
      timeout: 1500ms
      retries: 5
      start_period: 1m
    deploy:
      replicas: 4
      labels: [owner=ops]
      resources: {limits: {cpus: "0.25", memory: 64M}}
      placement: {constraints: ["node.hostname==a1", "node.labels.zone!=b"]}
      update_config: {parallelism: 2, order: start-first}
  worker:
    image: corral/busybox:test
    depends_on: [web]
    build: .
"""


def test_every_supported_key_becomes_its_marathon_field():
    doc = compose.parse(FULL, "compose.yml")
    out, unknown = translate(doc, env_files={"web.env": "# c\nC=3\nA=0\nQ='quoted'\n"},
                             base_dir="/srv/app")
    assert unknown == []
    web, worker = out.group["apps"]
    assert out.group["id"] == "/demo" and web["id"] == "/demo/web"
    assert web["instances"] == 4 and web["cpus"] == 0.25 and web["mem"] == 64
    assert web["args"] == ["httpd", "-f", "-p", "80"]
    docker = web["container"]["docker"]
    assert docker["image"] == "corral/busybox:test"
    assert docker["parameters"] == [{"key": "entrypoint", "value": "/bin/sh -c"}]
    assert web["env"] == {"C": "3", "A": "1", "Q": "quoted", "B": "two"}
    assert web["networks"] == [{"mode": "container/bridge"}]
    assert web["container"]["portMappings"] == [
        {"containerPort": 80, "hostPort": 31500, "protocol": "tcp"},
        {"containerPort": 8443, "hostPort": 0, "protocol": "udp"},
        {"containerPort": 9000, "hostPort": 31501, "protocol": "tcp"}]
    assert web["container"]["volumes"] == [
        {"containerPath": "/data", "hostPath": "/srv/app/data", "mode": "RO"},
        {"containerPath": "/logs", "hostPath": "/var/log", "mode": "RW"}]
    assert web["constraints"] == [["hostname", "IS", "a1"], ["zone", "UNLIKE", "b"]]
    assert web["upgradeStrategy"] == {"minimumHealthCapacity": 1.0, "maximumOverCapacity": 0.5}
    (hc,) = web["healthChecks"]
    assert hc == {"protocol": "COMMAND",
                  "command": {"value": "wget -q -O - http://127.0.0.1/"},
                  "intervalSeconds": 2, "timeoutSeconds": 2, "gracePeriodSeconds": 60,
                  "maxConsecutiveFailures": 5, "delaySeconds": 0}
    assert web["labels"]["tier"] == "front" and web["labels"]["owner"] == "ops"
    assert web["labels"][compose.STACK_LABEL] == "demo"
    assert worker["dependencies"] == ["/demo/web"]
    assert worker["instances"] == 1 and worker["cpus"] == compose.DEFAULT_CPUS
    # Swarm's default update: stop-first, one at a time (a published port frees first)
    assert worker["upgradeStrategy"] == {"minimumHealthCapacity": 0.0,
                                         "maximumOverCapacity": 0.0}
    assert out.ignored == ["services.web.volumes[2] (only bind volumes)",
                           "services.worker.build"]


def test_every_app_is_valid_for_marathon():
    doc = compose.parse(FULL, "compose.yml")
    out, _ = translate(doc, env_files={"web.env": "C=3"})
    for app in out.group["apps"]:
        model.validate(app)  # raises ValidationFailed otherwise


def test_stop_first_updates_keep_the_rest_up():
    app = only_app({"services": {"s": {"image": "i", "deploy": {
        "replicas": 4, "update_config": {"parallelism": 1}}}}})
    assert app["upgradeStrategy"] == {"minimumHealthCapacity": 0.75, "maximumOverCapacity": 0.0}


def test_healthcheck_forms():
    def hc(test, **kw):
        return only_app({"services": {"s": {"image": "i", "healthcheck": dict(kw, test=test)}}}
                        ).get("healthChecks")
    assert hc("curl -f localhost")[0]["command"]["value"] == "curl -f localhost"
    assert hc(["CMD-SHELL", "test -f /ok || exit 1"])[0]["command"]["value"] == \
        "test -f /ok || exit 1"
    assert hc(["CMD", "echo", "a b"])[0]["command"]["value"] == "echo 'a b'"
    assert hc(["NONE"]) == []
    assert hc(["CMD", "x"], disable=True) == []
    assert hc(["CMD", "x"])[0]["intervalSeconds"] == 30  # Docker's defaults


def test_interpolation_and_merge():
    base = compose.parse("services:\n  s:\n    image: ${IMG:-busybox}\n    environment:\n"
                         "      A: $$literal\n      B: ${B}\n", "a.yml")
    over = compose.parse("services:\n  s:\n    deploy: {replicas: 3}\n", "b.yml")
    doc = compose.merge(compose.interpolate(base, {"B": "bee"}), over)
    app = only_app(doc)
    assert app["container"]["docker"]["image"] == "busybox"
    assert app["env"] == {"A": "$literal", "B": "bee"} and app["instances"] == 3
    with pytest.raises(compose.ComposeError, match="IMG is required"):
        compose.interpolate({"image": "${IMG:?set it}"}, {})


def test_unknown_keys_are_listed_not_fatal():
    doc = {"services": {"web": {"image": "i", "colour": "blue", "deploy": {"flavour": 1}}},
           "extra": 1, "x-mine": {"ok": True}}
    assert compose.check(doc, SCHEMA) == ["extra", "services.web.colour",
                                          "services.web.deploy.flavour"]


@pytest.mark.parametrize("doc,needle", [
    ({"services": {"web": {"command": "x"}}}, "service 'web', key 'image': missing"),
    ({"services": {"web": {"image": "i", "ports": ["80:x"]}}},
     "service 'web', key 'ports[0]': bad port spec '80:x'"),
    ({"services": {"web": {"image": "i", "ports": ["8000-8002:80-81"]}}},
     "service 'web', key 'ports[0]'"),
    ({"services": {"web": {"image": "i", "ports": ["70000:80"]}}},
     "service 'web', key 'ports[0]'"),
    ({"services": {"web": {"image": "i", "depends_on": ["db"]}}},
     "service 'web', key 'depends_on': 'db' is not a service"),
    ({"services": {"web": {"image": "i", "deploy": {"replicas": "many"}}}},
     "service 'web', key 'deploy.replicas'"),
    ({"services": {"web": {"image": "i", "healthcheck": {"test": ["CMD"], "interval": "soon"}}}},
     "service 'web', key 'healthcheck"),
    ({"services": {"web": {"image": "i", "deploy": {"resources": {"limits": {
        "memory": "lots"}}}}}}, "service 'web', key 'deploy.resources.limits.memory'"),
    ({"services": {"web": {"image": "i", "deploy": {"placement": {"constraints": [
        "node.role==manager"]}}}}}, "service 'web', key 'deploy.placement.constraints[0]'"),
    ({"services": {"Web_1": {"image": "i"}}}, "service 'Web_1'"),
    ({"services": {"web": {"image": 5}}}, "service 'web', key 'image'"),
    ({"services": {"web": {"image": "i", "environment": 7}}}, "service 'web', key 'environment'"),
    ({"services": {}}, "defines no services"),
])
def test_bad_input_is_one_line_naming_service_and_key(doc, needle):
    with pytest.raises(compose.ComposeError) as e:
        translate(doc)
    assert needle in str(e.value) and "\n" not in str(e.value)


def test_yaml_that_does_not_parse_names_file_line_and_column():
    with pytest.raises(compose.ComposeError) as e:
        compose.parse("services:\n  web:\n    image: [unclosed\n", "stack.yml")
    assert str(e.value).startswith("stack.yml:") and "YAML does not parse" in str(e.value)
    assert "\n" not in str(e.value)
    with pytest.raises(compose.ComposeError, match="a Compose file is a mapping"):
        compose.parse("- a\n- b\n", "list.yml")


def test_plan_keeps_unchanged_apps_exactly_as_deployed():
    doc: dict[str, Any] = {"services": {"web": {"image": "i", "environment": {"A": "1"}},
                        "worker": {"image": "i"}}}
    first = compose.to_group(doc, "demo").group
    deployed = {"id": "/demo", "apps": [dict(a, version="v1", tasksRunning=1, cpus=a["cpus"],
                                             extra_default=True) for a in first["apps"]]}
    doc["services"]["web"]["environment"]["A"] = "2"
    again = compose.to_group(doc, "demo").group
    p = compose.plan(again, deployed)
    assert p.changed == ["/demo/web"] and p.unchanged == ["/demo/worker"] and p.removed == []
    worker = p.group["apps"][1]
    assert worker["extra_default"] is True and "version" not in worker
    assert "tasksRunning" not in worker
    del doc["services"]["worker"]
    assert compose.plan(compose.to_group(doc, "demo").group, deployed).removed == \
        ["/demo/worker"]
    assert compose.plan(first, None).changed == ["/demo/web", "/demo/worker"]


# ------------------------------------------------------------------ properties

names = st.from_regex(r"[a-z][a-z0-9]{0,8}", fullmatch=True)
env_values = st.dictionaries(st.from_regex(r"[A-Z][A-Z0-9_]{0,6}", fullmatch=True),
                             st.text(st.characters(codec="utf-8", exclude_characters="$"),
                                     max_size=12), max_size=4)
port_specs = st.lists(st.tuples(st.integers(1, 65535), st.one_of(st.none(), st.integers(1, 65535)),
                                st.sampled_from(["", "/tcp", "/udp"])), max_size=3, unique=True)
services = st.dictionaries(names, st.fixed_dictionaries({
    "image": st.just("corral/busybox:test"),
    "environment": env_values,
    "ports": port_specs.map(lambda ps: [f"{h}:{t}{p}" if h else f"{t}{p}" for t, h, p in ps]),
    "deploy": st.fixed_dictionaries({"replicas": st.integers(0, 20)}),
}), min_size=1, max_size=4)


@settings(max_examples=60)
@given(services)
def test_generated_services_translate_to_valid_apps(svcs):
    doc = {"services": svcs}
    out, unknown = translate(doc)
    assert unknown == []
    assert [a["id"] for a in out.group["apps"]] == [f"/demo/{n}" for n in svcs]
    for app, spec in zip(out.group["apps"], svcs.values(), strict=True):
        model.validate(app)
        assert app["instances"] == spec["deploy"]["replicas"]
        assert app.get("env", {}) == spec["environment"]
        assert len(app["container"]["portMappings"]) == len(spec["ports"])


@settings(max_examples=60)
@given(services, st.data())
def test_translation_is_deterministic_and_a_change_shows_in_the_hash(svcs, data):
    doc = {"services": svcs}
    a = compose.to_group(json.loads(json.dumps(doc)), "s").group
    assert a == compose.to_group(json.loads(json.dumps(doc)), "s").group
    name = data.draw(st.sampled_from(sorted(svcs)))
    svcs[name]["environment"]["CHANGED_KEY"] = "x"
    b = compose.to_group(doc, "s").group
    p = compose.plan(b, a)
    assert p.changed == [f"/s/{name}"]
    assert sorted(p.unchanged) == sorted(f"/s/{n}" for n in svcs if n != name)


@settings(max_examples=100)
@given(st.text(max_size=20))
def test_any_port_string_is_a_mapping_or_one_line_error(spec):
    try:
        mappings, _ = compose.port_mappings([spec], "svc")
    except compose.ComposeError as e:
        assert str(e).startswith("service 'svc', key 'ports[0]'") and "\n" not in str(e)
    else:
        assert mappings and all(1 <= m["containerPort"] <= 65535 for m in mappings)
