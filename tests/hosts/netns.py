"""Hosts made of Linux network namespaces on one bridge, and the ways a network breaks.

Every name a run creates carries its run id (`crh-<id>-<host>` namespaces, `crh<id>b` bridge,
`crh<id>i<n>`/`crh<id>o<n>` veth ends, iptables comments `crh-<id>`), and the run registers
its owner pid under RUN_DIR. `sweep_stale()` removes what runs whose owner is gone left
behind, so a crashed run never leaks into the next one, and parallel runs never touch each
other's names. All addresses come from 10.213.0.0/16, one /24 per run; hosts have no route
out of it.
"""
from __future__ import annotations

import fcntl
import ipaddress
import os
import re
import secrets
import shutil
import signal
import subprocess
from pathlib import Path

from attrs import define, field

PREFIX = "crh"
RUN_DIR = Path("/run/corral-hosts")
TEST_RANGE = ipaddress.ip_network("10.213.0.0/16")


class NetError(RuntimeError):
    pass


def sh(*argv: str, check: bool = True) -> str:
    r = subprocess.run(list(argv), capture_output=True, text=True)
    if check and r.returncode != 0:
        raise NetError(f"{' '.join(argv)}: {r.stderr.strip() or r.stdout.strip()}")
    return r.stdout


def available() -> str | None:
    """Why multi-host tests cannot run here, or None when they can."""
    if os.geteuid() != 0:
        return "needs root (network namespaces)"
    for tool in ("ip", "iptables"):
        if shutil.which(tool) is None:
            return f"{tool} is not installed (scripts/install-system-deps.sh all)"
    return None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
        return True
    except ProcessLookupError:
        return False
    except PermissionError:
        return True


def _owner_alive(run_id: str) -> bool:
    try:
        return _alive(int((RUN_DIR / run_id / "pid").read_text()))
    except (OSError, ValueError):
        return False


def _kill_namespace_processes(ns: str) -> None:
    for pid in sh("ip", "netns", "pids", ns, check=False).split():
        try:
            os.kill(int(pid), signal.SIGKILL)
        except (ProcessLookupError, ValueError):
            pass


def _forward_rule(bridge: str, run_id: str) -> list[str]:
    # Docker sets the root FORWARD policy to DROP and bridged frames pass through it
    # (br_netfilter): frames between our hosts need this accept rule.
    return ["-i", bridge, "-o", bridge, "-m", "comment", "--comment",
            f"{PREFIX}-{run_id}", "-j", "ACCEPT"]


def remove_run(run_id: str) -> None:
    """Remove every namespace, link, root rule and mount of run `run_id` (idempotent)."""
    mounts = RUN_DIR / run_id / "mounts"
    if mounts.exists():
        for mount in mounts.read_text().split("\n"):
            if mount:
                subprocess.run(["umount", "-l", mount], capture_output=True)
    for ns in sh("ip", "netns", "list", check=False).split("\n"):
        name = ns.split(" ")[0]
        if name.startswith(f"{PREFIX}-{run_id}-"):
            _kill_namespace_processes(name)
            sh("ip", "netns", "del", name, check=False)
    for line in sh("ip", "-o", "link", "show", check=False).split("\n"):
        m = re.match(r"\d+: ([^:@]+)", line)
        if m and m.group(1).startswith(f"{PREFIX}{run_id}"):
            sh("ip", "link", "del", m.group(1), check=False)
    if shutil.which("iptables"):
        for rule in sh("iptables", "-S", "FORWARD", check=False).split("\n"):
            if f"{PREFIX}-{run_id}" in rule and rule.startswith("-A "):
                sh("iptables", "-w", "-D", *rule[3:].replace('"', "").split(), check=False)
    shutil.rmtree(RUN_DIR / run_id, ignore_errors=True)


def sweep_stale() -> list[str]:
    """Remove the leftovers of runs whose owner process is gone; the ids removed."""
    ids = set()
    for ns in sh("ip", "netns", "list", check=False).split("\n"):
        m = re.match(rf"{PREFIX}-([0-9a-f]{{4}})-", ns)
        if m:
            ids.add(m.group(1))
    for line in sh("ip", "-o", "link", "show", check=False).split("\n"):
        m = re.match(rf"\d+: {PREFIX}([0-9a-f]{{4}})[bio]", line)
        if m:
            ids.add(m.group(1))
    if RUN_DIR.exists():
        ids.update(p.name for p in RUN_DIR.iterdir() if not p.name.startswith("."))
    stale = sorted(i for i in ids if not _owner_alive(i))
    for i in stale:
        remove_run(i)
    return stale


@define
class Host:
    name: str
    index: int
    ns: str
    ip: str
    inner: str  # veth end inside the namespace
    outer: str  # veth end on the bridge

    def wrap(self, argv: list[str]) -> list[str]:
        """`argv` run on this host."""
        # nsenter, not `ip netns exec`: that remounts /sys, hiding the cgroup hierarchies
        return ["nsenter", f"--net=/run/netns/{self.ns}", "--", *argv]

    def iptables(self, *args: str, table: str = "filter") -> None:
        sh(*self.wrap(["iptables", "-w", "-t", table, *args]))


