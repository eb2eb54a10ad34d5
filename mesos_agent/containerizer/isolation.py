"""Resource isolation for process tasks: per-task cgroups (v1 or v2), or rlimits.

Mesos's cgroups/cpu + cgroups/mem isolators, reduced: each task gets a cgroup per controller
(v1: memory, cpu, cpuacct hierarchies; v2: one unified group) under
`corral/<agent key>/<task>_<run>`, with `cpu.shares` (v2 `cpu.weight`) from its cpus, a CFS
quota when `enable_cfs`, and a memory limit (swap included) from its mem. The kernel's OOM
killer ends a task that goes past its memory; `oom_kill` in the group's counters tells the
agent why (TASK_FAILED, REASON_CONTAINER_LIMITATION_MEMORY).

With v1 (groups are per thread, and a child starts in its forking thread's groups) the
launching thread joins the task's groups while it spawns the task (going from one task's
groups to the next through a batch, and back to its own after), so the task is born inside
its limits and nothing else runs before it. Elsewhere (v2, rlimits)
the task joins its groups itself, before it runs anything: it is started through a tiny
`sh` prologue that writes its own pid into each `cgroup.procs` (and/or sets `ulimit -v`)
and then execs the command (a shell command is eval'd by that same shell instead). Either
way no child can escape and no `preexec_fn` is needed in a threaded agent. Without
writable cgroups the agent says so at start-up and falls back to an address-space rlimit
(allocations fail instead of an OOM kill; cpu is not limited).
"""
from __future__ import annotations

import logging
import os
import re
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Protocol

from attrs import frozen

from mesos_common import cgroups
from mesos_common.cgroups import CGROUP_ROOT, agent_key  # noqa: F401 (re-exported)

log = logging.getLogger(__name__)

CFS_PERIOD_US = 100_000
MEMORY_LIMITATION = "memory"
# Its variables are namespaced and unset: the task's own environment passes through.
_JOIN = ('__corral_n=$1; shift; while [ "$__corral_n" -gt 0 ]; do '
         'echo $$ > "$1" || { echo "corral: cannot join cgroup $1" >&2; exit 125; }; '
         'shift; __corral_n=$((__corral_n-1)); done; unset __corral_n; '
         '[ "$1" = - ] || ulimit -v "$1" || { echo "corral: ulimit -v failed" >&2; '
         'exit 125; }; shift; ')
_PROLOGUE = _JOIN + 'exec "$@"'
# A shell command runs in the prologue's own shell (no second `sh` exec per task): the
# script is eval'd with no positional parameters, as `sh -c script` would run it.
_PROLOGUE_SHELL = _JOIN + '__corral_cmd=$1; shift; eval "unset __corral_cmd; $__corral_cmd"'
# A script that is one simple command - plain words, nothing the shell would expand or
# redirect, not a builtin - is exec'd instead, as bash does for `bash -c 'cmd args'`: the
# same program, arguments, PATH lookup and exit status, without a shell forking it.
_PLAIN_WORDS = re.compile(r"[A-Za-z0-9_./:,+%@=-]+(?:[ \t]+[A-Za-z0-9_./:,+%@=-]+)*")
_SH_BUILTINS = frozenset(
    ". : [ alias bg break cd chdir command continue echo eval exec exit export false fc fg "
    "getopts hash jobs kill local printf pwd read readonly return set shift test times trap "
    "true type ulimit umask unalias unset wait case do done elif else esac fi for if in "
    "then until while".split())


def simple_command(script: str) -> list[str] | None:
    """The words of `script` when `sh -c script` would just run them as one program."""
    text = script.strip(" \t")
    if not _PLAIN_WORDS.fullmatch(text):
        return None
    words = text.split()
    if "=" in words[0] or words[0] in _SH_BUILTINS:
        return None
    return words


