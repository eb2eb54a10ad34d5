"""Hierarchical DRF allocator: examples, DRF/weights/quota properties, a random-call machine."""
from __future__ import annotations

import random

from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from mesos_common.resources import EMPTY, Resources
from mesos_master.allocator.base import OfferGrant
from mesos_master.allocator.hierarchical import HierarchicalAllocator
from mesos_master.allocator.sorter import DRFSorter, RandomSorter

R = Resources.parse
AGENT = "cpus:4;mem:1024;ports:[100-199]"


def _sum(items):
    out = EMPTY
    for r in items:
        out = out + r
    return out


def make(seed: int = 0) -> HierarchicalAllocator:
    return HierarchicalAllocator(random.Random(seed))


def test_whole_agents_alternate_between_equal_frameworks() -> None:
    a = make()
    for i in range(4):
        a.add_agent(f"s{i}", R(AGENT), {})
    a.add_framework("f1", frozenset({"*"}), {}, True)
    a.add_framework("f2", frozenset({"*"}), {}, True)
    grants = a.allocate(0.0)
    assert sorted(g.agent_id for g in grants) == ["s0", "s1", "s2", "s3"]
    assert [g.framework_id for g in grants].count("f1") == 2
    assert all(g.resources == R(AGENT) for g in grants)
    assert a.allocate(1.0) == []  # nothing left, nothing offered twice


def test_refuse_filter_until_expiry_and_revive_clears_it() -> None:
    a = make()
    a.add_agent("s1", R(AGENT), {})
    a.add_framework("f1", frozenset({"*"}), {}, True)
    (g,) = a.allocate(0.0)
    a.recover("f1", "s1", g.resources, 5.0, now=0.0)
    assert a.allocate(4.9) == []
    assert a.allocate(5.0) == [OfferGrant("f1", "s1", R(AGENT))]
    a.recover("f1", "s1", R(AGENT), 100.0, now=5.0)
    a.revive("f1", frozenset())
    assert len(a.allocate(6.0)) == 1


def test_refuse_filters_go_with_a_removed_agent_and_stay_with_a_rebooked_one() -> None:
    """Mesos 1.9+ (and 1.11, which Corral reports): removeSlave calls removeFilters, so an
    agent that comes back with the same id is offered at once; a known agent that
    re-registers (updateSlave, same attributes) keeps its filters until they expire."""
    a = make()
    a.add_agent("s1", R(AGENT), {})
    a.add_framework("f1", frozenset({"*"}), {}, True)
    (g,) = a.allocate(0.0)
    a.recover("f1", "s1", g.resources, 100.0, now=0.0)
    assert a.filtered("f1", "s1", 1.0)
    a.remove_agent("s1")
    a.add_agent("s1", R(AGENT), {})  # back before the filter's expiry: it went with the agent
    assert not a.filtered("f1", "s1", 2.0)
    (g,) = a.allocate(2.0)
    assert g == OfferGrant("f1", "s1", R(AGENT))
    a.recover("f1", "s1", g.resources, 100.0, now=2.0)
    a.add_agent("s1", R(AGENT), {}, keep_filters=True)  # re-registered while still known
    assert a.filtered("f1", "s1", 3.0)
    assert a.allocate(3.0) == []
    assert a.allocate(102.0) == [OfferGrant("f1", "s1", R(AGENT))]
    a.recover("f1", "s1", R(AGENT), 100.0, now=102.0)
    a.add_agent("s1", R(AGENT), {})  # re-registered with other attributes: filters dropped
    assert len(a.allocate(103.0)) == 1


def test_refused_agent_goes_to_the_next_framework() -> None:
    a = make()
    a.add_agent("s1", R(AGENT), {})
    a.add_framework("f1", frozenset({"*"}), {}, True)
    a.add_framework("f2", frozenset({"*"}), {}, True)
    (g,) = a.allocate(0.0)
    a.recover(g.framework_id, "s1", g.resources, 10.0, now=0.0)
    (g2,) = a.allocate(1.0)
    assert g2.framework_id != g.framework_id


