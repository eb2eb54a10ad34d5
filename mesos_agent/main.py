"""`mesos-agent` command line: flags (Mesos spelling, `MESOS_*` env), probes, then the runtime."""
from __future__ import annotations

import argparse
import asyncio
import logging
import os
import random
import sys
from collections.abc import Collection, Sequence

import attrs

from mesos_agent import gpus, status
from mesos_agent.containerizer import detect, isolation
from mesos_agent.containerizer.base import Containerizer
from mesos_agent.containerizer.composite import CompositeContainerizer
from mesos_agent.containerizer.gpu import GpuDevices
from mesos_agent.containerizer.isolation import Isolator, NoIsolation, Rlimits
from mesos_agent.containerizer.process import ProcessContainerizer
from mesos_agent.containerizer.sim import SimContainerizer
from mesos_agent.fetcher import STALL_TIMEOUT
from mesos_agent.probe import AttributeParseError, agent_resources, parse_attributes
from mesos_agent.server import FETCHER_CACHE_SIZE, AgentServer, ServerOptions
from mesos_common import flags
from mesos_common.auth.flags import add_agent_security_flags, agent_security_from, redacted
from mesos_common.leader import DetectError, validate_master_spec
from mesos_common.resources import ResourceError

log = logging.getLogger("mesos_agent")


def build_parser() -> flags.FlagParser:
    p = flags.FlagParser("mesos-agent", "Run a Corral agent: offer this machine's resources "
                                        "to a master and run the tasks it sends.")
    p.add_flag("master", help="the master's HTTP address host:port (or a comma list), or "
                                 "zk://host:port[,host:port]/path to follow the elected leader; "
                                 "required")
    p.add_flag("work_dir", help="directory for sandboxes and task metadata; required")
    p.add_flag("ip", default="127.0.0.1", help="address the HTTP endpoint binds to")
    p.add_flag("port", type=flags.port, default=5051, help="HTTP port (0 = any free port)")
    p.add_flag("hostname", help="hostname advertised to the master (default: --ip)")
    p.add_flag("resources", help="e.g. 'cpus:4;mem:2048;ports:[31000-31999]'; named resources "
                                 "replace the probed ones")
    p.add_flag("attributes", help="e.g. 'rack:r1;zone:a' (numbers become scalars)")
    p.add_flag("registration_backoff_factor", type=flags.duration, default=1.0,
               help="first registration retry interval (doubles up to 1 min)")
    p.add_flag("containerizers", default=detect.AUTO,
               help="auto (docker,mesos when a Docker engine answers at start, else mesos), "
                    "or a comma list: mesos (= process: real processes), docker (DOCKER "
                    "containers via the Docker engine), or sim (in memory)")
    p.add_flag("isolation", default="cgroups", choices=["cgroups", "rlimits", "none"],
               help="process tasks' limits: per-task cgroups (v1 or v2; falls back to rlimits "
                    "with a warning when unavailable), rlimits only, or none")
    p.add_flag("cgroups_enable_cfs", type=flags.boolean, default=False,
               help="also cap cpu with a CFS quota (cpus x period), not only shares")
    p.add_flag("cgroups_hierarchy", default=isolation.CGROUP_ROOT,
               help="where the cgroup hierarchies are mounted (v1: one directory per "
                    "controller; v2: the unified hierarchy)")
    p.add_flag("status_update_retry_interval_min", type=flags.duration,
               default=status.RETRY_INTERVAL_MIN,
               help="first resend of an unacknowledged status update (doubles; a Mesos "
                    "constant, a flag here so that tests can shorten it)")
    p.add_flag("status_update_retry_interval_max", type=flags.duration,
               default=status.RETRY_INTERVAL_MAX,
               help="longest interval between resends of a status update")
    p.add_flag("executor_registration_timeout", type=flags.duration, default=60.0,
               help="how long a custom executor has to subscribe after it starts (or after "
                    "an agent restart) before it is killed and its tasks fail")
    p.add_flag("executor_shutdown_grace_period", type=flags.duration, default=5.0,
               help="from SHUTDOWN to SIGKILL of a custom executor")
    p.add_flag("switch_user", type=flags.boolean, default=True,
               help="run process tasks as their command's user, else their framework's "
                    "(false: as the agent's own user)")
    p.add_flag("default_user", default="nobody",
               help="with --switch_user, the user of a task whose command and framework name "
                    "none")
    p.add_flag("fetcher_cache_size", type=flags.byte_size, default=FETCHER_CACHE_SIZE,
               help="size of the cache of URIs fetched with cache=true (e.g. 2GB; 0: no cache)")
    p.add_flag("fetcher_cache_dir",
               help="where the fetcher cache lives (one subdirectory per agent; default "
                    "<work_dir>/fetch)")
    p.add_flag("fetcher_stall_timeout", type=flags.duration, default=STALL_TIMEOUT,
               help="a download that sends nothing for this long fails its task")
    p.add_flag("recover", default="reconnect", choices=["reconnect", "cleanup"],
               help="after a restart: reattach to checkpointed tasks (reconnect) or kill and "
                    "report them (cleanup)")
    p.add_flag("docker_api_timeout", type=flags.duration, default=60.0,
               help="deadline of each call to the Docker engine (a launch whose call takes "
                    "longer fails; image pulls get at least 10 min)")
    add_agent_security_flags(p)
    return p


