"""`marathon --master HOST:PORT --http_port 8080 --work_dir DIR`: the Marathon daemon.

One asyncio loop runs the HTTP API, the scheduler driver, the control tick and the health
checker in a TaskGroup. SIGTERM/SIGINT stop it with a framework *failover* (tasks keep
running, and a restarted Marathon re-subscribes with the stored framework id).
"""
from __future__ import annotations

import asyncio
import gc
import logging
import signal
import sys
from pathlib import Path
from typing import Sequence

from aiohttp import web

from frameworks.driver import AsyncSchedulerDriver
from mesos_common.flags import FlagParser, duration, port, setup_logging
from marathon.api import make_app
from marathon.health import HealthChecker
from marathon.service import MarathonService, Options
from marathon.store import MemoryStore, SQLiteStore, Store
from marathon.subscribers import deliver

log = logging.getLogger("marathon")


def build_parser() -> FlagParser:
    p = FlagParser("marathon", "Marathon-compatible framework on Corral (v2 REST API).",
                   env_prefix="MARATHON_")
    p.add_flag("master", default=None, help="master HOST:PORT[,HOST:PORT] (zk:// with HA)")
    p.add_flag("zk", default=None, help="zk://host:port/path for state and leader election")
    p.add_flag("http_address", default="127.0.0.1", help="address the API listens on")
    p.add_flag("http_port", type=port, default=8080, help="API port (0: a free port)")
    p.add_flag("hostname", default=None, help="advertised hostname (default: http_address)")
    p.add_flag("work_dir", default=None, help="SQLite state dir (default: in memory only)")
    p.add_flag("framework_name", default="marathon", help="framework name")
    p.add_flag("failover_timeout", type=duration, default=7 * 86400.0,
               help="how long the master keeps our tasks while Marathon is away")
    p.add_flag("scale_apps_interval", type=duration, default=1.0,
               help="period of the control tick")
    p.add_flag("decline_offer_duration", type=duration, default=5.0,
               help="refuse filter for declined offers")
    return p


def open_store(work_dir: str | None) -> Store:
    if not work_dir:
        log.warning("no --work_dir: state is kept in memory and lost on restart")
        return MemoryStore()
    return SQLiteStore(Path(work_dir) / "marathon.db")


async def _ticker(svc: MarathonService, interval: float) -> None:
    frozen_at = len(svc.tasks)
    while True:
        await asyncio.sleep(interval)
        try:
            svc.tick()
            await svc.flush_async()
        except Exception:  # our bug; logged loudly, the daemon keeps serving
            log.exception("control tick failed")
        if len(svc.tasks) > max(1000, frozen_at * 5 // 4):
            gc.freeze()  # the new records too: full collections stay short (see _tune_gc)
            frozen_at = len(svc.tasks)


async def _offer_pump(svc: MarathonService, wake: asyncio.Event,
                      budget: float = 0.005) -> None:
    """Match the offer backlog in slices of `budget` seconds, yielding in between."""
    loop = asyncio.get_running_loop()
    while True:
        await wake.wait()
        wake.clear()
        more = True
        while more:
            deadline = loop.time() + budget
            try:
                more = svc.place_backlog(lambda: loop.time() >= deadline)
            except Exception:  # our bug; logged loudly, the offers time out on the master
                log.exception("offer matching failed")
                svc.offer_backlog.clear()
                more = False
            await asyncio.sleep(0)


def _tune_gc() -> None:
    """Tens of thousands of long-lived task records make the collector's full passes take
    100+ ms, each one a stall of the API; they are rarely garbage (no cycles), so collect
    much less often and leave what exists at start-up out of it."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(10_000, 50, 100)


async def serve(ns, store: Store) -> None:
    hostname = ns.hostname or ns.http_address
    svc = MarathonService(store, Options(
        master=ns.master, hostname=hostname, http_port=ns.http_port,
        framework_name=ns.framework_name, failover_timeout=ns.failover_timeout,
        tick_interval=ns.scale_apps_interval, decline_seconds=ns.decline_offer_duration))
    _tune_gc()  # after loading the store: its records are left out of collections
    runner = web.AppRunner(make_app(svc), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, ns.http_address, ns.http_port)
    await site.start()
    bound = runner.addresses[0][1]
    svc.options.http_port = bound
    svc.leader = f"{hostname}:{bound}"
    driver = AsyncSchedulerDriver(svc, svc.framework_info(), ns.master)
    svc.driver = driver
    svc.deferred = True  # the driver calls svc.batch_done after each burst of callbacks
    offers_waiting = asyncio.Event()
    svc.on_backlog = offers_waiting.set
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    print(f"marathon: listening http=http://{ns.http_address}:{bound}", flush=True)
    try:
        async with asyncio.TaskGroup() as tg:
            await driver.start()
            workers = [tg.create_task(_ticker(svc, ns.scale_apps_interval)),
                       tg.create_task(HealthChecker(svc).run()),
                       tg.create_task(deliver(svc)),
                       tg.create_task(_offer_pump(svc, offers_waiting))]
            await stop.wait()
            for w in workers:
                w.cancel()
    finally:
        await driver.stop(failover=True)
        await runner.cleanup()
        try:
            await svc.close_async()
        finally:
            store.close()


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    ns = parser.parse(argv)
    if not ns.master:
        parser.error("--master is required")
    if ns.zk or ns.master.startswith("zk://"):
        parser.error("ZooKeeper (--zk, zk:// masters) is not supported yet")
    setup_logging(ns.log_level, "marathon")
    try:
        store = open_store(ns.work_dir)
        asyncio.run(serve(ns, store))
    except OSError as e:
        sys.stderr.write(f"marathon: error: {e}\n")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
