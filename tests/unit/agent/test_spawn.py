"""spawn/reap: what a task's process gets (session, cwd, env, stdio, fds) and the errors,
the same whether the fast path (`fork_exec`) or Popen starts it."""
from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest

from mesos_agent.containerizer import spawn as spawn_mod
from mesos_agent.containerizer.spawn import reap, spawn
from tests.helpers import wait_for


@pytest.fixture(params=["fork_exec", "popen"])
def way(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    if request.param == "fork_exec" and not spawn_mod.FORK_EXEC:
        pytest.skip("fork_exec's signature is not known for this Python")
    monkeypatch.setattr(spawn_mod, "FORK_EXEC", request.param == "fork_exec")
    yield request.param


def outputs(box: Path) -> tuple[int, int]:
    flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC
    return os.open(box / "stdout", flags, 0o644), os.open(box / "stderr", flags, 0o644)


def run(argv: list[str], box: Path, env: dict[str, str], executable: str | None = None
        ) -> int:
    out, err = outputs(box)
    try:
        return spawn(argv, executable, str(box), env, out, err)
    finally:
        os.close(out)
        os.close(err)


def test_session_cwd_env_stdio_and_no_inherited_fd(way: str, tmp_path: Path) -> None:
    leaky = os.open(os.devnull, os.O_RDONLY)  # inheritable: close_fds must still close it
    os.set_inheritable(leaky, True)
    try:
        (tmp_path / "stdout").write_text("before\n")
        pid = run(["sh", "-c", 'echo "$$ $(ps -o sid= -p $$) $(pwd) $FOO ${HOME-unset}"; '
                   'ls /proc/$$/fd; readlink /proc/$$/fd/0; echo e >&2; exec sleep 30'],
                  tmp_path, {"PATH": os.environ["PATH"], "FOO": "bar baz"})
        wait_for(lambda: Path(f"/proc/{pid}/comm").read_text().strip() == "sleep", timeout=10)
        fds = sorted(int(fd) for fd in os.listdir(f"/proc/{pid}/fd"))
        assert fds == [0, 1, 2]
        assert os.getsid(pid) == pid and os.getpgid(pid) == pid
        lines = (tmp_path / "stdout").read_text().splitlines()
        assert lines[0] == "before"  # appended, not truncated
        me, sid, cwd, foo = lines[1].split(None, 3)  # ps pads the sid to its width
        assert me == sid == str(pid) and cwd == str(tmp_path) and foo == "bar baz unset"
        assert lines[-1] == os.devnull
        assert (tmp_path / "stderr").read_text() == "e\n"
        os.kill(pid, signal.SIGTERM)
        assert reap(pid) == -signal.SIGTERM
    finally:
        os.close(leaky)


def test_program_is_found_in_the_tasks_path_not_the_agents(way: str, tmp_path: Path) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    tool = bin_dir / "corral-test-tool"
    tool.write_text("#!/bin/sh\necho \"$0 $1\"\nexit 4\n")
    tool.chmod(0o755)
    pid = run(["corral-test-tool", "x"], tmp_path, {"PATH": f"/nonexistent:{bin_dir}"})
    assert reap(pid) == 4
    assert (tmp_path / "stdout").read_text() == f"{tool} x\n"
    pid = run(["my-name", "-c", "echo $0"], tmp_path, {}, executable="/bin/sh")
    assert reap(pid) == 0 and (tmp_path / "stdout").read_text().endswith("my-name\n")


def test_errors_are_raised_in_the_caller(way: str, tmp_path: Path) -> None:
    env = {"PATH": "/usr/bin:/bin"}
    with pytest.raises(FileNotFoundError) as missing:
        run(["no-such-program-here"], tmp_path, env)
    assert missing.value.filename == "no-such-program-here"
    with pytest.raises(FileNotFoundError):
        run(["/no/such/binary"], tmp_path, env)
    script = tmp_path / "not-executable"
    script.write_text("#!/bin/sh\n")
    with pytest.raises(PermissionError) as denied:
        run([str(script)], tmp_path, env)
    assert denied.value.strerror == os.strerror(13)
    with pytest.raises(FileNotFoundError) as no_cwd:
        out, err = outputs(tmp_path)
        try:
            spawn(["true"], None, str(tmp_path / "gone"), env, out, err)
        finally:
            os.close(out)
            os.close(err)
    assert no_cwd.value.filename == str(tmp_path / "gone")
    with pytest.raises(ValueError):
        run(["true"], tmp_path, {"A=B": "x", **env})
    with pytest.raises(ValueError):
        run(["echo", "nul\0byte"], tmp_path, env)


def test_reap_of_a_child_someone_else_reaped_is_unknown(way: str, tmp_path: Path) -> None:
    pid = run(["true"], tmp_path, {"PATH": "/usr/bin:/bin"})
    assert reap(pid) == 0
    assert reap(pid) is None


@pytest.mark.parametrize("path", ["/usr/bin:/bin", "a::b/:/x//", "", ":", None])
def test_path_search_order_is_os_get_exec_paths(path: str | None) -> None:
    env = {} if path is None else {"PATH": path}
    expected = tuple(os.path.join(os.fsencode(d), b"prog") for d in os.get_exec_path(env))
    dirs = spawn_mod._search_dirs(env.get("PATH", os.defpath))
    assert tuple(d + b"prog" for d in dirs) == expected
