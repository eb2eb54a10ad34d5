"""`marathon --master HOST:PORT|zk://... [--zk zk://h:p,.../marathon] --http_port 8080
[--work_dir DIR]`: the Marathon daemon.

One asyncio loop runs the HTTP front (marathon/proxy.py) and the node's leadership terms
(marathon/leadership.py). Only a leader runs the scheduler driver, the control tick, the
health and readiness checkers and the callback poster, from state recovered out of the
store (SQLite or memory embedded, ZooKeeper with `--zk`). SIGTERM/SIGINT stop it with a
framework *failover* (tasks keep running, and the next leader re-subscribes with the stored
framework id).
"""
from __future__ import annotations

import asyncio
import getpass
import logging
import os
import signal
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

import attrs
from aiohttp import web

from frameworks.driver import AsyncSchedulerDriver
from marathon.core_events import ForgetOffers
from marathon.health import HealthChecker
from marathon.leadership import Node
from marathon.proxy import end_streams, make_front
from marathon.readiness import ReadinessChecker
from marathon.server import MarathonServer, Options
from marathon.store import MemoryStore, SQLiteStore, Store
from marathon.store_zk import ZkStore
from marathon.subscribers import deliver
from mesos_common.auth.flags import (
    add_marathon_http_flags,
    add_marathon_mesos_auth_flags,
    marathon_driver_security,
    marathon_http_auth,
)
from mesos_common.flags import FlagParser, duration, port, setup_logging
from mesos_common.gc_policy import GcPolicy
from mesos_common.leader import DetectError, parse_zk, validate_master_spec

log = logging.getLogger("marathon")
GC = GcPolicy(freeze=True)  # gc is per process: one policy for the daemon (gc_policy)


def build_parser() -> FlagParser:
    p = FlagParser("marathon", "Marathon-compatible framework on Corral (v2 REST API).",
                   env_prefix="MARATHON_")
    p.add_flag("master", default=None, help="master HOST:PORT[,HOST:PORT] (zk:// with HA)")
    p.add_flag("zk", default=None, help="zk://host:port[,host:port]/path: state in ZooKeeper "
               "and leader election among Marathons (standbys proxy the API to the leader)")
    p.add_flag("zk_session_timeout", type=duration, default=10.0,
               help="ZooKeeper session timeout (a dead leader is replaced after it)")
    p.add_flag("http_address", default="127.0.0.1", help="address the API listens on")
    p.add_flag("http_port", type=port, default=8080, help="API port (0: a free port)")
    p.add_flag("hostname", default=None, help="advertised hostname (default: http_address)")
    p.add_flag("work_dir", default=None,
               help="SQLite state dir without --zk (default: in memory only)")
    p.add_flag("framework_name", default="marathon", help="framework name")
    p.add_flag("mesos_role", default="*",
               help="the framework's role: offers carry unreserved resources and this role's "
                    "reservations (apps pick with acceptedResourceRoles)")
    p.add_flag("failover_timeout", type=duration, default=7 * 86400.0,
               help="how long the master keeps our tasks while Marathon is away")
    p.add_flag("scale_apps_interval", type=duration, default=1.0,
               help="period of the control tick")
    p.add_flag("decline_offer_duration", type=duration, default=5.0,
               help="refuse filter for declined offers")
    p.add_flag("mesos_user", default=default_mesos_user(),
               help="the user apps without a `user` run as (default: the user running "
                    "Marathon, except root: none, so the agents' --default_user)")
    add_marathon_mesos_auth_flags(p)
    add_marathon_http_flags(p)
    return p


def open_store(work_dir: str | None) -> Store:
    if not work_dir:
        log.warning("no --work_dir: state is kept in memory and lost on restart")
        return MemoryStore()
    return SQLiteStore(Path(work_dir) / "marathon.db")


async def _ticker(svc: MarathonServer, interval: float) -> None:
    while True:
        await asyncio.sleep(interval)
        try:
            svc.tick()
            await svc.flush_async()
        except Exception:  # our bug; logged loudly, the daemon keeps serving
            log.exception("control tick failed")


def _reached(loop: asyncio.AbstractEventLoop, deadline: float) -> Callable[[], bool]:
    """Has the loop's clock reached `deadline`? (One slice's stop test.)"""
    return lambda: loop.time() >= deadline


async def _offer_pump(svc: MarathonServer, wake: asyncio.Event,
                      budget: float = 0.005) -> None:
    """Match the offer backlog in slices of `budget` seconds, yielding in between."""
    loop = asyncio.get_running_loop()
    while True:
        await wake.wait()
        wake.clear()
        more = True
        while more:
            try:
                more = svc.place_backlog(_reached(loop, loop.time() + budget))
            except Exception:  # our bug; logged loudly, the offers time out on the master
                log.exception("offer matching failed")
                svc.handle(ForgetOffers())
                more = False
            await asyncio.sleep(0)