@frozen
class Prepared:
    """What a task's launch needs: the files it joins, its rlimit, the dirs to remove."""

    procs: tuple[str, ...] = ()
    ulimit_kb: int | None = None
    dirs: tuple[str, ...] = ()
    born_inside: bool = False  # v1: the launching thread joins the groups; the task is born there

    def wrap(self, shell: str, executable: str, argv: list[str]) -> tuple[str, list[str]]:
        """(executable, argv) running the prologue first; unchanged when there is nothing
        to do. argv[0] becomes the executable (sh's `exec` cannot set it). A `shell -c
        script` command is run by the prologue's shell itself (exec'd when it is one
        simple command)."""
        if not self.procs and self.ulimit_kb is None:
            return executable, argv
        limit = "-" if self.ulimit_kb is None else str(self.ulimit_kb)
        head = [str(len(self.procs)), *self.procs, limit]
        if executable == shell and len(argv) == 3 and argv[:2] == [shell, "-c"]:
            words = simple_command(argv[2])
            if words is not None:
                return shell, [shell, "-c", _PROLOGUE, shell, *head, *words]
            return shell, [shell, "-c", _PROLOGUE_SHELL, shell, *head, argv[2]]
        return shell, [shell, "-c", _PROLOGUE, "corral-isolate", *head, executable, *argv[1:]]


@frozen
class Usage:
    mem_rss_bytes: int | None = None
    mem_limit_bytes: int | None = None
    cpus_user_time_secs: float | None = None
    cpus_system_time_secs: float | None = None
    cpus_limit: float | None = None


class Isolator(Protocol):
    name: str

    def prepare(self, key: str, cpus: float, mem: float) -> Prepared: ...

    def locate(self, key: str) -> Prepared: ...

    def limitation(self, prepared: Prepared, oom_seen: bool = False) -> str | None:
        """The limit the task went past: the kernel's OOM kills in its group, or an OOM the
        agent saw (`oom_events`) and ended by killing the task itself."""
        ...

    def usage(self, prepared: Prepared) -> Usage: ...

    def cleanup(self, prepared: Prepared) -> bool: ...

    def spec(self) -> list:
        """How to make the same isolator in another process (`from_spec`): the launch
        helper prepares the groups the agent later watches and removes."""
        ...


def safe_task_id(task_id: str) -> str:
    """The task id as it appears in its group names (file-name safe, bounded)."""
    return re.sub(r"[^A-Za-z0-9_.-]", "_", task_id)[:150]


def task_key(task_id: str, sandbox: str) -> str:
    return f"{safe_task_id(task_id)}_{os.path.basename(sandbox.rstrip('/'))}"


def key_owner(key: str) -> str:
    """The `safe_task_id` part of a group name (run ids are uuids: no `_` in them)."""
    return key.rpartition("_")[0]


def _write(path: str, value: str) -> None:
    """One write(2) (no file object: a launch makes five of these; flags as open(path, "w"))."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o644)
    try:
        os.write(fd, value.encode())
    finally:
        os.close(fd)


def _read(path: str) -> str | None:
    try:
        with open(path) as f:
            return f.read()
    except OSError:
        return None


def _number(path: str) -> int | None:
    try:
        return int((_read(path) or "").strip())
    except ValueError:
        return None


def memory_limitation(limit: int | None, peak: int | None) -> str:
    """The memory limitation with what the task asked for and used at most, in Mesos's
    words (`limitation` strings are `kind` or `kind: message`)."""
    def mb(n: int | None) -> str:
        return "unknown" if n is None else f"{n / 2**20:g}MB"
    return (f"{MEMORY_LIMITATION}: Memory limit exceeded: Requested: {mb(limit)} "
            f"Maximum Used: {mb(peak)}")


def _field(text: str | None, name: str) -> int | None:
    for line in (text or "").splitlines():
        k, _, v = line.partition(" ")
        if k == name:
            try:
                return int(v)
            except ValueError:
                return None
    return None


def _thread_groups(root: str) -> dict[str, str]:
    """The calling thread's v1 group directories by controller (/proc/thread-self/cgroup)."""
    out = {}
    with open("/proc/thread-self/cgroup") as f:
        for line in f:
            _, names, path = line.rstrip("\n").split(":", 2)
            for name in names.split(","):
                if name:
                    out[name] = os.path.join(root, name, path.lstrip("/"))
    return out


