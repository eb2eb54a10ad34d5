"""Tasks as Docker containers, through the Docker engine's API (`docker_engine.Engine`).

What a task becomes is `docker_options.create_request`. Nothing waits on a container for its
life: one event stream (`docker events` for this agent's label) tells when containers die,
and a listing after every (re)connection, and every RESYNC seconds, catches an exit the
stream missed; one task copies every container's output (`docker_logs`). Every engine call
has a deadline (`--docker_api_timeout`), so a hung engine fails the launches that wait on it
(TASK_FAILED with the reason) and the agent goes on serving; once a call has timed out,
launches queued behind it ask the engine briefly rather than wait a deadline each. A
container created by a call that timed out is removed once the engine shows it. Kill =
`docker stop` with the task's grace period (SIGTERM, then SIGKILL); a container is removed
once it has ended.
"""
from __future__ import annotations

import asyncio
import logging
import math
import os
import time
from collections.abc import AsyncIterator
from typing import Any

import docker
from attrs import define, frozen

from mesos_agent.containerizer.base import LaunchError
from mesos_agent.containerizer.docker_engine import Engine, EngineError, EngineTimeout
from mesos_agent.containerizer.docker_logs import LogCopier, start_ns
from mesos_agent.containerizer.docker_options import (
    LABEL_AGENT,
    LABEL_TASK,
    SANDBOX_MOUNT,
    create_request,
)
from mesos_agent.containerizer.isolation import Usage
from mesos_agent.containerizer.sandbox import make_sandbox
from mesos_agent.containerizer.users import chown_tree
from mesos_agent.recovery import EXITED_FOUND, MISSING, RUNNING_FOUND, Found
from mesos_common.messages import TaskInfo

__all__ = ["DockerContainerizer", "LABEL_AGENT", "LABEL_TASK", "SANDBOX_MOUNT"]

log = logging.getLogger(__name__)

MEMORY_LIMITATION = "memory"
API_TIMEOUT = 60.0  # default deadline of one engine call
PULL_TIMEOUT = 600.0
LAUNCHES_IN_FLIGHT = 16  # launches talking to the engine at once; the rest wait their turn
STATS_IN_FLIGHT = 8  # `docker stats` calls at once (/monitor/statistics asks for every task)
RESYNC = 30.0
PING = 1.0  # a hung engine is asked again this often, and this long before a launch
ABANDONED_KEEP = 600.0  # how long a timed-out create may still show up in the engine
RECONNECT_MAX = 5.0


@define
class _Container:
    task_id: str
    id: str
    name: str
    exited: asyncio.Future[dict[str, Any]]
    pid: int = 0
    started: bool = False
    killed: bool = False
    memory_limit: int = 0
    memory_peak: int | None = None  # read at the engine's "oom" event


@define
class _Limit:
    kind: str
    message: str


