"""The leadership core on its own: the election's reports in, take-over/fence/abdicate out."""
from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from mesos_common import leadership as ld
from mesos_common.effects import CancelTimer, Log, SetTimer, TimerFired

OURS, OTHER = "json.info_0000000002", "json.info_0000000001"


def _kinds(effects: list[object]) -> list[type]:
    return [type(e) for e in effects if not isinstance(e, Log)]


def _leading(quorum: int = 1) -> ld.Leadership:
    core = ld.Leadership(quorum=quorum, session_timeout=10.0)
    assert _kinds(core.handle(ld.GroupChanged(OURS, {"id": "me"}, quorum, OURS), 0.0)) == \
        [ld.TakeOver]
    assert _kinds(core.handle(ld.TakeoverDone(True), 0.0)) == [ld.Lead]
    assert core.acting
    return core


def test_first_in_line_waits_for_a_quorum() -> None:
    core = ld.Leadership(quorum=2, session_timeout=10.0)
    assert _kinds(core.handle(ld.GroupChanged(OURS, None, 1, OURS), 0.0)) == []
    assert _kinds(core.handle(ld.GroupChanged(OURS, None, 2, OURS), 1.0)) == [ld.TakeOver]
    # A second report while the registry opens does not take over twice.
    assert _kinds(core.handle(ld.GroupChanged(OURS, None, 3, OURS), 1.0)) == []


def test_a_standby_records_the_leader_and_does_nothing() -> None:
    core = ld.Leadership(quorum=1, session_timeout=10.0)
    assert core.handle(ld.GroupChanged(OTHER, {"id": "L"}, 2, OURS), 0.0) == []
    assert core.leader_info == {"id": "L"} and not core.leading


def test_a_takeover_that_fails_or_lost_the_lead_meanwhile() -> None:
    core = ld.Leadership(quorum=1, session_timeout=10.0)
    core.handle(ld.GroupChanged(OURS, None, 1, OURS), 0.0)
    core.handle(ld.GroupChanged(OTHER, None, 2, OURS), 0.0)  # someone sorts first now
    assert core.handle(ld.TakeoverDone(True), 0.0) == [] and not core.leading
    failing = ld.Leadership(quorum=1, session_timeout=10.0)
    failing.handle(ld.GroupChanged(OURS, None, 1, OURS), 0.0)
    [abdicate] = failing.handle(ld.TakeoverDone(False, "no znode"), 0.0)
    assert abdicate == ld.Abdicate("cannot take over the registry: no znode", False)


def test_suspension_fences_and_reconnection_unfences() -> None:
    core = _leading()
    out = core.handle(ld.SessionChanged("SUSPENDED"), 5.0)
    assert _kinds(out) == [ld.Fence, SetTimer] and core.fenced and not core.acting
    assert SetTimer(ld.SESSION_DEADLINE, 15.0) in out
    assert _kinds(core.handle(ld.SessionChanged("CONNECTED"), 6.0)) == [CancelTimer, ld.Unfence]
    assert core.acting
    assert core.handle(TimerFired(ld.SESSION_DEADLINE), 15.0) == []  # cancelled: ignored


def test_suspended_past_the_session_timeout_abdicates() -> None:
    core = _leading()
    core.handle(ld.SessionChanged("SUSPENDED"), 5.0)
    assert core.handle(TimerFired(ld.SESSION_DEADLINE), 15.0) == \
        [ld.Abdicate("ZooKeeper session presumed expired", True)]
    assert core.done and core.handle(ld.SessionChanged("CONNECTED"), 16.0) == []


def test_lost_session_another_leader_or_a_refused_write_abdicate() -> None:
    assert _leading().handle(ld.SessionChanged("LOST"), 1.0) == \
        [ld.Abdicate("ZooKeeper session expired", True)]
    assert _leading().handle(ld.GroupChanged(OTHER, None, 2, OURS), 1.0) == \
        [ld.Abdicate(f"another master leads now ({OTHER})", True)]
    assert _leading().handle(ld.WriteRefused("version moved"), 1.0) == \
        [ld.Abdicate("registry write refused: version moved", True)]


def test_a_standby_whose_session_expired_contends_again_once_reconnected() -> None:
    core = ld.Leadership(quorum=1, session_timeout=10.0)
    core.handle(ld.GroupChanged(OTHER, None, 2, OURS), 0.0)
    assert core.handle(ld.SessionChanged("LOST"), 1.0) == []
    assert core.handle(ld.SessionChanged("CONNECTED"), 2.0) == [ld.Recontend()]
    assert core.handle(ld.SessionChanged("CONNECTED"), 2.5) == []  # one at a time
    core.handle(ld.RecontendDone(False), 3.0)
    assert core.handle(ld.SessionChanged("CONNECTED"), 4.0) == [ld.Recontend()]


EVENTS = st.one_of(
    st.builds(ld.GroupChanged, st.sampled_from([OURS, OTHER, None]), st.none(),
              st.integers(0, 3), st.sampled_from([OURS, None])),
    st.builds(ld.SessionChanged, st.sampled_from(["CONNECTED", "SUSPENDED", "LOST"])),
    st.builds(ld.TakeoverDone, st.booleans()),
    st.builds(ld.RecontendDone, st.booleans()),
    st.just(TimerFired(ld.SESSION_DEADLINE)),
)


