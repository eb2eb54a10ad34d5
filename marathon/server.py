"""Marathon's runtime: the store, the driver, the event bus and the clock around the core.

`MarathonServer` feeds `MarathonCore.handle` (the API's commands, the SDK driver's
callbacks, ticks, probe results) and performs the effects it returns; an effect it does not
know is a bug and raises. The commit contract: every change is durable before anyone hears
of it. API answers wait for `flush_async` (marathon/http/base.py); the SDK driver sends a
burst's acknowledgements, launches and kills only after `batch_done` committed it. In the
daemon (`deferred`), the disk write runs in a worker thread, commits serialised by a lock,
so the loop serves the API meanwhile.
"""
from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Callable, Iterable
from typing import Any

from marathon import core_events as ev
from marathon import queries
from marathon.core import MarathonCore
from marathon.core_base import DIRTY_TICK_INTERVAL
from marathon.core_state import Deployment, MarathonState, Options
from marathon.events import EventBus
from marathon.store import Store
from mesos_common import messages as m
from mesos_common.runtime import Performers

log = logging.getLogger("marathon.server")

__all__ = ["MarathonServer", "Options"]


class MarathonServer:
    def __init__(self, store: Store, options: Options | None = None,
                 clock: Callable[[], float] = time.time,
                 new_uuid: Callable[[], uuid.UUID] = uuid.uuid1,
                 work_clock: Callable[[], float] = time.perf_counter) -> None:
        self.store = store
        self.options = options or Options()
        self.clock = clock
        self.work_clock = work_clock  # what our own flushes cost (they space dirty ticks)
        self.state = MarathonState.from_store(store.load, clock())
        self.core = MarathonCore(self.state, self.options, new_uuid)
        self.events = EventBus(clock, on_streams=self._streams)
        self.driver: Any = None
        self.on_backlog: Callable[[], None] | None = None
        self.leader = f"{self.options.hostname}:{self.options.http_port}"
        self._commit_lock = asyncio.Lock()
        self._writing: asyncio.Future[None] | None = None
        self._perform = Performers({
            ev.Launch: lambda e: self._to_driver("launch_tasks", e.offer_id, list(e.tasks)),
            ev.Decline: lambda e: self._to_driver("decline_offer", e.offer_id, e.refuse_seconds),
            ev.Kill: lambda e: self._to_driver("kill_task", e.task_id, e.agent_id),
            ev.AcceptInverseOffers: lambda e: self._to_driver("accept_inverse_offers",
                                                              list(e.inverse_offer_ids)),
            ev.Revive: lambda e: self._to_driver("revive_offers"),
            ev.Suppress: lambda e: self._to_driver("suppress_offers"),
            ev.Reconcile: lambda e: self._to_driver("reconcile_tasks", list(e.tasks)),
            ev.Put: lambda e: self.store.put(e.kind, e.key, e.doc),
            ev.PutAll: self._put_all,
            ev.Delete: lambda e: self.store.delete(e.kind, e.key),
            ev.Commit: lambda e: self.store.commit(),
            ev.Publish: lambda e: self.events.publish(e.event_type, **e.payload),
            ev.WakePump: lambda e: self.on_backlog() if self.on_backlog else None,
            ev.Reply: lambda e: None,
        })

    @property
    def deferred(self) -> bool:
        return self.core.deferred

    @deferred.setter
    def deferred(self, value: bool) -> None:
        self.core.deferred = value

    def now(self) -> float:
        return self.clock()

    # ------------------------------------------------------------ feeding the core

    def handle(self, event: Any) -> list[Any]:
        effects = self.core.handle(event, self.clock())
        self.perform(effects)
        return effects

    def perform(self, effects: Iterable[Any]) -> None:
        self._perform.perform(effects)

    def _put_all(self, e: ev.PutAll) -> None:
        put, kind = self.store.put, e.kind
        for key, doc in e.docs.items():
            put(kind, key, doc)

    def _to_driver(self, method: str, *args: Any) -> None:
        if self.driver is not None:
            getattr(self.driver, method)(*args)

    def command(self, event: Any) -> Any:
        """An API command: its reply's value, or the error that refused it."""
        effects = self.handle(event)
        reply = effects[-1]
        assert isinstance(reply, ev.Reply), reply
        if reply.error is not None:
            raise reply.error
        return reply.value

    def _streams(self, count: int) -> None:
        self.handle(ev.Streams(count))

    def tick(self, only: Iterable[str] | None = None) -> None:
        self.handle(ev.Tick(None if only is None else frozenset(only)))

    def place_backlog(self, stop: Callable[[], bool]) -> bool:
        """Match backlog offers one at a time until `stop()`; True when some are left."""
        while self.state.offer_backlog and not stop():
            self.handle(ev.PlaceBacklog())
        return bool(self.state.offer_backlog)

    def health_result(self, task_id: str, index: int, alive: bool, cause: str) -> None:
        self.handle(ev.HealthResult(task_id, index, alive, cause))

    def readiness_result(self, task_id: str, ready: bool, result: dict[str, Any]) -> None:
        self.handle(ev.ReadinessResult(task_id, ready, result))

    # ------------------------------------------------------------ the API's commands

    def create_app(self, raw: Any, force: bool = False) -> tuple[dict[str, Any], Deployment]:
        return self.command(ev.CreateApp(raw, force))

    def update_app(self, app_id: str, raw: Any, force: bool = False,
                   partial: bool = True) -> tuple[bool, Deployment]:
        return self.command(ev.UpdateApp(app_id, raw, force, partial))

    def update_apps(self, raws: Any, force: bool = False, partial: bool = True) -> Deployment:
        return self.command(ev.UpdateApps(raws, force, partial))

    def delete_app(self, app_id: str, force: bool = False) -> Deployment:
        return self.command(ev.DeleteApp(app_id, force))

    def restart_app(self, app_id: str, force: bool = False) -> Deployment:
        return self.command(ev.RestartApp(app_id, force))

    def scale_app(self, app_id: str, instances: int, force: bool = False) -> Deployment:
        return self.command(ev.ScaleApp(app_id, instances, force))

    def kill_tasks(self, ids: Iterable[str], scale: bool = False, force: bool = False
                   ) -> tuple[list[Any], Deployment | None]:
        return self.command(ev.KillTasks(tuple(ids), scale, force))

    def cancel_deployment(self, dep_id: str, force: bool = False) -> Deployment | None:
        return self.command(ev.CancelDeployment(dep_id, force))

    def reset_delay(self, app_id: str) -> None:
        self.command(ev.ResetDelay(app_id))

    def create_group(self, gid: str, raw: Any, force: bool = False) -> Deployment:
        return self.command(ev.CreateGroup(gid, raw, force))

    def update_group(self, gid: str, raw: Any, force: bool = False) -> Deployment:
        return self.command(ev.UpdateGroup(gid, raw, force))

    def dry_run(self, gid: str, raw: Any) -> list[dict[str, Any]]:
        return self.command(ev.DryRun(gid, raw))

    def delete_group(self, gid: str, force: bool = False) -> Deployment:
        return self.command(ev.DeleteGroup(gid, force))

    def add_subscription(self, url: str) -> None:
        self.command(ev.Subscribe(url))

    def remove_subscription(self, url: str) -> None:
        self.command(ev.Unsubscribe(url))

    def queue(self, embed_offers: bool) -> list[dict[str, Any]]:
        return queries.queue(self.state, self.clock(), embed_offers)

    # ------------------------------------------------------------ commits

    def commit(self) -> None:
        """Make every change so far durable, driving nobody (the term's last write)."""
        self.perform(self._flushed(drive=False))

    def flush(self) -> None:
        """Drive the apps whose tasks changed since the last flush, then commit."""
        self.perform(self._flushed())

    def _flushed(self, drive: bool = True) -> list[Any]:
        """The core's Flush, timed: a costly one spaces the next dirty-app ticks."""
        spent = self.work_clock()
        effects = self.core.handle(ev.Flush(drive), self.clock())
        spent = self.work_clock() - spent
        if 10 * spent > DIRTY_TICK_INTERVAL:
            self.handle(ev.FlushCost(spent))
        return effects

    async def flush_async(self) -> None:
        """`flush` for the daemon: the disk write runs in a worker thread; commits are
        serialised, and one that returns covers every change made before it was called."""
        if not self.deferred or not getattr(self.store, "write_in_thread", False):
            self.flush()
            return
        effects = self._flushed()
        assert isinstance(effects[-1], ev.Commit), effects[-1]
        self.perform(effects[:-1])  # writes staged; the Commit is the threaded write below
        async with self._commit_lock:
            batch = self.store.take()  # type: ignore[attr-defined]
            if batch:  # shielded: a cancelled caller must not leave a write half-known
                self._writing = asyncio.ensure_future(
                    asyncio.to_thread(self.store.write, batch))  # type: ignore[attr-defined]
                await asyncio.shield(self._writing)

    async def close_async(self) -> None:
        """Wait for a write in flight (its caller may have been cancelled), commit the rest."""
        if self._writing is not None:
            try:
                await self._writing
            except Exception:
                log.exception("state write failed")
        self.commit()

    # ------------------------------------------------------------ the SDK driver's callbacks

    async def batch_done(self, driver: Any) -> None:
        """After a burst of callbacks, before its acks and launches are sent."""
        await self.flush_async()

    def registered(self, driver: Any, framework_id: str, master_info: dict[str, Any]) -> None:
        self.handle(ev.Registered(framework_id, master_info))

    def reregistered(self, driver: Any, master_info: dict[str, Any]) -> None:
        self.handle(ev.Reregistered(master_info))

    def resource_offers(self, driver: Any, offers: list[m.Offer]) -> None:
        self.handle(ev.Offers(tuple(offers)))

    def inverse_offers(self, driver: Any, inverse_offers: list[m.InverseOffer]) -> None:
        self.handle(ev.InverseOffers(tuple(inverse_offers)))

    def offer_rescinded(self, driver: Any, offer_id: str) -> None:
        self.handle(ev.OfferRescinded(offer_id))

    def status_update(self, driver: Any, status: m.TaskStatus) -> None:
        self.handle(ev.StatusUpdate(status))

    def disconnected(self, driver: Any) -> None:
        self.handle(ev.Disconnected())

    def agent_lost(self, driver: Any, agent_id: str) -> None:
        log.warning("agent %s lost", agent_id)

    def error(self, driver: Any, message: str) -> None:
        log.error("framework error from the master: %s", message)

    def framework_info(self) -> m.FrameworkInfo:
        return framework_info(self.options, self.state.framework_id)


def framework_info(options: Options, framework_id: str | None) -> m.FrameworkInfo:
    """How Marathon subscribes: checkpointing, partition-aware, GPU-capable, in its role,
    with its stored id if any."""
    return m.FrameworkInfo(name=options.framework_name, id=framework_id,
                           failover_timeout=options.failover_timeout,
                           hostname=options.hostname, checkpoint=True,
                           roles=(options.mesos_role,), user=options.mesos_user,
                           capabilities=("PARTITION_AWARE", "GPU_RESOURCES"))
