"""A Corral cluster with every daemon on a host of its own (a network namespace).

Hosts: `zk`, `m1..m3` (masters), `mt1..mtK` (Marathons), `a1..aN` (agents), `px` (delay
proxies). Each daemon binds and advertises its host's address, so agents, Marathon's health
checks and leader look-ups all cross the bridge; the harness watches from the bridge's own
address. Short ping and session timeouts (flags) keep a partition's consequences within
seconds. `stop()` ends daemons, sweeps task processes and cgroups, and removes the network,
whatever state a failure left them in.
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import tempfile
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

from attrs import define

from mesos_common.daemons import Daemon, kill_group, python_module, spawn, sweep_agent
from mesos_master.ha_local import ZooKeeper
from tests.hosts.netns import Network

FAKETIME_LIB = "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1"
MASTER_HTTP, MASTER_ZMQ, AGENT_HTTP, MARATHON_HTTP, ZK_PORT = 5050, 5049, 5051, 8080, 2181


@define
class Timeouts:
    """Failure detection, short so that tests see a partition's effect within seconds."""
    zk_session: float = 2.0
    agent_ping: float = 1.0
    max_agent_pings: int = 3
    agent_reregister: float = 10.0
    marathon_failover: float = 600.0


def faketime_env(offset: float) -> dict[str, str]:
    """The environment of a process whose wall clock is `offset` seconds off (libfaketime).
    Its monotonic clock moves by the same constant, which nothing compares across processes;
    leaving it true (FAKETIME_DONT_FAKE_MONOTONIC) breaks Python's time.sleep with EINVAL."""
    env = dict(os.environ)
    if offset:
        env.update(LD_PRELOAD=FAKETIME_LIB, FAKETIME=f"{offset:+.0f}s")
    return env