@given(st.integers(1, 3), st.lists(EVENTS, max_size=40))
def test_any_report_sequence_keeps_the_rules(quorum: int, events: list[object]) -> None:
    """Lead at most once, only first in line with a quorum after a take-over; never act while
    fenced; nothing after abdicating; a set deadline is cancelled or fires once."""
    core = ld.Leadership(quorum=quorum, session_timeout=10.0)
    leads = taken = 0
    last_group: ld.GroupChanged | None = None
    deadline = False
    for i, ev in enumerate(events):
        was_done = core.done
        out = core.handle(ev, float(i))
        if was_done:
            assert out == []
        if isinstance(ev, ld.GroupChanged):
            last_group = ev
        for e in out:
            if isinstance(e, ld.TakeOver):
                taken += 1
                assert last_group is not None and last_group.leader == last_group.ours
                assert last_group.size >= quorum
            elif isinstance(e, ld.Lead):
                leads += 1
                assert taken == leads and isinstance(ev, ld.TakeoverDone) and ev.ok
            elif isinstance(e, SetTimer):
                assert not deadline
                deadline = True
            elif isinstance(e, CancelTimer):
                assert deadline
                deadline = False
            elif isinstance(e, ld.Abdicate):
                assert core.done and not core.acting
        if isinstance(ev, TimerFired) and deadline:
            deadline = False  # fired
        assert leads <= 1
        assert not (core.acting and core.fenced)
        assert core.acting == (core.leading and not core.fenced)


# ---------------------------------------------------------------- stay_up (Marathon's policy)

def _standby_leading() -> ld.Leadership:
    core = ld.Leadership(quorum=1, session_timeout=10.0, stay_up=True)
    core.handle(ld.GroupChanged(OURS, "me:1", 1, OURS), 0.0)
    assert _kinds(core.handle(ld.TakeoverDone(True), 0.0)) == [ld.Lead]
    return core


def test_stay_up_steps_down_at_once_and_stays_in_the_election() -> None:
    for state in ("SUSPENDED", "LOST"):
        core = _standby_leading()
        [step] = core.handle(ld.SessionChanged(state), 1.0)
        assert isinstance(step, ld.StepDown) and not core.leading and not core.done
        # suspended: being first in line elects nobody until the connection is back
        assert core.handle(ld.GroupChanged(OURS, "me:1", 1, OURS), 2.0) == []
        back = core.handle(ld.SessionChanged("CONNECTED"), 3.0)
        assert back == ([ld.Recontend()] if state == "LOST" else [ld.Refresh()])
    core = _standby_leading()
    assert core.handle(ld.GroupChanged(OTHER, "other:1", 2, OURS), 1.0) == \
        [ld.StepDown(f"another master leads now ({OTHER})")]
    assert not core.done and core.leader_info == "other:1"


def test_resign_rejoins_at_the_end_of_the_line_ignoring_the_old_znode() -> None:
    core = _standby_leading()
    assert core.handle(ld.Resign("asked to"), 1.0) == [ld.StepDown("asked to"), ld.Rejoin()]
    assert core.handle(ld.Resign("again"), 1.0) == []  # not leading any more
    assert core.handle(ld.GroupChanged(OURS, "me:1", 1, OURS), 2.0) == []  # the old znode
    assert core.handle(ld.RecontendDone(True), 3.0) == [ld.Refresh()]
    new = "json.info_0000000009"
    assert _kinds(core.handle(ld.GroupChanged(new, "me:1", 1, new), 4.0)) == [ld.TakeOver]


def test_the_master_policy_is_unchanged_by_resign_and_exits() -> None:
    core = _leading()
    assert core.handle(ld.Resign("asked to"), 1.0) == [ld.Abdicate("asked to", True)]
    assert core.done


STANDBY_EVENTS = st.one_of(EVENTS, st.builds(ld.Resign, st.just("asked")))


@given(st.lists(STANDBY_EVENTS, max_size=40))
def test_stay_up_never_exits_and_leads_only_when_elected_and_connected(
        events: list[object]) -> None:
    """With stay_up: never Abdicate, never fence; Lead only after a TakeOver while first in
    line and connected; a StepDown only while leading; one Rejoin at a time."""
    core = ld.Leadership(quorum=1, session_timeout=10.0, stay_up=True)
    suspended = rejoining = False
    last_group: ld.GroupChanged | None = None
    for i, ev in enumerate(events):
        was_leading = core.leading
        out = core.handle(ev, float(i))
        if isinstance(ev, ld.SessionChanged):
            suspended = ev.state != "CONNECTED"
        if isinstance(ev, ld.GroupChanged):
            last_group = ev
        if isinstance(ev, ld.RecontendDone) and rejoining:
            rejoining = False
        for e in out:
            assert not isinstance(e, (ld.Abdicate, ld.Fence, ld.Unfence, SetTimer))
            if isinstance(e, ld.TakeOver):
                assert last_group is not None and last_group.leader == last_group.ours
                assert not suspended and not rejoining
            elif isinstance(e, ld.StepDown):
                assert was_leading and not core.leading
            elif isinstance(e, ld.Rejoin):
                assert not rejoining
                rejoining = True
        assert not core.done and not core.fenced
        assert not (core.leading and suspended)


def test_a_takeover_that_ends_while_suspended_does_not_lead_until_reconnected() -> None:
    """Found by the stay_up property test: the registry opened while the ZooKeeper connection
    was away; leading then would act without a session. Both policies wait for CONNECTED."""
    for stay_up, again in ((True, ld.Refresh()), (False, ld.TakeOver())):
        core = ld.Leadership(quorum=1, session_timeout=10.0, stay_up=stay_up)
        core.handle(ld.GroupChanged(OURS, None, 1, OURS), 0.0)
        core.handle(ld.SessionChanged("SUSPENDED"), 1.0)
        assert core.handle(ld.TakeoverDone(True), 2.0) == [] and not core.leading
        assert again in core.handle(ld.SessionChanged("CONNECTED"), 3.0)
