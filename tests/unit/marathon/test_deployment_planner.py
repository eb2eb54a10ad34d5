"""The pure planner and step executor: plans, scaling, rolling restarts within bounds."""
from __future__ import annotations

import itertools
import math

from hypothesis import given, settings
from hypothesis import strategies as st

from marathon import deployment as dep
from marathon.planner import RESTART, SCALE, START, STOP, Action, plan
from marathon.tracker import Health, TaskRecord

_ids = itertools.count()


def app(instances=3, config="c1", min_h=1.0, max_o=1.0, checks=0, **kw):
    return dict({"id": "/a", "instances": instances, "version": config + "-v",
                 "versionInfo": {"lastConfigChangeAt": config, "lastScalingAt": config},
                 "upgradeStrategy": {"minimumHealthCapacity": min_h, "maximumOverCapacity": max_o},
                 "healthChecks": [{"protocol": "HTTP"}] * checks, "cmd": "x"}, **kw)


def task(config="c1", state="TASK_RUNNING", healthy=None, staged=0.0):
    t = TaskRecord(id=f"t{next(_ids)}", app_id="/a", version=config + "-v", agent_id="ag",
                   host="h", ports=[1], staged_at=staged, state=state, config_version=config)
    if healthy is not None:
        t.health = [Health(alive=healthy)]
    return t


def test_plan_orders_stop_start_then_dependency_layers():
    a, b = {"instances": 1, "cmd": "a"}, {"instances": 2, "cmd": "b", "dependencies": ["/a"]}
    steps = plan({"/old": {"cmd": "o", "instances": 1}}, {"/a": a, "/b": b})
    assert steps == [(Action(STOP, "/old"),), (Action(START, "/a"), Action(START, "/b")),
                     (Action(SCALE, "/a"),), (Action(SCALE, "/b"),)]
    assert plan({"/a": a}, {"/a": dict(a, instances=5)}) == [(Action(SCALE, "/a"),)]
    assert plan({"/a": a}, {"/a": dict(a, cmd="new")}) == [(Action(RESTART, "/a"),)]
    assert plan({"/a": a}, {"/a": a}, frozenset({"/a"})) == [(Action(RESTART, "/a"),)]
    assert plan({"/a": a}, {"/a": a}) == []


def test_scale_up_down_and_replace():
    assert dep.step(app(3), []) == dep.AppActions(3, ())
    ts = [task(staged=i) for i in range(5)]
    acts = dep.step(app(3), ts)
    assert acts.launch == 0 and set(acts.kill) == {ts[4].id, ts[3].id}  # youngest first
    acts = dep.step(app(3, killSelection="OLDEST_FIRST"), ts)
    assert set(acts.kill) == {ts[0].id, ts[1].id}
    dead = task(state="TASK_FAILED")
    assert dep.step(app(2), [task(), dead]).launch == 1
    assert dep.step(None, ts).kill == tuple(t.id for t in ts)


def test_scaling_does_not_restart_tasks():
    ts = [task("c1") for _ in range(3)]
    scaled = app(5, "c1")
    scaled["version"] = "later"
    assert dep.step(scaled, ts) == dep.AppActions(2, ())


def _simulate(n, min_h, max_o, checks):
    """Run a rolling restart to the end; check the bounds after every step."""
    target = app(n, "c2", min_h, max_o, checks)
    tasks = [task("c1", healthy=True if checks else None) for _ in range(n)]
    min_healthy = math.ceil(n * min_h)
    max_total = max(n + math.floor(n * max_o), min_healthy + 1)
    for _ in range(10 * n + 10):
        acts = dep.step(target, tasks)
        tasks = [t for t in tasks if t.id not in acts.kill]
        healthy = [t for t in tasks if t.running and t.healthy(checks) is not False]
        assert len(healthy) >= min(min_healthy, n), (len(healthy), min_healthy)
        # new tasks start unhealthy / staging; they become healthy on the next round
        for t in tasks:
            t.state = "TASK_RUNNING"
            if checks:
                t.health = [Health(alive=True)]
        tasks += [task("c2", state="TASK_STAGING", healthy=False if checks else None)
                  for _ in range(acts.launch)]
        assert len(tasks) <= max_total
        if dep.progress(target, tasks).done:
            return tasks
    raise AssertionError("rolling restart did not finish")


@settings(max_examples=200)
@given(n=st.integers(0, 12), min_h=st.sampled_from([0.0, 0.25, 0.5, 0.75, 1.0]),
       max_o=st.sampled_from([0.0, 0.1, 0.5, 1.0]), checks=st.integers(0, 1))
def test_rolling_restart_stays_within_the_upgrade_strategy(n, min_h, max_o, checks):
    final = _simulate(n, min_h, max_o, checks)
    assert len(final) == n and all(t.config_version == "c2" for t in final)


def test_restart_waits_for_health_before_killing_old():
    target = app(2, "c2", 1.0, 1.0, checks=1)
    old = [task("c1", healthy=True) for _ in range(2)]
    acts = dep.step(target, old)
    assert acts == dep.AppActions(2, ())
    new = [task("c2", healthy=False) for _ in range(2)]
    assert dep.step(target, old + new).kill == ()  # new ones not healthy yet
    new[0].health = [Health(alive=True)]
    assert dep.step(target, old + new).kill == (old[0].id,)


def test_a_failed_probe_on_an_old_task_does_not_get_it_killed_beyond_the_budget():
    target = app(5, "c2", 0.6, 0.2, checks=1)
    old = [task("c1", healthy=True) for _ in range(5)]
    acts = dep.step(target, old)
    assert len(acts.kill) == 2  # 5 running - ceil(3) = 2
    assert acts.launch == 1  # the 2 being killed count until terminal: 6 - 5 active
    rest = [t for t in old if t.id not in acts.kill]
    rest[0].health = [Health(alive=False)]  # one slow probe
    new = [task("c2", healthy=False) for _ in range(3)]
    assert dep.step(target, rest + new).kill == ()  # still 3 running old: nothing more to kill


def test_instances_being_killed_count_against_maximum_over_capacity_until_terminal():
    """Marathon's bound is on active instances: dying old ones still hold their place
    (found by the simulation, seed 4: 7 active of a 5-instance app with overcapacity 0.2)."""
    target = app(5, "c2", 1.0, 0.2)
    old = [task("c1", healthy=True) for _ in range(5)]
    new = [task("c2", healthy=True)]
    acts = dep.step(target, old + new)
    assert len(acts.kill) == 1 and acts.launch == 0  # 6 active: no room until one ends
    for t in old:
        t.killing = t.killing or t.id in acts.kill
    assert dep.step(target, old + new).launch == 0
    dying = next(t for t in old if t.killing)
    dying.state = "TASK_KILLED"
    assert dep.step(target, old + new).launch == 1


def test_old_instances_still_dying_hold_back_the_new_version():
    """Every old task is being killed (none left to replace), yet they count until terminal
    (the simulation, seed 14: 4 dying old tasks of a 1-instance app, one more launched)."""
    target = app(1, "c2", 0.0, 0.5)
    dying = [task("c1") for _ in range(4)]
    for t in dying:
        t.killing = True
    assert dep.step(target, dying) == dep.AppActions(0, ())
    for t in dying:
        t.state = "TASK_KILLED"
    assert dep.step(target, dying).launch == 1
