"""Several masters and agents on one machine against a private ZooKeeper (HA tests, the failover
benchmark). ZooKeeper runs in the foreground as our child in its own process group, so `stop()`
always ends it; `pause`/`resume` SIGSTOP/SIGCONT it. The package comes from
scripts/install-system-deps.sh (Debian `zookeeperd`).
"""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
import urllib.request
from collections.abc import Sequence
from pathlib import Path

from mesos_common.daemons import Daemon, python_module, spawn, sweep_agent

ZK_BIN = "/usr/share/zookeeper/bin/zkServer.sh"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ZooKeeper:
    """`ip` and `wrap` put it on another host (e.g. `nsenter --net=...` of a test network)."""

    def __init__(self, base: Path, tick_ms: int = 500, ip: str = "127.0.0.1",
                 wrap: Sequence[str] = ()) -> None:
        self.dir = base
        self.ip = ip
        self.wrap = list(wrap)
        self.port = free_port() if ip == "127.0.0.1" else 2181
        self.tick_ms = tick_ms  # sessions may be 2..20 ticks: 1 s .. 10 s
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def hosts(self) -> str:
        return f"{self.ip}:{self.port}"

    def url(self, path: str = "/corral") -> str:
        return f"zk://{self.hosts}{path}"

    def start(self, timeout: float = 60.0) -> None:
        (self.dir / "data").mkdir(parents=True, exist_ok=True)
        (self.dir / "zoo.cfg").write_text(
            f"tickTime={self.tick_ms}\ndataDir={self.dir}/data\nclientPort={self.port}\n"
            f"clientPortAddress={self.ip}\nadmin.enableServer=false\nminSessionTimeout=1000\n")
        env = dict(os.environ, ZOOCFGDIR=str(self.dir), ZOO_LOG_DIR=str(self.dir),
                   JVMFLAGS="-Xmx256m")
        log = open(self.dir / "zk.out", "ab")
        argv = [*self.wrap, ZK_BIN, "start-foreground", str(self.dir / "zoo.cfg")]
        self.proc = subprocess.Popen(argv, env=env, stdout=log, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, start_new_session=True)
        log.close()
        self._wait_ready(timeout)

    def _wait_ready(self, timeout: float) -> None:
        from kazoo.client import KazooClient
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                raise RuntimeError(f"ZooKeeper exited: {(self.dir / 'zk.out').read_text()[-2000:]}")
            client = KazooClient(hosts=self.hosts, timeout=2.0)
            try:
                client.start(timeout=2.0)
                client.stop()
                return
            except Exception:
                time.sleep(0.3)
            finally:
                client.close()
        raise RuntimeError("ZooKeeper did not become ready")

    def _signal(self, sig: int) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, sig)

    def pause(self) -> None:
        self._signal(signal.SIGSTOP)

    def resume(self) -> None:
        self._signal(signal.SIGCONT)

    def stop(self) -> None:
        if self.proc is None:
            return
        self._signal(signal.SIGCONT)
        self._signal(signal.SIGKILL)
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass
        self.proc = None


def zk_available() -> bool:
    return os.access(ZK_BIN, os.X_OK)


class HaCluster:
    """N masters contending through `zk_url` and agents following it, as real processes.

    Masters are kept by slot (`masters[i]`, None once killed) so a test can kill -9 the leader
    and `restart_master(i)` it later. `stop()` ends agents first (they kill their tasks), then
    masters, then sweeps task process groups still recorded under the agents' work dirs.
    """

    def __init__(self, root: Path, zk_url: str, session_timeout: float = 2.0,
                 quorum: int = 1, master_flags: tuple[str, ...] = (),
                 log_level: str = "INFO") -> None:
        self.root = root
        self.zk_url = zk_url
        self.session_timeout = session_timeout
        self.quorum = quorum
        self.master_flags = master_flags
        self.log_level = log_level
        self.masters: list[Daemon | None] = []
        self.agents: list[Daemon] = []
        self.agent_dirs: list[Path] = []

    def start_master(self, index: int | None = None, zk_url: str | None = None) -> Daemon:
        """Start master slot `index` (a new one when None); `zk_url` overrides the cluster's
        (e.g. through a proxy a test can cut)."""
        i = len(self.masters) if index is None else index
        d = spawn(f"master{i + 1}", python_module(
            "mesos_master", "--ip=127.0.0.1", "--port=0", "--zmq_port=0",
            f"--zk={zk_url or self.zk_url}", f"--quorum={self.quorum}",
            f"--zk_session_timeout={self.session_timeout}secs",
            f"--log_level={self.log_level}", *self.master_flags),
            self.root / "logs" / f"master{i + 1}.log", "mesos-master: listening")
        if index is None:
            self.masters.append(d)
        else:
            self.masters[index] = d
        return d

    def start_agent(self, resources: str, *extra: str) -> Daemon:
        i = len(self.agents)
        work = self.root / f"agent{i + 1}"
        d = spawn(f"agent{i + 1}", python_module(
            "mesos_agent", f"--master={self.zk_url}", "--ip=127.0.0.1", "--port=0",
            f"--work_dir={work}", f"--resources={resources}", f"--log_level={self.log_level}",
            *extra), self.root / "logs" / f"agent{i + 1}.log", "mesos-agent: listening")
        self.agents.append(d)
        self.agent_dirs.append(work)
        return d

    def http_of(self, d: Daemon) -> str:
        return d.field("http").removeprefix("http://")

    def leader(self, timeout: float = 0.5) -> tuple[int, Daemon] | None:
        """(slot, daemon) of the master that says it leads, if any (HTTP, no ZooKeeper)."""
        for i, d in enumerate(self.masters):
            if d is None or not d.alive():
                continue
            try:
                with urllib.request.urlopen(f"http://{self.http_of(d)}/master/info",
                                            timeout=timeout) as r:
                    info = json.loads(r.read())
            except (OSError, ValueError):
                continue
            if info.get("id") == d.field("id"):
                return i, d
        return None

    def kill9(self, index: int) -> None:
        d = self.masters[index]
        if d is not None:
            d.kill9()

    def stop(self) -> None:
        for agent in reversed(self.agents):
            agent.stop(timeout=20)
        for master in self.masters:
            if master is not None:
                master.stop(timeout=10)
        for w in self.agent_dirs:
            sweep_agent(w)
