"""Starting and stopping Corral daemons as child processes (mesos-local, tests, benchmarks).

A daemon announces readiness with one stdout line (`mesos-master: listening http=... `);
`spawn` waits for it, then keeps copying the child's output into a log file.
"""
from __future__ import annotations

import ctypes
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import IO

from attrs import define, field

from mesos_common import cgroups, launch_log

_PR_SET_PDEATHSIG = 1


def die_with_parent() -> None:
    """Children get SIGTERM if their parent dies, even by kill -9: no orphaned daemons."""
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    except OSError:
        pass


def free_port(ip: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((ip, 0))
        return s.getsockname()[1]


@define
class Daemon:
    name: str
    proc: subprocess.Popen
    ready_line: str
    log_path: Path
    _pump: threading.Thread | None = field(default=None, repr=False)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def field(self, key: str) -> str:
        """A `key=value` item of the ready line (e.g. `http`, `zmq`, `id`)."""
        m = re.search(rf"\b{re.escape(key)}=(\S+)", self.ready_line)
        if not m:
            raise KeyError(f"{self.name}: no {key}= in ready line {self.ready_line!r}")
        return m.group(1)

    def alive(self) -> bool:
        return self.proc.poll() is None

    def stop(self, timeout: float = 20.0, sig: int = signal.SIGTERM) -> int:
        """Signal the daemon, wait, and SIGKILL its process group if it lingers."""
        if self.proc.poll() is None:
            try:
                self.proc.send_signal(sig)
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                kill_group(self.proc.pid, signal.SIGKILL)
                self.proc.wait(5)
            except ProcessLookupError:
                pass
        if self._pump is not None:
            self._pump.join(2)
        return self.proc.returncode

    def kill9(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)


def kill_group(pid: int, sig: int = signal.SIGKILL) -> None:
    try:
        os.killpg(pid, sig)
    except (ProcessLookupError, PermissionError):
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            pass


def _copy(src: IO[str], log: IO[str]) -> None:
    for line in src:
        log.write(line)
        log.flush()


def spawn(name: str, argv: Sequence[str], log_path: Path, ready: str,
          timeout: float = 30.0, env: dict[str, str] | None = None) -> Daemon:
    """Start `argv` in its own session; return once a stdout line starts with `ready`."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    log = open(log_path, "a", buffering=1)
    proc = subprocess.Popen(list(argv), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            stdin=subprocess.DEVNULL, text=True, start_new_session=True,
                            preexec_fn=die_with_parent, env=env)
    deadline = time.monotonic() + timeout
    assert proc.stdout is not None
    lines: list[str] = []
    result: list[str] = []

    def wait_ready() -> None:
        for line in proc.stdout:  # type: ignore[union-attr]
            log.write(line)
            lines.append(line)
            if line.startswith(ready):
                result.append(line.strip())
                return

    t = threading.Thread(target=wait_ready, daemon=True)
    t.start()
    t.join(max(0.0, deadline - time.monotonic()))
    if not result:
        kill_group(proc.pid)
        proc.wait(5)
        log.close()
        tail = "".join(lines[-20:])
        raise RuntimeError(f"{name} did not become ready within {timeout:.0f}s "
                           f"(exit {proc.returncode}); output:\n{tail}")
    pump = threading.Thread(target=_copy, args=(proc.stdout, log), daemon=True)
    pump.start()
    return Daemon(name=name, proc=proc, ready_line=result[0], log_path=log_path, pump=pump)


def python_module(module: str, *args: str) -> list[str]:
    return [sys.executable, "-m", module, *args]


def kill_task_processes(work_dir: Path) -> None:
    """Kill every task process group the agent's launch log says is still running (checked
    by start time: a pid reused since is left alone)."""
    for entry in launch_log.read(str(work_dir)).values():
        if launch_log.is_alive(entry):
            kill_group(entry.pid, signal.SIGKILL)


def remove_agent_cgroups(work_dir: Path, root: str = cgroups.CGROUP_ROOT) -> list[str]:
    """Remove the cgroups of a stopped agent (`corral/<agent key>` of its work dir, in every
    hierarchy), killing whatever still runs in them. A kill -9ed agent that nobody restarts
    leaves them behind (hundreds on a long-lived host); a clean stop leaves none. Call it
    only once the agent process is gone: its live groups would be torn down under it."""
    return cgroups.remove_agent_groups(str(work_dir), root)


def sweep_agent(work_dir: Path) -> None:
    """After an agent process is gone (stopped, or kill -9ed): kill the task process groups
    its launch log still shows alive, then remove its cgroups. What every harness that
    starts agents (LocalCluster, HaCluster, test fixtures) does when it stops them."""
    if work_dir.exists():
        kill_task_processes(work_dir)
    remove_agent_cgroups(work_dir)


class LocalCluster:
    """A master and agents as real child processes under one root dir (mesos-local, tests,
    benchmarks). `stop()` ends them all, agents first so they kill their tasks, and then
    sweeps any task process group still recorded under the agents' work dirs."""

    def __init__(self, root: Path, ip: str = "127.0.0.1", master_port: int = 0,
                 zmq_port: int = 0, log_level: str = "INFO") -> None:
        self.root = root
        self.ip = ip
        self.master_port = master_port or free_port(ip)
        self.zmq_port = zmq_port
        self.log_level = log_level
        self.master: Daemon | None = None
        self.agents: list[Daemon] = []
        self.agent_dirs: list[Path] = []
        self.marathon: Daemon | None = None
        self.master_tls = False  # peers detect the master over HTTPS (mesos-local --secure)
        self.agents_root = root  # where the agents' work dirs go (tasks' users pass through it)

    @property
    def master_addr(self) -> str:
        return f"{self.ip}:{self.master_port}"

    @property
    def master_spec(self) -> str:
        """What agents and Marathon are given as --master."""
        return f"https://{self.master_addr}" if self.master_tls else self.master_addr

    def start_master(self, *extra: str) -> Daemon:
        self.master = spawn("master", python_module(
            "mesos_master", f"--ip={self.ip}", f"--port={self.master_port}",
            f"--zmq_port={self.zmq_port}", f"--work_dir={self.root / 'master'}",
            f"--log_level={self.log_level}", *extra),
            self.root / "logs" / "master.log", "mesos-master: listening")
        return self.master

    def start_agent(self, resources: str, *extra: str, port: int = 0,
                    index: int | None = None) -> Daemon:
        """Start agent number `index` (a new one when None; a restart of it otherwise)."""
        i = len(self.agents) if index is None else index
        work = self.agents_root / f"agent{i + 1}"
        d = spawn(f"agent{i + 1}", python_module(
            "mesos_agent", f"--master={self.master_spec}", f"--ip={self.ip}", f"--port={port}",
            f"--work_dir={work}", f"--resources={resources}", f"--log_level={self.log_level}",
            *extra), self.root / "logs" / f"agent{i + 1}.log", "mesos-agent: listening")
        if index is None:
            self.agents.append(d)
            self.agent_dirs.append(work)
        else:
            self.agents[index] = d
        return d

    def start_marathon(self, port: int = 0, *extra: str) -> Daemon:
        """Marathon on this cluster's master (state under `<root>/marathon`)."""
        self.marathon = spawn("marathon", python_module(
            "marathon", f"--master={self.master_spec}", f"--http_address={self.ip}",
            f"--http_port={port or free_port(self.ip)}", f"--work_dir={self.root / 'marathon'}",
            f"--log_level={self.log_level}", *extra),
            self.root / "logs" / "marathon.log", "marathon: listening")
        return self.marathon

    def daemons(self) -> list[Daemon]:
        return (([self.master] if self.master else []) + self.agents
                + ([self.marathon] if self.marathon else []))

    def stop(self) -> None:
        if self.marathon is not None:  # first, so that it does not react to agents going
            self.marathon.stop(timeout=20)
        for d in reversed(self.agents):
            d.stop(timeout=20)
        if self.master is not None:
            self.master.stop(timeout=20)
        for w in self.agent_dirs:
            sweep_agent(w)
