"""The asyncio driver runtime with a fake upstream: callback isolation, ack ordering,
thread-safe commands, re-detection, teardown. No sockets, no master."""
from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from typing import Any

import pytest

from frameworks.scheduler import (
    DRIVER_ABORTED,
    DRIVER_STOPPED,
    AsyncSchedulerDriver,
    Scheduler,
    SchedulerDriver,
)
from mesos_common import messages as m
from mesos_common.leader import DetectError, MasterInfo
from mesos_common.resources import Resources
from tests.helpers import wait_for as wait_until
from tests.helpers import wait_for_async

INFO = MasterInfo("m1", "localhost", "127.0.0.1", 5050, "tcp://127.0.0.1:5049", "0.1")
OFFER = m.Offer("o1", "fw-1", "a1", "h1", Resources.parse("cpus:1;mem:128"))
UUID = b"u" * 16


class FakeUpstream:
    """Stands in for the DEALER: records sends; `push` delivers from any thread."""

    def __init__(self) -> None:
        self.sent: list[Any] = []
        self.endpoints: list[str] = []
        self.closed: float | None = None
        self._inbox: asyncio.Queue[Any] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self.ready = threading.Event()

    def connect(self, endpoint: str, curve_key: str | None = None) -> None:
        self.endpoints.append(endpoint)

    async def recv(self) -> Any:
        if self._inbox is None:
            self._inbox, self._loop = asyncio.Queue(), asyncio.get_running_loop()
            self.ready.set()
        return await self._inbox.get()

    def push(self, msg: Any) -> None:
        self.ready.wait(5)
        assert self._loop is not None and self._inbox is not None
        self._loop.call_soon_threadsafe(self._inbox.put_nowait, msg)

    def send(self, msg: Any) -> bool:
        self.sent.append(msg)
        return True

    async def wait_ready(self, timeout: float) -> bool:
        return True

    def close(self, linger: float = 0.0) -> None:
        self.closed = linger

    def of(self, cls: type) -> list[Any]:
        return [x for x in list(self.sent) if isinstance(x, cls)]


def make_detect(calls: list[str], fail_first: int = 0) -> Callable[[str], Any]:
    async def detect(spec: str) -> MasterInfo:
        calls.append(spec)
        if len(calls) <= fail_first:
            raise DetectError("nobody home")
        return INFO
    return detect


def test_async_driver_isolates_callback_errors_and_acks_after_callback(
        caplog: pytest.LogCaptureFixture) -> None:
    asyncio.run(_async_driver_scenario(caplog))


async def _async_driver_scenario(caplog: pytest.LogCaptureFixture) -> None:
    up = FakeUpstream()
    seen: dict[str, Any] = {}

    class Sched(Scheduler):
        def resource_offers(self, driver: Any, offers: list) -> None:
            raise RuntimeError("boom in resource_offers")

        # The async driver awaits a coroutine callback; Scheduler's annotation says None.
        async def status_update(  # type: ignore[override]
                self, driver: Any, status: m.TaskStatus) -> None:
            seen["acks_at_call"] = len(up.of(m.Acknowledge))
            await asyncio.sleep(0.05)
            seen["acks_before_return"] = len(up.of(m.Acknowledge))

    driver = AsyncSchedulerDriver(Sched(), "fw", "localhost:5050", detect=make_detect([]),
                                  upstream_factory=lambda: up)
    await driver.start()
    await wait_for_async(lambda: up.of(m.Subscribe))
    up.push(m.Subscribed("fw-1", "m1", 30.0))
    up.push(m.Offers((OFFER,)))
    up.push(m.Update(m.TaskStatus("t1", "TASK_RUNNING", agent_id="a1", uuid=UUID)))
    await wait_for_async(lambda: up.of(m.Acknowledge))
    assert seen == {"acks_at_call": 0, "acks_before_return": 0}
    assert up.of(m.Acknowledge) == [m.Acknowledge("fw-1", "a1", "t1", UUID)]
    assert "boom in resource_offers" in caplog.text and "Traceback" in caplog.text
    assert driver.framework_id == "fw-1"
    assert await driver.stop() == DRIVER_STOPPED
    assert up.sent[-1] == m.Teardown("fw-1") and up.closed == 1.0


