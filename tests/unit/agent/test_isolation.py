"""Isolation set-up without a kernel: detection fallback, the join-then-exec prologue, and
cgroup v1/v2 files written into a fake hierarchy."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from mesos_agent.containerizer.isolation import (
    CgroupsV1,
    CgroupsV2,
    Prepared,
    Rlimits,
    detect,
    simple_command,
)

CPUS, MEM = 0.5, 64.0


def test_no_cgroups_falls_back_to_rlimits_with_a_warning(tmp_path: Path) -> None:
    iso, warning = detect(str(tmp_path / "w"), root=str(tmp_path / "nothing"))
    assert isinstance(iso, Rlimits)
    assert warning is not None and "falling back to rlimits" in warning
    assert iso.prepare("k", CPUS, MEM) == Prepared(ulimit_kb=64 * 1024)


def test_prologue_joins_every_group_then_execs(tmp_path: Path) -> None:
    a, b = tmp_path / "a.procs", tmp_path / "b.procs"
    exe, argv = Prepared(procs=(str(a), str(b)), ulimit_kb=1 << 20).wrap(
        "/bin/sh", "/bin/sh", ["/bin/sh", "-c", "echo $$; ulimit -v"])
    out = subprocess.run(argv, executable=exe, capture_output=True, text=True, check=True)
    pid, limit = out.stdout.split()
    assert a.read_text().strip() == b.read_text().strip() == pid  # exec kept the pid
    assert limit == str(1 << 20)
    assert Prepared().wrap("/bin/sh", "/bin/x", ["x"]) == ("/bin/x", ["x"])
    failing = Prepared(procs=(str(tmp_path / "missing" / "procs"),)).wrap(
        "/bin/sh", "/bin/true", ["true"])
    assert subprocess.run(failing[1], capture_output=True).returncode == 125


def test_v1_files_and_oom_detection(tmp_path: Path) -> None:
    for c in CgroupsV1.CONTROLLERS:
        (tmp_path / c).mkdir()
    iso = CgroupsV1(str(tmp_path), "agent", enable_cfs=True)
    p = iso.prepare("t_run", CPUS, MEM)
    mem = tmp_path / "memory/corral/agent/t_run"
    assert (mem / "memory.limit_in_bytes").read_text() == str(64 * 2**20)
    cpu = tmp_path / "cpu/corral/agent/t_run"
    assert (cpu / "cpu.shares").read_text() == "512"
    assert (cpu / "cpu.cfs_quota_us").read_text() == "50000"
    assert iso.limitation(p) is None
    (mem / "memory.max_usage_in_bytes").write_text(f"{64 * 2**20}\n")
    seen = "memory: Memory limit exceeded: Requested: 64MB Maximum Used: 64MB"
    assert iso.limitation(p, oom_seen=True) == seen  # the agent killed it for the OOM
    (mem / "memory.oom_control").write_text("oom_kill_disable 0\nunder_oom 0\noom_kill 1\n")
    assert iso.limitation(p) == seen
    assert iso.locate("t_run") == p


def test_v2_files(tmp_path: Path) -> None:
    (tmp_path / "cgroup.subtree_control").write_text("")
    iso = CgroupsV2(str(tmp_path), "agent", enable_cfs=True)
    p = iso.prepare("t_run", CPUS, MEM)
    d = tmp_path / "corral/agent/t_run"
    assert (d / "memory.max").read_text() == str(64 * 2**20)
    assert (d / "cpu.max").read_text() == "50000 100000"
    (d / "memory.events").write_text("low 0\nhigh 0\nmax 3\noom 1\noom_kill 1\n")
    assert iso.limitation(p) == ("memory: Memory limit exceeded: Requested: 64MB "
                                 "Maximum Used: unknown") and iso.locate("t_run") == p


def test_shell_command_runs_in_the_prologue_shell(tmp_path: Path) -> None:
    """`sh -c script` is not exec'd again: the prologue's shell (the joined pid) runs the
    script itself, with no positional parameters and the task's environment untouched."""
    a = tmp_path / "a.procs"
    script = 'echo $$ $# "$n" "${__corral_cmd-unset}"; exit 3'
    exe, argv = Prepared(procs=(str(a),)).wrap("/bin/sh", "/bin/sh", ["/bin/sh", "-c", script])
    assert exe == "/bin/sh" and argv.count("/bin/sh") == 2  # argv[0] and $0, no second exec
    out = subprocess.run(argv, executable=exe, capture_output=True, text=True,
                         env={"PATH": "/usr/bin:/bin", "n": "kept"})
    assert out.returncode == 3
    pid, nargs, n, cmd = out.stdout.split()
    assert a.read_text().strip() == pid and nargs == "0" and n == "kept" and cmd == "unset"
    bad = Prepared(procs=(str(a),)).wrap("/bin/sh", "/bin/sh", ["/bin/sh", "-c", "if then"])
    assert subprocess.run(bad[1], executable=bad[0], capture_output=True).returncode == 2


