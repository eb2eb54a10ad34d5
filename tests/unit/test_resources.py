"""Tests for mesos_common.resources: algebraic laws (hypothesis) plus concrete cases."""

from __future__ import annotations

import copy
import json
import pickle
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mesos_common.resources import EMPTY, ResourceError, Resources, format_ranges

P = Resources.parse
ROLES = ["*", "ads", "web/batch"]
SCALARS = ["cpus", "mem", "disk", "gpus"]

# ------------------------------------------------------------------ strategies

milli = st.integers(min_value=0, max_value=10**9)
port_ranges = st.lists(
    st.tuples(st.integers(0, 200), st.integers(0, 15)).map(lambda t: (t[0], t[0] + t[1])),
    max_size=5)
set_items = st.frozensets(st.sampled_from("abcdef"), max_size=4)


@st.composite
def json_items(draw):
    items = []
    for role in draw(st.lists(st.sampled_from(ROLES), min_size=1, max_size=3, unique=True)):
        for name in draw(st.lists(st.sampled_from(SCALARS), max_size=4, unique=True)):
            items.append({"name": name, "type": "SCALAR", "role": role,
                          "scalar": {"value": draw(milli) / 1000}})
        if draw(st.booleans()):
            items.append({"name": "ports", "type": "RANGES", "role": role, "ranges": {
                "range": [{"begin": b, "end": e} for b, e in draw(port_ranges)]}})
        if draw(st.booleans()):
            items.append({"name": "disks", "type": "SET", "role": role,
                          "set": {"item": sorted(draw(set_items))}})
    return items


resources = json_items().map(Resources.from_json)


def port_set(r: Resources, role: str) -> set[int]:
    return {p for b, e in r.reserved(role).ranges("ports") for p in range(b, e + 1)}


def assert_canonical(r: Resources) -> None:
    """No negative or empty entries, ranges sorted/merged/disjoint."""
    for item in r.to_json():
        if item["type"] == "SCALAR":
            assert item["scalar"]["value"] > 0
        elif item["type"] == "RANGES":
            rs = [(x["begin"], x["end"]) for x in item["ranges"]["range"]]
            assert rs and all(0 <= b <= e for b, e in rs)
            assert all(rs[i][1] + 1 < rs[i + 1][0] for i in range(len(rs) - 1))
        else:
            assert item["set"]["item"]


# ------------------------------------------------------------- algebraic laws


@given(resources, resources, resources)
def test_add_associative_and_commutative(a, b, c):
    assert (a + b) + c == a + (b + c)
    assert a + b == b + a
    assert hash(a + b) == hash(b + a)
    assert a + EMPTY == a == EMPTY + a


def scalars_only(r: Resources) -> Resources:
    return Resources.from_json([i for i in r.to_json() if i["type"] == "SCALAR"])


@given(resources, resources)
def test_add_then_subtract_is_identity(a, b):
    # Ranges/sets add as unions (as in Mesos), so the law needs b disjoint from a there.
    b_disjoint = b - (a - scalars_only(a))
    assert (a + b_disjoint) - b_disjoint == a
    assert (a + scalars_only(b)) - scalars_only(b) == a
    assert (a + b).contains(a) and (a + b).contains(b)
    assert a <= a + b and a + b >= b


@given(resources, resources)
def test_subtract_then_add_when_contained(a, b):
    if a.contains(b):
        assert a - b + b == a
    assert a.contains(a - b)
    assert a - a == EMPTY and not (a - a)


@given(resources, resources)
def test_never_negative_and_canonical(a, b):
    for r in (a, b, a + b, a - b, b - a, (a - b) - b):
        assert_canonical(r)
        assert all(v >= 0 for v in r.quantities().values())


@given(resources, resources)
def test_ports_match_set_model(a, b):
    """Range arithmetic agrees with plain Python sets of ints, per role."""
    for role in ROLES:
        pa, pb = port_set(a, role), port_set(b, role)
        assert port_set(a + b, role) == pa | pb
        assert port_set(a - b, role) == pa - pb
    def only(r: Resources) -> Resources:
        return Resources.from_json([i for i in r.to_json() if i["name"] == "ports"])

    assert only(a).contains(only(b)) == all(
        port_set(b, r) <= port_set(a, r) for r in ROLES)


