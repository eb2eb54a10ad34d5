"""StatusUpdateManager: concrete cases plus a hypothesis state machine over adds, acks
(right, stale, duplicate), timer firings, pauses and resumes."""
from __future__ import annotations

import itertools

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from mesos_agent.config import AgentConfig
from mesos_agent.status import TIMER, RetryPolicy, StatusUpdateManager
from mesos_common import task_states as ts
from mesos_common.effects import CancelTimer, Send, SetTimer
from mesos_common.messages import StatusUpdate, TaskStatus
from mesos_common.resources import Resources

_uuids = itertools.count(1)


def status(task_id: str, state: str = ts.RUNNING) -> TaskStatus:
    return TaskStatus(task_id=task_id, state=state, uuid=next(_uuids).to_bytes(16, "big"))


def uid(s: TaskStatus) -> bytes:
    """The uuid every update made by `status` carries."""
    assert s.uuid is not None
    return s.uuid


def sent(effects: list) -> list[TaskStatus]:
    return [e.msg.status for e in effects if isinstance(e, Send)]


def test_only_the_head_is_in_flight_and_acks_release_the_next() -> None:
    m = StatusUpdateManager(RetryPolicy(2.0, 60.0))
    a, b, c = status("t", ts.STARTING), status("t", ts.RUNNING), status("t", ts.FINISHED)
    assert m.add("f", a, 0.0) == [Send(None, StatusUpdate("f", a)), SetTimer(TIMER, 2.0)]
    assert m.add("f", b, 0.0) == []
    assert m.add("f", c, 0.0) == []
    assert m.pending("t") == (a, b, c)
    assert m.ack("t", uid(b), 1.0) == []  # not the head: ignored
    # b is due at 3.0; the timer, set for 2.0, wakes the manager before that
    assert m.ack("t", uid(a), 1.0) == [Send(None, StatusUpdate("f", b))]
    assert m.ack("t", uid(a), 1.5) == []  # duplicate ack
    assert sent(m.ack("t", uid(b), 2.0)) == [c]
    assert m.ack("t", uid(c), 2.5) == [CancelTimer(TIMER)]  # nothing left in flight
    assert m.task_ids() == [] and m.unacked() == []


def test_backoff_doubles_up_to_the_max_and_resets_for_the_next_head() -> None:
    m = StatusUpdateManager(RetryPolicy(2.0, 10.0))
    a, b = status("t"), status("t", ts.FAILED)
    m.add("f", a, 0.0)
    m.add("f", b, 0.0)
    ats = []
    now = 2.0
    for _ in range(5):
        effects = m.on_timer(TIMER, now)
        assert sent(effects) == [a]
        now = [e.at for e in effects if isinstance(e, SetTimer)][0]
        ats.append(now)
    assert ats == [6.0, 14.0, 24.0, 34.0, 44.0]  # +4, +8, then capped at +10
    effects = m.ack("t", uid(a), 50.0)
    assert effects == [Send(None, StatusUpdate("f", b))]
    # the timer still set for a's last due time (44) finds nothing due, and waits for b's
    assert m.on_timer(TIMER, 50.0) == [SetTimer(TIMER, 52.0)]


def test_the_default_policy_is_mesos_10s_doubling_to_10min() -> None:
    """Mesos's STATUS_UPDATE_RETRY_INTERVAL_MIN/MAX, in the manager and the agent's config."""
    m = StatusUpdateManager()
    a = status("t")
    assert m.add("f", a, 0.0)[1] == SetTimer(TIMER, 10.0)
    now, gaps = 10.0, []
    for _ in range(8):
        [_, timer] = m.on_timer(TIMER, now)
        gaps.append(timer.at - now)
        now = timer.at
    assert gaps == [20.0, 40.0, 80.0, 160.0, 320.0, 600.0, 600.0, 600.0]
    cfg = AgentConfig(hostname="h", port=5051, resources=Resources.parse("cpus:1"), work_dir="/w")
    assert cfg.status_retry == RetryPolicy() == RetryPolicy(10.0, 600.0)


def test_non_terminal_ack_keeps_the_stream_and_stale_timers_do_nothing() -> None:
    m = StatusUpdateManager()
    a = status("t")
    m.add("f", a, 0.0)
    assert m.ack("t", uid(a), 1.0) == [CancelTimer(TIMER)]
    assert m.task_ids() == ["t"] and m.pending("t") == ()
    assert m.on_timer(TIMER, 5.0) == []
    assert m.on_timer("heartbeat", 5.0) == []