def test_a_simple_command_is_execd_by_the_prologue(tmp_path: Path) -> None:
    """`sleep 600`-like scripts become the joined process itself (no shell forking them);
    anything the shell would interpret still goes through the shell."""
    assert simple_command("sleep 600") == ["sleep", "600"]
    assert simple_command("  /usr/bin/env -i X=1 true ") == ["/usr/bin/env", "-i", "X=1", "true"]
    for script in ("echo hi", "exit 3", "cd /tmp", "X=1 env", "sleep $T", "a; b", "a | b",
                   "a > f", "ls *", "~/x", "'quoted'", "if true; then :; fi", "a\nb", ""):
        assert simple_command(script) is None, script
    a = tmp_path / "a.procs"
    exe, argv = Prepared(procs=(str(a),)).wrap(
        "/bin/sh", "/bin/sh", ["/bin/sh", "-c", f"{sys.executable} -c pass"])
    assert argv[-2:] == ["-c", "pass"] and "eval" not in argv[2]
    probe = "import os, sys; sys.stdout.write(str(os.getpid()))"
    script_file = tmp_path / "probe.py"
    script_file.write_text(probe)
    exe, argv = Prepared(procs=(str(a),)).wrap(
        "/bin/sh", "/bin/sh", ["/bin/sh", "-c", f"{sys.executable} {script_file}"])
    proc = subprocess.Popen(argv, executable=exe, stdout=subprocess.PIPE, text=True)
    out, _ = proc.communicate()
    assert out == str(proc.pid) == a.read_text().strip()  # the joined pid runs python itself
    missing = Prepared(procs=(str(a),)).wrap("/bin/sh", "/bin/sh", ["/bin/sh", "-c", "nosuch x"])
    assert subprocess.run(missing[1], executable=missing[0], capture_output=True).returncode == 127


def test_cgroups_hierarchy_flag_points_detection_elsewhere(tmp_path: Path) -> None:
    from mesos_agent.main import make_isolator, parse
    ns, _ = parse(["--master=127.0.0.1:5050", f"--work_dir={tmp_path / 'w'}",
                   f"--cgroups_hierarchy={tmp_path / 'nothing'}"])
    assert ns.cgroups_hierarchy == str(tmp_path / "nothing")
    iso = make_isolator("cgroups", str(tmp_path / "w"), False, ns.cgroups_hierarchy)
    assert isinstance(iso, Rlimits)  # nothing mounted there: the announced fallback


def test_resize_raises_a_running_group_s_limits(tmp_path: Path) -> None:
    """A custom executor's group grows with its tasks; v1 raises memory+swap first."""
    for c in CgroupsV1.CONTROLLERS:
        (tmp_path / "v1" / c).mkdir(parents=True)
    mem = tmp_path / "v1/memory/corral/agent/ex"
    mem.mkdir(parents=True)
    (mem / "memory.memsw.limit_in_bytes").write_text("")  # swap accounting is on
    v1 = CgroupsV1(str(tmp_path / "v1"), "agent", enable_cfs=False)
    v1.prepare("ex", CPUS, MEM)
    assert (mem / "memory.memsw.limit_in_bytes").read_text() == str(64 * 2**20)
    v1.resize("ex", 1.0, 128)
    assert (mem / "memory.limit_in_bytes").read_text() == str(128 * 2**20)
    assert (mem / "memory.memsw.limit_in_bytes").read_text() == str(128 * 2**20)
    assert (tmp_path / "v1/cpu/corral/agent/ex/cpu.shares").read_text() == "1024"
    (tmp_path / "v2").mkdir()
    (tmp_path / "v2" / "cgroup.subtree_control").write_text("")
    v2 = CgroupsV2(str(tmp_path / "v2"), "agent", enable_cfs=False)
    v2.prepare("ex", CPUS, MEM)
    v2.resize("ex", 1.0, 128)
    assert (tmp_path / "v2/corral/agent/ex/memory.max").read_text() == str(128 * 2**20)