class _Groups:
    """What both cgroup versions do alike: remove a task's groups, and this agent's; list
    and kill the groups a previous agent process left (orphans)."""

    name: str
    root: str
    agent: str
    enable_cfs: bool

    def _bases(self) -> list[str]:
        raise NotImplementedError

    def locate(self, key: str) -> Prepared:
        raise NotImplementedError

    def cleanup(self, p: Prepared) -> bool:
        return all([cgroups.remove_group(d) for d in p.dirs])

    def keys(self) -> list[str]:
        """The names of this agent's task groups (`task_key`s), in any hierarchy."""
        names: set[str] = set()
        for base in self._bases():
            try:
                names.update(e.name for e in os.scandir(base) if e.is_dir())
            except OSError:
                continue
        return sorted(names)

    def spec(self) -> list:
        return [self.name, self.root, self.agent, self.enable_cfs]

    def prepare(self, key: str, cpus: float, mem: float) -> Prepared:
        raise NotImplementedError

    def resize(self, key: str, cpus: float, mem: float) -> None:
        """Raise an existing task's limits (a custom executor given more tasks)."""
        self.prepare(key, cpus, mem)

    def kill(self, p: Prepared) -> int:
        """SIGKILL whatever runs in a task's groups; the number of pids signalled."""
        return sum(cgroups.kill_members(d) for d in p.dirs)

    def close(self) -> None:
        """On an orderly stop: remove this agent's (then empty) parent groups."""
        for d in self._bases():
            cgroups.remove_group(d)


class CgroupsV1(_Groups):
    name = "cgroups/v1"
    CONTROLLERS = cgroups.V1_CONTROLLERS

    def __init__(self, root: str, agent: str, enable_cfs: bool) -> None:
        self.root, self.agent = root, agent
        self.base = {c: os.path.join(root, c, cgroups.PARENT, agent) for c in self.CONTROLLERS}
        self.enable_cfs = enable_cfs
        self._homes = threading.local()  # each launching thread's own groups (`visits`)
        self._memsw: bool | None = None  # memory.memsw.* exists (swap accounting on)?

    def _bases(self) -> list[str]:
        return list(self.base.values())

    def prepare(self, key: str, cpus: float, mem: float) -> Prepared:
        by_controller = {c: f"{b}/{key}" for c, b in self.base.items()}
        dirs = tuple(by_controller.values())
        for d in dirs:
            try:
                os.mkdir(d)
            except FileNotFoundError:  # the agent's own group, on its first task
                os.makedirs(d, exist_ok=True)
            except FileExistsError:
                pass
        mem_dir, cpu_dir = by_controller["memory"], by_controller["cpu"]
        if cpus > 0:
            _write(f"{cpu_dir}/cpu.shares", str(max(2, int(cpus * 1024))))
            if self.enable_cfs:
                _write(f"{cpu_dir}/cpu.cfs_period_us", str(CFS_PERIOD_US))
                _write(f"{cpu_dir}/cpu.cfs_quota_us", str(max(1000, int(cpus * CFS_PERIOD_US))))
        if mem > 0:
            limit = str(int(mem * 1024 * 1024))
            _write(f"{mem_dir}/memory.limit_in_bytes", limit)
            memsw = f"{mem_dir}/memory.memsw.limit_in_bytes"
            if self._memsw is None:
                self._memsw = os.path.exists(memsw)
            if self._memsw:
                try:
                    _write(memsw, limit)  # no escape into swap
                except OSError:
                    pass
        return Prepared(procs=tuple(f"{d}/cgroup.procs" for d in dirs), dirs=dirs,
                        born_inside=True)

    def resize(self, key: str, cpus: float, mem: float) -> None:
        """v1 refuses a memory limit above the memory+swap one: raise that first."""
        memsw = f"{self.base['memory']}/{key}/memory.memsw.limit_in_bytes"
        if mem > 0 and self._memsw is not False and os.path.exists(memsw):
            _write(memsw, str(int(mem * 1024 * 1024)))
        self.prepare(key, cpus, mem)

    @contextmanager
    def visits(self) -> Iterator[Callable[[Prepared], None]]:
        """Within the block, `enter(p)` moves the calling thread into task p's groups, so a
        process it forks next is born in them (v1 groups are per thread; a child inherits
        its forking thread's): no prologue, no moment outside its limits. One launch after
        another, the thread goes from one task's groups straight to the next's (three
        moves a task, not six); at the end of the block it goes back to its own, even on
        failure. Memory is charged by mm, not thread, so the agent's own memory stays
        where it was; do the file work for a batch before the block, not inside it."""
        tid = str(threading.get_native_id())
        home = getattr(self._homes, "groups", None)
        if home is None:  # where this thread lives: read once per thread
            home = self._homes.groups = _thread_groups(self.root)
        moved: set[str] = set()

        def enter(p: Prepared) -> None:
            for controller, d in zip(self.CONTROLLERS, p.dirs, strict=True):
                moved.add(controller)
                _write(f"{d}/tasks", tid)

        try:
            yield enter
        finally:
            for controller in self.CONTROLLERS:
                if controller not in moved:
                    continue
                try:
                    _write(os.path.join(home[controller], "tasks"), tid)
                except (OSError, KeyError) as e:
                    log.error("launching thread %s cannot go back to its %s group: %s",
                              tid, controller, e)

    def locate(self, key: str) -> Prepared:  # per launch, on the agent's loop: no os.path
        dirs = tuple(f"{b}/{key}" for b in self.base.values())
        return Prepared(procs=tuple(f"{d}/cgroup.procs" for d in dirs), dirs=dirs,
                        born_inside=True)

    def _dir(self, p: Prepared, controller: str) -> str | None:
        base = self.base[controller]
        return next((d for d in p.dirs if d.startswith(base + "/")), None)

    def limitation(self, p: Prepared, oom_seen: bool = False) -> str | None:
        mem = self._dir(p, "memory")
        if mem is None:
            return None
        kills = _field(_read(os.path.join(mem, "memory.oom_control")), "oom_kill")
        if not kills and not oom_seen:
            return None
        return memory_limitation(_number(os.path.join(mem, "memory.limit_in_bytes")),
                                 _number(os.path.join(mem, "memory.max_usage_in_bytes")))

    def oom_events(self, p: Prepared) -> int | None:
        """An eventfd the kernel signals when the task's memory group runs out of memory
        (v1's OOM notifier, `cgroup.event_control`), so the whole task can be killed at
        once, as Mesos does, even when the OOM killer only took one of its processes;
        None when the group cannot be watched."""
        mem = self._dir(p, "memory")
        if mem is None:
            return None
        efd = os.eventfd(0, os.EFD_CLOEXEC | os.EFD_NONBLOCK)
        try:
            cfd = os.open(os.path.join(mem, "memory.oom_control"), os.O_RDONLY | os.O_CLOEXEC)
            try:
                _write(os.path.join(mem, "cgroup.event_control"), f"{efd} {cfd}")
            finally:
                os.close(cfd)
        except OSError as e:
            os.close(efd)
            log.warning("cannot watch %s for OOM events: %s", mem, e)
            return None
        return efd

    def usage(self, p: Prepared) -> Usage:
        mem, acct, cpu = (self._dir(p, c) for c in ("memory", "cpuacct", "cpu"))
        out: dict[str, object] = {}
        if mem is not None:
            stat = _read(os.path.join(mem, "memory.stat"))
            out["mem_rss_bytes"] = _field(stat, "total_rss") or _field(stat, "rss")
            limit = _read(os.path.join(mem, "memory.limit_in_bytes"))
            if limit and int(limit) < 2 ** 60:
                out["mem_limit_bytes"] = int(limit)
        if acct is not None:
            stat = _read(os.path.join(acct, "cpuacct.stat"))
            hz = os.sysconf("SC_CLK_TCK")
            u, s = _field(stat, "user"), _field(stat, "system")
            if u is not None and s is not None:
                out["cpus_user_time_secs"], out["cpus_system_time_secs"] = u / hz, s / hz
        if cpu is not None:
            shares = _read(os.path.join(cpu, "cpu.shares"))
            if shares:
                out["cpus_limit"] = int(shares) / 1024
        return Usage(**out)  # type: ignore[arg-type]


