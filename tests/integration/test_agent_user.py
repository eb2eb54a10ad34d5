"""Process tasks run as their user with the real agent: ids switched before the exec, the
sandbox (and what the fetcher put in it) theirs; an unknown user fails the task unrun."""
from __future__ import annotations

import os
import pwd
import shutil
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from mesos_common import task_states as ts
from mesos_common.messages import URI, CommandInfo, FrameworkInfo, HealthCheck, RunTask, TaskInfo
from mesos_common.resources import Resources
from tests.integration.test_agent_process import (
    FW,
    AgentProcess,
    FakeMaster,
    expect_states,
    register,
    task_json,
)

NOBODY = pwd.getpwnam("nobody")

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="switching users needs root")


@pytest.fixture
def agent(master: FakeMaster) -> Iterator[AgentProcess]:
    """An agent whose work dir other users can walk through (pytest's tmp dirs are 0700)."""
    base = Path(tempfile.mkdtemp(prefix="corral-user-"))
    base.chmod(0o755)
    a = AgentProcess(master, base / "work")
    try:
        yield a
    finally:
        a.kill_everything()
        shutil.rmtree(base, ignore_errors=True)


def _run(master: FakeMaster, task_id: str, command: CommandInfo,
         framework: FrameworkInfo = FW) -> None:
    master.send(RunTask(framework, TaskInfo(name=task_id, task_id=task_id, agent_id="A1",
                                            resources=Resources.parse("cpus:0.1;mem:32"),
                                            command=command)))


def _stdout(agent: AgentProcess, task_id: str) -> str:
    return (Path(task_json(agent, task_id)["directory"]) / "stdout").read_text()


@pytest.mark.slow
def test_tasks_run_as_their_user(master: FakeMaster, agent: AgentProcess) -> None:
    register(master, agent)
    shared = agent.work_dir.parent / "shared.txt"
    shared.write_text("fetched\n")
    _run(master, "as-nobody", CommandInfo(
        'id -u; id -g; echo "$HOME $USER"; test -O shared.txt && test -O stdout && '
        "cat shared.txt", user="nobody", uris=(URI(f"file://{shared}"),)))
    *_, done = expect_states(master, "as-nobody", [ts.STARTING, ts.RUNNING, ts.FINISHED])
    assert done.message == "Command exited with status 0"
    assert _stdout(agent, "as-nobody") == (
        f"65534\n{NOBODY.pw_gid}\n{NOBODY.pw_dir} nobody\nfetched\n")
    assert os.stat(task_json(agent, "as-nobody")["directory"]).st_uid == NOBODY.pw_uid

    # no command user: the framework's (root here, the agent's own: nothing switches)
    _run(master, "as-framework", CommandInfo("id -u"))
    expect_states(master, "as-framework", [ts.STARTING, ts.RUNNING, ts.FINISHED])
    assert _stdout(agent, "as-framework") == "0\n"
    by_fw = FrameworkInfo(name="fw", id="F1", user="nobody")
    _run(master, "fw-nobody", CommandInfo("id -u"), by_fw)
    expect_states(master, "fw-nobody", [ts.STARTING, ts.RUNNING, ts.FINISHED])
    assert _stdout(agent, "fw-nobody") == "65534\n"

    # an unknown user: TASK_FAILED naming it, and nothing ran (as root or anyone)
    _run(master, "ghost", CommandInfo("echo ran > ran.txt", user="no-such-user-here"))
    [failed] = expect_states(master, "ghost", [ts.FAILED])
    assert failed.reason == "REASON_CONTAINER_LAUNCH_FAILED", failed
    assert "no-such-user-here" in failed.message
    assert not (Path(task_json(agent, "ghost")["directory"]) / "ran.txt").exists()
    # the same with URIs to fetch: refused before anything is fetched
    _run(master, "ghost2", CommandInfo("true", user="no-such-user-here",
                                       uris=(URI(f"file://{shared}"),)))
    [failed] = expect_states(master, "ghost2", [ts.FAILED])
    assert "no-such-user-here" in failed.message


@pytest.mark.slow
def test_a_sandbox_is_its_users_alone_and_files_serves_sandboxes_only(
        master: FakeMaster, agent: AgentProcess) -> None:
    register(master, agent)
    _run(master, "private", CommandInfo("echo private > secret.txt"))  # FW's user: root
    expect_states(master, "private", [ts.STARTING, ts.RUNNING, ts.FINISHED])
    private = Path(task_json(agent, "private")["directory"])
    # a task as nobody writes its sandbox, cannot read a sibling's, and plants links out
    _run(master, "nosy", CommandInfo(
        f"echo mine > mine.txt && ln -s /etc/shadow shadow && ln -s {private} peer && "
        f"(cat {private}/secret.txt || ls {private.parent} || echo denied)", user="nobody"))
    expect_states(master, "nosy", [ts.STARTING, ts.RUNNING, ts.FINISHED])
    box = Path(task_json(agent, "nosy")["directory"])
    assert _stdout(agent, "nosy").endswith("denied\n")
    assert (box / "mine.txt").read_text() == "mine\n"
    assert (box.stat().st_uid, stat.S_IMODE(box.stat().st_mode)) == (NOBODY.pw_uid, 0o750)
    slaves = agent.work_dir / "slaves"
    for d in [p for p in box.parents if p.is_relative_to(slaves) and p != slaves]:
        assert stat.S_IMODE(d.stat().st_mode) & 0o007 == 0o001, d  # others pass, not list

    # /files serves the sandbox, never through `..` or a link out of the sandboxes
    assert agent.get("/files/read", path=f"{box}/mine.txt", offset=0).json()["data"] == "mine\n"
    for path in (f"{box}/shadow", f"{box}/../../../../../../../../../etc/shadow",
                 f"{box}/{'../' * 12}etc/shadow", "/slaves/../../etc/shadow"):
        for endpoint in ("/files/read", "/files/download", "/files/browse"):
            r = agent.get(endpoint, path=path, offset=0)
            assert r.status_code in (403, 404), (endpoint, path, r.status_code)
            assert "root:" not in r.text


@pytest.mark.slow
def test_a_command_health_check_runs_as_the_task_does(master: FakeMaster,
                                                      agent: AgentProcess) -> None:
    register(master, agent)
    check = HealthCheck("COMMAND", command=CommandInfo(
        'test "$(id -u)" = 65534 && touch checked', user=None), delay_seconds=0,
        interval_seconds=0.2, timeout_seconds=2, consecutive_failures=3,
        grace_period_seconds=30)
    master.send(RunTask(FrameworkInfo(name="fw", id="F1", user="nobody"), TaskInfo(
        name="checked", task_id="checked", agent_id="A1",
        resources=Resources.parse("cpus:0.1;mem:32"), command=CommandInfo("sleep 300"),
        health_check=check)))
    expect_states(master, "checked", [ts.STARTING, ts.RUNNING])
    st = master.update("checked")
    master.ack(st)
    assert (st.state, st.healthy) == (ts.RUNNING, True)  # not root: a nobody's check
    box = Path(task_json(agent, "checked")["directory"])
    assert (box / "checked").stat().st_uid == NOBODY.pw_uid
