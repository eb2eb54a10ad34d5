"""`mesos-local`: a master and N agents on this machine, one command, the embedded default.

Each daemon is a real child process (so killing one behaves as on a real cluster), started in
its own session and told to die with us. SIGINT/SIGTERM stops the agents first (they kill
their tasks), then the master: no orphans.
"""
from __future__ import annotations

import os
import signal
import sys
import tempfile
import threading
from collections.abc import Sequence
from pathlib import Path

import psutil

from mesos_agent.containerizer import detect
from mesos_common import flags
from mesos_common.daemons import LocalCluster, die_with_parent
from mesos_common.resources import ResourceError, Resources
from mesos_master import local_secure

PORTS_LOW, PORTS_HIGH = 31000, 32000
# The tour's Marathon app, as curl posts it.
POST_APP = "-X POST -H 'Content-Type: application/json'"
HELLO_APP = '{"id": "hello", "cmd": "python3 -m http.server $PORT0", "mem": 32, "cpus": 0.1}'


def split_machine(n: int, work_dir: Path) -> list[str]:
    """Divide this machine's cpus, memory, disk and the port range between n agents."""
    cpus = max(0.1, int((psutil.cpu_count() or 1) * 1000 / n) / 1000)  # never more than we have
    mem_total = psutil.virtual_memory().total // 2**20
    mem = max(32, (mem_total - min(1024, mem_total // 2)) // n)
    disk_free = psutil.disk_usage(str(work_dir)).free // 2**20
    disk = max(32, (disk_free - min(5120, disk_free // 2)) // n)
    span = (PORTS_HIGH - PORTS_LOW + 1) // n
    out = []
    for i in range(n):
        lo = PORTS_LOW + i * span
        out.append(f"cpus:{cpus};mem:{mem};disk:{disk};ports:[{lo}-{lo + span - 1}]")
    return out


def parse_args(argv: Sequence[str] | None):
    p = flags.FlagParser("mesos-local", "Run a Corral master and agents on this machine.")
    p.add_flag("num_agents", type=flags.positive_int, default=3, help="agents to start")
    p.add_flag("work_dir", default=None, help="state and sandboxes (default: a new temp dir)")
    p.add_flag("ip", default="127.0.0.1", help="address every daemon binds to")
    p.add_flag("port", type=flags.port, default=5050,
               help="master HTTP port (agents take the following ones); 0 = free ports")
    p.add_flag("zmq_port", type=flags.port, default=5049, help="master ZeroMQ port")
    p.add_flag("resources", default=None, help="resources of each agent (default: split machine)")
    p.add_flag("agent_ping_timeout", default="15secs", help="as mesos-master")
    p.add_flag("max_agent_ping_timeouts", default="5", help="as mesos-master")
    p.add_flag("containerizers", default=detect.AUTO,
               help="the agents' --containerizers: auto (docker,mesos when a Docker engine "
                    "answers, else mesos), mesos, docker,mesos, ...")
    p.add_flag("marathon", type=flags.boolean, default=True,
               help="also start Marathon (--no-marathon to skip)")
    p.add_flag("marathon_port", type=flags.port, default=8080,
               help="Marathon's HTTP port (0 = a free port; free too when --port=0)")
    p.add_flag("secure", type=flags.boolean, default=False,
               help="CURVE, authentication and TLS on, with throwaway keys, certificates and "
                    "credentials made under <work_dir>/secure/")
    return p, p.parse(argv)


def start_cluster(ns, work_dir: Path) -> LocalCluster:
    """Start the master then the agents (stopping what started if one fails)."""
    auto = ns.port == 0
    cluster = LocalCluster(work_dir, ns.ip, ns.port, 0 if auto else ns.zmq_port, ns.log_level)
    per_agent = [ns.resources] * ns.num_agents if ns.resources else split_machine(
        ns.num_agents, work_dir)
    secure: dict[str, list[str]] = {"master": [], "agent": [], "marathon": []}
    if ns.secure:
        files = local_secure.ensure(work_dir, ns.ip)
        os.environ["LIBPROCESS_SSL_CA_FILE"] = str(files.ca)  # the children trust our CA
        cluster.master_tls = True
        secure = {"master": local_secure.master_flags(files),
                  "agent": local_secure.agent_flags(files),
                  "marathon": local_secure.marathon_flags(files)}
    try:
        cluster.start_master(f"--agent_ping_timeout={ns.agent_ping_timeout}",
                             f"--max_agent_ping_timeouts={ns.max_agent_ping_timeouts}",
                             *secure["master"])
        for i in range(ns.num_agents):
            cluster.start_agent(per_agent[i], f"--containerizers={ns.containerizers}",
                                *secure["agent"],
                                port=0 if auto else cluster.master_port + 1 + i)
        if ns.marathon:
            cluster.start_marathon(0 if auto else ns.marathon_port, *secure["marathon"])
    except BaseException:
        cluster.stop()
        raise
    return cluster


def _print_secure(files: local_secure.SecureFiles, http: str, marathon: str | None) -> None:
    """Where the throwaway credentials are and how to use them (paths, never secrets)."""
    print(f"mesos-local: secure: credentials {files.credentials} (Mesos format), CA "
          f"{files.ca}, master CURVE public key {files.master_public}")
    print(f"mesos-local: try  LIBPROCESS_SSL_CA_FILE={files.ca} mesos-execute --master {http} "
          f"--principal operator --secret file://{files.operator_secret} "
          f"--master_public_key {files.master_public} --name hello "
          f"--command 'echo hello from Corral'")
    login = f"--cacert {files.ca} -u operator:$(cat {files.operator_secret})"
    print(f"mesos-local: try  curl {login} {http}/master/state")
    if marathon is not None:
        print(f"mesos-local: try  curl {login} {POST_APP} {marathon}/v2/apps -d '{HELLO_APP}'")


def main(argv: Sequence[str] | None = None) -> int:
    parser, ns = parse_args(argv)
    die_with_parent()  # `make run` killed, or its terminal closed: stop the cluster too
    if ns.resources:
        try:
            Resources.parse(ns.resources)
        except ResourceError as e:
            parser.error(f"--resources: {e}")
    try:
        detect.parse(ns.containerizers)
    except ValueError as e:
        parser.error(f"--containerizers: {e}")
    work_dir = Path(ns.work_dir or tempfile.mkdtemp(prefix="corral-local-")).resolve()
    work_dir.mkdir(parents=True, exist_ok=True)
    if not ns.work_dir:  # mkdtemp's 0700: tasks run as other users must pass through it
        work_dir.chmod(0o711)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    try:
        cluster = start_cluster(ns, work_dir)
    except (RuntimeError, OSError) as e:
        print(f"mesos-local: error: {e}", file=sys.stderr)
        return 1
    daemons = cluster.daemons()
    master = daemons[0]
    http = master.field("http")
    print(f"mesos-local: master {http} (zmq {master.field('zmq')}) pid {master.pid}")
    for d in daemons[1:]:
        kinds = f" containerizers {d.field('containerizers')}" if d in cluster.agents else ""
        print(f"mesos-local: {d.name} {d.field('http')} pid {d.pid}{kinds}")
    if (detect.parse(ns.containerizers) is None and cluster.agents
            and "docker" not in cluster.agents[0].field("containerizers")):
        print("mesos-local: no Docker engine answered: DOCKER apps wait for an agent that "
              "runs docker (start dockerd, then restart mesos-local)")
    if cluster.marathon is not None and not ns.secure:
        print(f"mesos-local: try  curl {POST_APP} {cluster.marathon.field('http')}/v2/apps "
              f"-d '{HELLO_APP}'")
    print(f"mesos-local: work dir {work_dir} (logs in {work_dir / 'logs'})")
    if ns.secure:
        _print_secure(local_secure.SecureFiles.at(work_dir / "secure"), http,
                      cluster.marathon.field("http") if cluster.marathon else None)
    else:
        print(f"mesos-local: try  mesos-execute --master {http.removeprefix('http://')} "
              f"--name hello --command 'echo hello from Corral'")
    print("mesos-local: ready (Ctrl-C stops everything)", flush=True)
    code = 0
    while not stop.wait(0.5):
        dead = [d for d in daemons if not d.alive()]
        if dead:
            for d in dead:
                print(f"mesos-local: {d.name} exited with {d.proc.returncode}; see {d.log_path}",
                      file=sys.stderr)
            code = 1
            break
    print("mesos-local: stopping", flush=True)
    cluster.stop()
    return code


if __name__ == "__main__":
    sys.exit(main())