class CgroupsV2(_Groups):
    name = "cgroups/v2"

    def __init__(self, root: str, agent: str, enable_cfs: bool) -> None:
        self.root, self.agent = root, agent
        self.base = os.path.join(root, cgroups.PARENT, agent)
        self.enable_cfs = enable_cfs
        parent = root
        for part in (cgroups.PARENT, agent):  # enable the controllers down to our groups
            _write(os.path.join(parent, "cgroup.subtree_control"), "+memory +cpu")
            parent = os.path.join(parent, part)
            os.makedirs(parent, exist_ok=True)
        _write(os.path.join(parent, "cgroup.subtree_control"), "+memory +cpu")

    def prepare(self, key: str, cpus: float, mem: float) -> Prepared:
        d = os.path.join(self.base, key)
        os.makedirs(d, exist_ok=True)
        if cpus > 0:
            shares = max(2, int(cpus * 1024))
            _write(os.path.join(d, "cpu.weight"), str(1 + ((shares - 2) * 9999) // 262142))
            if self.enable_cfs:
                _write(os.path.join(d, "cpu.max"),
                       f"{max(1000, int(cpus * CFS_PERIOD_US))} {CFS_PERIOD_US}")
        if mem > 0:
            _write(os.path.join(d, "memory.max"), str(int(mem * 1024 * 1024)))
            try:
                _write(os.path.join(d, "memory.swap.max"), "0")
            except OSError:
                pass
        return Prepared(procs=(os.path.join(d, "cgroup.procs"),), dirs=(d,))

    def _bases(self) -> list[str]:
        return [self.base]

    def locate(self, key: str) -> Prepared:
        d = os.path.join(self.base, key)
        return Prepared(procs=(os.path.join(d, "cgroup.procs"),), dirs=(d,))

    def limitation(self, p: Prepared, oom_seen: bool = False) -> str | None:
        events = _read(os.path.join(p.dirs[0], "memory.events")) if p.dirs else None
        if not _field(events, "oom_kill") and not oom_seen:
            return None
        return memory_limitation(_number(os.path.join(p.dirs[0], "memory.max")),
                                 _number(os.path.join(p.dirs[0], "memory.peak")))

    def usage(self, p: Prepared) -> Usage:
        if not p.dirs:
            return Usage()
        d = p.dirs[0]
        stat, cpu = _read(os.path.join(d, "memory.stat")), _read(os.path.join(d, "cpu.stat"))
        limit = (_read(os.path.join(d, "memory.max")) or "max").strip()
        u, s = _field(cpu, "user_usec"), _field(cpu, "system_usec")
        return Usage(mem_rss_bytes=_field(stat, "anon"),
                     mem_limit_bytes=None if limit == "max" else int(limit),
                     cpus_user_time_secs=None if u is None else u / 1e6,
                     cpus_system_time_secs=None if s is None else s / 1e6)


class Rlimits:
    """The fallback: RLIMIT_AS from mem (no OOM kill to report; cpu not limited)."""

    name = "posix/rlimits"

    def prepare(self, key: str, cpus: float, mem: float) -> Prepared:
        return Prepared(ulimit_kb=int(mem * 1024) if mem > 0 else None)

    def locate(self, key: str) -> Prepared:
        return Prepared()

    def limitation(self, p: Prepared, oom_seen: bool = False) -> str | None:
        return None

    def usage(self, p: Prepared) -> Usage:
        return Usage()

    def cleanup(self, p: Prepared) -> bool:
        return True

    def spec(self) -> list:
        return [self.name]

    def close(self) -> None:
        pass


class NoIsolation(Rlimits):
    name = "none"

    def prepare(self, key: str, cpus: float, mem: float) -> Prepared:
        return Prepared()


def from_spec(spec: list) -> Isolator:
    """The isolator `spec()` describes (in the launch helper)."""
    kinds: dict[str, type] = {c.name: c for c in (CgroupsV1, CgroupsV2, Rlimits, NoIsolation)}
    name, *args = spec
    if name not in kinds:
        raise ValueError(f"unknown isolator {name!r}")
    return kinds[name](*args)


def detect(work_dir: str, enable_cfs: bool = False, root: str = CGROUP_ROOT
           ) -> tuple[Isolator, str | None]:
    """The best isolator this host allows, and a warning when it is not cgroups."""
    agent = agent_key(work_dir)
    why = ""
    if os.path.isdir(os.path.join(root, "memory")) and os.path.isdir(os.path.join(root, "cpu")):
        try:
            iso = CgroupsV1(root, agent, enable_cfs)
            iso.cleanup(iso.prepare("probe", 0.1, 0.0))
            iso.close()  # the agent's own groups come back with its first task; a probe
            return iso, None  # alone (tests, a failed start) leaves nothing behind
        except OSError as e:
            why = f"cgroup v1 hierarchies not writable ({e})"
    elif os.path.exists(os.path.join(root, "cgroup.controllers")):
        try:
            iso2 = CgroupsV2(root, agent, enable_cfs)
            iso2.cleanup(iso2.prepare("probe", 0.1, 0.0))
            return iso2, None
        except OSError as e:
            why = f"cgroup v2 not writable or controllers unavailable ({e})"
    else:
        why = f"no cgroup v1 (memory, cpu) or v2 hierarchy under {root}"
    return Rlimits(), (f"cgroups unavailable: {why}; falling back to rlimits (a memory "
                       "limit makes allocations fail; cpu is NOT limited)")
