"""`mesos-master` command line: Mesos-spelled flags (also MESOS_<FLAG>) -> MasterServer."""
from __future__ import annotations

import asyncio
import logging
import signal
import sys
from typing import Sequence

import zmq

from mesos_common.leader import DetectError, parse_zk
from mesos_common.flags import FlagParser, duration, port, positive_int, setup_logging
from mesos_master.server import MasterServer, ServerOptions, open_registry

log = logging.getLogger("mesos_master")


DEFAULT_OFFER_TIMEOUT = 60.0


def build_parser() -> FlagParser:
    p = FlagParser("mesos-master", "Corral master: pools agents' resources and offers them "
                                   "to frameworks.")
    p.add_flag("ip", default="127.0.0.1", help="address to listen on (HTTP and ZeroMQ)")
    p.add_flag("port", type=port, default=5050, help="HTTP port (0: a free port)")
    p.add_flag("zmq_port", type=port, default=5049, help="ZeroMQ ROUTER port (0: a free port)")
    p.add_flag("hostname", default=None, help="hostname advertised to peers (default: --ip)")
    p.add_flag("work_dir", default=None, help="where the registry lives (required with sqlite)")
    p.add_flag("registry", default="sqlite", choices=["sqlite", "in_memory"],
               help="registry backend")
    p.add_flag("agent_ping_timeout", type=duration, default=15.0,
               help="silence after which an agent has missed one ping (e.g. 15secs)")
    p.add_flag("max_agent_ping_timeouts", type=positive_int, default=5,
               help="missed pings before an agent is marked unreachable")
    p.add_flag("heartbeat_interval", type=duration, default=None,
               help="heartbeat period to agents and frameworks (default: agent_ping_timeout)")
    p.add_flag("allocation_interval", type=duration, default=0.1,
               help="batching window of allocation runs after changes (e.g. 100ms); full "
                    "cycles run every max(this, 1secs)")
    p.add_flag("offer_timeout", type=duration, default=DEFAULT_OFFER_TIMEOUT,
               help="rescind offers not answered within this duration (0 = never). Unlike "
                    "Mesos the default is finite: ZeroMQ can drop an Offers message silently, "
                    "and an offer nobody saw must not hold its resources forever")
    p.add_flag("agent_reregister_timeout", type=duration, default=600.0,
               help="after a failover, agents not back within this are marked unreachable")
    p.add_flag("zk", default=None,
               help="zk://host:port[,host:port]/path: HA mode, elect a leader through "
                    "ZooKeeper and keep the registry there")
    p.add_flag("quorum", type=positive_int, default=None,
               help="HA: masters that must have joined before a first leader is elected "
                    "(required with --zk)")
    p.add_flag("zk_session_timeout", type=duration, default=10.0,
               help="ZooKeeper session timeout (e.g. 10secs)")
    return p


def options_from_argv(argv: Sequence[str] | None = None) -> tuple[ServerOptions, str]:
    parser = build_parser()
    ns = parser.parse(argv)
    if ns.zk:
        try:
            parse_zk(ns.zk)
        except DetectError as e:
            parser.error(f"--zk: {e}")
        if ns.quorum is None:
            parser.error("--quorum is required with --zk")
    elif ns.registry == "sqlite" and not ns.work_dir:
        parser.error("--work_dir is required unless --registry=in_memory")
    for name in ("agent_ping_timeout", "allocation_interval", "agent_reregister_timeout",
                 "zk_session_timeout"):
        if getattr(ns, name) <= 0:
            parser.error(f"--{name} must be positive")
    if ns.heartbeat_interval is not None and ns.heartbeat_interval <= 0:
        parser.error("--heartbeat_interval must be positive")
    given = {k: str(v) for k, v in sorted(vars(ns).items()) if v is not None}
    opts = ServerOptions(
        ip=ns.ip, port=ns.port, zmq_port=ns.zmq_port, hostname=ns.hostname,
        work_dir=ns.work_dir, registry=ns.registry, agent_ping_timeout=ns.agent_ping_timeout,
        max_agent_ping_timeouts=ns.max_agent_ping_timeouts,
        heartbeat_interval=ns.heartbeat_interval, allocation_interval=ns.allocation_interval,
        offer_timeout=ns.offer_timeout or None, agent_reregister_timeout=ns.agent_reregister_timeout,
        zk=ns.zk, quorum=ns.quorum or 1, zk_session_timeout=ns.zk_session_timeout,
        gc_freeze=True, flags=given)
    return opts, ns.log_level


def _ready(server: MasterServer) -> None:
    print(f"mesos-master: listening http=http://{server.opts.ip}:{server.http_port} "
          f"zmq={server.zmq_endpoint} id={server.master_id}", flush=True)


async def _serve(server: MasterServer) -> None:
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, server.stop)
    await server.run(ready=_ready)


def main(argv: Sequence[str] | None = None) -> int:
    opts, level = options_from_argv(argv)
    setup_logging(level, "mesos-master")
    try:
        server = MasterServer(opts, registry=open_registry(opts))
    except (OSError, ValueError) as e:
        sys.stderr.write(f"mesos-master: error: {e}\n")
        return 1
    try:
        asyncio.run(_serve(server))
    except (OSError, zmq.ZMQError) as e:  # e.g. address in use
        sys.stderr.write(f"mesos-master: error: {e}\n")
        return 1
    log.info("mesos-master stopped")
    return server.exit_code


if __name__ == "__main__":
    sys.exit(main())
