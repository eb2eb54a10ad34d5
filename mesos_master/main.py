"""`mesos-master` command line: Mesos-spelled flags (also MESOS_<FLAG>) -> MasterServer."""
from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
from collections.abc import Sequence

import attrs
import zmq

from mesos_common.auth.flags import add_http_security_flags, http_auth_from, redacted
from mesos_common.auth.jsonflag import AuthConfigError
from mesos_common.auth.load import load_acls, load_credentials, load_rate_limits
from mesos_common.flags import FlagParser, boolean, duration, port, positive_int, setup_logging
from mesos_common.leader import DetectError, parse_zk
from mesos_master.auth_config import MasterAuth
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
    p.add_flag("drain_notice", type=duration, default=60.0,
               help="a drained agent's tasks are killed this long after their framework's "
                    "inverse offer, unless it accepts or has moved them sooner")
    p.add_flag("zk", default=None,
               help="zk://host:port[,host:port]/path: HA mode, elect a leader through "
                    "ZooKeeper and keep the registry there")
    p.add_flag("quorum", type=positive_int, default=None,
               help="HA: masters that must have joined before a first leader is elected "
                    "(required with --zk)")
    p.add_flag("zk_session_timeout", type=duration, default=10.0,
               help="ZooKeeper session timeout (e.g. 10secs)")
    _add_security_flags(p)
    return p


def _add_security_flags(p: FlagParser) -> None:
    p.add_flag("zmq_curve", type=boolean, default=False,
               help="encrypt and authenticate the ZeroMQ socket with CURVE; plain-text peers "
                    "are refused")
    p.add_flag("zmq_curve_cert", default=None,
               help="the master's CURVE secret certificate (*.key_secret, as "
                    "zmq.auth.create_certificates writes it); default: generated under "
                    "<work_dir>/curve/ on first start")
    p.add_flag("credentials", default=None,
               help='principals and secrets: a file (or file:///path) holding {"credentials": '
                    '[{"principal": .., "secret": ..}]}')
    p.add_flag("authenticate_agents", type=boolean, default=False,
               help="admit only agents that authenticate with a principal from --credentials")
    p.add_flag("authenticate_frameworks", type=boolean, default=False,
               help="admit only frameworks that authenticate with a principal from "
                    "--credentials")
    p.add_flag("acls", default=None, help="Mesos ACLs: JSON, or a file holding it")
    p.add_flag("rate_limits", default=None,
               help="per-principal framework rate limits (Mesos format): JSON or a file")
    p.add_flag("max_frameworks_per_principal", type=positive_int, default=None,
               help="connected frameworks one principal may have")
    p.add_flag("max_agents_per_principal", type=positive_int, default=None,
               help="agents one principal may register")
    add_http_security_flags(p)


def _auth_from(ns: argparse.Namespace, parser: FlagParser) -> MasterAuth:
    try:
        creds = load_credentials(ns.credentials) if ns.credentials else None
        acls = load_acls(ns.acls) if ns.acls else None
        limits = load_rate_limits(ns.rate_limits) if ns.rate_limits else None
    except AuthConfigError as e:
        parser.error(str(e))
    if (ns.authenticate_agents or ns.authenticate_frameworks) and creds is None:
        parser.error("--authenticate_agents/--authenticate_frameworks need --credentials")
    auth = MasterAuth(credentials=creds, authenticate_agents=ns.authenticate_agents,
                      authenticate_frameworks=ns.authenticate_frameworks,
                      rate_limits=limits,
                      max_frameworks_per_principal=ns.max_frameworks_per_principal,
                      max_agents_per_principal=ns.max_agents_per_principal)
    return auth if acls is None else attrs.evolve(auth, acls=acls)


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
                 "zk_session_timeout", "drain_notice"):
        if getattr(ns, name) <= 0:
            parser.error(f"--{name} must be positive")
    if ns.heartbeat_interval is not None and ns.heartbeat_interval <= 0:
        parser.error("--heartbeat_interval must be positive")
    auth = _auth_from(ns, parser)
    http = http_auth_from(ns, parser, auth.credentials)
    if ns.zmq_curve and not ns.zmq_curve_cert and not ns.work_dir:
        parser.error("--zmq_curve needs --zmq_curve_cert or --work_dir")
    given = redacted({k: str(v) for k, v in sorted(vars(ns).items()) if v is not None})
    opts = ServerOptions(
        ip=ns.ip, port=ns.port, zmq_port=ns.zmq_port, hostname=ns.hostname,
        work_dir=ns.work_dir, registry=ns.registry, agent_ping_timeout=ns.agent_ping_timeout,
        max_agent_ping_timeouts=ns.max_agent_ping_timeouts,
        heartbeat_interval=ns.heartbeat_interval, allocation_interval=ns.allocation_interval,
        offer_timeout=ns.offer_timeout or None,
        agent_reregister_timeout=ns.agent_reregister_timeout,
        drain_notice=ns.drain_notice,
        zk=ns.zk, quorum=ns.quorum or 1, zk_session_timeout=ns.zk_session_timeout,
        gc_freeze=True, flags=given, zmq_curve=ns.zmq_curve, zmq_curve_cert=ns.zmq_curve_cert,
        auth=auth, http_auth=http)
    return opts, ns.log_level


def _ready(server: MasterServer) -> None:
    curve = f" curve_public_cert={server.curve_public_cert}" if server.curve_public_cert else ""
    print(f"mesos-master: listening http={server.opts.http_auth.scheme}://{server.opts.ip}:"
          f"{server.http_port} "
          f"zmq={server.zmq_endpoint} id={server.master_id}{curve}", flush=True)


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
