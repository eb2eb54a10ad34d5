"""Process-task isolation with the real agent: per-task cgroups (v1 here; v2 when that is
what the host mounts), and the rlimits fallback."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path

import pytest

from mesos_agent.containerizer.isolation import CgroupsV1, agent_key, detect
from mesos_common import task_states as ts
from mesos_common.messages import (
    AgentReregistered,
    CommandInfo,
    KillTask,
    ReregisterAgent,
    RunTask,
    TaskInfo,
)
from mesos_common.resources import Resources
from tests.helpers import wait_for
from tests.integration.test_agent_process import (
    FW,
    HB,
    AgentProcess,
    FakeMaster,
    expect_states,
    register,
    task_json,
)

HOG = (f"{sys.executable} -c \"import time; a = []\n"
       "for i in range(100): a.append(bytearray(8 * 2**20)); time.sleep(0.01)\nprint('survived')\"")


def _run(master: FakeMaster, task_id: str, command: str, res: str) -> None:
    master.send(RunTask(FW, TaskInfo(name=task_id, task_id=task_id, agent_id="A1",
                                     resources=Resources.parse(res),
                                     command=CommandInfo(command))))


def _cgroup_dirs(work_dir: Path, controller: str) -> list[str]:
    base = Path("/sys/fs/cgroup") / controller / "corral" / agent_key(str(work_dir))
    return sorted(p.name for p in base.iterdir() if p.is_dir()) if base.is_dir() else []


def test_memory_hog_fails_with_the_memory_reason_and_limits_apply(
        master: FakeMaster, agent_factory: Callable[..., AgentProcess], tmp_path: Path) -> None:
    iso, warning = detect(str(tmp_path / "probe"))
    assert warning is None, f"cgroups should be usable on this host: {warning}"
    agent = agent_factory()
    register(master, agent)
    _run(master, "hog", HOG, "cpus:0.5;mem:64")
    *_, st = expect_states(master, "hog", [ts.STARTING, ts.RUNNING, ts.FAILED])
    assert st.reason == "REASON_CONTAINER_LIMITATION_MEMORY", st
    assert st.message.startswith("Memory limit exceeded: Requested: 64MB Maximum Used: "), st
    assert st.message.endswith("(Command terminated by signal SIGKILL)"), st

    # a task within its limit: its cgroup holds the limits while it runs, then goes away
    _run(master, "calm", "sleep 300", "cpus:0.5;mem:48")
    expect_states(master, "calm", [ts.STARTING, ts.RUNNING])
    pid = task_json(agent, "calm")["pid"]
    if iso.name == "cgroups/v1":
        [mem_dir] = [d for d in _cgroup_dirs(agent.work_dir, "memory") if d.startswith("calm_")]
        base = Path("/sys/fs/cgroup/memory/corral") / agent_key(str(agent.work_dir)) / mem_dir
        assert int((base / "memory.limit_in_bytes").read_text()) == 48 * 2**20
        # the task joins its groups itself (before exec'ing its command): wait for it
        wait_for(lambda: str(pid) in (base / "cgroup.procs").read_text().split(),
                 what="the task in its memory cgroup")
        cpu = Path("/sys/fs/cgroup/cpu/corral") / agent_key(str(agent.work_dir)) / mem_dir
        assert int((cpu / "cpu.shares").read_text()) == 512

    def calm_stats() -> dict | None:
        """Its statistics once its command runs (its memory is charged from then on)."""
        [s] = [s for s in agent.get("/monitor/statistics").json() if s["executor_id"] == "calm"]
        return s if s["statistics"].get("mem_rss_bytes") else None
    stats = wait_for(calm_stats, what="the task's memory in its statistics")
    st = stats["statistics"]
    assert st["mem_limit_bytes"] == 48 * 2**20 and st["cpus_limit"] == 0.5
    assert st["mem_rss_bytes"] > 0 and st["cpus_user_time_secs"] >= 0
    assert stats["framework_id"] == "F1"
    master.send(KillTask("F1", "calm"))
    expect_states(master, "calm", [ts.KILLED])
    wait_for(lambda: _cgroup_dirs(agent.work_dir, "memory") == [], what="cgroups removed")
    assert agent.stop() == 0
    if iso.name == "cgroups/v1":  # an orderly stop leaves none of the agent's groups behind
        key = agent_key(str(agent.work_dir))
        for c in ("memory", "cpu", "cpuacct"):
            assert not (Path("/sys/fs/cgroup") / c / "corral" / key).exists()


def test_an_oom_kill_of_one_process_ends_the_whole_task(
        master: FakeMaster, agent_factory: Callable[..., AgentProcess]) -> None:
    """The OOM killer takes the hog (a child); the task's shell would go on sleeping, but
    the agent hears of the OOM and kills the whole task, as Mesos destroys the container."""
    agent = agent_factory()
    register(master, agent)
    _run(master, "family", f"{HOG}; sleep 600", "cpus:0.5;mem:64")
    *_, st = expect_states(master, "family", [ts.STARTING, ts.RUNNING, ts.FAILED])
    assert st.reason == "REASON_CONTAINER_LIMITATION_MEMORY", st
    assert "Requested: 64MB" in st.message and "survived" not in st.message


def test_a_reattached_task_is_still_killed_whole_when_its_memory_runs_out(
        master: FakeMaster, agent_factory: Callable[..., AgentProcess]) -> None:
    """After a kill -9 and restart of the agent (its launch helpers gone with it), the agent
    itself watches the reattached task's memory group."""
    agent = agent_factory()
    register(master, agent)
    _run(master, "later", f"while [ ! -e go ]; do sleep 0.1; done; {HOG}; sleep 600",
         "cpus:0.5;mem:64")
    expect_states(master, "later", [ts.STARTING, ts.RUNNING])
    box = Path(task_json(agent, "later")["directory"])
    os.kill(agent.proc.pid, signal.SIGKILL)
    agent.proc.wait(5)
    master.forget_peers()
    agent = agent_factory()
    assert master.expect(ReregisterAgent, timeout=20).agent_id == "A1"
    master.send(AgentReregistered("A1", "M1", HB))
    agent.line("mesos-agent: registered")
    (box / "go").touch()
    st = master.update("later", timeout=30)
    while st.state != ts.FAILED:  # a resent RUNNING may come first
        master.ack(st)
        st = master.update("later", timeout=30)
    assert st.reason == "REASON_CONTAINER_LIMITATION_MEMORY", st
    assert "Requested: 64MB" in st.message


