"""ProcessContainerizer with real subprocesses. Every process group started is killed at the end."""
from __future__ import annotations

import asyncio
import os
import signal
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest

from mesos_agent import paths
from mesos_agent.containerizer.base import LaunchError
from mesos_agent.containerizer.process import ProcessContainerizer
from mesos_agent.recovery import RUNNING_FOUND
from mesos_common import launch_log
from mesos_common.messages import CommandInfo, ContainerInfo, DockerInfo, TaskInfo, Volume
from mesos_common.resources import Resources
from tests.helpers import group_members, wait_for, wait_for_async


def task(value: str = "", shell: bool = True, args: tuple[str, ...] = (),
         env: dict[str, str] | None = None, tid: str = "t1") -> TaskInfo:
    return TaskInfo(name=tid, task_id=tid, agent_id="A1", resources=Resources.parse("cpus:0.1"),
                    command=CommandInfo(value=value, shell=shell, arguments=args,
                                        environment=env or {}))


class Harness:
    def __init__(self, root: Path) -> None:
        self.work = root
        self.c = ProcessContainerizer(str(root), base_env={"PATH": os.environ["PATH"]})
        self.pgids: list[int] = []

    def sandbox(self, tid: str = "t1") -> Path:
        box = Path(paths.sandbox_dir(str(self.work), "A1", "F1", tid, "r1"))
        box.mkdir(parents=True, exist_ok=True)
        return box

    async def launch(self, t: TaskInfo) -> tuple[int, Path]:
        box = self.sandbox(t.task_id)
        pid = await self.c.launch(t.task_id, "F1", t, str(box))
        self.pgids.append(pid)
        return pid, box

    async def run(self, t: TaskInfo) -> tuple[tuple[int | None, int | None], Path]:
        _, box = await self.launch(t)
        return await asyncio.wait_for(self.c.wait(t.task_id), 20), box

    def cleanup(self) -> None:
        self.c.close()
        for pgid in self.pgids:
            try:
                os.killpg(pgid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass


@pytest.fixture
def h(tmp_path: Path) -> Iterator[Harness]:
    harness = Harness(tmp_path)
    yield harness
    harness.cleanup()


def arun(fn: Callable[[], Awaitable[Any]]) -> Any:
    return asyncio.run(asyncio.wait_for(fn(), 30))


def test_exit_codes_and_signals(h: Harness) -> None:
    async def go() -> None:
        assert (await h.run(task("true", tid="a")))[0] == (0, None)
        assert (await h.run(task("exit 3", tid="b")))[0] == (3, None)
        assert (await h.run(task("kill -9 $$", tid="c")))[0] == (None, signal.SIGKILL)
        assert h.c.containers() == set()
    arun(go)


def test_environment_cwd_and_output_files(h: Harness, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AGENT_SECRET", "leak")
    cmd = ('echo "$MESOS_TASK_ID $MESOS_FRAMEWORK_ID $MESOS_AGENT_ID $FOO ${AGENT_SECRET-unset}";'
           ' echo "$MESOS_SANDBOX"; pwd; echo oops >&2')

    async def go() -> None:
        result, box = await h.run(task(cmd, env={"FOO": "bar"}))
        assert result == (0, None)
        lines = (box / "stdout").read_text().splitlines()
        assert lines == ["t1 F1 A1 bar unset", str(box), str(box)]
        assert (box / "stderr").read_text() == "oops\n"
    arun(go)


def test_argv_without_shell(h: Harness) -> None:
    async def go() -> None:
        result, box = await h.run(task(args=("/bin/echo", "a  b", "$HOME"), shell=False,
                                       tid="a"))
        assert result == (0, None) and (box / "stdout").read_text() == "a  b $HOME\n"
        result, box = await h.run(task("/bin/sh", args=("my-name", "-c", "echo $0"),
                                       shell=False, tid="b"))
        assert result == (0, None) and (box / "stdout").read_text() == "my-name\n"
    arun(go)


def test_launch_errors(h: Harness) -> None:
    async def go() -> None:
        with pytest.raises(LaunchError, match="No such file"):
            await h.launch(task(args=("/no/such/binary",), shell=False))
        with pytest.raises(LaunchError, match="no command"):
            await h.launch(TaskInfo(name="x", task_id="x", agent_id="A1",
                                    resources=Resources.parse("cpus:1")))
        with pytest.raises(LaunchError, match="empty"):
            await h.launch(task(""))
        assert h.c.containers() == set()
    arun(go)


def test_container_tasks_are_refused_and_nothing_runs_on_the_host(h: Harness) -> None:
    """A DOCKER task (or a MESOS one with an image or volumes) given to the process
    containerizer is refused before anything is spawned: its command never runs on the host."""
    marker = h.work / "ran"
    base = task(f"touch {marker}")
    docker = ContainerInfo("DOCKER", DockerInfo("corral/busybox:test", network="BRIDGE"))

    async def go() -> None:
        for i, container in enumerate((docker, ContainerInfo("MESOS", DockerInfo("img")),
                                       ContainerInfo("MESOS", volumes=(Volume("/data", "/"),)))):
            t = TaskInfo(name="c", task_id=f"refused-{i}", agent_id="A1", resources=base.resources,
                         command=base.command, container=container)
            with pytest.raises(LaunchError, match="docker|image|volumes") as err:
                await h.launch(t)
            if i == 0:
                assert "DOCKER task on an agent without the docker containerizer" in str(err.value)
        assert h.c.containers() == set()
        result, _ = await h.run(task("true", tid="plain"))  # the helpers are fine
        assert result == (0, None)
    arun(go)
    assert not marker.exists()
    logged = Path(launch_log.log_path(str(h.work))).read_text()
    assert "plain" in logged and "refused-" not in logged


def test_launch_log_names_the_process_while_it_runs(h: Harness) -> None:
    async def go() -> None:
        pid, box = await h.launch(task("sleep 30"))
        [entry] = launch_log.read(str(h.work)).values()
        assert (entry.task_id, entry.sandbox, entry.pid) == ("t1", str(box), pid)
        assert entry.start_time == pytest.approx(psutil.Process(pid).create_time(), abs=0.05)
        assert launch_log.is_alive(entry) and os.getpgid(pid) == pid
        assert os.getsid(pid) == pid  # its own session
        assert h.c.containers() == {"t1"} and h.c.pid("t1") == pid
        assert h.c.handle("t1") == f"{pid}:{entry.start_time!r}"
        await h.c.kill("t1", 0)
        assert await h.c.wait("t1") == (None, signal.SIGKILL)
        assert launch_log.read(str(h.work)) == {}
    arun(go)


def test_a_task_gets_no_fd_of_the_agent(h: Harness) -> None:
    """Only stdin (/dev/null), stdout and stderr (its sandbox files): not the launch log,
    the exits' epoll set or the pidfds of tasks started before it."""
    async def go() -> None:
        await h.launch(task("exec sleep 30", tid="first"))
        pid, box = await h.launch(task("exec sleep 30", tid="second"))
        expected = {0: os.devnull, 1: str(box / "stdout"), 2: str(box / "stderr")}

        def fds() -> dict[int, str]:  # the loader opens libc for a moment as sleep starts
            out = {}
            for fd in os.listdir(f"/proc/{pid}/fd"):
                try:
                    out[int(fd)] = os.readlink(f"/proc/{pid}/fd/{fd}")
                except FileNotFoundError:
                    pass
            return out
        await wait_for_async(lambda: fds() == expected, timeout=5)  # a leaked fd would stay
        for t in ("first", "second"):
            await h.c.kill(t, 0)
            await h.c.wait(t)
    arun(go)


def test_a_burst_of_launches_goes_out_in_chunks_and_all_start(h: Harness) -> None:
    """More launches in one turn of the loop than threads times CHUNK_MAX: every one
    starts, each with its own sandbox files and its own log entry."""
    async def go() -> None:
        n = 70
        tasks = [task("sleep 30", tid=f"t{i}") for i in range(n)]
        started = await asyncio.gather(*(h.launch(t) for t in tasks))
        pids = [pid for pid, _ in started]
        assert len(set(pids)) == n and all(os.getpgid(p) == p for p in pids)
        assert all((box / "stdout").exists() and (box / "stderr").exists()
                   for _, box in started)
        assert launch_log.task_pids(str(h.work)) == {f"t{i}": pids[i] for i in range(n)}
        for t in tasks:
            await h.c.kill(t.task_id, 0)
            await h.c.wait(t.task_id)
        assert launch_log.read(str(h.work)) == {}
    arun(go)


async def _beside_a_good_one(h: Harness, *bad: TaskInfo) -> list:
    """Launch `bad` in one chunk with a good task; only the good one runs (it is killed
    afterwards). The bad ones' results."""
    results = await asyncio.gather(h.launch(task("sleep 30", tid="good")),
                                   *(h.launch(b) for b in bad), return_exceptions=True)
    assert h.c.containers() == {"good"}
    await h.c.kill("good", 0)
    await h.c.wait("good")
    return results[1:]


def test_a_failed_launch_in_a_chunk_does_not_stop_the_others(h: Harness) -> None:
    async def go() -> None:
        [bad] = await _beside_a_good_one(h, task(shell=False, args=("/no/such",), tid="bad"))
        assert isinstance(bad, LaunchError) and "/no/such" in str(bad)
    arun(go)


def test_an_environment_the_kernel_cannot_take_fails_that_task_alone(h: Harness) -> None:
    async def go() -> None:
        bad, nul = await _beside_a_good_one(h, task("true", env={"A=B": "x"}, tid="bad"),
                                            task("true", env={"NUL": "a\0b"}, tid="nul"))
        assert isinstance(bad, LaunchError) and "A=B" in str(bad)
        assert isinstance(nul, LaunchError) and "null" in str(nul)
    arun(go)


def test_kill_takes_the_whole_process_group_with_it(h: Harness) -> None:
    async def go() -> None:
        pid, _ = await h.launch(task("sleep 300 & (sleep 301 & wait) & wait"))
        await wait_for_async(lambda: len(group_members(pid)) >= 4)  # sh, sleep, subshell, sleep
        started = time.monotonic()
        await h.c.kill("t1", 5.0)
        assert time.monotonic() - started < 4.0  # SIGTERM was enough
        assert await h.c.wait("t1") == (None, signal.SIGTERM)
        await wait_for_async(lambda: group_members(pid) == [])
    arun(go)


def test_grace_period_then_sigkill(h: Harness) -> None:
    async def go() -> None:
        pid, _ = await h.launch(task("trap '' TERM; sleep 300 & wait; sleep 300"))
        await wait_for_async(lambda: len(group_members(pid)) >= 2)
        started = time.monotonic()
        await h.c.kill("t1", 0.5)
        assert time.monotonic() - started >= 0.5
        assert await h.c.wait("t1") == (None, signal.SIGKILL)
        await wait_for_async(lambda: group_members(pid) == [])
    arun(go)


def test_leftovers_of_an_exited_task_are_killed(h: Harness) -> None:
    async def go() -> None:
        pid, _ = await h.launch(task("sleep 300 & echo started"))
        assert await h.c.wait("t1") == (0, None)
        await wait_for_async(lambda: group_members(pid) == [])
    arun(go)


def test_kill_of_unknown_or_finished_task_is_a_no_op(h: Harness) -> None:
    async def go() -> None:
        await h.c.kill("nope", 1.0)
        await h.run(task("true"))
        await h.c.kill("t1", 1.0)
    arun(go)


def test_a_launch_cancelled_mid_spawn_leaves_no_process(tmp_path: Path) -> None:
    """The spawn runs in the launch helper: cancelling the launch (agent shutting down) must
    still kill what the helper started, and say in the launch log that it ended."""
    c = ProcessContainerizer(str(tmp_path / "work"))
    box = tmp_path / "box"
    marker = f"{30 + os.getpid() % 1000}.5"  # a sleep no one else runs
    task = TaskInfo(name="t", task_id="t1", agent_id="A1", resources=Resources.parse("cpus:0.1"),
                    command=CommandInfo(f"sleep {marker}"))

    def ours() -> list[psutil.Process]:
        return [p for p in psutil.Process().children(recursive=True)
                if p.status() != psutil.STATUS_ZOMBIE and marker in " ".join(p.cmdline())]

    def ended() -> bool:  # the launch log says it started, then that it ended
        log = Path(launch_log.log_path(str(tmp_path / "work")))
        return log.exists() and '["E",' in log.read_text()

    async def cancel_it() -> None:
        launch = asyncio.ensure_future(c.launch("t1", "F1", task, str(box)))
        await asyncio.sleep(0)  # the request goes to the helper
        launch.cancel()
        with pytest.raises(asyncio.CancelledError):
            await launch
        for _ in range(1000):  # the helper finishes its spawn, then the callback kills it
            await asyncio.sleep(0.01)
            if not ours() and ended():
                break
    asyncio.run(cancel_it())
    c.close()
    assert (box / "stdout").exists()  # it did spawn
    assert ours() == [] and c.containers() == set()
    assert launch_log.read(str(tmp_path / "work")) == {}


def test_a_dead_launch_helper_is_replaced_and_its_tasks_are_still_watched(h: Harness) -> None:
    """kill -9 of the helpers: a task they started is watched from then on by its pidfd (its
    exit status is lost with its parent, as after an agent restart), and the next launch
    starts a new helper."""
    async def go() -> None:
        first, _ = await h.launch(task("sleep 30", tid="first"))
        old = h.c.helper_pids()
        for pid in old:
            os.kill(pid, signal.SIGKILL)
        await wait_for_async(lambda: not set(old) & set(h.c.helper_pids()))
        await h.c.kill("first", 0)
        assert await asyncio.wait_for(h.c.wait("first"), 10) == (None, None)
        (code, _), _ = await h.run(task("exit 3", tid="second"))
        assert code == 3 and h.c.helper_pids() and not set(old) & set(h.c.helper_pids())
    arun(go)


def test_helpers_killed_mid_batch_leave_no_process_behind(h: Harness) -> None:
    """Launches in flight when their helper dies fail (or succeed, when the answer came
    first); whatever the helper started for a failed one is killed from the launch log."""
    async def go() -> None:
        launches = [asyncio.ensure_future(h.launch(task("sleep 31.5", tid=f"t{i}")))
                    for i in range(40)]
        await asyncio.sleep(0.01)
        for pid in h.c.helper_pids():
            os.kill(pid, signal.SIGKILL)
        results = await asyncio.gather(*launches, return_exceptions=True)
        failed = [r for r in results if isinstance(r, BaseException)]
        assert all(isinstance(r, LaunchError) for r in failed), failed
        running = {f"t{i}" for i, r in enumerate(results) if not isinstance(r, BaseException)}
        assert h.c.containers() == running

        def strays() -> list[int]:  # sleeps of this test the containerizer does not know
            known = {h.c.pid(t) for t in running}
            return [p.pid for p in psutil.process_iter(["cmdline", "status"])
                    if p.info["cmdline"] == ["sleep", "31.5"] and p.pid not in known
                    and p.info["status"] != psutil.STATUS_ZOMBIE]
        await wait_for_async(lambda: strays() == [])
        for t in running:
            await h.c.kill(t, 0)
            await h.c.wait(t)
    arun(go)


def test_orphans_of_a_previous_agent_process_are_killed_known_tasks_left(
        tmp_path: Path) -> None:
    """A kill -9ed agent's tasks outlive it. At the next start-up, the launch log's live
    entries of tasks the checkpoint does not know are SIGKILLed (their whole process group)
    and recorded as ended; a known task's process is left for recovery to reattach."""
    work = tmp_path / "work"
    env = {"PATH": os.environ["PATH"]}
    pgids: list[int] = []

    def box(tid: str) -> str:
        return paths.sandbox_dir(str(work), "A1", "F1", tid, "r1")

    async def first_life() -> None:
        c1 = ProcessContainerizer(str(work), base_env=env)
        for tid, cmd in [("known", "sleep 300"), ("orphan", "sleep 300 & sleep 301 & wait"),
                         ("dead", "sleep 300")]:
            pgids.append(await c1.launch(tid, "F1", task(cmd, tid=tid), box(tid)))
        await wait_for_async(lambda: len(group_members(pgids[1])) >= 3)
        helpers = c1.helper_pids()
        c1.close()  # the crash: no wait, no kill; the processes live on
        assert len(helpers) == 2 and not any(psutil.pid_exists(p) and
                                             psutil.Process(p).status() != psutil.STATUS_ZOMBIE
                                             for p in helpers)

    async def second_life() -> tuple[list[str], Any]:
        c2 = ProcessContainerizer(str(work), base_env=env)
        gone = await c2.remove_orphans({"known"})
        found = await c2.recover("known", "F1", task("sleep 300", tid="known"), box("known"),
                                 "")
        c2.close()
        return gone, found

    try:
        arun(first_life)
        known, orphan, dead = pgids
        os.killpg(dead, signal.SIGKILL)  # ended while no agent ran: nothing to kill
        wait_for(lambda: group_members(dead) == [], timeout=10)
        gone, found = arun(second_life)
        assert gone == [f"task orphan (pid {orphan})"]
        assert group_members(orphan) == []  # sh and both sleeps
        assert known in group_members(known)  # untouched
        assert found.what == RUNNING_FOUND and found.pid == known
        assert launch_log.task_pids(str(work)) == {"known": known}
    finally:
        for pgid in pgids:
            try:
                os.killpg(pgid, signal.SIGKILL)
            except ProcessLookupError:
                pass


def test_make_sandbox_first_run_later_run_and_an_existing_dir(tmp_path: Path) -> None:
    from mesos_agent.containerizer.sandbox import make_sandbox
    first = tmp_path / "fw/executors/t1/runs/r1"
    make_sandbox(str(first))
    assert first.is_dir() and os.readlink(tmp_path / "fw/executors/t1/runs/latest") == "r1"
    second = tmp_path / "fw/executors/t1/runs/r2"
    make_sandbox(str(second))  # the executor dir exists: the link moves to the new run
    assert second.is_dir() and os.readlink(tmp_path / "fw/executors/t1/runs/latest") == "r2"
    make_sandbox(str(second))  # again (a harness made it already): nothing breaks
    assert os.readlink(tmp_path / "fw/executors/t1/runs/latest") == "r2"
    assert sorted(p.name for p in (tmp_path / "fw/executors/t1/runs").iterdir()) == [
        "latest", "r1", "r2"]


def test_spread_roots_are_the_sandbox_root_and_the_agents_frameworks_dir() -> None:
    from mesos_agent import paths
    sandbox = paths.sandbox_dir("/w", "A", "F", "E", "R")
    assert paths.spread_roots(sandbox) == ["/w/slaves", "/w/slaves/A/frameworks"]
    assert paths.spread_roots(sandbox + "/") == ["/w/slaves", "/w/slaves/A/frameworks"]
    assert paths.spread_roots("/x/y/runs/R") == []  # not the agent's layout: left alone


def test_make_sandbox_marks_the_spread_roots_where_the_file_system_can(tmp_path: Path) -> None:
    import array
    import fcntl

    from mesos_agent import paths
    from mesos_agent.containerizer.sandbox import make_sandbox, mark_top_dir
    sandbox = paths.sandbox_dir(str(tmp_path), "A", "F", "E", "R")
    make_sandbox(sandbox)
    assert os.path.isdir(sandbox)
    for root in paths.spread_roots(sandbox):
        fd = os.open(root, os.O_RDONLY)
        try:
            flags = array.array("l", [0])
            fcntl.ioctl(fd, 0x80086601, flags, True)
            supported = True
        except OSError:  # tmpfs and others have no inode flags at all
            supported = False
        finally:
            os.close(fd)
        assert mark_top_dir(root) is supported
        if supported:
            assert flags[0] & 0x00020000, f"{root} is not marked +T"
    assert mark_top_dir(str(tmp_path / "missing")) is False