@given(resources, resources)
def test_scalar_arithmetic_is_exact_per_role(a, b):
    for role in ROLES:
        ra, rb, diff = a.reserved(role), b.reserved(role), (a - b).reserved(role)
        for n in SCALARS:
            assert (a + b).reserved(role).scalar(n) == pytest.approx(ra.scalar(n) + rb.scalar(n))
            assert diff.scalar(n) == pytest.approx(max(0.0, ra.scalar(n) - rb.scalar(n)))


@given(resources)
def test_round_trips(r):
    assert P(str(r)) == r
    assert Resources.from_json(r.to_json()) == r
    assert P(json.dumps(r.to_json())) == r
    assert r.to_json() == Resources.from_json(r.to_json()).to_json()
    assert pickle.loads(pickle.dumps(r)) == r
    assert copy.deepcopy(r) == r


@given(resources)
def test_role_views_partition(r):
    assert r.unreserved() + r.reserved() == r
    assert r.reserved("*") == r.unreserved()
    for role in ROLES[1:]:
        assert r.allocatable_to(role) == r.unreserved() + r.reserved(role)
        assert r.reserved(role).roles() <= {role}
    flat = r.flatten("ads")
    assert flat.roles() <= {"ads"}
    assert flat.quantities() == pytest.approx(r.quantities())
    assert flat.ranges("ports") == r.ranges("ports")
    assert flat.set_items("disks") == r.set_items("disks")
    assert r.flatten().flatten("ads") == flat


# ---------------------------------------------------------------- concrete


def test_range_merge_and_split():
    assert P("ports:[1-5]") + P("ports:[6-10]") == P("ports:[1-10]")
    assert P("ports:[1-10]") - P("ports:[4-6]") == P("ports:[1-3, 7-10]")
    assert P("ports:[1-10]") - P("ports:[1-10]") == EMPTY
    assert P("ports:[1-3,2-8, 20-20]").ranges("ports") == ((1, 8), (20, 20))
    assert P("ports:[1-10]").contains(P("ports:[2-3, 9-10]"))
    assert not P("ports:[1-5, 7-10]").contains(P("ports:[5-7]"))
    assert P("ports:[1-5]") - P("ports:[0-0, 3-3, 9-12]") == P("ports:[1-2, 4-5]")


def test_fixed_point_rounding():
    assert P("cpus:0.1") + P("cpus:0.2") == P("cpus:0.3")
    assert (P("cpus:0.1") + P("cpus:0.2")).scalar("cpus") == 0.3
    assert P("cpus:0.0001") == EMPTY
    assert P("cpus:0.0005").scalar("cpus") == 0.001
    assert P("cpus:1.23449").scalar("cpus") == 1.234
    assert Resources.from_scalars(cpus=0.1, mem=128) == P("cpus:0.1;mem:128")
    assert str(Resources.from_scalars(cpus=1.5, mem=128)) == "cpus:1.5;mem:128"


def test_parse_full_example_and_repeats():
    r = P(" cpus:4 ; mem:2048;disk:10000;ports:[31000-32000, 40000-40010];"
          "cpus(ads):2;disks:{a,b} ")
    assert r.scalar("cpus") == 6.0 and r.reserved("ads").scalar("cpus") == 2.0
    assert r.ranges("ports") == ((31000, 32000), (40000, 40010))
    assert r.set_items("disks") == {"a", "b"}
    assert r.names() == {"cpus", "mem", "disk", "ports", "disks"}
    assert r.roles() == {"*", "ads"}
    assert P("cpus:1;cpus:2;mem:1") == P("cpus:3;mem:1")
    assert P("cpus:1", default_role="web") == P("cpus(web):1")
    assert P("") == EMPTY == Resources() == Resources.empty() and not P(" ; ")


def test_str_format():
    r = P("ports:[31000-31005];mem:128;cpus(ads):2;cpus:1.5;x:{b,a}")
    assert str(r) == "cpus:1.5;cpus(ads):2;mem:128;ports:[31000-31005];x:{a, b}"
    assert repr(r) == str(r) and repr(EMPTY) == "{}"