def test_suppressed_framework_gets_nothing_until_revive() -> None:
    a = make()
    a.add_agent("s1", R(AGENT), {})
    a.add_framework("f1", frozenset({"*"}), {}, True)
    a.suppress("f1", frozenset({"*"}))
    assert a.allocate(0.0) == []
    a.revive("f1", frozenset({"*"}))
    assert len(a.allocate(0.0)) == 1


def test_reserved_resources_only_to_their_role() -> None:
    a = make()
    a.add_agent("s1", R("cpus:2;mem:512;cpus(web):2;mem(web):256"), {})
    a.add_framework("batch", frozenset({"*"}), {}, True)
    a.add_framework("web", frozenset({"web"}), {}, True)
    grants = {g.framework_id: g.resources for g in a.allocate(0.0)}
    assert grants["web"].contains(R("cpus(web):2;mem(web):256"))
    assert not grants.get("batch", EMPTY).reserved()
    assert _sum(grants.values()) == R("cpus:2;mem:512;cpus(web):2;mem(web):256")


def test_reservations_of_a_role_without_frameworks_stay_unoffered() -> None:
    a = make()
    a.add_agent("s1", R("cpus:2;mem:512;cpus(ads):2"), {})
    a.add_framework("batch", frozenset({"*"}), {}, True)
    (g,) = a.allocate(0.0)
    assert g.resources == R("cpus:2;mem:512")


def test_used_resources_count_and_inactive_frameworks_wait() -> None:
    a = make()
    a.add_framework("f1", frozenset({"*"}), {}, False)
    a.add_agent("s1", R("cpus:4;mem:1024"), {"f1": R("cpus:3;mem:512")})
    a.add_framework("f2", frozenset({"*"}), {}, True)
    assert a.allocate(0.0) == [OfferGrant("f2", "s1", R("cpus:1;mem:512"))]
    a.remove_framework("f2")
    a.activate_framework("f1")
    assert a.allocate(0.0) == [OfferGrant("f1", "s1", R("cpus:1;mem:512"))]
    a.remove_agent("s1")
    assert a.framework_allocation("f1") == EMPTY


def test_restricted_cycle_only_touches_given_agents() -> None:
    a = make()
    for i in range(3):
        a.add_agent(f"s{i}", R(AGENT), {})
    a.add_framework("f1", frozenset({"*"}), {}, True)
    assert [g.agent_id for g in a.allocate(0.0, ["s1", "nope"])] == ["s1"]
    assert sorted(g.agent_id for g in a.allocate(0.0)) == ["s0", "s2"]


def test_drf_sorter_caches_shares_and_honours_weights() -> None:
    s = DRFSorter()
    s.add("a", 0)
    s.add("b", 1)
    s.activate("a")
    s.activate("b")
    s.set_total({"cpus": 10000, "mem": 10000})
    s.allocated("a", {"cpus": 3000})
    s.allocated("b", {"mem": 2000})
    assert s.sort() == ["b", "a"]
    s.update_weight("a", 2.0)  # 0.3 / 2 = 0.15 < 0.2
    assert s.sort() == ["a", "b"]
    assert s.share("a") == 0.15
    s.deactivate("a")
    assert s.sort() == ["b"]
    s.set_total({"cpus": 20000, "mem": 20000})
    assert s.share("b") == 0.1


def test_random_sorter_returns_every_active_client() -> None:
    s = RandomSorter(random.Random(3))
    for i, n in enumerate("abcd"):
        s.add(n, i)
        s.activate(n)
    orders = {tuple(s.sort()) for _ in range(30)}
    assert all(sorted(o) == list("abcd") for o in orders) and len(orders) > 1
    a = HierarchicalAllocator(random.Random(0), sorter_factory=lambda: RandomSorter(
        random.Random(1)))
    a.add_agent("s1", R(AGENT), {})
    a.add_framework("f1", frozenset({"*"}), {}, True)
    assert len(a.allocate(0.0)) == 1


# ---------------------------------------------------------------- DRF, weights, quota