def test_paused_manager_queues_and_resend_all_flushes_heads() -> None:
    m = StatusUpdateManager(RetryPolicy(2.0, 60.0), paused=True)
    a, b, c = status("t1"), status("t1", ts.FINISHED), status("t2")
    assert m.add("f", a, 0.0) == [] and m.add("f", b, 0.0) == [] and m.add("g", c, 0.0) == []
    assert m.on_timer(TIMER, 3.0) == []
    effects = m.resend_all(10.0)
    assert effects == [Send(None, StatusUpdate("f", a)), SetTimer(TIMER, 12.0),
                       Send(None, StatusUpdate("g", c))]
    assert m.pause() == [CancelTimer(TIMER)]
    assert m.ack("t1", uid(a), 11.0) == []  # acked while paused: next waits for resume
    assert m.unacked() == [("f", b), ("g", c)]
    assert sent(m.resend_all(12.0)) == [b, c]


def test_stale_due_times_do_not_pile_up_behind_a_head_backed_off_for_long() -> None:
    """One head unacknowledged for minutes keeps the timer far off; the thousands of updates
    sent and acked meanwhile must not stay queued (their entries are stale)."""
    from mesos_agent.status import STALE_SLACK
    m = StatusUpdateManager(RetryPolicy(600.0, 600.0))
    m.add("f", status("stuck"), 0.0)
    for i in range(5000):
        u = status(f"t{i}", ts.FINISHED)  # acked: its stream closes
        m.add("f", u, 1.0 + i * 0.001)
        m.ack(f"t{i}", uid(u), 1.0 + i * 0.001)
        if i % 100 == 0:
            m.check_invariants()
    assert len(m._dues) <= 2 + STALE_SLACK
    assert sent(m.on_timer(TIMER, 600.0)) == [m.pending("stuck")[0]]  # still resent on time


def test_duplicate_add_and_remove() -> None:
    m = StatusUpdateManager()
    a = status("t")
    m.add("f", a, 0.0)
    assert m.add("f", a, 0.0) == []
    assert m.pending("t") == (a,)
    assert m.remove("t") == [CancelTimer(TIMER)]
    assert m.remove("t") == [] and m.ack("t", uid(a), 1.0) == []


TASKS = ("t1", "t2", "t3")