@pytest.mark.parametrize("text", [
    "cpus:abc", "cpus:-1", "cpus:nan", "cpus:inf", "cpus:", "cpus", ":4", "cpus:1:2",
    "cpus(:1", "cpus():1", "cpus(a b):1", "ports:[5-1]", "ports:[1-2", "ports:[1-2,]",
    "ports:[a-b]", "ports:[-1-4]", "ports:[1]", "disks:{a,,b}", "disks:{a", "cpus:1;cpus:[1-2]",
    "cpus:0x10", "[not json", '{"name": "cpus"}', "cpus:1 2", "cpus:1e999999999",
    '[{"name": "cpus", "type": "SCALAR", "scalar": {"value": -1}}]',
])
def test_parse_errors(text):
    with pytest.raises(ResourceError) as exc:
        P(text)
    assert str(exc.value)
    assert isinstance(exc.value, ValueError)


def test_error_message_names_input():
    msg = r"invalid resource 'cpus:abc': scalar value must be a number"
    with pytest.raises(ResourceError, match=msg):
        P("cpus:abc")


def test_from_json_variants():
    items: list[dict[str, Any]] = [
        {"name": "cpus", "type": "SCALAR", "scalar": {"value": 0.1}},
        {"name": "cpus", "type": "SCALAR", "scalar": {"value": 2}, "role": "ads"},
        {"name": "mem", "type": "SCALAR", "scalar": {"value": 64},
         "reservations": [{"role": "a", "type": "STATIC"}, {"role": "a/b", "type": "DYNAMIC"}]},
        {"name": "ports", "type": "RANGES", "ranges": {"range": [{"begin": 31000, "end": 31005}]}},
        {"name": "x", "type": "SET", "set": {"item": ["a"]}},
        {"name": "y", "type": "RANGES", "ranges": {}},
    ]
    r = Resources.from_json(items)
    assert r == P("cpus:0.1;cpus(ads):2;mem(a/b):64;ports:[31000-31005];x:{a}")
    assert Resources.from_json(r.to_json()) == r
    assert r.to_json()[0] == {
        "name": "cpus", "type": "SCALAR", "scalar": {"value": 0.1}, "role": "*"}


@pytest.mark.parametrize("items", [
    {"name": "cpus"},
    ["cpus:1"],
    [{"type": "SCALAR", "scalar": {"value": 1}}],
    [{"name": "", "type": "SCALAR", "scalar": {"value": 1}}],
    [{"name": "cpus", "scalar": {"value": 1}}],
    [{"name": "cpus", "type": "scalar", "scalar": {"value": 1}}],
    [{"name": "cpus", "type": ["SCALAR"], "scalar": {"value": 1}}],
    [{"name": "cpus", "type": "SCALAR", "scalar": {"value": 1e16}}],
    [{"name": "cpus", "type": "SCALAR"}],
    [{"name": "cpus", "type": "SCALAR", "scalar": {}}],
    [{"name": "cpus", "type": "SCALAR", "scalar": {"value": "1"}}],
    [{"name": "cpus", "type": "SCALAR", "scalar": {"value": True}}],
    [{"name": "cpus", "type": "SCALAR", "scalar": {"value": -0.5}}],
    [{"name": "cpus", "type": "SCALAR", "scalar": {"value": float("nan")}}],
    [{"name": "cpus", "type": "SCALAR", "scalar": {"value": float("inf")}}],
    [{"name": "cpus", "type": "SCALAR", "scalar": {"value": 1}, "ranges": {"range": []}}],
    [{"name": "cpus", "type": "SCALAR", "scalar": {"value": 1}, "role": 3}],
    [{"name": "cpus", "type": "SCALAR", "scalar": {"value": 1}, "role": ""}],
    [{"name": "c", "type": "SCALAR", "scalar": {"value": 1}, "reservations": [{"type": "STATIC"}]}],
    [{"name": "c", "type": "SCALAR", "scalar": {"value": 1},
      "reservations": [{"role": "a", "type": "X"}]}],
    [{"name": "c", "type": "SCALAR", "scalar": {"value": 1}, "reservations": {"role": "a"}}],
    [{"name": "p", "type": "RANGES", "ranges": {"range": [{"begin": 5, "end": 1}]}}],
    [{"name": "p", "type": "RANGES", "ranges": {"range": [{"begin": -1, "end": 1}]}}],
    [{"name": "p", "type": "RANGES", "ranges": {"range": [{"begin": 1.0, "end": 2}]}}],
    [{"name": "p", "type": "RANGES", "ranges": {"range": [{"begin": 1}]}}],
    [{"name": "p", "type": "RANGES", "ranges": {"range": {"begin": 1, "end": 2}}}],
    [{"name": "p", "type": "RANGES", "ranges": [{"begin": 1, "end": 2}]}],
    [{"name": "s", "type": "SET", "set": {"item": ["a", 1]}}],
    [{"name": "s", "type": "SET", "set": {"item": "ab"}}],
    [{"name": "s", "type": "SET", "scalar": {"value": 1}}],
    [{"name": "c", "type": "SCALAR", "scalar": {"value": 1}},
     {"name": "c", "type": "SET", "set": {"item": ["a"]}, "role": "r"}],
])
def test_from_json_errors(items):
    with pytest.raises(ResourceError) as exc:
        Resources.from_json(items)
    assert len(str(exc.value)) > 10


