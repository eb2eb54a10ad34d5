"""Where an agent's task cgroups live, and how to tear them down (no mesos_agent import:
`mesos_common.daemons` sweeps up after agents with it).

Every agent keeps its task groups under `corral/<agent key>/` of each hierarchy it uses
(v1: the memory, cpu and cpuacct hierarchies; v2: the unified one); the key is a hash of its
work dir, so two agents on a host never share groups and a restarted agent finds its own.
"""
from __future__ import annotations

import hashlib
import os
import signal
import time

CGROUP_ROOT = "/sys/fs/cgroup"
V1_CONTROLLERS = ("memory", "cpu", "cpuacct")
PARENT = "corral"


def agent_key(work_dir: str) -> str:
    return hashlib.sha1(os.path.abspath(work_dir).encode()).hexdigest()[:12]


def agent_bases(work_dir: str, root: str = CGROUP_ROOT) -> list[str]:
    """The agent's group directories that exist (v1 per controller, and v2)."""
    key = agent_key(work_dir)
    candidates = [os.path.join(root, c, PARENT, key) for c in V1_CONTROLLERS]
    candidates.append(os.path.join(root, PARENT, key))
    return [d for d in candidates if os.path.isdir(d)]


def members(group: str) -> list[int]:
    """The pids in a group (`cgroup.procs`); none when it is gone or unreadable."""
    try:
        with open(os.path.join(group, "cgroup.procs")) as f:
            return [int(p) for p in f.read().split()]
    except (OSError, ValueError):
        return []


def kill_members(group: str) -> int:
    """SIGKILL every process in `group` (v2's `cgroup.kill` where the kernel has it, which
    also catches a process forking meanwhile); the number of pids signalled."""
    pids = members(group)
    try:  # never created: only where the kernel has it
        fd = os.open(os.path.join(group, "cgroup.kill"), os.O_WRONLY)
        try:
            os.write(fd, b"1")
            return len(pids)
        finally:
            os.close(fd)
    except OSError:
        pass
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
    return len(pids)


def subgroups(group: str) -> list[str]:
    """Every group below `group`, deepest first (the order rmdir needs)."""
    out: list[str] = []
    for parent, dirs, _ in os.walk(group, topdown=False):
        out += [os.path.join(parent, d) for d in dirs]
    return out


def remove_group(group: str) -> bool:
    """rmdir one group; True when it is gone (also when it was already). A group with live
    members or subgroups cannot be removed (EBUSY): False."""
    try:
        os.rmdir(group)
    except FileNotFoundError:
        pass
    except OSError:
        return False
    return True


def remove_tree(group: str) -> bool:
    """rmdir `group` and its subgroups, deepest first; True when none is left. Kill the
    members first."""
    return all(remove_group(d) for d in [*subgroups(group), group])


def remove_agent_groups(work_dir: str, root: str = CGROUP_ROOT,
                        timeout: float = 5.0) -> list[str]:
    """Remove an agent's whole `corral/<agent key>` tree in every hierarchy, for an agent
    that is gone (kill -9ed tests and benchmarks leave it behind: nobody restarts them to
    clean up). Whatever still runs in it is SIGKILLed first. Returns the trees removed;
    a tree that stays busy past `timeout` is left (and not listed)."""
    removed: list[str] = []
    for base in agent_bases(work_dir, root):
        deadline = time.monotonic() + timeout
        while True:
            for g in [*subgroups(base), base]:
                kill_members(g)
            if remove_tree(base):
                removed.append(base)
                break
            if time.monotonic() > deadline:
                break
            time.sleep(0.02)
    return removed
