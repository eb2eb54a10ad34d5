"""The example frameworks' policies, fed fake offers and updates through a recording driver."""
from __future__ import annotations

import io
import json
from typing import Any

import pytest

from frameworks.examples import batch, execute
from frameworks.examples.batch import BatchScheduler
from frameworks.examples.execute import ExecuteScheduler, exit_code
from mesos_common.messages import Offer, TaskStatus
from mesos_common.resources import Resources


class RecordingDriver:
    """Records driver calls as tuples instead of talking to a master."""

    def __init__(self) -> None:
        self.calls: list[tuple] = []

    def __getattr__(self, name: str) -> Any:
        return lambda *args, **kw: self.calls.append((name, *args, *kw.values()))


def offer(oid: str, agent: str, text: str) -> Offer:
    return Offer(oid, "fw-1", agent, f"host-{agent}", Resources.parse(text))


def status(tid: str, state: str, agent: str | None = "a1", **kw: Any) -> TaskStatus:
    return TaskStatus(task_id=tid, state=state, agent_id=agent, **kw)


def launched(calls: list[tuple]) -> dict[str, list[str]]:
    return {c[1]: [t.task_id for t in c[2]] for c in calls if c[0] == "launch_tasks"}


def test_batch_packs_offers_declines_rest_and_suppresses() -> None:
    out = io.StringIO()
    s = BatchScheduler(["echo a", "echo b", "echo c"], cpus=0.1, mem=32, out=out)
    d = RecordingDriver()
    s.resource_offers(d, [offer("o1", "a1", "cpus:0.2;mem:64"),
                          offer("o2", "a2", "cpus:1;mem:1024"),
                          offer("o3", "a3", "cpus:1;mem:1024")])
    assert launched(d.calls) == {"o1": ["task-0", "task-1"], "o2": ["task-2"]}
    assert ("decline_offer", "o3", 5.0) in d.calls
    assert d.calls[-1] == ("suppress_offers",)
    (task0,) = [t for c in d.calls if c[0] == "launch_tasks" for t in c[2]
                if t.task_id == "task-0"]
    assert task0.command.value == "echo a" and task0.command.environment == {"TASK_INDEX": "0"}
    assert all(c[3] == 5.0 for c in d.calls if c[0] == "launch_tasks")  # refuse filter


def test_batch_declines_when_nothing_fits_and_does_not_suppress_yet() -> None:
    s = BatchScheduler(["x"], cpus=2, mem=32, out=io.StringIO())
    d = RecordingDriver()
    s.resource_offers(d, [offer("o1", "a1", "cpus:1;mem:64")])
    assert d.calls == [("decline_offer", "o1", 5.0)]


def test_batch_reports_each_task_and_a_summary_then_stops() -> None:
    out = io.StringIO()
    s = BatchScheduler(["true", "false"], out=out)
    d = RecordingDriver()
    s.resource_offers(d, [offer("o1", "a1", "cpus:1;mem:256")])
    s.status_update(d, status("task-0", "TASK_RUNNING"))
    s.status_update(d, status("task-0", "TASK_FINISHED", message="Command exited with status 0"))
    assert not s.all_done and ("stop",) not in d.calls
    s.status_update(d, status("task-1", "TASK_FAILED", message="Command exited with status 1"))
    s.status_update(d, status("task-1", "TASK_FAILED"))  # duplicate: ignored
    lines = out.getvalue().splitlines()
    assert lines[:2] == [
        "Task 'task-0' TASK_FINISHED on agent 'a1': Command exited with status 0",
        "Task 'task-1' TASK_FAILED on agent 'a1': Command exited with status 1"]
    assert json.loads(lines[2]) == {
        "finished": 1, "failed": 1, "by_agent": {"a1": 2},
        "tasks": {"task-0": "TASK_FINISHED", "task-1": "TASK_FAILED"}}
    assert len(lines) == 3 and d.calls[-1] == ("stop",)
    assert s.all_done and not s.succeeded


def test_batch_relaunches_tasks_that_never_reached_an_agent() -> None:
    s = BatchScheduler(["true"], out=io.StringIO())
    d = RecordingDriver()
    s.resource_offers(d, [offer("o1", "a1", "cpus:1;mem:256")])
    assert d.calls[-1] == ("suppress_offers",)
    s.status_update(d, status("task-0", "TASK_LOST", source="SOURCE_MASTER",
                              reason="REASON_INVALID_OFFERS"))
    assert d.calls[-1] == ("revive_offers",) and s.pending and not s.all_done
    s.resource_offers(d, [offer("o2", "a2", "cpus:1;mem:256")])
    assert launched(d.calls)["o2"] == ["task-0"]
    s.status_update(d, status("task-0", "TASK_FINISHED", agent="a2"))
    assert s.succeeded and s.summary()["by_agent"] == {"a2": 1}


