"""The Python scheduler SDK: `Scheduler` callbacks and the threaded `SchedulerDriver`.

Shaped like pymesos (and the Mesos C++ driver) so frameworks port over easily, with two
deliberate differences: callback and method names are snake_case, and ids, offers and
statuses are the attrs records of `mesos_common.messages` (plain-string ids), not dicts.

    class Hello(Scheduler):
        def resource_offers(self, driver, offers):
            for offer in offers:
                driver.launch_tasks(offer.id, [make_task("t1", offer, "echo hi", 0.1, 32)])

    SchedulerDriver(Hello(), "hello", "127.0.0.1:5050").run()

`SchedulerDriver` runs an `AsyncSchedulerDriver` on an asyncio loop in a background thread;
callbacks run on that thread, one at a time. Every driver method may be called from any
thread, including from inside a callback (it only enqueues a command).
"""
from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterable
from typing import Any

from frameworks.driver import (
    DRIVER_ABORTED,
    DRIVER_NOT_STARTED,
    DRIVER_RUNNING,
    DRIVER_STOPPED,
    AsyncSchedulerDriver,
    OfferIds,
)
from frameworks.tasks import ResourcesLeft, make_task
from mesos_common import messages as m

__all__ = [
    "DRIVER_ABORTED", "DRIVER_NOT_STARTED", "DRIVER_RUNNING", "DRIVER_STOPPED",
    "AsyncSchedulerDriver", "ResourcesLeft", "Scheduler", "SchedulerDriver", "make_task",
]


class Scheduler:
    """Override what you need; every callback defaults to doing nothing.

    `driver` is the driver that called (threaded or async). With `AsyncSchedulerDriver`
    a callback may also be a coroutine; it is awaited before the next event is handled.
    """

    def registered(self, driver: Any, framework_id: str, master_info: dict[str, Any]) -> None:
        """First subscription: the master assigned `framework_id`."""

    def reregistered(self, driver: Any, master_info: dict[str, Any]) -> None:
        """Subscribed again (new master, or failover with a known id): outstanding offers
        are void; reconcile your tasks."""

    def disconnected(self, driver: Any) -> None:
        """The master went away; the driver is re-detecting and will re-subscribe."""

    def resource_offers(self, driver: Any, offers: list[m.Offer]) -> None:
        """Launch on or decline each offer (unanswered offers stay held until rescinded)."""

    def inverse_offers(self, driver: Any, inverse_offers: list[m.InverseOffer]) -> None:
        """The master wants these agents back by each one's `start` (maintenance or a
        drain): move the tasks there, then accept (or decline) with the driver."""

    def offer_rescinded(self, driver: Any, offer_id: str) -> None:
        """The offer is no longer valid; launching on it yields TASK_LOST."""

    def status_update(self, driver: Any, status: m.TaskStatus) -> None:
        """A task changed state; with implicit acknowledgements it is acked on return."""

    def framework_message(self, driver: Any, executor_id: str, agent_id: str,
                          data: bytes) -> None:
        """A message from one of the framework's custom executors."""

    def executor_lost(self, driver: Any, executor_id: str, agent_id: str, status: int) -> None:
        """A custom executor ended (`status`: its wait status); its unfinished tasks get
        their own TASK_FAILED / TASK_KILLED updates."""

    def agent_lost(self, driver: Any, agent_id: str) -> None:
        """The agent is gone; its tasks get their own status updates."""

    def error(self, driver: Any, message: str) -> None:
        """A fatal error from the master (e.g. the framework was torn down); the driver
        has stopped with DRIVER_ABORTED."""