def test_threaded_driver_commands_from_callbacks_and_other_threads() -> None:
    up = FakeUpstream()
    threads: set[str] = set()
    statuses: list[str] = []

    class Sched(Scheduler):
        def registered(self, driver: Any, framework_id: str, master_info: dict) -> None:
            threads.add(threading.current_thread().name)
            assert master_info["zmq_endpoint"] == INFO.zmq_endpoint and master_info["id"] == "m1"

        def resource_offers(self, driver: Any, offers: list) -> None:
            driver.decline_offer(offers, refuse_seconds=7)

        def status_update(self, driver: Any, status: m.TaskStatus) -> None:
            statuses.append(status.task_id)
            if status.task_id == "bad":
                raise ValueError("user bug")

    driver = SchedulerDriver(Sched(), m.FrameworkInfo(name="fw"), "localhost:5050",
                             detect=make_detect([]), upstream_factory=lambda: up)
    try:
        driver.start()
        wait_until(lambda: up.of(m.Subscribe))
        up.push(m.Subscribed("fw-1", "m1", 30.0))
        wait_until(lambda: driver.framework_id == "fw-1")
        up.push(m.Offers((OFFER,)))
        wait_until(lambda: up.of(m.Decline))
        assert up.of(m.Decline) == [m.Decline("fw-1", ("o1",), 7)]
        up.push(m.Update(m.TaskStatus("bad", "TASK_RUNNING", agent_id="a1", uuid=UUID)))
        up.push(m.Update(m.TaskStatus("good", "TASK_RUNNING", agent_id="a1", uuid=UUID)))
        wait_until(lambda: len(up.of(m.Acknowledge)) == 2)
        assert statuses == ["bad", "good"]
        driver.kill_task("t9", "a1")
        driver.reconcile_tasks(["t1", m.TaskStatus("t2", "TASK_RUNNING", agent_id="a2")])
        driver.suppress_offers(["r"])
        driver.revive_offers()
        wait_until(lambda: up.of(m.Revive))
        assert up.of(m.Kill) == [m.Kill("fw-1", "t9", "a1")]
        assert up.of(m.Reconcile) == [m.Reconcile("fw-1", (
            m.ReconcileTask("t1"), m.ReconcileTask("t2", "a2")))]
        assert up.of(m.Suppress) == [m.Suppress("fw-1", ("r",))]
        assert threads == {"scheduler-driver"}
    finally:
        status = driver.stop(failover=True)
    assert status == DRIVER_STOPPED
    assert not up.of(m.Teardown) and up.closed == 0.0


def test_silent_master_triggers_disconnected_and_resubscribe_with_id() -> None:
    up = FakeUpstream()
    calls: list[str] = []
    events: list[str] = []

    class Sched(Scheduler):
        def registered(self, driver: Any, framework_id: str, master_info: dict) -> None:
            events.append("registered")

        def reregistered(self, driver: Any, master_info: dict) -> None:
            events.append("reregistered")

        def disconnected(self, driver: Any) -> None:
            events.append("disconnected")

    driver = SchedulerDriver(Sched(), "fw", "localhost:5050", detect=make_detect(calls, 1),
                             upstream_factory=lambda: up, detect_backoff=(0.01, 0.02))
    try:
        driver.start()
        wait_until(lambda: up.of(m.Subscribe))
        assert len(calls) == 2  # the first detection failed and was retried
        up.push(m.Subscribed("fw-1", "m1", 0.05))
        wait_until(lambda: len(up.of(m.Heartbeat)) >= 2)
        # now stay silent: after 3 intervals the driver gives up on this master
        wait_until(lambda: len(up.of(m.Subscribe)) == 2)
        assert up.of(m.Subscribe)[1].framework_info.id == "fw-1"
        assert len(calls) == 3
        up.push(m.Subscribed("fw-1", "m2", 30.0))
        wait_until(lambda: events == ["registered", "disconnected", "reregistered"])
    finally:
        driver.stop()


