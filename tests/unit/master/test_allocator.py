"""SimpleAllocator: capacity, no double allocation, filters, suppress/revive, fairness."""
from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from mesos_common.resources import EMPTY, Resources
from mesos_master.allocator.base import OfferGrant
from mesos_master.allocator.simple import SimpleAllocator

R = Resources.parse
AGENT = "cpus:4;mem:1024;ports:[100-199]"


def _sum(items):
    out = EMPTY
    for r in items:
        out = out + r
    return out


def test_gives_whole_agent_to_lowest_share_and_alternates() -> None:
    a = SimpleAllocator()
    for i in range(4):
        a.add_agent(f"s{i}", R(AGENT), {})
    a.add_framework("f1", frozenset({"*"}), {}, True)
    a.add_framework("f2", frozenset({"*"}), {}, True)
    grants = a.allocate(0.0)
    assert [(g.framework_id, g.agent_id) for g in grants] == [
        ("f1", "s0"), ("f2", "s1"), ("f1", "s2"), ("f2", "s3")]
    assert all(g.resources == R(AGENT) for g in grants)
    assert a.allocate(1.0) == []  # nothing left, nothing offered twice


def test_refuse_filter_until_expiry_and_revive_clears_it() -> None:
    a = SimpleAllocator()
    a.add_agent("s1", R(AGENT), {})
    a.add_framework("f1", frozenset({"*"}), {}, True)
    (g,) = a.allocate(0.0)
    a.recover("f1", "s1", g.resources, 5.0, now=0.0)
    assert a.allocate(4.9) == []
    assert a.allocate(5.0) == [OfferGrant("f1", "s1", R(AGENT))]
    a.recover("f1", "s1", R(AGENT), 100.0, now=5.0)
    a.revive("f1", frozenset())
    assert len(a.allocate(6.0)) == 1


def test_suppressed_framework_gets_nothing_until_revive() -> None:
    a = SimpleAllocator()
    a.add_agent("s1", R(AGENT), {})
    a.add_framework("f1", frozenset({"*"}), {}, True)
    a.suppress("f1", frozenset({"*"}))
    assert a.allocate(0.0) == []
    a.revive("f1", frozenset({"*"}))
    assert len(a.allocate(0.0)) == 1


def test_reserved_resources_only_to_their_role() -> None:
    a = SimpleAllocator()
    a.add_agent("s1", R("cpus:2;mem:512;cpus(web):2;mem(web):256"), {})
    a.add_framework("batch", frozenset({"*"}), {}, True)
    a.add_framework("web", frozenset({"web"}), {}, True)
    grants = {g.framework_id: g.resources for g in a.allocate(0.0)}
    assert grants["batch"] == R("cpus:2;mem:512")
    assert grants["web"] == R("cpus(web):2;mem(web):256")


def test_used_resources_count_and_inactive_frameworks_wait() -> None:
    a = SimpleAllocator()
    a.add_framework("f1", frozenset({"*"}), {}, False)
    a.add_agent("s1", R("cpus:4;mem:1024"), {"f1": R("cpus:3;mem:512")})
    a.add_framework("f2", frozenset({"*"}), {}, True)
    assert a.allocate(0.0) == [OfferGrant("f2", "s1", R("cpus:1;mem:512"))]
    a.remove_framework("f2")
    a.activate_framework("f1")
    assert a.allocate(0.0) == [OfferGrant("f1", "s1", R("cpus:1;mem:512"))]
    a.remove_agent("s1")
    assert a.framework_allocation("f1").quantities() == {}


@settings(max_examples=30, deadline=None)
@given(st.integers(2, 12), st.integers(1, 5))
def test_two_frameworks_get_about_equal_dominant_shares(n_agents: int, cpus: int) -> None:
    a = SimpleAllocator()
    for i in range(n_agents):
        a.add_agent(f"s{i:02d}", R(f"cpus:{cpus};mem:{cpus * 256}"), {})
    a.add_framework("f1", frozenset({"*"}), {}, True)
    a.add_framework("f2", frozenset({"*"}), {}, True)
    a.allocate(0.0)
    total = a.total()
    s1 = a.framework_allocation("f1").dominant_share(total)
    s2 = a.framework_allocation("f2").dominant_share(total)
    assert abs(s1 - s2) <= 1 / n_agents + 1e-9  # at most one agent apart
    assert s1 + s2 == 1.0 or abs(s1 + s2 - 1.0) < 1e-9


