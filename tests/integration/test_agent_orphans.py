"""Orphans of a kill -9ed agent, with the real agent process and the kernel's cgroups: at
the next start-up what the checkpoint does not know is killed and its groups removed (as
Mesos destroys the containers it does not recover); known tasks keep running. And the
sweep that tests and tools run for an agent that will not be restarted
(`daemons.remove_agent_cgroups`). Skips where the host's cgroups are not writable."""
from __future__ import annotations

import os
import signal
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from mesos_agent.checkpoint import CheckpointStore
from mesos_agent.containerizer.isolation import CgroupsV1, agent_key, detect
from mesos_agent.recovery import TaskRemoved
from mesos_common import cgroups
from mesos_common import task_states as ts
from mesos_common.daemons import remove_agent_cgroups
from mesos_common.messages import AgentReregistered, ReregisterAgent
from tests.helpers import group_members, wait_for
from tests.integration.test_agent_process import (
    HB,
    AgentProcess,
    FakeMaster,
    expect_states,
    register,
    run_task,
    task_json,
)

V1 = Path(cgroups.CGROUP_ROOT)
V2 = V1 / "unified"  # a cgroup2 mount beside the v1 hierarchies (this host's layout)
GHOST = "ghost_1b4e28ba-2fa1-11d2-883f-0016d3cca427"


@pytest.fixture
def v1(tmp_path: Path) -> None:
    iso, warning = detect(str(tmp_path / "probe"))
    if iso.name != "cgroups/v1":
        pytest.skip(f"this host has {iso.name}, not writable cgroup v1 ({warning})")


def _groups(work_dir: Path, controller: str) -> list[str]:
    base = V1 / controller / "corral" / agent_key(str(work_dir))
    return sorted(p.name for p in base.iterdir() if p.is_dir()) if base.is_dir() else []


def _alive(p: int) -> bool:
    try:
        return not Path(f"/proc/{p}/stat").read_text().split(") ")[1].startswith("Z")
    except (OSError, IndexError):
        return False


@pytest.fixture
def ghost() -> Iterator[Callable[[Path], subprocess.Popen]]:
    """A process in groups of an agent's key that no launch log or checkpoint names (as
    a task whose launch the agent never recorded); killed at the end whatever happens."""
    started: list[subprocess.Popen] = []

    def make(work_dir: Path) -> subprocess.Popen:
        proc = subprocess.Popen(["sleep", "303"], start_new_session=True)
        started.append(proc)
        for c in CgroupsV1.CONTROLLERS:
            d = V1 / c / "corral" / agent_key(str(work_dir)) / GHOST
            d.mkdir(parents=True, exist_ok=True)
            (d / "cgroup.procs").write_text(str(proc.pid))
        return proc

    yield make
    for proc in started:
        proc.kill()
        proc.wait()


def test_restart_kills_orphans_and_removes_their_groups_known_tasks_stay(
        v1: None, master: FakeMaster, agent_factory: Callable[..., AgentProcess],
        ghost: Callable[[Path], subprocess.Popen]) -> None:
    agent = agent_factory()
    register(master, agent)
    run_task(master, "keep", "sleep 300")
    # its child leaves the task's process group (setsid): only its cgroups still hold it
    run_task(master, "orphan", "setsid sleep 302 & exec sleep 301")
    for tid in ("keep", "orphan"):
        expect_states(master, tid, [ts.STARTING, ts.RUNNING])
    keep, orphan = task_json(agent, "keep")["pid"], task_json(agent, "orphan")["pid"]
    [orphan_group] = [g for g in _groups(agent.work_dir, "memory") if g.startswith("orphan_")]
    procs = V1 / "memory/corral" / agent_key(str(agent.work_dir)) / orphan_group / "cgroup.procs"
    members = wait_for(lambda: (lambda m: m if len(m) == 2 else None)(
        [int(p) for p in procs.read_text().split()]), what="the task and its escaped child")
    [escaped] = [p for p in members if p != orphan]
    assert escaped not in group_members(orphan)  # a process-group kill would miss it
    stray = ghost(agent.work_dir)

    os.kill(agent.proc.pid, signal.SIGKILL)  # the crash
    agent.proc.wait(5)
    master.forget_peers()
    CheckpointStore(str(agent.work_dir)).write(TaskRemoved("orphan"))  # as if never recorded
    assert all(_alive(p) for p in (keep, orphan, escaped, stray.pid))

    agent = agent_factory()
    rereg = master.expect(ReregisterAgent, timeout=20)
    assert [t.task.task_id for t in rereg.tasks] == ["keep"]
    assert stray.wait(5) == -signal.SIGKILL
    wait_for(lambda: not _alive(orphan) and not _alive(escaped), what="the orphan killed")
    for c in CgroupsV1.CONTROLLERS:  # its groups and the ghost's are gone; keep's remain
        assert [g.split("_")[0] for g in _groups(agent.work_dir, c)] == ["keep"], c
    assert _alive(keep)
    master.send(AgentReregistered("A1", "M1", HB))
    agent.line("mesos-agent: registered")
    assert task_json(agent, "keep")["state"] == ts.RUNNING
    log = (agent.work_dir.parent / "agent.log").read_text()
    assert f"cgroup {GHOST}" in log and f"cgroup {orphan_group}" in log
    assert f"task orphan (pid {orphan})" in log
    assert agent.stop() == 0
    assert not _alive(keep)


def _hold(group: Path) -> subprocess.Popen:
    group.mkdir(parents=True)
    proc = subprocess.Popen(["sleep", "304"], start_new_session=True)
    (group / "cgroup.procs").write_text(str(proc.pid))
    return proc


def test_the_sweep_kills_and_removes_a_dead_agents_v1_tree(v1: None, tmp_path: Path) -> None:
    work = tmp_path / "work"
    key = agent_key(str(work))
    proc = _hold(V1 / "memory/corral" / key / "t_r1")
    try:
        (V1 / "cpu/corral" / key / "t_r1").mkdir(parents=True)
        removed = remove_agent_cgroups(work)
        assert sorted(removed) == [str(V1 / c / "corral" / key) for c in ("cpu", "memory")]
        assert proc.wait(5) == -signal.SIGKILL
        assert not (V1 / "memory/corral" / key).exists()
    finally:
        proc.kill()
        proc.wait()
        cgroups.remove_agent_groups(str(work))


def test_the_sweep_kills_and_removes_a_dead_agents_v2_tree(tmp_path: Path) -> None:
    """v2 (the unified mount: groups need no controllers), a process two levels down."""
    if not (V2 / "cgroup.procs").exists():
        pytest.skip(f"no cgroup2 mount at {V2}")
    work = tmp_path / "work"
    base = V2 / "corral" / agent_key(str(work))
    try:
        proc = _hold(base / "t_r1" / "nested")
    except OSError as e:
        pytest.skip(f"{V2} is not writable: {e}")
    try:
        assert remove_agent_cgroups(work, root=str(V2)) == [str(base)]
        assert proc.wait(5) == -signal.SIGKILL
        assert not base.exists()
    finally:
        proc.kill()
        proc.wait()
        cgroups.remove_agent_groups(str(work), root=str(V2))