def test_from_scalars_errors():
    for bad in ({"cpus": -1}, {"cpus": "1"}, {"cpus": float("nan")}, {"mem": None}):
        with pytest.raises(ResourceError):
            Resources.from_scalars(**bad)


def test_from_milli_and_scalar_milli():
    r = P("cpus:1.5;cpus(a):0.001;mem:32;ports:[1-2]")
    assert r.scalar_milli("cpus") == {"*": 1500, "a": 1}
    assert r.scalar_milli("ports") == {} and r.scalar_milli("nope") == {}
    assert Resources.from_milli({("cpus", "*"): 1500, ("cpus", "a"): 1, ("mem", "*"): 0}) \
        == P("cpus:1.5;cpus(a):0.001")
    assert Resources.from_milli({}) == EMPTY
    # not all ints: what from_milli must refuse
    bads: list[dict[tuple[str, str], Any]] = [
        {("cpus", "*"): -1}, {("cpus", "*"): 1.5}, {("cpus", "*"): True},
        {("cp us", "*"): 1}, {("cpus", "a b"): 1}]
    for bad in bads:
        with pytest.raises(ResourceError):
            Resources.from_milli(bad)


@settings(max_examples=100)
@given(resources)
def test_scalar_milli_rebuilds_the_scalars(r):
    scalars = {(n, role): v for n in SCALARS for role, v in r.scalar_milli(n).items()}
    assert Resources.from_milli(scalars) == Resources.from_json(
        [i for i in r.to_json() if i["type"] == "SCALAR"])


def test_contains_is_role_aware_and_type_safe():
    assert not P("cpus(ads):4").contains(P("cpus:1"))
    assert not P("cpus:4").contains(P("cpus(ads):1"))
    assert P("cpus:4;cpus(ads):1").allocatable_to("ads").contains(P("cpus(ads):1;cpus:4"))
    assert P("cpus:4") - P("cpus:5") == EMPTY
    assert P("cpus:4;x:{a,b}") - P("x:{b,c}") == P("cpus:4;x:{a}")
    assert not P("x:{a}").contains(P("x:{a,b}"))
    with pytest.raises(ResourceError, match="conflicting types"):
        P("x:1") + P("x:{a}")
    assert P("x:1") - P("x:{a}") == P("x:1")
    assert not P("x:1").contains(P("x:{a}"))


def test_immutable_and_hashable():
    r = P("cpus:1")
    with pytest.raises(AttributeError):
        r._d = {}
    with pytest.raises(AttributeError):
        del r._d
    assert len({P("cpus:1;mem:2"), P("mem:2;cpus:1"), P("cpus:1")}) == 2
    before = P("cpus:1;ports:[1-2]")
    _ = before + P("cpus:1") - P("ports:[1-1]")
    assert before == P("cpus:1;ports:[1-2]")


def test_queries():
    r = P("cpus:1;cpus(a):0.5;ports:[1-5];ports(a):[6-8, 20-21];s:{x};s(a):{y}")
    assert r.scalar("cpus") == 1.5 and r.scalar("nope") == 0.0
    assert r.ranges("ports") == ((1, 8), (20, 21)) and r.ranges("nope") == ()
    assert r.set_items("s") == {"x", "y"} and r.set_items("nope") == frozenset()
    assert r.quantities() == {"cpus": 1.5}
    assert r.reserved() == P("cpus(a):0.5;ports(a):[6-8, 20-21];s(a):{y}")
    assert r.reserved("a") == r.reserved() and r.reserved("zzz") == EMPTY
    assert r.unreserved() == P("cpus:1;ports:[1-5];s:{x}")


