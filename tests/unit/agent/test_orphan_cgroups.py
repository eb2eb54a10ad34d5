"""Orphan cgroups without a kernel: listing a previous agent's task groups, killing their
members, and sweeping a stopped agent's whole tree (`daemons.remove_agent_cgroups`), on a
fake hierarchy of plain directories. The kernel's side is in
tests/integration/test_agent_orphans.py."""
from __future__ import annotations

import subprocess
from pathlib import Path

from mesos_agent.containerizer.isolation import (
    CgroupsV1,
    agent_key,
    key_owner,
    safe_task_id,
    task_key,
)
from mesos_common import cgroups
from mesos_common.daemons import remove_agent_cgroups

RUN = "1b4e28ba-2fa1-11d2-883f-0016d3cca427"


def test_a_group_name_gives_back_its_task() -> None:
    for tid in ["t1", "my_app.instance-3", "a/b c", "x" * 300]:
        key = task_key(tid, f"/w/slaves/A/frameworks/F/executors/{tid}/runs/{RUN}")
        assert key_owner(key) == safe_task_id(tid)
    assert key_owner("probe") == ""  # not a task's: an orphan whatever is known


def test_v1_lists_the_agents_task_groups_and_kills_their_members(tmp_path: Path) -> None:
    for c in CgroupsV1.CONTROLLERS:
        (tmp_path / c).mkdir()
    iso = CgroupsV1(str(tmp_path), "agent", enable_cfs=False)
    (tmp_path / "memory/corral/agent/a_r1").mkdir(parents=True)
    (tmp_path / "cpu/corral/agent/b_r2").mkdir(parents=True)  # one hierarchy is enough
    (tmp_path / "memory/corral/other/c_r3").mkdir(parents=True)  # another agent's
    assert iso.keys() == ["a_r1", "b_r2"]
    sleeper = subprocess.Popen(["sleep", "300"])
    try:
        p = iso.locate("a_r1")
        Path(p.procs[0]).write_text(f"{sleeper.pid}\n")
        assert iso.kill(p) == 1
        assert sleeper.wait(5) == -9
    finally:
        sleeper.kill()
        sleeper.wait()


def test_a_stopped_agents_tree_is_removed_in_every_hierarchy(tmp_path: Path) -> None:
    work = tmp_path / "work"
    key, other = agent_key(str(work)), agent_key(str(tmp_path / "other"))
    mine = [tmp_path / "memory/corral" / key / "t_r1" / "sub",  # v1, nested
            tmp_path / "cpu/corral" / key / "t_r1",
            tmp_path / "cpuacct/corral" / key,  # the agent's own group only
            tmp_path / "corral" / key / "u_r2"]  # v2
    theirs = tmp_path / "memory/corral" / other / "t_r1"
    for d in [*mine, theirs]:
        d.mkdir(parents=True)
    removed = remove_agent_cgroups(work, root=str(tmp_path))
    assert sorted(removed) == sorted(str(tmp_path / p / key) for p in
                                     ["memory/corral", "cpu/corral", "cpuacct/corral", "corral"])
    assert not any((tmp_path / p / key).exists()
                   for p in ["memory/corral", "cpu/corral", "cpuacct/corral", "corral"])
    assert theirs.is_dir()  # another agent's groups are not ours to touch
    assert remove_agent_cgroups(work, root=str(tmp_path)) == []  # nothing left: a no-op


def test_a_tree_that_stays_busy_is_left_and_not_reported(tmp_path: Path) -> None:
    """A group that cannot be removed (here: a plain file in it, as a kernel says EBUSY
    for a live member) is given up after the timeout."""
    busy = tmp_path / "corral" / agent_key(str(tmp_path / "w")) / "t_r1"
    busy.mkdir(parents=True)
    (busy / "cgroup.procs").write_text("")
    assert cgroups.remove_agent_groups(str(tmp_path / "w"), str(tmp_path), timeout=0.1) == []
    assert busy.is_dir()