class SchedulerDriver:
    """Blocking driver for threaded programs: `run()`, or `start()` ... `join()`."""

    def __init__(self, scheduler: Scheduler, framework_info_or_name: m.FrameworkInfo | str,
                 master: str, implicit_acknowledgements: bool = True,
                 **options: Any) -> None:
        self._async = AsyncSchedulerDriver(scheduler, framework_info_or_name, master,
                                           implicit_acknowledgements, callback_driver=self,
                                           **options)
        self._thread: threading.Thread | None = None
        self._started = threading.Event()
        self._start_error: BaseException | None = None

    @property
    def framework_id(self) -> str | None:
        return self._async.framework_id

    @property
    def status(self) -> str:
        return self._async.status

    def start(self) -> str:
        """Start the driver thread; returns DRIVER_RUNNING once it is going."""
        if self._thread is not None:
            raise RuntimeError("driver already started")
        self._thread = threading.Thread(target=self._thread_main, name="scheduler-driver",
                                        daemon=True)
        self._thread.start()
        self._started.wait()
        if self._start_error is not None:
            raise self._start_error
        return self.status

    def join(self, timeout: float | None = None) -> str:
        """Block until the driver stops or aborts (or `timeout`); returns the status."""
        if self._on_driver_thread():
            raise RuntimeError("join() from a scheduler callback would wait forever")
        if self._thread is not None:
            self._thread.join(timeout)
        return self.status

    def run(self) -> str:
        self.start()
        return self.join()

    def stop(self, failover: bool = False, timeout: float | None = 10.0) -> str:
        """Without failover: tear the framework down (the master kills its tasks). With
        failover: just disconnect, so a new driver can re-subscribe with the same id.
        From a callback it returns at once; otherwise it waits for the driver to end."""
        self._async.request_stop(failover)
        return self.status if self._on_driver_thread() else self.join(timeout)

    def abort(self, timeout: float | None = 10.0) -> str:
        self._async.request_abort()
        return self.status if self._on_driver_thread() else self.join(timeout)

    # ------------------------------------------------------------ commands

    def launch_tasks(self, offer_ids: OfferIds, tasks: m.TaskInfo | Iterable[m.TaskInfo],
                     refuse_seconds: float | None = None) -> None:
        self._async.launch_tasks(offer_ids, tasks, refuse_seconds)

    def accept_offers(self, offer_ids: OfferIds, operations: Iterable[m.Operation],
                      refuse_seconds: float | None = None) -> None:
        """Accept with operations run in order: `reserve(...)`, `unreserve(...)` and
        `launch(...)` of frameworks.tasks build them."""
        self._async.accept_offers(offer_ids, operations, refuse_seconds)

    def decline_offer(self, offer_ids: OfferIds, refuse_seconds: float | None = None) -> None:
        self._async.decline_offer(offer_ids, refuse_seconds)

    def kill_task(self, task_id: str, agent_id: str | None = None) -> None:
        self._async.kill_task(task_id, agent_id)

    def accept_inverse_offers(self, inverse_offer_ids: OfferIds) -> None:
        self._async.accept_inverse_offers(inverse_offer_ids)

    def decline_inverse_offers(self, inverse_offer_ids: OfferIds) -> None:
        self._async.decline_inverse_offers(inverse_offer_ids)

    def acknowledge_status_update(self, status: m.TaskStatus) -> None:
        self._async.acknowledge_status_update(status)

    def send_framework_message(self, executor_id: str, agent_id: str, data: bytes) -> None:
        self._async.send_framework_message(executor_id, agent_id, data)

    def shutdown_executor(self, executor_id: str, agent_id: str) -> None:
        self._async.shutdown_executor(executor_id, agent_id)

    def reconcile_tasks(self, statuses_or_ids: Iterable[Any] = ()) -> None:
        self._async.reconcile_tasks(statuses_or_ids)

    def revive_offers(self, roles: Iterable[str] = ()) -> None:
        self._async.revive_offers(roles)

    def suppress_offers(self, roles: Iterable[str] = ()) -> None:
        self._async.suppress_offers(roles)

    # ------------------------------------------------------------ internals

    def _on_driver_thread(self) -> bool:
        return threading.current_thread() is self._thread

    def _thread_main(self) -> None:
        try:
            asyncio.run(self._main())
        except BaseException as e:  # surfaced to start(); logged by the driver otherwise
            if not self._started.is_set():
                self._start_error = e
        finally:
            self._started.set()

    async def _main(self) -> None:
        await self._async.start()
        self._started.set()
        await self._async.join()