def test_to_map_shape():
    m = P("cpus:4;mem:7000;disk:50000;ports:[31000-32000];cpus(a):1;s:{y,x};foo:2").to_map()
    assert m == {"cpus": 5.0, "gpus": 0.0, "mem": 7000.0, "disk": 50000.0,
                 "ports": "[31000-32000]", "s": "{x, y}", "foo": 2.0}
    assert all(isinstance(m[k], float) for k in ("cpus", "gpus", "mem", "disk"))
    assert EMPTY.to_map() == {"cpus": 0.0, "gpus": 0.0, "mem": 0.0, "disk": 0.0}


def test_dominant_share():
    total = P("cpus:10;mem:1000;gpus:0")
    assert P("cpus:2;mem:500").dominant_share(total) == 0.5
    assert P("cpus:5;mem:100").dominant_share(total) == 0.5
    assert P("cpus(a):1;cpus:1;mem:100").dominant_share(total) == pytest.approx(0.2)
    assert P("gpus:3").dominant_share(total) == 0.0
    assert EMPTY.dominant_share(total) == 0.0


def test_take_ports():
    r = P("cpus:1;ports:[31000-31001, 31005-31010];ports(a):[100-100]")
    ports, taken = r.take_ports(4)
    assert ports == [100, 31000, 31001, 31005]
    assert taken == P("ports(a):[100-100];ports:[31000-31001, 31005-31005]")
    assert r.contains(taken) and (r - taken).ranges("ports") == ((31006, 31010),)
    assert r.take_ports(0) == ([], EMPTY)
    with pytest.raises(ResourceError, match="ports"):
        r.take_ports(10)
    with pytest.raises(ResourceError):
        r.take_ports(-1)


@given(resources, st.integers(0, 30))
@settings(max_examples=50)
def test_take_ports_property(r, n):
    avail = sorted({p for b, e in r.ranges("ports") for p in range(b, e + 1)})
    if n > len(avail):
        with pytest.raises(ResourceError):
            r.take_ports(n)
        return
    ports, taken = r.take_ports(n)
    assert ports == avail[:n]
    assert r.contains(taken)
    assert sorted(p for b, e in taken.ranges("ports") for p in range(b, e + 1)) == ports


def test_format_ranges():
    assert format_ranges([(31000, 31005), (31010, 31010)]) == "[31000-31005, 31010-31010]"
    assert format_ranges(()) == "[]"


_json_items = st.fixed_dictionaries(
    {"name": st.sampled_from(["cpus", "mem", "ports", "bad name", ""]),
     "type": st.sampled_from(["SCALAR", "RANGES", "SET", "X"])},
    optional={
        "role": st.sampled_from(["*", "web", "(x)", 3]),
        "scalar": st.fixed_dictionaries({}, optional={"value": st.one_of(
            st.integers(-5, 10**16), st.floats(allow_nan=True, allow_infinity=True),
            st.decimals(places=4, min_value=0, max_value=10**6).map(float),
            st.booleans(), st.text(max_size=2))}),
        "ranges": st.fixed_dictionaries({}, optional={"range": st.lists(st.fixed_dictionaries(
            {"begin": st.integers(-2, 50), "end": st.one_of(st.integers(-2, 50), st.none())}),
            max_size=4)}),
        "set": st.fixed_dictionaries({"item": st.lists(st.text(max_size=2), max_size=3)}),
        "reservations": st.lists(st.fixed_dictionaries({"role": st.just("web")}), max_size=1),
    })


@given(_json_items)
@settings(max_examples=400, deadline=None)
def test_fast_json_path_agrees_with_the_validating_path(item) -> None:
    """from_json's fast path gives what the full path gives, or defers to it."""
    from mesos_common import resources as res_mod
    fast = res_mod._fast_json_entry(item, "*")
    if fast is None:
        return
    assert fast == res_mod._json_entry(0, item, "*")