def http(method: str, url: str, body: Any = None, timeout: float = 5.0) -> tuple[int, Any]:
    req = urllib.request.Request(url, method=method,
                                 data=None if body is None else json.dumps(body).encode(),
                                 headers={"Content-Type": "application/json",
                                          "Accept": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            text = r.read()
            return r.status, json.loads(text) if text else None
    except urllib.error.HTTPError as e:
        text = e.read()
        try:
            return e.code, json.loads(text) if text else None
        except ValueError:
            return e.code, text.decode(errors="replace")


class HostCluster:
    """ZooKeeper, masters, Marathons and agents on their own hosts, plus the fault verbs that
    act on processes (the network ones are `self.net`'s)."""

    def __init__(self, root: Path, agents: int = 4, masters: int = 3, marathons: int = 2,
                 timeouts: Timeouts | None = None,
                 agent_resources: str = "cpus:2;mem:1024;disk:1024;ports:[31000-31099]",
                 work_tmpfs_mb: int = 0, log_level: str = "INFO",
                 marathon_module: str = "marathon") -> None:
        self.root = root
        self.n_agents, self.n_masters, self.n_marathons = agents, masters, marathons
        self.t = timeouts or Timeouts()
        self.agent_resources = agent_resources
        self.work_tmpfs_mb = work_tmpfs_mb
        self.log_level = log_level
        self.marathon_module = marathon_module  # tests.hosts.planted: one with a planted bug
        self.net = Network()
        self.zk: ZooKeeper | None = None
        self.daemons: dict[str, Daemon] = {}  # by host name
        self.clock_offsets: dict[str, float] = {}
        self.proxies: dict[str, list[Daemon]] = {}  # delay proxies by the host they slow
        # Agents' work dirs: somewhere the tasks' user (`nobody` by default) can pass through
        # to its sandbox, as a system service's /var/lib is (pytest's temp dirs are 0700).
        self.agents_root = Path(tempfile.mkdtemp(prefix="corral-hosts-"))
        self.agents_root.chmod(0o711)

    # ------------------------------------------------------------------------ lifecycle

    def start(self) -> HostCluster:
        try:
            self.net.open()
            for name in (["zk", "px"] + self.master_hosts + self.marathon_hosts
                         + self.agent_hosts):
                self.net.add_host(name)
            zk_host = self.net.hosts["zk"]
            self.zk = ZooKeeper(self.root / "zk", ip=zk_host.ip, wrap=zk_host.wrap([]))
            self.zk.start()
            for name in self.master_hosts:
                self.start_master(name)
            for name in self.agent_hosts:
                self.start_agent(name)
            for name in self.marathon_hosts:
                self.start_marathon(name)
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """Everything ends, in an order that lets agents kill their tasks; then the network
        goes, which also kills whatever still runs inside a namespace."""
        for name in list(self.proxies):
            self._stop_proxies(name)
        for name in self.marathon_hosts + self.agent_hosts + self.master_hosts:
            d = self.daemons.pop(name, None)
            if d is not None:
                kill_group(d.pid, signal.SIGCONT)
                d.stop(timeout=10)
        if self.zk is not None:
            self.zk.stop()
        for name in self.agent_hosts:
            sweep_agent(self.work_dir(name))
        self.net.close()
        shutil.rmtree(self.agents_root, ignore_errors=True)

    def __enter__(self) -> HostCluster:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ------------------------------------------------------------------------ names

    @property
    def master_hosts(self) -> list[str]:
        return [f"m{i + 1}" for i in range(self.n_masters)]

    @property
    def marathon_hosts(self) -> list[str]:
        return [f"mt{i + 1}" for i in range(self.n_marathons)]

    @property
    def agent_hosts(self) -> list[str]:
        return [f"a{i + 1}" for i in range(self.n_agents)]

    def ip(self, name: str) -> str:
        return self.net.hosts[name].ip

    def zk_url(self, path: str) -> str:
        assert self.zk is not None
        return self.zk.url(path)

    def work_dir(self, name: str) -> Path:
        return self.agents_root / name / "work"

    # ------------------------------------------------------------------------ daemons

    def _spawn(self, name: str, argv: list[str], ready: str) -> Daemon:
        host = self.net.hosts[name]
        d = spawn(name, host.wrap(argv), self.root / "logs" / f"{name}.log", ready,
                  timeout=60, env=faketime_env(self.clock_offsets.get(name, 0.0)))
        self.daemons[name] = d
        return d

    def start_master(self, name: str) -> Daemon:
        ip = self.ip(name)
        return self._spawn(name, python_module(
            "mesos_master", f"--ip={ip}", f"--port={MASTER_HTTP}", f"--zmq_port={MASTER_ZMQ}",
            f"--zk={self.zk_url('/corral')}", f"--quorum={self.n_masters // 2 + 1}",
            f"--zk_session_timeout={self.t.zk_session}secs",
            f"--agent_ping_timeout={self.t.agent_ping}secs",
            f"--max_agent_ping_timeouts={self.t.max_agent_pings}",
            f"--agent_reregister_timeout={self.t.agent_reregister}secs",
            f"--log_level={self.log_level}"), "mesos-master: listening")

    def start_agent(self, name: str) -> Daemon:
        work = self.work_dir(name)
        if self.work_tmpfs_mb and not work.exists():
            self.net.mount_tmpfs(work, self.work_tmpfs_mb)
        return self._spawn(name, python_module(
            "mesos_agent", f"--master={self.zk_url('/corral')}", f"--ip={self.ip(name)}",
            f"--hostname={self.ip(name)}", f"--port={AGENT_HTTP}", f"--work_dir={work}",
            f"--resources={self.agent_resources}", f"--log_level={self.log_level}"),
            "mesos-agent: listening")

    def start_marathon(self, name: str) -> Daemon:
        return self._spawn(name, python_module(
            self.marathon_module, f"--master={self.zk_url('/corral')}",
            f"--zk={self.zk_url('/marathon')}",
            f"--http_address={self.ip(name)}", f"--http_port={MARATHON_HTTP}",
            f"--zk_session_timeout={self.t.zk_session}secs",
            f"--failover_timeout={self.t.marathon_failover}", "--scale_apps_interval=0.5",
            "--decline_offer_duration=1secs", f"--log_level={self.log_level}"),
            "marathon: listening")

    def restart(self, name: str) -> Daemon:
        """Start the daemon of host `name` again: after kill9, or now (it is killed -9 first:
        a clean stop would make an agent kill its tasks, a crash leaves them to recover)."""
        self.kill9(name)
        if name in self.master_hosts:
            return self.start_master(name)
        if name in self.agent_hosts:
            return self.start_agent(name)
        return self.start_marathon(name)

    def revive(self) -> list[str]:
        """Start again every daemon that exited by itself (a master exits when it loses
        leadership, as Mesos's does): what a supervisor such as systemd does. The hosts
        revived."""
        out = []
        for name, d in list(self.daemons.items()):
            if not d.alive():
                self.restart(name)
                out.append(name)
        return out

    # ------------------------------------------------------------------------ process faults

    def kill9(self, name: str) -> None:
        d = self.daemons.pop(name, None)
        if d is not None:
            kill_group(d.pid, signal.SIGCONT)
            d.kill9()

    def pause(self, name: str) -> None:
        kill_group(self.daemons[name].pid, signal.SIGSTOP)

    def resume(self, name: str) -> None:
        kill_group(self.daemons[name].pid, signal.SIGCONT)

    def skew_clock(self, name: str, seconds: float) -> Daemon:
        """Restart host `name`'s daemon with its wall clock `seconds` off (libfaketime; the
        monotonic clock stays true)."""
        self.clock_offsets[name] = seconds
        return self.restart(name)

    def fill_work_dir(self, name: str) -> Path:
        """Fill the agent's work dir (a tmpfs: start with work_tmpfs_mb) to the last byte."""
        if not self.work_tmpfs_mb:
            raise ValueError("fill_work_dir needs work_tmpfs_mb (it would fill the real disk)")
        filler = self.work_dir(name) / "filler"
        with open(filler, "ab") as f:
            try:
                while True:
                    f.write(b"\0" * (1 << 20))
                    f.flush()
            except OSError:
                pass
        return filler

    def unfill_work_dir(self, name: str) -> None:
        (self.work_dir(name) / "filler").unlink(missing_ok=True)

    # ------------------------------------------------------------------------ network faults

    def delay(self, name: str, peer: str, ports: list[int], delay: float, jitter: float,
              seed: int = 0) -> None:
        """New connections from `name` to `peer`'s `ports` go through a delay proxy on `px`
        (connections already open keep their direct path)."""
        px = self.net.hosts["px"]
        env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[2]))
        for port in ports:
            d = spawn(f"proxy-{name}-{peer}-{port}", px.wrap(python_module(
                "tests.hosts.proxy", f"--listen={px.ip}:0", f"--to={self.ip(peer)}:{port}",
                f"--delay={delay}", f"--jitter={jitter}", f"--seed={seed}")),
                self.root / "logs" / "proxies.log", "proxy: listening", env=env)
            self.proxies.setdefault(name, []).append(d)
            self.net.redirect(name, self.ip(peer), port, px.ip, int(d.field("port")))

    def _stop_proxies(self, name: str) -> None:
        for d in self.proxies.pop(name, []):
            d.stop(timeout=5)

    def heal(self, name: str) -> None:
        """Every network fault on `name` undone, its delay proxies stopped."""
        self.net.heal(name)
        self._stop_proxies(name)

    # ------------------------------------------------------------------------ observing

    def master_url(self, name: str) -> str:
        return f"http://{self.ip(name)}:{MASTER_HTTP}"

    def marathon_url(self, name: str) -> str:
        return f"http://{self.ip(name)}:{MARATHON_HTTP}"

    def agent_url(self, name: str) -> str:
        return f"http://{self.ip(name)}:{AGENT_HTTP}"

    def _claiming(self, names: list[str], url: str, claims: Callable[[Daemon, Any], bool]
                  ) -> list[str]:
        """Hosts among `names` whose live daemon answers `url` (a path) with a claim."""
        out = []
        for name in names:
            d = self.daemons.get(name)
            if d is None or not d.alive():
                continue
            base = self.master_url(name) if name in self.master_hosts else \
                self.marathon_url(name)
            try:
                status, info = http("GET", base + url, timeout=1)
            except OSError:
                continue
            if status == 200 and claims(d, info):
                out.append(name)
        return out

    def leading_masters(self) -> list[str]:
        """Hosts whose master says it leads (two would be a split brain)."""
        return self._claiming(self.master_hosts, "/master/info",
                              lambda d, info: info.get("id") == d.field("id"))

    def leading_marathons(self) -> list[str]:
        """Hosts whose Marathon says it is elected."""
        return self._claiming(self.marathon_hosts, "/v2/info",
                              lambda d, info: bool(info.get("elected")))

    def master_state(self) -> dict[str, Any]:
        lead = self.leading_masters()
        assert len(lead) == 1, f"leading masters: {lead}"
        status, body = http("GET", self.master_url(lead[0]) + "/master/state", timeout=5)
        assert status == 200, body
        return body

    def agent_of_ip(self, ip: str) -> str | None:
        for name in self.agent_hosts:
            if self.ip(name) == ip:
                return name
        return None

    def dump_logs(self, lines: int = 40) -> str:
        out = []
        for p in sorted((self.root / "logs").glob("*.log")):
            out.append(f"===== {p.name}\n" + "".join(p.read_text().splitlines(True)[-lines:]))
        return "\n".join(out)