async def run_term(node: Node, ns, options: Options, make_store: Callable[[], Store],
                   front: web.Application) -> None:
    """One leadership term: recover the state from the store, drive the framework until
    `node.ended`, then stop the driver with failover (tasks keep running) and drop it all."""
    driver: AsyncSchedulerDriver | None = None
    svc: MarathonServer | None = None
    store = make_store()
    try:
        if ns.zk:  # many ZooKeeper reads: off the loop (SQLite must stay on its thread)
            svc = await asyncio.to_thread(MarathonServer, store, attrs.evolve(options))
        else:
            svc = MarathonServer(store, attrs.evolve(options))
        GC.collect_and_freeze()  # the records just loaded are never walked again
        if node.ended.is_set():
            return
        svc.leader = node.me
        driver = AsyncSchedulerDriver(svc, svc.framework_info(), ns.master,
                                      **ns.driver_security)
        svc.driver = driver
        svc.deferred = True  # the driver calls svc.batch_done after each burst of callbacks
        offers_waiting = asyncio.Event()
        svc.on_backlog = offers_waiting.set
        log.info("leading: %d app(s), %d task(s) recovered; framework %s",
                 len(svc.state.apps), len(svc.state.tasks), svc.state.framework_id)
        async with asyncio.TaskGroup() as tg:
            await driver.start()
            workers = [tg.create_task(_ticker(svc, ns.scale_apps_interval)),
                       tg.create_task(HealthChecker(svc).run()),
                       tg.create_task(ReadinessChecker(svc).run()),
                       tg.create_task(deliver(svc)),
                       tg.create_task(_offer_pump(svc, offers_waiting))]
            node.service = svc
            await node.ended.wait()
            node.service = None
            for w in workers:
                w.cancel()
    finally:
        node.service = None
        end_streams(front)
        if driver is not None:
            await driver.stop(failover=True)
        try:
            if svc is not None:
                await svc.close_async()
        except Exception as e:  # e.g. fenced: a new leader owns the store now
            log.warning("final commit of the term failed: %s", e)
        finally:
            if ns.zk:
                store.close()


def default_mesos_user() -> str:
    """Marathon's default is the user running it; root is not handed to every app by
    default (an app or `--mesos_user root` asks for it)."""
    return "" if os.geteuid() == 0 else getpass.getuser()


async def serve(ns, embedded: Store | None) -> None:
    hostname = ns.hostname or ns.http_address
    options = Options(
        master=ns.master, hostname=hostname, http_port=ns.http_port,
        framework_name=ns.framework_name, failover_timeout=ns.failover_timeout,
        mesos_role=ns.mesos_role,
        tick_interval=ns.scale_apps_interval, decline_seconds=ns.decline_offer_duration,
        mesos_user=ns.mesos_user)
    front: web.Application | None = None

    def make_store() -> Store:
        if embedded is not None:
            return embedded
        assert node.elector is not None
        e = node.elector
        return ZkStore(e.client, e.path, fence=e.fence, autocommit=False,
                       timeout=min(5.0, ns.zk_session_timeout))

    async def term(n: Node) -> None:
        assert front is not None
        await run_term(n, ns, options, make_store, front)

    node = Node("", term, zk_url=ns.zk, session_timeout=ns.zk_session_timeout)
    front = make_front(node, options, ns.zk_session_timeout, ns.http_auth)
    runner = web.AppRunner(front, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, ns.http_address, ns.http_port,
                       ssl_context=ns.http_auth.ssl_context())
    await site.start()
    bound = runner.addresses[0][1]
    options.http_port = bound
    node.me = f"{hostname}:{bound}"
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    print(f"marathon: listening http={ns.http_auth.scheme}://{ns.http_address}:{bound}",
          flush=True)
    GC.install()
    try:
        async with asyncio.TaskGroup() as tg:
            running = tg.create_task(node.run())
            freezer = tg.create_task(GC.freezer())
            await stop.wait()
            node.close()
            try:
                await asyncio.wait_for(asyncio.shield(running), 30)
            except TimeoutError:
                running.cancel()
            freezer.cancel()
    finally:
        GC.uninstall()
        await runner.cleanup()
        if embedded is not None:
            embedded.close()


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    ns = parser.parse(argv)
    if not ns.master:
        parser.error("--master is required")
    try:
        validate_master_spec(ns.master)
        if ns.zk:
            if not ns.zk.strip().startswith("zk://"):
                raise DetectError(f"--zk must be a zk://host:port[,host:port]/path URL, "
                                  f"not {ns.zk!r}")
            parse_zk(ns.zk)
    except DetectError as e:
        parser.error(str(e))
    ns.driver_security = marathon_driver_security(ns, parser)
    ns.http_auth = marathon_http_auth(ns, parser)
    setup_logging(ns.log_level, "marathon")
    if ns.zk and ns.work_dir:
        log.warning("--zk given: state is kept in ZooKeeper, --work_dir is not used")
    try:
        embedded = None if ns.zk else open_store(ns.work_dir)
        asyncio.run(serve(ns, embedded))
    except OSError as e:
        sys.stderr.write(f"marathon: error: {e}\n")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