def _fill(a: HierarchicalAllocator, shapes: dict[str, Resources],
          agents: list[str]) -> dict[str, float] | None:
    """Progressive filling through the allocator: one agent offered at a time, the
    framework launches one task if it fits (the rest comes back) or declines the agent for
    good. Returns the frameworks' shares when the first one could not place a task (the
    point where DRF's progressive filling saturates that framework), None if none did."""
    now, idle, i = 0.0, 0, 0
    first_block = None
    while idle < 2 * len(agents) and now < 100000:
        now += 1.0
        agent = agents[i % len(agents)]
        i += 1
        grants = a.allocate(now, [agent])
        idle = 0 if grants else idle + 1
        for g in grants:
            task = shapes[g.framework_id]
            if g.resources.contains(task):
                a.recover(g.framework_id, g.agent_id, g.resources - task, None, now)
            else:
                if first_block is None:
                    first_block = {f: a.framework_share(f) for f in shapes}
                a.recover(g.framework_id, g.agent_id, g.resources, 1e9, now)
    return first_block


@settings(max_examples=25, deadline=None)
@given(n_agents=st.integers(2, 8),
       cpu_task=st.sampled_from(["cpus:2;mem:256", "cpus:1;mem:128", "cpus:3;mem:512"]),
       mem_task=st.sampled_from(["cpus:0.5;mem:2048", "cpus:0.25;mem:1024",
                                 "cpus:1;mem:3072"]))
def test_two_task_shapes_end_within_one_task_share(n_agents, cpu_task, mem_task) -> None:
    a = make(n_agents)
    agents = [f"s{i}" for i in range(n_agents)]
    for s in agents:
        a.add_agent(s, R("cpus:8;mem:8192"), {})
    a.add_framework("cpu", frozenset({"*"}), {}, True)
    a.add_framework("mem", frozenset({"*"}), {}, True)
    shapes = {"cpu": R(cpu_task), "mem": R(mem_task)}
    at_saturation = _fill(a, shapes, agents)
    total = a.total()
    one_task = max(shapes["cpu"].dominant_share(total), shapes["mem"].dominant_share(total))
    assert at_saturation is not None
    s_cpu, s_mem = at_saturation["cpu"], at_saturation["mem"]
    assert abs(s_cpu - s_mem) <= one_task + 1e-9, (s_cpu, s_mem, one_task)
    # and the cluster ends saturated: no framework can place one more task anywhere
    for s in agents:
        free = R("cpus:8;mem:8192") - _sum(a.allocated(s).values())
        assert not free.contains(shapes["cpu"]) and not free.contains(shapes["mem"]), free


@settings(max_examples=15, deadline=None)
@given(n_agents=st.integers(3, 8))
def test_weights_two_to_one_give_two_to_one_shares(n_agents) -> None:
    a = make(n_agents)
    agents = [f"s{i}" for i in range(n_agents)]
    for s in agents:
        a.add_agent(s, R("cpus:8;mem:8192"), {})
    a.update_weights({"gold": 2.0, "bronze": 1.0})
    a.add_framework("g", frozenset({"gold"}), {}, True)
    a.add_framework("b", frozenset({"bronze"}), {}, True)
    task = R("cpus:0.5;mem:512")
    assert _fill(a, {"g": task, "b": task}, agents) is None  # tasks pack agents exactly
    sg, sb = a.framework_share("g"), a.framework_share("b")
    one = task.dominant_share(a.total())
    assert abs(sg - 2 * sb) <= 2 * one + 1e-9, (sg, sb)
    assert abs(sg + sb - 1.0) < 1e-9  # the cluster is full


@settings(max_examples=30, deadline=None)
@given(n_agents=st.integers(2, 10), quota_agents=st.integers(1, 10), others=st.integers(1, 4),
       seed=st.integers(0, 100))