def test_batch_lost_running_task_is_a_failure_and_reregistration_reconciles() -> None:
    s = BatchScheduler(["sleep 100", "sleep 100"], out=io.StringIO())
    d = RecordingDriver()
    s.resource_offers(d, [offer("o1", "a1", "cpus:1;mem:256")])
    s.status_update(d, status("task-0", "TASK_RUNNING"))
    s.reregistered(d, {})
    assert d.calls[-1] == ("reconcile_tasks", ["task-0", "task-1"])
    s.status_update(d, status("task-0", "TASK_LOST", source="SOURCE_MASTER",
                              reason="REASON_RECONCILIATION"))
    assert s.tasks["task-0"].state == "TASK_LOST" and "task-0" not in s.pending


@pytest.mark.parametrize("st,code", [
    (status("t", "TASK_FINISHED", message="Command exited with status 0"), 0),
    (status("t", "TASK_FAILED", message="Command exited with status 3"), 3),
    (status("t", "TASK_FAILED", message="Command exited with status 0"), 1),
    (status("t", "TASK_FAILED"), 1),
    (status("t", "TASK_KILLED", message="Command terminated with signal Killed"), 1),
    (status("t", "TASK_LOST"), 1),
    (status("t", "TASK_ERROR", message="bad task"), 1)])
def test_execute_exit_code(st: TaskStatus, code: int) -> None:
    assert exit_code(st) == code


def test_execute_launches_on_first_fitting_offer_and_prints_like_mesos() -> None:
    out = io.StringIO()
    s = ExecuteScheduler("hello", "echo hi", Resources.parse("cpus:0.5;mem:64"),
                         env={"A": "1"}, docker_image="alpine:3", out=out)
    d = RecordingDriver()
    s.registered(d, "fw-1", {})
    s.resource_offers(d, [offer("o1", "a1", "cpus:0.1;mem:64"),
                          offer("o2", "a2", "cpus:1;mem:128")])
    assert d.calls[0] == ("decline_offer", "o1", 5.0)
    name, oid, (task,) = d.calls[1]
    assert (name, oid, task.agent_id, task.task_id) == ("launch_tasks", "o2", "a2", "hello")
    assert task.container.type == "DOCKER" and task.container.docker.image == "alpine:3"
    assert task.command.value == "echo hi" and task.command.environment == {"A": "1"}
    assert d.calls[2] == ("suppress_offers",)
    s.status_update(d, status("hello", "TASK_RUNNING"))
    s.status_update(d, status("hello", "TASK_FAILED", message="Command exited with status 7"))
    assert s.exit_code == 7 and d.calls[-1] == ("stop",)
    assert out.getvalue().splitlines() == [
        "Subscribed with ID fw-1", "Submitted task 'hello' to agent 'a2'",
        "Received status update TASK_RUNNING for task 'hello'", "  source: SOURCE_EXECUTOR",
        "Received status update TASK_FAILED for task 'hello'",
        "  message: 'Command exited with status 7'", "  source: SOURCE_EXECUTOR"]


@pytest.mark.parametrize("module,argv,needle", [
    (execute, ["--name=x", "--command=true"], "--master is required"),
    (execute, ["--master=h:1", "--command=true"], "--name is required"),
    (execute, ["--master=h:1", "--name=x"], "--command is required"),
    (execute, ["--master=h:1", "--name=x", "--command=t", "--resources=cpus:x"], "--resources"),
    (execute, ["--master=h:1", "--name=x", "--command=t", "--env=[1]"], "--env"),
    (execute, ["--master=nope", "--name=x", "--command=t"], "--master"),
    (batch, ["--command=true"], "--master is required"),
    (batch, ["--master=h:1"], "nothing to run"),
    (batch, ["--master=h:1", "--tasks=2"], "exactly one --command"),
    (batch, ["--master=h:1", "--tasks=0", "--command=x"], "positive"),
    (batch, ["--master=h:1", "--commands_file=/nonexistent/x"], "--commands_file"),
    (batch, ["--master=h:1", "--command=x", "--cpus=0"], "--cpus"),
])
def test_bad_flags_exit_2_with_one_line(module: Any, argv: list[str], needle: str,
                                        capsys: pytest.CaptureFixture[str],
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MESOS_MASTER", raising=False)
    with pytest.raises(SystemExit) as e:
        module.main(argv)
    err = capsys.readouterr().err
    assert e.value.code == 2 and needle in err and err.count("\n") == 1, err


def test_batch_commands_file_and_task_index(tmp_path: Any) -> None:
    f = tmp_path / "jobs.txt"
    f.write_text("echo one\n\n# comment\necho two\n")
    p = batch._parser()
    ns = p.parse(["--master=h:1", f"--commands_file={f}", "--command=echo zero"])
    assert batch._commands(p, ns) == ["echo zero", "echo one", "echo two"]
    ns = p.parse(["--master=h:1", "--tasks=3", "--command=echo $TASK_INDEX"])
    assert batch._commands(p, ns) == ["echo $TASK_INDEX"] * 3