class StatusMachine(RuleBasedStateMachine):
    """Model: per-task list of added statuses, count acked, and the due time and backoff of
    each head in flight; the manager (one timer for all retries) must agree."""

    def __init__(self) -> None:
        super().__init__()
        self.m = StatusUpdateManager(RetryPolicy(1.0, 8.0))
        self.now = 0.0
        self.added: dict[str, list[TaskStatus]] = {t: [] for t in TASKS}
        self.acked: dict[str, int] = {t: 0 for t in TASKS}
        self.delivered: dict[str, list[bytes]] = {t: [] for t in TASKS}  # distinct, in order
        self.timer: float | None = None  # when the manager's one timer fires
        self.due: dict[str, float] = {}  # heads in flight: when each is to be resent
        self.interval: dict[str, float] = {}
        self.all_uuids: list[bytes] = []

    def queue(self, t: str) -> list[TaskStatus]:
        return self.added[t][self.acked[t]:]

    def closed(self, t: str) -> bool:
        return any(ts.is_terminal(s.state) for s in self.added[t])

    def apply(self, effects: list, resent: bool = False) -> None:
        for e in effects:
            if isinstance(e, SetTimer):
                assert e.key == TIMER and e.at - self.now <= 8.0 + 1e-9
                self.timer = e.at
            elif isinstance(e, CancelTimer):
                assert e.key == TIMER
                self.timer = None
            elif isinstance(e, Send):
                st_ = e.msg.status
                t = st_.task_id
                assert not self.m.paused
                assert self.queue(t) and self.queue(t)[0] == st_, "only the unacked head is sent"
                d = self.delivered[t]
                if not d or d[-1] != st_.uuid:
                    d.append(st_.uuid)
                self.interval[t] = min(self.interval[t] * 2, 8.0) if resent else 1.0
                self.due[t] = self.now + self.interval[t]

    def acked_head(self, t: str, uuid: bytes) -> None:
        self.acked[t] += 1
        self.due.pop(t, None)
        self.apply(self.m.ack(t, uuid, self.now))

    @rule(t=st.sampled_from(TASKS), terminal=st.booleans())
    def add(self, t: str, terminal: bool) -> None:
        if self.closed(t):
            return
        s = status(t, ts.FINISHED if terminal else ts.RUNNING)
        self.all_uuids.append(uid(s))
        self.added[t].append(s)
        self.apply(self.m.add("f", s, self.now))

    @rule(t=st.sampled_from(TASKS))
    def ack_head(self, t: str) -> None:
        """The master acks what it received: the head, once delivered."""
        q = self.queue(t)
        if not q or q[0].uuid not in self.delivered[t]:
            return
        self.acked_head(t, uid(q[0]))

    @precondition(lambda self: self.all_uuids)
    @rule(t=st.sampled_from(TASKS), data=st.data())
    def ack_any(self, t: str, data: st.DataObject) -> None:
        uuid = data.draw(st.sampled_from(self.all_uuids))
        q = self.queue(t)
        if q and q[0].uuid == uuid:
            self.acked_head(t, uuid)
        else:
            assert self.m.ack(t, uuid, self.now) == []  # stale or duplicate: harmless

    @rule(on_time=st.booleans())
    def fire_timer(self, on_time: bool) -> None:
        """The timer fires at its time (or late), or a stray firing comes now: exactly the
        heads due by then are resent, each with its interval doubled."""
        if on_time and self.timer is not None:
            self.now = max(self.now, self.timer)
            self.timer = None
        due = sorted(t for t, at in self.due.items() if at <= self.now)
        effects = self.m.on_timer(TIMER, self.now)
        assert sorted(s.task_id for s in sent(effects)) == due
        self.apply(effects, resent=True)

    @rule(dt=st.floats(0, 20))
    def advance(self, dt: float) -> None:
        self.now += dt

    @rule()
    def pause(self) -> None:
        self.apply(self.m.pause())
        self.due.clear()
        assert self.timer is None

    @rule()
    def resend_all(self) -> None:
        effects = self.m.resend_all(self.now)
        assert sorted(uid(s) for s in sent(effects)) == sorted(
            uid(self.queue(t)[0]) for t in TASKS if self.queue(t))
        self.apply(effects)

    @invariant()
    def agrees_with_model(self) -> None:
        self.m.check_invariants()
        for t in TASKS:
            assert list(self.m.pending(t)) == self.queue(t), "nothing unacked is forgotten"
            order = [s.uuid for s in self.added[t]]
            positions = [order.index(u) for u in self.delivered[t]]
            assert positions == sorted(set(positions)), "delivered in order per task"
            if self.queue(t) and not self.m.paused:
                assert t in self.due, "an unacked head is in flight"
            if self.closed(t) and not self.queue(t):
                assert t not in self.m.task_ids(), "stream closed after terminal ack"
        if self.due:
            assert self.timer is not None and self.timer <= min(self.due.values()), \
                "the timer fires by the earliest head's due time"
        assert self.m.unacked() == [("f", s) for t in self.m.task_ids() for s in self.queue(t)]


TestStatusMachine = StatusMachine.TestCase
TestStatusMachine.settings = settings(max_examples=150, stateful_step_count=40, deadline=None)


def test_the_agent_flags_give_the_policy_and_refuse_a_bad_one(tmp_path, capsys,
                                                              monkeypatch) -> None:
    import pytest

    from mesos_agent.main import parse
    for k in ("MIN", "MAX"):  # the defaults, whatever this shell says
        monkeypatch.delenv(f"MESOS_STATUS_UPDATE_RETRY_INTERVAL_{k}", raising=False)
    base = ["--master=127.0.0.1:5050", f"--work_dir={tmp_path / 'w'}"]
    assert parse(base)[1].status_retry == RetryPolicy(10.0, 600.0)
    assert parse([*base, "--status_update_retry_interval_min=500ms",
                  "--status_update_retry_interval_max=5secs"])[1].status_retry == \
        RetryPolicy(0.5, 5.0)
    with pytest.raises(SystemExit) as e:
        parse([*base, "--status_update_retry_interval_min=2mins",
               "--status_update_retry_interval_max=1mins"])
    assert e.value.code == 2
    assert "--status_update_retry_interval_min must be" in capsys.readouterr().err
    monkeypatch.setenv("MESOS_STATUS_UPDATE_RETRY_INTERVAL_MIN", "3secs")  # as every flag
    assert parse(base)[1].status_retry == RetryPolicy(3.0, 600.0)