def test_quota_is_met_before_fair_sharing(n_agents, quota_agents, others, seed) -> None:
    """In one cycle a role under quota gets its guarantee (as far as the cluster holds it)
    even against many frameworks of other roles with lower shares."""
    a = make(seed)
    for i in range(n_agents):
        a.add_agent(f"s{i}", R("cpus:8;mem:8192"), {})
    for i in range(others):
        a.add_framework(f"o{i}", frozenset({f"r{i}"}), {}, True)
    a.add_framework("q", frozenset({"analytics"}), {}, True)
    a.set_quota("analytics", R(f"cpus:{8 * quota_agents}"))
    grants = a.allocate(0.0)
    got = _sum(g.resources for g in grants if g.framework_id == "q").scalar("cpus")
    assert got >= min(8 * quota_agents, 8 * n_agents)
    if quota_agents < n_agents:  # the rest is shared by DRF (quota is a guarantee, not a cap)
        assert {g.framework_id for g in grants} - {"q"}
        assert len(grants) == n_agents


def test_role_under_quota_is_satisfied_first_and_others_leave_headroom() -> None:
    a = make()
    for i in range(6):
        a.add_agent(f"s{i}", R("cpus:8;mem:8192"), {})
    a.add_framework("big", frozenset({"*"}), {}, True)
    a.add_framework("q", frozenset({"analytics"}), {}, True)
    a.set_quota("analytics", R("cpus:24"))
    grants = a.allocate(0.0)
    got = _sum(g.resources for g in grants if g.framework_id == "q")
    assert got.scalar("cpus") >= 24  # quota first, before fair sharing
    # the quota role refuses everything: others may not eat into what it still needs
    b = make()
    for i in range(6):
        b.add_agent(f"s{i}", R("cpus:8;mem:8192"), {})
    b.add_framework("q", frozenset({"analytics"}), {}, False)
    b.add_framework("big", frozenset({"*"}), {}, True)
    b.set_quota("analytics", R("cpus:24"))
    big = _sum(g.resources for g in b.allocate(0.0))
    assert big.scalar("cpus") <= 48 - 24
    b.activate_framework("q")
    assert _sum(g.resources for g in b.allocate(1.0)).scalar("cpus") == 24
    b.set_quota("analytics", None)
    assert b.quotas() == {}


# ---------------------------------------------------------------- random calls

