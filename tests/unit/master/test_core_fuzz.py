"""Well-typed but arbitrary messages from any peer never crash the core or break invariants."""
from __future__ import annotations

import types
import typing
from typing import Any, Union

import attrs
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from mesos_common import messages as m
from mesos_common import task_states as ts
from mesos_common.resources import Resources

from .harness import Harness, command_task, only

IDS = ["M-S1", "M-F2", "M-O3", "M-O4", "t1", "t2", "", "*", "web", "a/b", "M-S9"]
RESOURCES = [Resources.parse(t) for t in (
    "", "cpus:1", "cpus:1;mem:128", "cpus:100;mem:1", "ports:[31000-31005]",
    "cpus(web):1", "cpus:4;mem:4096;disk:10000;ports:[31000-31099]")]
FLOATS = st.sampled_from([0.0, -1.0, 1.0, 5.0, 1e12, float("inf"), float("nan")])


def _strategy(tp: Any) -> st.SearchStrategy[Any]:
    if tp is str:
        return st.sampled_from(IDS)
    if tp is float:
        return FLOATS
    if tp is int:
        return st.integers(-1, 70000)
    if tp is bool:
        return st.booleans()
    if tp is bytes:
        return st.sampled_from([b"", b"u" * 16, b"1" * 16])
    if tp is Resources:
        return st.sampled_from(RESOURCES)
    if attrs.has(tp):
        return _record(tp)
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin in (Union, types.UnionType):
        return st.one_of([_strategy(a) if a is not type(None) else st.none() for a in args])
    if origin is tuple:
        return st.lists(_strategy(args[0]), max_size=3).map(tuple)
    if origin is dict:
        return st.dictionaries(_strategy(args[0]), _strategy(args[1]), max_size=2)
    raise TypeError(tp)


def _record(cls: type) -> st.SearchStrategy[Any]:
    hints = typing.get_type_hints(cls)
    fields = {}
    for f in attrs.fields(cls):
        if f.name == "state":
            fields[f.name] = st.sampled_from(sorted(ts.ALL_STATES))
        elif f.name == "type" and cls is m.Operation:
            fields[f.name] = st.just("LAUNCH")
        else:
            fields[f.name] = _strategy(hints[f.name])

    @st.composite
    def build(draw: st.DrawFn) -> Any:
        kwargs = {k: draw(v) for k, v in fields.items()}
        try:
            return cls(**kwargs)
        except (ValueError, TypeError):
            assume(False)
    return build()


MESSAGES = st.one_of([_record(cls) for cls in m.MESSAGE_TYPES])


def _cluster() -> Harness:
    h = Harness()
    aid = h.register_agent(b"a1")
    fid = h.subscribe(b"fw1")
    h.launch(b"fw1", fid, only(h.offers()), [command_task("t1", aid)], refuse_seconds=0)
    h.offers()
    assert (aid, fid) == ("M-S1", "M-F2")
    return h


@settings(max_examples=int(__import__("os").environ.get("FUZZ_N", "300")), deadline=None,
          suppress_health_check=[HealthCheck.filter_too_much, HealthCheck.too_slow])
@given(st.lists(st.tuples(st.sampled_from([b"a1", b"fw1", b"x"]), MESSAGES, st.floats(0, 30)),
                min_size=1, max_size=12))
def test_arbitrary_messages_never_crash_the_core(steps: list) -> None:
    h = _cluster()
    for peer, msg, dt in steps:
        h.recv(peer, msg)  # check_invariants runs after every event
        h.advance(dt)


def test_a_reregistration_reporting_more_than_its_resources_kills_the_excess() -> None:
    """Found by the fuzzer: an agent re-registering with a smaller total and a task whose
    executor needs more than is left. The executor's own resources count in the fit (once per
    executor), so the task is killed and the books stay within the agent's total."""
    h = _cluster()
    ex = m.ExecutorInfo("e1", m.CommandInfo("run-executor"), Resources.parse("cpus:1"))
    task = attrs.evolve(command_task("t9", "M-S1"), resources=Resources.parse("cpus:0.5"),
                        executor=ex)
    info = attrs.evolve(h.master.agents["M-S1"].info, resources=Resources.parse("cpus:1;mem:64"))
    out = h.recv(b"a2", m.ReregisterAgent("M-S1", info, (m.TaskRecord("M-F2", task, ts.RUNNING),),
                                          (), "1.0"))
    assert any(isinstance(e.msg, m.KillTask) and e.msg.task_id == "t9"
               for e in out if hasattr(e, "msg"))
    agent = h.master.agents["M-S1"]
    assert agent.total.contains(agent.used)
