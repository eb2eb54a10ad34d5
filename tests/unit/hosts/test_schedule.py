"""Chaos fault schedules: a seed replays its round exactly; faults of a class never overlap;
every fault is over within its round."""
from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.hosts.schedule import KINDS, Fault, driver_actions, round_faults

AGENTS = ["a1", "a2", "a3", "a4"]
HOSTS = ["m1", "m2", "m3", "mt1", "mt2"] + AGENTS


@given(seed=st.integers(0, 2**32), round_no=st.integers(0, 1000),
       length=st.floats(5, 120))
def test_faults_of_a_class_never_overlap_and_end_within_the_round(seed, round_no, length):
    faults = round_faults(seed, round_no, AGENTS, HOSTS, length)
    assert 1 <= len(faults) <= 5 or faults == []
    for f in faults:
        assert 0 <= f.at and f.end <= length + 1e-6 and f.duration > 0
        assert f.kind in KINDS
        if f.cls in ("master", "marathon"):
            assert f.target == f"leader:{f.cls}"
        elif f.cls == "agent":
            assert f.target in AGENTS
        else:
            assert f.target in HOSTS
    for a in faults:
        for b in faults:
            if a is not b and a.cls == b.cls:
                assert a.end <= b.at or b.end <= a.at, (a, b)


@given(seed=st.integers(0, 2**32), round_no=st.integers(0, 1000))
def test_a_seed_replays_its_round(seed, round_no):
    assert round_faults(seed, round_no, AGENTS, HOSTS) == round_faults(seed, round_no, AGENTS,
                                                                       HOSTS)
    assert driver_actions(seed, round_no, 30) == driver_actions(seed, round_no, 30)


def test_rounds_and_seeds_differ():
    rounds = {json.dumps([f.to_json() for f in round_faults(7, r, AGENTS, HOSTS)])
              for r in range(20)}
    seeds = {json.dumps([f.to_json() for f in round_faults(s, 0, AGENTS, HOSTS)])
             for s in range(20)}
    assert len(rounds) > 15 and len(seeds) > 15


def test_every_kind_is_drawn_over_enough_rounds():
    kinds = {f.kind for r in range(200) for f in round_faults(1, r, AGENTS, HOSTS)}
    assert kinds == set(KINDS)


def test_a_logged_fault_reads_back_and_bad_ones_are_refused():
    for f in round_faults(3, 4, AGENTS, HOSTS):
        assert Fault.from_json(json.loads(json.dumps(f.to_json()))) == f
    with pytest.raises(ValueError, match="unknown fault kind"):
        Fault.from_json({"at": 1, "kind": "meteor", "target": "a1", "duration": 2})


def test_loss_and_delay_carry_their_amounts():
    faults = [f for r in range(100) for f in round_faults(2, r, AGENTS, HOSTS)]
    assert all(0.05 <= f.probability <= 0.3 for f in faults if f.kind == "loss")
    assert all(f.delay >= 0.05 for f in faults if f.kind == "delay")
    assert all(f.probability == f.delay == 0 for f in faults if f.cls != "link")


def test_driver_actions_stay_in_the_round_and_scale_within_bounds():
    acts = driver_actions(5, 1, 30)
    assert acts and all(0 <= at < 30 for at, _, _ in acts)
    assert all(1 <= v <= 6 for _, a, v in acts if a == "scale")
    assert [at for at, _, _ in acts] == sorted(at for at, _, _ in acts)