class AllocatorMachine(RuleBasedStateMachine):
    """Random calls; the allocator's books must match a model of offers held."""

    def __init__(self) -> None:
        super().__init__()
        self.a = SimpleAllocator()
        self.now = 0.0
        self.totals: dict[str, Resources] = {}
        self.held: list[OfferGrant] = []  # what the model says frameworks hold
        self.frameworks: dict[str, dict] = {}

    @rule(i=st.integers(0, 4), res=st.sampled_from([AGENT, "cpus:1;mem:64", "cpus:8;mem:32000",
                                                    "cpus:2;mem:256;cpus(web):2"]))
    def add_agent(self, i: int, res: str) -> None:
        aid = f"s{i}"
        if aid in self.totals:
            return
        self.totals[aid] = R(res)
        self.a.add_agent(aid, R(res), {})

    @precondition(lambda self: self.totals)
    @rule(data=st.data())
    def remove_agent(self, data) -> None:
        aid = data.draw(st.sampled_from(sorted(self.totals)))
        del self.totals[aid]
        self.held = [g for g in self.held if g.agent_id != aid]
        self.a.remove_agent(aid)

    @rule(i=st.integers(0, 3), role=st.sampled_from(["*", "web"]))
    def add_framework(self, i: int, role: str) -> None:
        fid = f"f{i}"
        if fid not in self.frameworks:
            self.frameworks[fid] = {"suppressed": False, "filters": {}}
            self.a.add_framework(fid, frozenset({role}), {}, True)

    @precondition(lambda self: self.frameworks)
    @rule(data=st.data())
    def remove_framework(self, data) -> None:
        fid = data.draw(st.sampled_from(sorted(self.frameworks)))
        del self.frameworks[fid]
        self.held = [g for g in self.held if g.framework_id != fid]
        self.a.remove_framework(fid)

    @precondition(lambda self: self.frameworks)
    @rule(data=st.data(), suppress=st.booleans())
    def suppress_or_revive(self, data, suppress: bool) -> None:
        fid = data.draw(st.sampled_from(sorted(self.frameworks)))
        self.frameworks[fid]["suppressed"] = suppress
        if suppress:
            self.a.suppress(fid, frozenset())
        else:
            self.frameworks[fid]["filters"].clear()
            self.a.revive(fid, frozenset())

    @precondition(lambda self: self.held)
    @rule(data=st.data(), refuse=st.one_of(st.none(), st.floats(0, 20)))
    def recover(self, data, refuse) -> None:
        g = data.draw(st.sampled_from(self.held))
        self.held.remove(g)
        self.a.recover(g.framework_id, g.agent_id, g.resources, refuse, self.now)
        if refuse:
            filters = self.frameworks[g.framework_id]["filters"]
            filters[g.agent_id] = max(filters.get(g.agent_id, 0), self.now + refuse)

    @rule(dt=st.floats(0, 10))
    def allocate(self, dt: float) -> None:
        self.now += dt
        grants = self.a.allocate(self.now)
        for g in grants:
            fw = self.frameworks[g.framework_id]
            assert g.resources, "empty grant"
            assert not fw["suppressed"], "suppressed framework got an offer"
            assert fw["filters"].get(g.agent_id, -1) <= self.now, "refuse filter ignored"
        self.held += grants

    @invariant()
    def never_exceeds_agent_free_resources(self) -> None:
        for aid, total in self.totals.items():
            parts = [g.resources for g in self.held if g.agent_id == aid]
            union = _sum(parts)
            assert total.contains(union), (aid, total, union)
            ports = sum(e - b + 1 for p in parts for b, e in p.ranges("ports"))
            assert ports == sum(e - b + 1 for b, e in union.ranges("ports")), "port offered twice"
            assert self.a.allocated(aid) == _by_fw(g for g in self.held if g.agent_id == aid)


def _by_fw(grants) -> dict:
    out: dict = {}
    for g in grants:
        out[g.framework_id] = out.get(g.framework_id, EMPTY) + g.resources
    return out


TestAllocatorMachine = AllocatorMachine.TestCase
TestAllocatorMachine.settings = settings(max_examples=60, stateful_step_count=40, deadline=None)