def test_error_from_master_aborts_the_driver() -> None:
    up = FakeUpstream()
    errors: list[str] = []

    class Sched(Scheduler):
        def error(self, driver: Any, message: str) -> None:
            errors.append(message)

    driver = SchedulerDriver(Sched(), "fw", "localhost:5050", detect=make_detect([]),
                             upstream_factory=lambda: up)
    driver.start()
    wait_until(lambda: up.of(m.Subscribe))
    up.push(m.Error("framework has been removed"))
    assert driver.join(5) == DRIVER_ABORTED
    assert errors == ["framework has been removed"]


def test_launch_before_subscription_reports_lost_and_join_inside_callback_fails() -> None:
    up = FakeUpstream()
    got: list[tuple[str, str | None]] = []
    join_error: list[Exception] = []

    class Sched(Scheduler):
        def status_update(self, driver: Any, status: m.TaskStatus) -> None:
            got.append((status.state, status.reason))
            try:
                driver.join()
            except RuntimeError as e:
                join_error.append(e)

    task = m.TaskInfo(name="t", task_id="t", agent_id="a1",
                      resources=Resources.parse("cpus:0.1"), command=m.CommandInfo("true"))
    driver = SchedulerDriver(Sched(), "fw", "localhost:5050", detect=make_detect([], 10**6),
                             upstream_factory=lambda: up, detect_backoff=(0.05, 0.05))
    try:
        driver.start()
        driver.launch_tasks("o1", task)
        wait_until(lambda: got)
        assert got == [("TASK_LOST", "REASON_MASTER_DISCONNECTED")] and join_error
        assert not up.sent
    finally:
        assert driver.stop() == DRIVER_STOPPED


def test_bad_master_address_fails_at_construction() -> None:
    with pytest.raises(DetectError):
        SchedulerDriver(Scheduler(), "fw", "not-an-address")


def test_batch_done_runs_before_a_bursts_sends_and_a_failed_one_withholds_acks() -> None:
    asyncio.run(_batch_scenario())


async def _batch_scenario() -> None:
    up = FakeUpstream()
    log: list[tuple[str, int]] = []
    fail = {"now": False}

    class Sched(Scheduler):
        def status_update(self, driver: Any, status: m.TaskStatus) -> None:
            log.append(("update", len(up.of(m.Acknowledge))))
            driver.kill_task("other", "a1")

        async def batch_done(self, driver: Any) -> None:
            log.append(("batch", len(up.of(m.Acknowledge))))
            await asyncio.sleep(0.01)  # a commit in a worker thread
            if fail["now"]:
                raise OSError("disk full")

    driver = AsyncSchedulerDriver(Sched(), "fw", "localhost:5050", detect=make_detect([]),
                                  upstream_factory=lambda: up)
    await driver.start()
    await wait_for_async(lambda: up.of(m.Subscribe))
    up.push(m.Subscribed("fw-1", "m1", 30.0))
    for i in range(3):
        up.push(m.Update(m.TaskStatus(f"t{i}", "TASK_RUNNING", agent_id="a1", uuid=UUID)))
    await wait_for_async(lambda: len(up.of(m.Acknowledge)) == 3 and len(up.of(m.Kill)) == 3)
    # no update was acknowledged before a batch_done that followed it had returned
    updates = [i for i, (what, _) in enumerate(log) if what == "update"]
    for n_acked in range(1, 4):
        first_sent = next(i for i, (what, acks) in enumerate(log) if acks >= n_acked)
        assert any(log[j][0] == "batch" for j in range(updates[n_acked - 1], first_sent))
    fail["now"] = True
    up.push(m.Update(m.TaskStatus("t9", "TASK_RUNNING", agent_id="a1", uuid=UUID)))
    await wait_for_async(lambda: len(up.of(m.Kill)) == 4)  # the rest still goes out
    await asyncio.sleep(0.05)
    assert [a.task_id for a in up.of(m.Acknowledge)] == ["t0", "t1", "t2"]  # not t9
    assert await driver.stop() == DRIVER_STOPPED