class DockerContainerizer:
    def __init__(self, work_dir: str, engine: Engine | None = None,
                 base_env: dict[str, str] | None = None,
                 api_timeout: float = API_TIMEOUT) -> None:
        self.work_dir = work_dir
        self.agent_label = os.path.abspath(work_dir)
        self.engine = engine if engine is not None else Engine(timeout=api_timeout)
        self.base_env = dict(base_env or {})
        self.logs = LogCopier(self.engine)
        self._containers: dict[str, _Container] = {}  # by task id
        self._by_id: dict[str, _Container] = {}
        self._limits: dict[str, _Limit] = {}
        # Containers whose launch timed out, by name: when they were given up (monotonic).
        self._abandoned: dict[str, float] = {}
        # Our own tasks (the event stream, the log copier): started by the first launch or
        # recovery (they need the agent's loop), cancelled by `close`.
        self._tasks: list[asyncio.Task[None]] = []
        self._launch_slots = asyncio.Semaphore(LAUNCHES_IN_FLIGHT)
        self._stats_slots = asyncio.Semaphore(STATS_IN_FLIGHT)

    def ping(self) -> None:
        """Raise unless the engine answers (at start-up, before the event loop runs)."""
        client = docker.DockerClient(base_url=f"unix://{self.engine.path}", timeout=10)
        try:
            client.ping()
        finally:
            client.close()

    def close(self) -> None:
        for t in self._tasks:
            t.cancel()
        self._tasks.clear()
        self.engine.close()

    def _start(self) -> None:
        if not self._tasks:
            self._tasks = [asyncio.create_task(self._watch_exits(), name="docker-events"),
                           asyncio.create_task(self.logs.run(), name="docker-logs")]

    # ------------------------------------------------------------ launch

    async def launch(self, task_id: str, framework_id: str, task: TaskInfo, sandbox: str) -> int:
        if task_id in self._containers:
            raise LaunchError(f"task {task_id} is already running")
        self._start()
        assert task.container is not None and task.container.docker is not None
        make_sandbox(sandbox)
        name, body = create_request(task_id, framework_id, task, sandbox, self.agent_label,
                                    self.base_env)
        _chown_to(sandbox, body.get("User", ""))
        async with self._launch_slots:
            await self._check_engine(body["Image"])
            try:
                if task.container.docker.force_pull_image:
                    await self._pull(body["Image"])
                c = await self._create(task_id, name, body)
                await self.engine.call("POST", f"/containers/{c.id}/start", what="start")
                c.started = True
                info = await self.engine.call("GET", f"/containers/{c.id}/json", what="inspect")
            except EngineError as e:
                await self._discard(task_id, name, timed_out=isinstance(e, EngineTimeout))
                raise LaunchError(f"docker run {body['Image']}: {e.message}") from None
        c.pid = int(info["State"].get("Pid") or 0)
        self.logs.add(c.id, sandbox, log_path=info.get("LogPath") or "")
        log.info("task %s: container %s (pid %d) from %s", task_id, c.id[:12], c.pid,
                 body["Image"])
        return c.pid

    async def _check_engine(self, image: str) -> None:
        """After a call timed out, a launch asks the engine briefly first instead of queueing
        a full deadline behind the others (hundreds of launches would take that long each)."""
        if not self.engine.hung:
            return
        try:
            await self.engine.call("GET", "/_ping", timeout=min(PING, self.engine.timeout),
                                   what="ping", raw=True)
        except EngineError:
            raise LaunchError(f"docker run {image}: the Docker engine is not answering (a call "
                              f"timed out after {self.engine.timeout:g} s); not attempted"
                              ) from None

    async def _create(self, task_id: str, name: str, body: dict[str, Any]) -> _Container:
        """Create the container (pulling its image when the engine does not have it, as
        `docker run` does) and track it at once, so its exit is caught however early."""
        try:
            created = await self.engine.call("POST", "/containers/create", params={"name": name},
                                             body=body, what="create container")
        except EngineError as e:
            if e.status != 404 or "image" not in e.message.lower():
                raise
            await self._pull(body["Image"])
            created = await self.engine.call("POST", "/containers/create",
                                             params={"name": name}, body=body,
                                             what="create container")
        c = _Container(task_id, created["Id"], name, asyncio.get_running_loop().create_future(),
                       memory_limit=body["HostConfig"].get("Memory", 0))
        self._containers[task_id] = self._by_id[c.id] = c
        return c

    async def _pull(self, image: str) -> None:
        try:
            await self.engine.pull(image, timeout=max(PULL_TIMEOUT, self.engine.timeout))
        except EngineError as e:
            e.message = f"Failed to pull image {image}: {e.message}"
            raise

    async def _discard(self, task_id: str, name: str, timed_out: bool) -> None:
        """Undo a failed launch. After a timeout the engine may yet create the container
        (and another call would only wait again): the event watcher removes it when it
        shows up, in an event or a listing."""
        c = self._containers.pop(task_id, None)
        if c is not None:
            self._by_id.pop(c.id, None)
        if timed_out:
            self._abandoned[name] = time.monotonic()
            return
        try:
            await self.engine.call("DELETE", f"/containers/{name}", params={"force": True},
                                   what="remove container")
        except EngineError:
            pass

    # ------------------------------------------------------------ exits

    async def _watch_exits(self) -> None:
        """Follow the engine's events for our containers; re-list after every reconnection
        (and every RESYNC seconds) so that no exit goes unseen."""
        backoff, failing = 0.1, False
        filters = {"type": ["container"], "label": [f"{LABEL_AGENT}={self.agent_label}"],
                   "event": ["create", "die", "oom"]}
        while True:
            try:
                async with self.engine.event_stream(filters) as events:
                    await self._resync()
                    backoff, failing = 0.1, False
                    await self._follow(aiter(events))
                log.warning("the Docker engine closed its event stream; reconnecting")
            except EngineError as e:
                # once per outage, not at every retry
                log.log(logging.DEBUG if failing else logging.WARNING,
                        "Docker events: %s; retrying (every %.0f s at most)", e.message,
                        RECONNECT_MAX)
                failing = True
            except Exception:
                log.exception("Docker events failed; retrying in %.1f s", backoff)
            await asyncio.sleep(backoff)
            backoff = min(RECONNECT_MAX, backoff * 2)

    async def _follow(self, events: AsyncIterator[dict[str, Any]]) -> None:
        """Handle events until the stream ends; list again whenever it is quiet for RESYNC
        (PING while the engine seems hung: the listing tells when it is back). The read of
        the next event is never cancelled meanwhile: that would end the stream."""
        reading: asyncio.Task[dict[str, Any]] | None = None
        try:
            while True:
                if reading is None:
                    reading = asyncio.ensure_future(anext(events))
                done, _ = await asyncio.wait({reading},
                                             timeout=PING if self.engine.hung else RESYNC)
                if not done:
                    await self._resync()
                    continue
                try:
                    ev = reading.result()
                except StopAsyncIteration:
                    return
                finally:
                    reading = None
                self.engine.hung = False
                await self._on_event(ev)
        finally:
            if reading is not None:
                reading.cancel()

    async def _on_event(self, ev: dict[str, Any]) -> None:
        action, cid = ev.get("Action") or ev.get("status"), ev.get("id", "")
        attrs = (ev.get("Actor") or {}).get("Attributes") or {}
        c = self._by_id.get(cid)
        if action == "die" and c is not None:
            await self._resolve(c)
        elif action == "oom" and c is not None:
            c.memory_peak = _memory_peak(cid)
        elif action == "create" and c is None and attrs.get("name") in self._abandoned:
            await self._remove_abandoned(cid, attrs["name"])

    async def _resync(self) -> None:
        """List our containers: resolve the tracked ones that are not running any more,
        remove abandoned launches."""
        try:
            listed = await self.engine.call("GET", "/containers/json", what="list containers",
                                            params={"all": True, "filters": {"label": [
                                                f"{LABEL_AGENT}={self.agent_label}"]}})
        except EngineError as e:
            log.warning("listing containers: %s", e.message)
            return
        waiting = {c.id for c in self._by_id.values() if c.started and not c.exited.done()}
        plan = resync_plan(listed, waiting, self._abandoned, time.monotonic())
        for cid, name in plan.remove:
            await self._remove_abandoned(cid, name)
        for name in plan.forget:
            self._abandoned.pop(name, None)
        for cid in plan.resolve:
            c = self._by_id.get(cid)
            if c is not None:
                await self._resolve(c)

    async def _resolve(self, c: _Container) -> None:
        """The container died: its final state settles `c.exited` (unless it is running
        again or the engine does not answer, then the next resync looks again)."""
        if c.exited.done():
            return
        try:
            info = await self.engine.call("GET", f"/containers/{c.id}/json", what="inspect")
            state = info.get("State") or {}
        except EngineError as e:
            if e.status != 404:
                log.warning("container %s: %s", c.id[:12], e.message)
                return
            state = {"ExitCode": -1}
        if state.get("Running"):
            return
        if state.get("OOMKilled"):
            self._limits[c.task_id] = _Limit(MEMORY_LIMITATION, _oom_message(c))
        if not c.exited.done():
            c.exited.set_result(state)

    async def _remove_abandoned(self, cid: str, name: str) -> None:
        log.warning("removing container %s (%s): its launch timed out", cid[:12], name)
        self._abandoned.pop(name, None)
        await self._remove(cid)

    # ------------------------------------------------------------ wait / kill

    async def wait(self, task_id: str) -> tuple[int | None, int | None]:
        c = self._containers[task_id]
        state = await asyncio.shield(c.exited)
        await self.logs.flush(c.id)
        await self._remove(c.id)
        self._containers.pop(task_id, None)
        self._by_id.pop(c.id, None)
        code = int(state.get("ExitCode", -1))
        if code < 0:
            return None, None
        if code > 128 and (c.killed or task_id in self._limits):
            return None, code - 128  # the engine reports a signal death as 128 + signal
        return code, None

    async def _remove(self, cid: str) -> None:
        try:
            await self.engine.call("DELETE", f"/containers/{cid}", params={"force": True,
                                                                          "v": True},
                                   what="remove container")
        except EngineError as e:
            if e.status != 404:
                log.error("cannot remove container %s: %s", cid[:12], e.message)

    async def kill(self, task_id: str, grace_period: float) -> None:
        c = self._containers.get(task_id)
        if c is None or c.exited.done():
            return
        c.killed = True
        grace = max(0, math.ceil(grace_period))  # the engine counts whole seconds
        try:
            if grace <= 0:
                await self.engine.call("POST", f"/containers/{c.id}/kill", what="kill")
            else:
                await self.engine.call("POST", f"/containers/{c.id}/stop", params={"t": grace},
                                       timeout=grace + self.engine.timeout, what="stop")
        except EngineError as e:
            if e.status not in (304, 404, 409):  # already stopped / gone / not running
                log.warning("task %s: docker stop %s: %s", task_id, c.id[:12], e.message)

    def containers(self) -> set[str]:
        return set(self._containers)

    async def usage(self, task_id: str) -> Usage | None:
        """From `docker stats` (one shot)."""
        c = self._containers.get(task_id)
        if c is None:
            return None
        try:
            async with self._stats_slots:
                st = await self.engine.call("GET", f"/containers/{c.id}/stats", what="stats",
                                            params={"stream": False, "one-shot": True})
        except EngineError:
            return None
        mem, cpu = st.get("memory_stats") or {}, (st.get("cpu_stats") or {}).get("cpu_usage", {})
        detail = mem.get("stats") or {}
        rss = detail.get("total_rss", detail.get("rss", detail.get("anon", mem.get("usage"))))
        user, system = cpu.get("usage_in_usermode"), cpu.get("usage_in_kernelmode")
        return Usage(mem_rss_bytes=rss, mem_limit_bytes=mem.get("limit"),
                     cpus_user_time_secs=None if user is None else user / 1e9,
                     cpus_system_time_secs=None if system is None else system / 1e9)

    def limitation(self, task_id: str) -> str | None:
        """`kind: message` (what the limit was and what the task used), as the isolators say."""
        limit = self._limits.pop(task_id, None)
        if limit is None:
            return None
        return f"{limit.kind}: {limit.message}" if limit.message else limit.kind

    def handle(self, task_id: str) -> str:
        c = self._containers.get(task_id)
        return c.id if c is not None else ""

    def container_id(self, task_id: str) -> str | None:
        c = self._containers.get(task_id)
        return c.id if c is not None else None

    # ------------------------------------------------------------ recovery

    async def recover(self, task_id: str, framework_id: str, task: TaskInfo, sandbox: str,
                      handle: str) -> Found:
        """Find the task's container by id, else by labels; reattach when it runs."""
        self._start()
        info = None
        if handle:
            try:
                info = await self.engine.call("GET", f"/containers/{handle}/json",
                                              what="inspect")
            except EngineError as e:
                if e.status != 404:
                    raise
        if info is None:
            found = await self.engine.call("GET", "/containers/json", what="list containers",
                                           params={"all": True, "filters": {"label": [
                                               f"{LABEL_AGENT}={self.agent_label}",
                                               f"{LABEL_TASK}={task_id}"]}})
            if not found:
                return Found(MISSING)
            info = await self.engine.call("GET", f"/containers/{found[0]['Id']}/json",
                                          what="inspect")
        state = info.get("State") or {}
        if state.get("Running"):
            c = _Container(task_id, info["Id"], info.get("Name", "").lstrip("/"),
                           asyncio.get_running_loop().create_future(),
                           pid=int(state.get("Pid") or 0), started=True,
                           memory_limit=(info.get("HostConfig") or {}).get("Memory") or 0)
            self._containers[task_id] = self._by_id[c.id] = c
            self.logs.add(c.id, sandbox, start_ns(sandbox), info.get("LogPath") or "")
            log.info("task %s: reattached to container %s", task_id, c.id[:12])
            return Found(RUNNING_FOUND, pid=c.pid)
        code = int(state.get("ExitCode", -1))
        await self._remove(info["Id"])
        return Found(EXITED_FOUND, exit_code=code if code >= 0 else None)

    async def remove_orphans(self, known: set[str]) -> list[str]:
        """Remove this agent's containers that no checkpointed task owns."""
        found = await self.engine.call("GET", "/containers/json", what="list containers",
                                       params={"all": True, "filters": {"label": [
                                           f"{LABEL_AGENT}={self.agent_label}"]}})
        gone = []
        for x in found:
            if (x.get("Labels") or {}).get(LABEL_TASK) not in known:
                await self._remove(x["Id"])
                gone.append(f"container {x['Id'][:12]}")
        return gone