def test_rlimits_fallback_makes_allocations_fail(
        master: FakeMaster, agent_factory: Callable[..., AgentProcess]) -> None:
    agent = agent_factory("--isolation=rlimits")
    register(master, agent)
    _run(master, "hog", HOG, "cpus:0.5;mem:256")
    *_, st = expect_states(master, "hog", [ts.STARTING, ts.RUNNING, ts.FAILED])
    assert st.reason is None and st.message == "Command exited with status 1"
    assert "MemoryError" in Path(task_json(agent, "hog")["directory"], "stderr").read_text()
    assert agent.stop() == 0


def test_v1_tasks_are_born_in_their_groups_and_the_launcher_thread_goes_home(
        tmp_path: Path) -> None:
    """The v1 path without a prologue: a thread goes into each task's groups while it forks
    it (from one task's groups straight into the next's), so each child starts inside its
    own; the thread is back in its own groups after the batch."""
    iso, warning = detect(str(tmp_path / "probe"))
    if iso.name != "cgroups/v1":
        pytest.skip(f"this host has {iso.name}, not cgroup v1 ({warning})")
    assert isinstance(iso, CgroupsV1)
    ps = [iso.prepare(f"born{i}", 0.1, 16 * (i + 1))
          for i in range(2)]
    before = Path("/proc/thread-self/cgroup").read_text()
    children: list[subprocess.Popen] = []
    try:
        with iso.visits() as enter:
            for p in ps:
                enter(p)
                children.append(subprocess.Popen(["sleep", "30"]))
        assert Path("/proc/thread-self/cgroup").read_text() == before
        # each child is in its cgroups when Popen returns: no window outside them
        for p, child in zip(ps, children, strict=True):
            for d in p.dirs:
                assert Path(d, "cgroup.procs").read_text().split() == [str(child.pid)]
        assert [Path(p.dirs[0], "memory.limit_in_bytes").read_text().strip()
                for p in ps] == [str(16 << 20), str(32 << 20)]
    finally:
        for child in children:
            child.kill()
            child.wait()
        for p in ps:
            wait_for(partial(iso.cleanup, p), what="the test's groups removed")
        iso.close()  # and the (test) agent's own groups


@pytest.fixture
def cgroup2_mount(tmp_path: Path) -> Iterator[Path]:
    """A cgroup2 (unified) hierarchy mounted under tmp_path, unmounted at the end; skips
    with the kernel's reason when it cannot be mounted or lacks the memory controller."""
    mnt = tmp_path / "cgroup2"
    mnt.mkdir()
    done = subprocess.run(["mount", "-t", "cgroup2", "none", str(mnt)], capture_output=True,
                          text=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount cgroup2: {done.stderr.strip() or done.returncode}")
    try:
        available = (mnt / "cgroup.controllers").read_text().split()
        if "memory" not in available or "cpu" not in available:
            pytest.skip("cgroup2 mounts, but its controllers are only "
                        f"{available or 'none'}: this kernel has memory and cpu bound to "
                        "cgroup v1 hierarchies (a controller lives in one hierarchy at a "
                        "time), so v2 limits cannot be enforced on this host")
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], capture_output=True)


def test_v2_memory_limit_is_enforced_on_a_cgroup2_mount(
        master: FakeMaster, agent_factory: Callable[..., AgentProcess],
        cgroup2_mount: Path) -> None:
    """The v2 path end to end where the host can give it the controllers: the agent pointed
    at a cgroup2 mount puts a task in `corral/<agent>/<task>_<run>` with `memory.max`, and the
    kernel's OOM kill of a hog is reported TASK_FAILED with the memory reason."""
    agent = agent_factory(f"--cgroups_hierarchy={cgroup2_mount}")
    register(master, agent)
    base = cgroup2_mount / "corral" / agent_key(str(agent.work_dir))
    _run(master, "calm", "sleep 300", "cpus:0.5;mem:48")
    expect_states(master, "calm", [ts.STARTING, ts.RUNNING])
    pid = task_json(agent, "calm")["pid"]
    [group] = [d for d in base.iterdir() if d.name.startswith("calm_")]
    assert int((group / "memory.max").read_text()) == 48 * 2**20
    wait_for(lambda: str(pid) in (group / "cgroup.procs").read_text().split(),
             what="the task in its v2 group")
    _run(master, "hog", HOG, "cpus:0.5;mem:64")
    *_, st = expect_states(master, "hog", [ts.STARTING, ts.RUNNING, ts.FAILED])
    assert st.reason == "REASON_CONTAINER_LIMITATION_MEMORY", st
    master.send(KillTask("F1", "calm"))
    expect_states(master, "calm", [ts.KILLED])
    wait_for(lambda: not any(d.is_dir() for d in base.iterdir()), what="v2 groups removed")
    assert agent.stop() == 0