def parse(argv: Sequence[str] | None) -> tuple[argparse.Namespace, ServerOptions]:
    """Flags -> ServerOptions; any bad value exits 2 with a one-line error."""
    parser = build_parser()
    ns = parser.parse(argv)
    if not ns.master:
        parser.error("--master is required (the master's HTTP address, host:port)")
    if not ns.work_dir:
        parser.error("--work_dir is required")
    try:
        validate_master_spec(ns.master)
    except DetectError as e:
        parser.error(f"--master: {e}")
    work_dir = os.path.abspath(ns.work_dir)
    try:
        os.makedirs(work_dir, exist_ok=True)
    except OSError as e:
        parser.error(f"--work_dir: cannot create {work_dir}: {e.strerror or e}")
    try:
        resources = agent_resources(work_dir, ns.resources)
    except ResourceError as e:
        parser.error(f"--resources: {e}")
    try:
        attributes = parse_attributes(ns.attributes)
    except AttributeParseError as e:
        parser.error(f"--attributes: {e}")
    try:
        detect.parse(ns.containerizers)
    except ValueError as e:
        parser.error(f"--containerizers: {e}")
    low, high = ns.status_update_retry_interval_min, ns.status_update_retry_interval_max
    if not 0 < low <= high:
        parser.error("--status_update_retry_interval_min must be > 0 and <= "
                     "--status_update_retry_interval_max")
    security, http_auth = agent_security_from(ns, parser)
    shown = redacted({k: str(v) for k, v in vars(ns).items() if v is not None})
    return ns, ServerOptions(master=ns.master, work_dir=work_dir, resources=resources,
                             attributes=attributes, ip=ns.ip, port=ns.port,
                             hostname=ns.hostname, flags=shown,
                             registration_backoff=max(0.01, ns.registration_backoff_factor),
                             recover=ns.recover,
                             status_retry=status.RetryPolicy(low, high), gc_freeze=True,
                             switch_user=ns.switch_user, default_user=ns.default_user,
                             executor_registration_timeout=ns.executor_registration_timeout,
                             executor_shutdown_grace=ns.executor_shutdown_grace_period,
                             fetcher_cache_dir=os.path.abspath(ns.fetcher_cache_dir)
                             if ns.fetcher_cache_dir else "",
                             fetcher_cache_size=ns.fetcher_cache_size,
                             fetcher_stall_timeout=max(0.1, ns.fetcher_stall_timeout),
                             security=security, http_auth=http_auth)


def make_isolator(mode: str, work_dir: str, enable_cfs: bool,
                  hierarchy: str = isolation.CGROUP_ROOT) -> Isolator:
    """The isolator for process tasks; a fallback is announced at start-up."""
    if mode == "none":
        return NoIsolation()
    if mode == "rlimits":
        return Rlimits()
    iso, warning = isolation.detect(work_dir, enable_cfs, hierarchy)
    if warning:
        log.warning("%s", warning)
        print(f"mesos-agent: WARNING: {warning}", file=sys.stderr, flush=True)
    else:
        log.info("isolation: %s", iso.name)
    return iso


def make_containerizer(kinds: Collection[str], work_dir: str, isolator: Isolator | None = None,
                       docker_api_timeout: float = 60.0) -> Containerizer:
    """Raises RuntimeError when the Docker engine is wanted and unreachable."""
    if set(kinds) == {"sim"}:
        return SimContainerizer()
    children: dict[str, Containerizer] = {}
    if "mesos" in kinds:
        children["mesos"] = ProcessContainerizer(work_dir, isolator=isolator)
    if "docker" in kinds:
        from mesos_agent.containerizer.docker import DockerContainerizer
        try:
            d = DockerContainerizer(work_dir, api_timeout=docker_api_timeout)
            d.ping()
        except Exception as e:
            raise RuntimeError(f"--containerizers includes docker but the Docker engine is "
                               f"unreachable: {e}") from None
        children["docker"] = d
    if list(children) == ["mesos"]:
        return children["mesos"]
    return CompositeContainerizer(children)


def with_gpus(containerizer: Containerizer, count: int, work_dir: str) -> Containerizer:
    """The containerizer handing out the first `count` detected GPUs (the agent's `gpus`
    resource) to the tasks that ask for them."""
    if count <= 0:
        return containerizer
    devices = gpus.detect()
    if len(devices) < count:
        raise RuntimeError(f"--resources says gpus:{count} but {len(devices)} NVIDIA GPU(s) "
                           "were found")
    log.info("GPUs: %s", ", ".join(f"{g.index} {g.name} ({g.uuid})" for g in devices[:count]))
    return GpuDevices(containerizer, devices[:count], work_dir)


def main(argv: Sequence[str] | None = None) -> int:
    ns, opts = parse(argv)
    flags.setup_logging(ns.log_level, "mesos-agent")
    try:
        choice = detect.choose(ns.containerizers)
        kinds = choice.kinds
        isolator = (make_isolator(ns.isolation, opts.work_dir, ns.cgroups_enable_cfs,
                                  ns.cgroups_hierarchy)
                    if "mesos" in kinds else None)
        containerizer = make_containerizer(kinds, opts.work_dir, isolator,
                                           ns.docker_api_timeout)
        containerizer = with_gpus(containerizer, int(opts.resources.scalar("gpus")),
                                  opts.work_dir)
    except (ValueError, RuntimeError) as e:
        print(f"mesos-agent: {e}", file=sys.stderr)
        return 2 if isinstance(e, ValueError) else 1
    log.info("containerizers %s (%s)", choice.text, choice.why)
    opts = attrs.evolve(opts, containerizers=tuple(sorted(kinds)),
                        flags={**opts.flags, "containerizers": choice.text})
    log.info("resources %s; attributes %s", opts.resources, opts.attributes)
    return asyncio.run(AgentServer(opts, containerizer, random.Random()).run())


if __name__ == "__main__":
    sys.exit(main())