@frozen
class Resync:
    resolve: list[str]  # watched containers the engine does not show running: look closer
    remove: list[tuple[str, str]]  # (id, name) of abandoned launches the engine shows
    forget: list[str]  # abandoned names the engine has not shown for ABANDONED_KEEP


def resync_plan(listed: list[dict[str, Any]], watched: set[str], abandoned: dict[str, float],
                now: float) -> Resync:
    """What a listing of our containers (`GET /containers/json`) means (pure): `watched`
    are the started containers whose exit is still awaited, `abandoned` the names of
    timed-out launches with when they were given up."""
    running = {x["Id"] for x in listed if x.get("State") == "running"}
    names = {x["Id"]: (x.get("Names") or ["/"])[0].lstrip("/") for x in listed}
    return Resync(
        resolve=sorted(watched - running),
        remove=[(cid, name) for cid, name in names.items()
                if name in abandoned and cid not in watched],
        forget=[n for n, t in abandoned.items()
                if t < now - ABANDONED_KEEP and n not in names.values()])


def _chown_to(sandbox: str, user: str) -> None:
    """A task run as another user owns its sandbox (as Mesos chowns it), fetched files too."""
    uid, _, gid = user.partition(":")
    if uid.isdigit() and os.geteuid() == 0:
        try:
            chown_tree(sandbox, int(uid), int(gid) if gid.isdigit() else -1)
        except OSError as e:
            raise LaunchError(f"cannot hand the sandbox to user {user}: {e}") from None


_PEAK_FILES = ("/sys/fs/cgroup/memory/docker/{}/memory.max_usage_in_bytes",
               "/sys/fs/cgroup/memory/system.slice/docker-{}.scope/memory.max_usage_in_bytes",
               "/sys/fs/cgroup/docker/{}/memory.peak",
               "/sys/fs/cgroup/system.slice/docker-{}.scope/memory.peak")


def _memory_peak(cid: str) -> int | None:
    """The container's peak memory use from its cgroup, while it still exists."""
    for pattern in _PEAK_FILES:
        try:
            with open(pattern.format(cid)) as f:
                return int(f.read().strip())
        except (OSError, ValueError):
            continue
    return None


def _mb(n: int) -> str:
    return f"{n / 2**20:.0f} MB"


def _oom_message(c: _Container) -> str:
    limit = _mb(c.memory_limit) if c.memory_limit else "its limit"
    used = (f"used {_mb(c.memory_peak)}" if c.memory_peak is not None
            else "usage reached the limit")
    return (f"Memory limit exceeded: the container's memory limit is {limit}, {used}; "
            f"the Docker engine's OOM killer ended a process")