class AllocatorMachine(RuleBasedStateMachine):
    """Random calls; the allocator's books must match a model of offers held."""

    def __init__(self) -> None:
        super().__init__()
        self.a = make(5)
        self.now = 0.0
        self.totals: dict[str, Resources] = {}
        self.held: list[OfferGrant] = []
        self.frameworks: dict[str, dict] = {}

    @rule(i=st.integers(0, 4), res=st.sampled_from([AGENT, "cpus:1;mem:64", "cpus:8;mem:32000",
                                                    "cpus:2;mem:256;cpus(web):2",
                                                    "cpus(web):1;mem(web):64"]))
    def add_agent(self, i: int, res: str) -> None:
        aid = f"s{i}"
        if aid not in self.totals:
            self.totals[aid] = R(res)
            self.a.add_agent(aid, R(res), {})

    @precondition(lambda self: self.totals)
    @rule(data=st.data())
    def remove_agent(self, data) -> None:
        aid = data.draw(st.sampled_from(sorted(self.totals)))
        del self.totals[aid]
        self.held = [g for g in self.held if g.agent_id != aid]
        self.a.remove_agent(aid)
        for fw in self.frameworks.values():  # Mesos 1.9+ removeSlave -> removeFilters
            fw["filters"].pop(aid, None)

    @precondition(lambda self: self.totals)
    @rule(data=st.data(), keep=st.booleans())
    def rebook_agent(self, data, keep: bool) -> None:
        """A known agent re-registers: its offers are rescinded, its books start afresh and
        its refuse filters stay (same attributes) or go (changed attributes)."""
        aid = data.draw(st.sampled_from(sorted(self.totals)))
        self.held = [g for g in self.held if g.agent_id != aid]
        self.a.add_agent(aid, self.totals[aid], {}, keep_filters=keep)
        if not keep:
            for fw in self.frameworks.values():
                fw["filters"].pop(aid, None)

    @rule(i=st.integers(0, 3), roles=st.sampled_from([("*",), ("web",), ("*", "web"),
                                                       ("gold",)]))
    def add_framework(self, i: int, roles) -> None:
        fid = f"f{i}"
        if fid not in self.frameworks:
            self.frameworks[fid] = {"suppressed": False, "filters": {}, "roles": set(roles)}
            self.a.add_framework(fid, frozenset(roles), {}, True)

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

    @rule(weight=st.sampled_from([0.5, 1.0, 3.0]), quota=st.sampled_from([None, "cpus:2"]))
    def weights_and_quota(self, weight: float, quota) -> None:
        self.a.update_weights({"web": weight})
        self.a.set_quota("gold", R(quota) if quota else None)

    @precondition(lambda self: self.held)
    @rule(data=st.data(), refuse=st.one_of(st.none(), st.floats(0, 20)), part=st.booleans())
    def recover(self, data, refuse, part: bool) -> None:
        g = data.draw(st.sampled_from(self.held))
        self.held.remove(g)
        back = g.resources
        if part and g.resources.scalar("cpus") >= 1:  # a task keeps some, the rest returns
            keep = R("cpus:0.5")
            kept = [k for k in (g.resources.unreserved(), g.resources.reserved())
                    if k.contains(keep)]
            if kept:
                keep = R(f"cpus({next(iter(kept[0].roles()))}):0.5")
                back = g.resources - keep
                self.held.append(OfferGrant(g.framework_id, g.agent_id, keep))
        self.a.recover(g.framework_id, g.agent_id, back, refuse, self.now)
        if refuse:
            filters = self.frameworks[g.framework_id]["filters"]
            filters[g.agent_id] = max(filters.get(g.agent_id, 0), self.now + refuse)

    @rule(dt=st.floats(0, 10), restrict=st.booleans())
    def allocate(self, dt: float, restrict: bool) -> None:
        self.now += dt
        agents = sorted(self.totals)[:2] if restrict else None
        grants = self.a.allocate(self.now, agents)
        for g in grants:
            fw = self.frameworks[g.framework_id]
            assert g.resources, "empty grant"
            assert not fw["suppressed"], "suppressed framework got an offer"
            assert fw["filters"].get(g.agent_id, -1) <= self.now, "refuse filter ignored"
            assert g.resources.roles() - {"*"} <= fw["roles"], "reservation to another role"
            if agents is not None:
                assert g.agent_id in agents
        self.held += grants

    @invariant()
    def refuse_filters_match_the_model(self) -> None:
        for fid, fw in self.frameworks.items():
            for aid in self.totals:
                expect = fw["filters"].get(aid, -1) > self.now
                assert self.a.filtered(fid, aid, self.now) == expect, (fid, aid)

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
TestAllocatorMachine.settings = settings(max_examples=80, stateful_step_count=40, deadline=None)


def test_gpu_agents_go_only_to_gpu_capable_frameworks() -> None:
    a = make()
    a.add_agent("gpu", R(AGENT + ";gpus:2"), {})
    a.add_agent("gpu-reserved", R("cpus(r):2;mem(r):512;gpus(r):1"), {})
    a.add_agent("plain", R(AGENT), {})
    a.add_framework("cpu-only", frozenset({"*", "r"}), {}, True)
    grants = a.allocate(0.0)
    assert [(g.framework_id, g.agent_id) for g in grants] == [("cpu-only", "plain")]
    a.add_framework("gpu-fw", frozenset({"*", "r"}), {}, True)
    a.set_gpu_capable("gpu-fw", True)
    grants = a.allocate(1.0)
    assert sorted((g.framework_id, g.agent_id) for g in grants) == [
        ("gpu-fw", "gpu"), ("gpu-fw", "gpu-reserved")]
    a.set_gpu_capable("gpu-fw", False)  # a capability dropped on re-subscription
    a.remove_framework("gpu-fw")
    a.add_framework("new", frozenset({"*"}), {}, True)  # reuses the index: not capable
    assert a.allocate(2.0) == []
