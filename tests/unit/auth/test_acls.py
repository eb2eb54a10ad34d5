import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mesos_common.auth.acls import ACTIONS, Acls, parse_acls
from mesos_common.auth.jsonflag import AuthConfigError
from mesos_common.auth.load import load_acls


def vals(*v):
    return {"values": list(v)}


ANY_ = {"type": "ANY"}
NONE_ = {"type": "NONE"}


def test_default_allows_everything():
    assert Acls().allowed(None, "run_tasks", "root")
    assert Acls().empty


def test_first_matching_rule_decides_in_order():
    acls = parse_acls({"register_frameworks": [
        {"principals": vals("a"), "roles": vals("dev")},
        {"principals": vals("a"), "roles": NONE_},
        {"principals": ANY_, "roles": vals("dev", "prod")},
    ]})
    assert acls.allowed("a", "register_frameworks", "dev")
    assert not acls.allowed("a", "register_frameworks", "prod")  # second rule matches first
    assert acls.allowed("b", "register_frameworks", "prod")
    assert acls.allowed("b", "register_frameworks", "other")  # nothing matches: permissive


def test_not_permissive_denies_unmatched():
    acls = parse_acls({"permissive": False, "run_tasks": [
        {"principals": vals("ops"), "users": vals("root")},
        {"principals": ANY_, "users": vals("nobody")}]})
    assert acls.allowed("ops", "run_tasks", "root")
    assert not acls.allowed("dev", "run_tasks", "root")
    assert acls.allowed("dev", "run_tasks", "nobody")
    assert not acls.allowed("dev", "teardown_frameworks", "dev")


def test_unauthenticated_subject_is_any():
    acls = parse_acls({"permissive": False, "run_tasks": [
        {"principals": vals("ops"), "users": ANY_},
        {"principals": ANY_, "users": vals("nobody")}]})
    assert not acls.allowed(None, "run_tasks", "root")
    assert acls.allowed(None, "run_tasks", "nobody")
    deny_all = parse_acls({"run_tasks": [{"principals": ANY_, "users": NONE_}]})
    assert not deny_all.allowed(None, "run_tasks", "x")
    assert not deny_all.allowed("p", "run_tasks", "x")


def test_none_subject_rule_matches_everyone_and_denies():
    acls = parse_acls({"view_tasks": [{"principals": NONE_, "users": ANY_}]})
    assert not acls.allowed("a", "view_tasks", "u")


def test_object_any_for_no_object():
    acls = parse_acls({"permissive": False, "teardown_frameworks": [
        {"principals": vals("ops"), "framework_principals": ANY_},
        {"principals": vals("dev"), "framework_principals": vals("dev")}]})
    assert acls.allowed("ops", "teardown_frameworks", None)
    assert not acls.allowed("dev", "teardown_frameworks", None)
    assert acls.allowed("dev", "teardown_frameworks", "dev")


@pytest.mark.parametrize("doc, why", [
    ([], "object"),
    ({"permissive": "yes"}, "permissive"),
    ({"run_jobs": []}, "unknown action"),
    ({"run_tasks": [{"principals": ANY_}]}, "exactly"),
    ({"run_tasks": [{"principals": {"type": "ALL"}, "users": ANY_}]}, "type"),
    ({"run_tasks": [{"principals": {"values": "a"}, "users": ANY_}]}, "list of strings"),
    ({"run_tasks": [{"principals": {"type": "ANY", "values": ["a"]}, "users": ANY_}]},
     "SOME only"),
])
def test_bad_documents_are_clear(doc, why):
    with pytest.raises(AuthConfigError, match=why):
        parse_acls(doc)


def test_load_inline_and_file(tmp_path):
    doc = {"permissive": False, "run_tasks": [{"principals": ANY_, "users": vals("nobody")}]}
    f = tmp_path / "acls.json"
    f.write_text(json.dumps(doc))
    for flag in (json.dumps(doc), str(f), f"file://{f}"):
        acls = load_acls(flag)
        assert acls.allowed("x", "run_tasks", "nobody") and not acls.allowed("x", "run_tasks", "r")


names = st.sampled_from(["a", "b", "c"])
entities = st.one_of(st.just(ANY_), st.just(NONE_),
                     st.lists(names, max_size=3).map(lambda v: {"values": v}))


@given(st.booleans(), st.lists(st.tuples(entities, entities), max_size=5),
       st.one_of(st.none(), names), st.one_of(st.none(), names))
def test_against_a_reference_reading(permissive, rules, principal, obj):
    """The decision is the first rule that covers both request entities (a value listed, or
    ANY, or NONE; an absent request value only by ANY/NONE), granted when neither is NONE
    nor a missing value only ANY allows."""
    acls = parse_acls({"permissive": permissive, "run_tasks": [
        {"principals": s, "users": o} for s, o in rules]})

    def covers(req, ent):
        if "type" in ent:
            return True
        return req is not None and req in ent["values"]

    def grants(req, ent):
        if ent.get("type") == "NONE":
            return False
        if ent.get("type") == "ANY":
            return True
        return req is not None

    expect = permissive
    for s, o in rules:
        if covers(principal, s) and covers(obj, o):
            expect = grants(principal, s) and grants(obj, o)
            break
    assert acls.allowed(principal, "run_tasks", obj) == expect


def test_every_action_has_an_object_field():
    for action, field in ACTIONS.items():
        acls = parse_acls({action: [{"principals": ANY_, field: NONE_}]})
        assert not acls.allowed("p", action, "o")


IMPLICIT = {"update_maintenance_schedules": "machines", "get_maintenance_schedules": "machines",
            "start_maintenances": "machines", "stop_maintenances": "machines",
            "get_maintenance_statuses": "machines", "drain_agents": "agents",
            "deactivate_agents": "agents", "reactivate_agents": "agents",
            "mark_agents_gone": "agents"}


@pytest.mark.parametrize("action, field", sorted(IMPLICIT.items()))
def test_operator_actions_with_an_implicit_object(action, field):
    """Mesos's names and object fields; the request's object is always ANY, so a rule decides
    through its object only as ANY or NONE (a list of values never matches)."""
    assert ACTIONS[action] == field
    acls = parse_acls({"permissive": False, action: [
        {"principals": vals("listed"), field: vals("m1")},
        {"principals": vals("ops"), field: ANY_},
        {"principals": vals("dev"), field: NONE_}]})
    assert acls.allowed("ops", action, None)
    assert not acls.allowed("dev", action, None)
    assert not acls.allowed("listed", action, None)  # its rule never matches: not permissive
    assert not acls.allowed(None, action, None)
    assert Acls().allowed(None, action, None)  # no --acls: everything stays permitted


def test_unreserve_resources_by_reserver_principal():
    acls = parse_acls({"permissive": False, "unreserve_resources": [
        {"principals": vals("ops"), "reserver_principals": ANY_},
        {"principals": vals("fw"), "reserver_principals": vals("fw")},
        {"principals": ANY_, "reserver_principals": NONE_}]})
    assert acls.allowed("ops", "unreserve_resources", "fw")
    assert acls.allowed("fw", "unreserve_resources", "fw")
    assert not acls.allowed("fw", "unreserve_resources", "ops")
    assert not acls.allowed("fw", "unreserve_resources", "")  # a reservation without one
    assert not acls.allowed(None, "unreserve_resources", "fw")