@define
class Network:
    """A bridge and hosts on it. `close()` removes everything, whatever state it is in."""

    run_id: str = field(factory=lambda: secrets.token_hex(2))
    hosts: dict[str, Host] = field(factory=dict)
    subnet: ipaddress.IPv4Network | None = None
    _mounts: list[str] = field(factory=list)

    @property
    def bridge(self) -> str:
        return f"{PREFIX}{self.run_id}b"

    @property
    def gateway(self) -> str:
        """The bridge's own address: where the harness itself reaches the hosts from."""
        assert self.subnet is not None
        return str(self.subnet.network_address + 1)

    def open(self) -> Network:
        why = available()
        if why:
            raise NetError(why)
        RUN_DIR.mkdir(parents=True, exist_ok=True)
        with open(RUN_DIR / ".lock", "w") as lock:  # parallel runs: one picks a /24 at a time
            fcntl.flock(lock, fcntl.LOCK_EX)
            sweep_stale()
            run = RUN_DIR / self.run_id
            run.mkdir(exist_ok=False)
            (run / "pid").write_text(str(os.getpid()))
            self.subnet = self._free_subnet()
            sh("ip", "link", "add", self.bridge, "type", "bridge")
            sh("ip", "addr", "add", f"{self.gateway}/24", "dev", self.bridge)
        try:
            sh("ip", "link", "set", self.bridge, "up")
            sh("iptables", "-w", "-I", "FORWARD", "1", *_forward_rule(self.bridge, self.run_id))
        except BaseException:
            self.close()
            raise
        return self

    def _free_subnet(self) -> ipaddress.IPv4Network:
        used = set(re.findall(r"inet (10\.213\.\d+)\.", sh("ip", "-o", "addr", "show")))
        start = int(self.run_id, 16) % 250
        for k in range(250):
            third = 2 + (start + k) % 250
            if f"10.213.{third}" not in used:
                return ipaddress.IPv4Network(f"10.213.{third}.0/24")
        raise NetError("no free /24 left in 10.213.0.0/16")

    def add_host(self, name: str) -> Host:
        assert self.subnet is not None
        n = len(self.hosts) + 1
        h = Host(name=name, index=n, ns=f"{PREFIX}-{self.run_id}-{name}",
                 ip=str(self.subnet.network_address + 10 + n),
                 inner=f"{PREFIX}{self.run_id}i{n}", outer=f"{PREFIX}{self.run_id}o{n}")
        sh("ip", "netns", "add", h.ns)
        sh("ip", "link", "add", h.inner, "type", "veth", "peer", "name", h.outer)
        sh("ip", "link", "set", h.inner, "netns", h.ns)
        sh("ip", "link", "set", h.outer, "master", self.bridge, "up")
        sh("ip", "-n", h.ns, "addr", "add", f"{h.ip}/24", "dev", h.inner)
        sh("ip", "-n", h.ns, "link", "set", h.inner, "up")
        sh("ip", "-n", h.ns, "link", "set", "lo", "up")
        self.hosts[name] = h
        return h

    def mount_tmpfs(self, path: Path, size_mb: int) -> None:
        """A small tmpfs at `path` (a host's work dir that can be filled); unmounted on close."""
        path.mkdir(parents=True, exist_ok=True)
        sh("mount", "-t", "tmpfs", "-o", f"size={size_mb}m", "tmpfs", str(path))
        self._mounts.append(str(path))
        (RUN_DIR / self.run_id / "mounts").write_text("\n".join(self._mounts))

    def close(self) -> None:
        remove_run(self.run_id)

    def __enter__(self) -> Network:
        return self.open()

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------------- faults

    def peers(self, host: Host) -> list[str]:
        return [h.ip for h in self.hosts.values() if h is not host]

    def link(self, name: str, up: bool) -> None:
        """Cut `name` off from everything (its cable pulled), or plug it back."""
        sh("ip", "link", "set", self.hosts[name].outer, "up" if up else "down")

    def block(self, name: str, direction: str, peers: list[str] | None = None) -> None:
        """Drop what `name` receives from (`in`), sends to (`out`), or both, for `peers`
        (default: every other host; the harness's gateway stays reachable to observe)."""
        h = self.hosts[name]
        for ip in peers if peers is not None else self.peers(h):
            if direction in ("in", "both"):
                h.iptables("-A", "INPUT", "-s", ip, "-j", "DROP")
            if direction in ("out", "both"):
                h.iptables("-A", "OUTPUT", "-d", ip, "-j", "DROP")

    def loss(self, name: str, probability: float) -> None:
        """Drop each packet `name` receives from its peers with `probability`."""
        h = self.hosts[name]
        for ip in self.peers(h):
            h.iptables("-A", "INPUT", "-s", ip, "-m", "statistic", "--mode", "random",
                       "--probability", f"{probability:.3f}", "-j", "DROP")

    def redirect(self, name: str, dst_ip: str, dst_port: int, via_ip: str, via_port: int) -> None:
        """New TCP connections from `name` to dst_ip:dst_port go to via_ip:via_port instead
        (a delay proxy that forwards them on)."""
        self.hosts[name].iptables("-A", "OUTPUT", "-d", dst_ip, "-p", "tcp", "--dport",
                                  str(dst_port), "-j", "DNAT", "--to-destination",
                                  f"{via_ip}:{via_port}", table="nat")

    def heal(self, name: str) -> None:
        """Undo every fault on `name`: link up, its filter and nat rules flushed."""
        h = self.hosts[name]
        self.link(name, True)
        h.iptables("-F")
        h.iptables("-F", table="nat")

    def heal_all(self) -> None:
        for name in self.hosts:
            self.heal(name)
