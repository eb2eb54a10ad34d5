"""The Marathon core on its own: events in, effects out, no store, driver or clock."""
from __future__ import annotations

import uuid

import pytest

from marathon import core_events as ev
from marathon.core import MarathonCore
from marathon.core_state import MarathonState, Options
from marathon.errors import ApiError
from mesos_common import messages as m
from mesos_common.resources import Resources

NOW = 1_600_000_000.0


def make(deferred: bool = False) -> MarathonCore:
    ids = iter(range(1, 10**6))
    return MarathonCore(MarathonState.from_store(lambda kind: {}, NOW), Options(),
                        lambda: uuid.UUID(int=next(ids), version=1), deferred)


def kinds(effects: list) -> list[str]:
    return [type(e).__name__ for e in effects]


APP = {"id": "/web", "cmd": "sleep 100", "cpus": 0.1, "mem": 16, "instances": 2}


def test_a_command_writes_then_replies_and_the_commit_is_asked_for() -> None:
    core = make()
    out = core.handle(ev.CreateApp(APP), NOW)
    assert {("app", "/web")} <= {(e.kind, e.key) for e in out if isinstance(e, ev.Put)}
    assert isinstance(out[-1], ev.Reply) and out[-1].error is None
    app, deployment = out[-1].value
    assert app["id"] == "/web" and deployment.affected == {"/web"}
    assert core.state.wants == {"/web": 2}
    assert kinds(core.handle(ev.Flush(), NOW))[-1] == "Commit"


def test_a_refused_command_changes_nothing_and_says_why() -> None:
    core = make()
    core.handle(ev.CreateApp(APP), NOW)
    before = dict(core.state.apps)
    out = core.handle(ev.CreateApp(APP), NOW + 1)
    assert kinds(out) == ["Reply"] and isinstance(out[0].error, ApiError)
    assert out[0].error.status == 409 and core.state.apps == before


def test_offers_become_launches_and_updates_drive_the_app() -> None:
    core = make()
    core.handle(ev.CreateApp(APP), NOW)
    offer = m.Offer(id="o1", framework_id="F", agent_id="A1", hostname="h1",
                    resources=Resources.parse("cpus:1;mem:512;ports:[31000-31010]"))
    out = core.handle(ev.Offers((offer,)), NOW + 1)
    (launch,) = [e for e in out if isinstance(e, ev.Launch)]
    assert launch.offer_id == "o1" and len(launch.tasks) == 2
    assert kinds(out)[-1] == "Commit"  # not deferred: the callback commits itself
    gone = launch.tasks[0].task_id
    out = core.handle(ev.StatusUpdate(m.TaskStatus(task_id=gone, state="TASK_FAILED",
                                                   agent_id="A1")), NOW + 2)
    assert gone not in core.state.tasks and ev.Delete("task", gone) in out
    assert core.state.last_failures["/web"]["taskId"] == gone


def test_deferred_offers_wait_for_the_pump() -> None:
    core = make(deferred=True)
    core.handle(ev.CreateApp(APP), NOW)
    offer = m.Offer(id="o1", framework_id="F", agent_id="A1", hostname="h1",
                    resources=Resources.parse("cpus:1;mem:512;ports:[31000-31010]"))
    assert kinds(core.handle(ev.Offers((offer,)), NOW)) == ["WakePump"]
    assert "Launch" in kinds(core.handle(ev.PlaceBacklog(), NOW))
    assert not core.state.offer_backlog


def test_an_unknown_event_is_our_bug() -> None:
    with pytest.raises(AssertionError, match="unknown event"):
        make().handle(object(), NOW)
