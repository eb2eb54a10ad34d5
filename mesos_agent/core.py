"""The agent as a pure state machine: `handle(event, now) -> effects`.

It registers with the master (and re-registers with its id and its tasks after a master
change), heartbeats, turns RunTask/KillTask into LaunchTask/KillProcess effects and process
events into status updates, which the StatusUpdateManager delivers in order until acked.
No sockets, clock, processes or disk: the runtime (server.py) or a simulation feeds events
and performs the effects. Mesos's agent (src/slave/slave.cpp) is the reference behaviour.

The rules are split by subject: the master connection (core_registration), admission
(core_admission), health checks (core_health), recovery (core_recovery) and custom executors
(core_executors); this module holds tasks' lives and the handler tables.
"""
from __future__ import annotations

import random
from collections import deque
from collections.abc import Callable
from typing import Any

import attrs

from mesos_agent import core_executors, core_registration, paths, records
from mesos_agent.config import AgentConfig
from mesos_agent.core_admission import DUPLICATE_RUN, AdmissionRules
from mesos_agent.core_executors import REGISTRATION_TIMER, ExecutorRules
from mesos_agent.core_health import HealthRules
from mesos_agent.core_recovery import RecoveryRules, exit_status
from mesos_agent.core_registration import HEARTBEAT_TIMER, REGISTER_TIMER, RegistrationRules
from mesos_agent.events import (
    HealthResult,
    KillProcess,
    LaunchTask,
    StopAgent,
    StopHealthCheck,
    TaskExited,
    TaskLaunched,
    TaskLaunchFailed,
)
from mesos_agent.records import (
    ALIVE,
    DISCONNECTED,
    GONE,
    LAUNCHING,
    REGISTERING,
    RUNNING,
    ExecutorEntry,
    TaskEntry,
)
from mesos_agent.recovery import AgentIdRecord, Checkpoint, Recovered, TaskCheckpoint, TaskRemoved
from mesos_agent.status import StatusUpdateManager
from mesos_common import task_states as ts
from mesos_common.effects import Log, Received, Send, Start, TimerFired
from mesos_common.ids import new_uuid_bytes, random_prefix
from mesos_common.messages import (
    CheckpointResources,
    FrameworkInfo,
    KillTask,
    RunTask,
    ShutdownFramework,
    StatusUpdateAck,
    TaskInfo,
    TaskStatus,
)
from mesos_common.resources import EMPTY, Resources

__all__ = ["Agent", "AgentConfig", "DISCONNECTED", "REGISTERING", "RUNNING"]

Effects = list[Any]
_FwGroup = tuple[FrameworkInfo, list[dict[str, Any]], list[dict[str, Any]]]  # info, live, done


class Agent(RegistrationRules, HealthRules, AdmissionRules, RecoveryRules, ExecutorRules):
    """One agent's state: identity, connection, frameworks and tasks, pending updates."""

    def __init__(self, config: AgentConfig, rng: random.Random) -> None:
        self.config = config
        self._rng = rng
        self.agent_id: str | None = None
        self.epoch = 0.0  # from the latest AgentRegistered/AgentReregistered
        self._expected_master = ""  # id of the master detection found (MasterConnected)
        self.master_id: str | None = None
        self.state = DISCONNECTED
        self.heartbeat_interval: float | None = None
        self.start_time = 0.0
        self.terminating = False  # StopAgent: tasks are being killed, no new ones start
        self._last_heard = 0.0
        self._register_interval = config.registration_backoff.initial
        self._register_attempts = 0
        self._frameworks: dict[str, FrameworkInfo] = {}
        self._tasks: dict[str, TaskEntry] = {}
        # Custom executors by (framework, executor id) and by their container's key.
        self._executors: dict[tuple[str, str], ExecutorEntry] = {}
        self._by_key: dict[str, ExecutorEntry] = {}
        # Processes still to reap whose task record is gone (framework/agent shut down, or a
        # task killed while launching whose terminal update was already acked).
        self._draining: dict[str, str] = {}
        self._completed: deque[tuple[FrameworkInfo, dict[str, Any]]] = deque(
            maxlen=config.max_completed_tasks)
        # (framework, task) ids that already ran here: the master resends RunTask for a task
        # it has not heard of, and a late copy must not start a finished task again.
        self._ran: dict[tuple[str, str], None] = {}
        # Processes being killed still hold their resources; a RunTask that would not fit
        # beside them waits here (the master may already count them free, e.g. after it
        # declared them lost), so the agent never runs more than its capacity.
        self._draining_res: dict[str, Resources] = {}
        self._held: deque[RunTask] = deque()
        self._use_cache: Resources | None = None  # `_in_use()`, None when to be recomputed
        self.updates = StatusUpdateManager(config.status_retry, paused=True)
        # Tasks whose record or updates changed while handling the current event; with
        # `config.checkpoint` they are written (Checkpoint effects) before any other effect.
        self._dirty: set[str] = set()
        self._id_dirty = False

    # ------------------------------------------------------------ events

    def handle(self, event: Any, now: float) -> Effects:
        """Handle one event; checkpoints of what it changed come first (write-ahead)."""
        effects = EVENTS.get(type(event), Agent._unknown_event)(self, event, now)
        if not (self._dirty or self._id_dirty):
            return effects
        ckpts: Effects = []
        if self._id_dirty and self.agent_id is not None:
            ckpts.append(Checkpoint(AgentIdRecord(self.agent_id, self.reserved)))
        # An ack that only drops an update may be written lazily: losing it resends an
        # update the framework already has. One that lets the next update go must be
        # durable first (as in Mesos): after a crash the acked one would otherwise be
        # resent behind the next, e.g. TASK_STARTING again after TASK_RUNNING.
        lazy = (isinstance(event, Received) and isinstance(event.msg, StatusUpdateAck)
                and not any(isinstance(e, Send) for e in effects))
        for tid in sorted(self._dirty):
            entry = self._tasks.get(tid)
            ex = self._by_key.get(tid) if entry is None else None
            ckpts.append(Checkpoint(self._task_checkpoint(entry) if entry is not None
                                    else self._executor_checkpoint(ex) if ex is not None
                                    else TaskRemoved(tid), lazy=lazy))
        self._dirty.clear()
        self._id_dirty = False
        return ckpts + effects if self.config.checkpoint else effects

    def _touch(self, task_id: str) -> None:
        self._dirty.add(task_id)

    def _task_checkpoint(self, e: TaskEntry) -> TaskCheckpoint:
        return TaskCheckpoint(self._frameworks[e.framework_id], e.task, e.sandbox, e.run_id,
                              e.state, tuple(e.statuses), e.kill_requested, e.pid, e.container,
                              self.updates.pending(e.task_id))

    def _unknown_event(self, event: Any, now: float) -> Effects:
        return [Log("warning", f"agent: ignoring unknown event {type(event).__name__}")]

    def _on_recovered(self, event: Recovered, now: float) -> Effects:
        return self._recovered(event, now)

    def _start(self, event: Start, now: float) -> Effects:
        self.start_time = now
        return []

    def _timer(self, event: TimerFired, now: float) -> Effects:
        if event.key == REGISTER_TIMER:
            return self._registration_timeout(now)
        if event.key == HEARTBEAT_TIMER:
            return self._heartbeat(now)
        if isinstance(event.key, tuple) and event.key[0] == REGISTRATION_TIMER:
            return self._executor_timeout(event.key[1], now)
        return self.updates.on_timer(event.key, now)

    def _received(self, event: Received, now: float) -> Effects:
        self._last_heard = now  # anything from the master shows it is alive
        msg = event.msg
        return MESSAGES.get(type(msg), Agent._unexpected_message)(self, msg, now)

    def _task_launched(self, event: TaskLaunched, now: float) -> Effects:
        ex = self._by_key.get(event.task_id)
        if ex is not None:
            return self._executor_launched(ex, event, now)
        entry = self._tasks.get(event.task_id)
        if entry is None:  # draining or unknown: never leave a process we do not track
            known = self._draining.get(event.task_id) is not None
            return ([] if known else [Log("warning", f"unknown task {event.task_id} launched")]
                    ) + [KillProcess(event.task_id, 0.0)]
        if entry.process != LAUNCHING:
            return [Log("warning", f"task {event.task_id} reported launched twice")]
        entry.process, entry.pid, entry.container = ALIVE, event.pid, event.container
        self._touch(entry.task_id)
        if ts.is_terminal(entry.state) or self.terminating:  # killed while it was launching
            return [KillProcess(entry.task_id, 0.0)]
        return (self._update(entry, ts.STARTING, now) + self._update(entry, ts.RUNNING, now)
                + self._start_health(entry, now))

    def _task_launch_failed(self, event: TaskLaunchFailed, now: float) -> Effects:
        ex = self._by_key.get(event.task_id)
        if ex is not None:
            return self._executor_launch_failed(ex, event, now)
        if self._draining.pop(event.task_id, None) is not None:
            self._draining_res.pop(event.task_id, None)
            self._use_cache = None
            return self._launch_held(now)
        entry = self._tasks.get(event.task_id)
        if entry is None or entry.process != LAUNCHING:
            return [Log("warning", f"launch failure for unknown task {event.task_id}")]
        entry.process = GONE
        self._use_cache = None
        if ts.is_terminal(entry.state):
            return []
        if event.reason is not None:
            return self._update(entry, ts.FAILED, now, event.message, event.reason,
                                records.SOURCE_AGENT)
        return self._update(entry, ts.FAILED, now, f"Failed to launch container: {event.message}",
                            "REASON_CONTAINER_LAUNCH_FAILED", records.SOURCE_AGENT)

    def _task_exited(self, event: TaskExited, now: float) -> Effects:
        ex = self._by_key.get(event.task_id)
        if ex is not None:
            return self._executor_exited(ex, event, now)
        if self._draining.pop(event.task_id, None) is not None:
            self._draining_res.pop(event.task_id, None)
            self._use_cache = None
            return self._launch_held(now)
        entry = self._tasks.get(event.task_id)
        if entry is None or entry.process == GONE:
            return [Log("debug", f"exit of unknown task {event.task_id}")]
        entry.process = GONE
        self._use_cache = None
        stop: Effects = ([StopHealthCheck(entry.task_id)] if entry.task.health_check is not None
                         else [])
        if ts.is_terminal(entry.state):
            return stop
        return stop + self._exited(entry, event, now)

    def _exited(self, entry: TaskEntry, event: TaskExited, now: float) -> Effects:
        state, message, reason = exit_status(entry.kill_requested, event.exit_code, event.signal)
        if entry.health_killed:
            message = (f"Task killed after {entry.health_failures} consecutive failed health "
                       f"checks ({message})")
        kind, _, detail = (event.limitation or "").partition(": ")
        if kind == "memory" and not entry.kill_requested:
            state, reason = ts.FAILED, "REASON_CONTAINER_LIMITATION_MEMORY"
            message = f"{detail or 'Memory limit exceeded'} ({message})"
            return self._update(entry, state, now, message, reason, records.SOURCE_AGENT)
        return self._update(entry, state, now, message, reason)

    def _health_result(self, event: HealthResult, now: float) -> Effects:
        return self._on_health(event, now)

    def _stop_agent(self, event: StopAgent, now: float) -> Effects:
        self.terminating = True
        effects: Effects = [Log("info", f"stopping: killing {len(self._tasks)} task(s)")]
        for entry in self._tasks.values():
            if not ts.is_terminal(entry.state):
                entry.kill_requested = True
                if entry.process == ALIVE and not entry.executor_id:
                    effects.append(KillProcess(entry.task_id, self._grace(entry)))
        return effects + self._shutdown_executors(None)

    # ------------------------------------------------------------ messages

    def _unexpected_message(self, msg: Any, now: float) -> Effects:
        return [Log("warning", f"agent: unexpected message {type(msg).__name__} from master")]

    def _on_run_task(self, msg: RunTask, now: float) -> Effects:
        fid, task = msg.framework.id, msg.task
        refusal = self._refuse_run(fid, task.task_id, msg.epoch)
        if refusal is not None:
            level = "debug" if refusal == DUPLICATE_RUN else "warning"  # the master resends
            return [Log(level, f"not running task {task.task_id}: {refusal}")]
        assert fid is not None and self.agent_id is not None
        need = task.resources + self._executor_need(fid, task)
        if not self.total().contains(self._in_use() + need):
            if any(h.task.task_id == task.task_id for h in self._held):
                return []
            self._held.append(msg)
            return [Log("info", f"task {task.task_id} waits for killed tasks to free resources")]
        if task.agent_id != self.agent_id:
            task = attrs.evolve(task, agent_id=self.agent_id)
        if task.executor is not None:
            return self._run_with_executor(msg, task, now)
        run_id = random_prefix(self._rng)
        sandbox = paths.sandbox_dir(self.config.work_dir, self.agent_id, fid, task.task_id, run_id)
        self._frameworks[fid] = msg.framework
        self._tasks[task.task_id] = TaskEntry(fid, task, sandbox, run_id,
                                              statuses=[(ts.STAGING, now)])
        if self._use_cache is not None:  # kept up to date: no O(tasks) sum per RunTask
            self._use_cache = self._use_cache + task.resources
        self._touch(task.task_id)
        return [LaunchTask(fid, task, sandbox, run_id, self._run_as(task, msg.framework))]

    def _run_as(self, task: TaskInfo, framework: FrameworkInfo) -> str | None:
        """Mesos: the command's user, else the framework's, else --default_user; nobody's
        with --switch_user=false (the task runs as the agent does)."""
        if not self.config.switch_user:
            return None
        cmd_user = task.command.user if task.command is not None else None
        return cmd_user or framework.user or self.config.default_user or None

    def _on_kill_task(self, msg: KillTask, now: float) -> Effects:
        entry = self._tasks.get(msg.task_id)
        if entry is None or entry.framework_id != msg.framework_id:
            return self._kill_unknown(msg.framework_id, msg.task_id, now)
        if ts.is_terminal(entry.state):
            return [Log("info", f"task {msg.task_id} is already {entry.state}; not killing")]
        entry.kill_requested = True
        self._touch(entry.task_id)
        if entry.process == LAUNCHING:  # Mesos: killed before delivery to the executor
            return self._update(entry, ts.KILLED, now, "Task killed before it was launched",
                                "REASON_TASK_KILLED_DURING_LAUNCH", records.SOURCE_AGENT)
        grace = msg.grace_period if msg.grace_period is not None else self._grace(entry)
        effects: Effects = []
        caps = self._frameworks[entry.framework_id].capabilities
        if "TASK_KILLING_STATE" in caps and entry.state != ts.KILLING:
            effects += self._update(entry, ts.KILLING, now)
        if entry.executor_id:
            return effects + self._kill_on_executor(entry, max(0.0, grace))
        return effects + [KillProcess(entry.task_id, max(0.0, grace))]

    def _on_shutdown_framework(self, msg: ShutdownFramework, now: float) -> Effects:
        effects: Effects = [Log("info", f"shutting down framework {msg.framework_id}")]
        for entry in [e for e in self._tasks.values() if e.framework_id == msg.framework_id]:
            effects += self._drain(entry)
        effects += self._shutdown_executors(msg.framework_id)
        if not self._has_executors(msg.framework_id):
            self._frameworks.pop(msg.framework_id, None)
        return effects

    def _on_ack(self, msg: StatusUpdateAck, now: float) -> Effects:
        head = self.updates.head(msg.task_id)
        effects = self.updates.ack(msg.task_id, msg.uuid, now)
        if head is None or head.uuid != msg.uuid:
            return effects + [Log("debug", f"ignoring stale ack for task {msg.task_id}")]
        self._touch(msg.task_id)
        entry = self._tasks.get(msg.task_id)
        if entry is not None and entry.executor_id:
            effects += self._to_executor_acked(entry, head)
        if entry is not None and ts.is_terminal(head.state):
            self._forget(entry)
        return effects

    # ------------------------------------------------------------ tasks

    def _kill_unknown(self, framework_id: str, task_id: str, now: float) -> Effects:
        if task_id in self._draining or self.updates.pending(task_id):
            return [Log("info", f"kill of task {task_id}: already being removed")]
        fw = self._frameworks.get(framework_id)
        aware = fw is not None and "PARTITION_AWARE" in fw.capabilities
        status = self._status(task_id, ts.DROPPED if aware else ts.LOST, now, "Cannot find task",
                              "REASON_EXECUTOR_TERMINATED", records.SOURCE_AGENT)
        return [Log("warning", f"asked to kill unknown task {task_id}"),
                *self.updates.add(framework_id, status, now)]

    def _grace(self, entry: TaskEntry) -> float:
        g = entry.task.kill_grace_period
        return self.config.default_kill_grace if g is None else g

    def _drain(self, entry: TaskEntry) -> Effects:
        """Drop a task's record and updates; kill its process, reaping it in `_draining`."""
        del self._tasks[entry.task_id]
        self._use_cache = None
        self._remember_ran(entry)
        self._touch(entry.task_id)
        self._completed.append((self._frameworks[entry.framework_id],
                                records.executor_json(entry, self.agent_id or "", True)))
        effects = self.updates.remove(entry.task_id)
        if entry.executor_id:
            entry.process = GONE  # no process of its own: its executor is shut down
        if entry.process != GONE:
            self._draining[entry.task_id] = entry.framework_id
            self._draining_res[entry.task_id] = entry.task.resources
        if entry.process == ALIVE:
            effects.append(KillProcess(entry.task_id, self._grace(entry)))
        return effects

    def _forget(self, entry: TaskEntry) -> None:
        """The terminal update was acked: the task leaves (Mesos: to completed tasks)."""
        fid = entry.framework_id
        del self._tasks[entry.task_id]
        self._use_cache = None
        self._remember_ran(entry)
        self._touch(entry.task_id)
        self._completed.append((self._frameworks[fid],
                                records.executor_json(entry, self.agent_id or "", True)))
        if entry.process != GONE:  # killed while launching: reap the process when it comes
            self._draining[entry.task_id] = fid
            self._draining_res[entry.task_id] = entry.task.resources
        if not any(e.framework_id == fid for e in self._tasks.values()) \
                and not self._has_executors(fid):
            del self._frameworks[fid]

    def _status(self, task_id: str, state: str, now: float, message: str = "",
                reason: str | None = None, source: str = records.SOURCE_EXECUTOR,
                healthy: bool | None = None, uuid: bytes | None = None,
                data: bytes | None = None, executor_id: str = "") -> TaskStatus:
        return TaskStatus(task_id=task_id, state=state, agent_id=self.agent_id, message=message,
                          reason=reason, source=source, timestamp=now,
                          uuid=uuid or new_uuid_bytes(self._rng), healthy=healthy, data=data,
                          executor_id=executor_id or None)

    def _update(self, entry: TaskEntry, state: str, now: float, message: str = "",
                reason: str | None = None, source: str = records.SOURCE_EXECUTOR,
                uuid: bytes | None = None, data: bytes | None = None,
                healthy: bool | None = None) -> Effects:
        """Move a task to `state` and queue the status update; the one place tasks change.
        A custom executor's update keeps its `uuid` (it is acknowledged back by it)."""
        assert ts.can_transition(entry.state, state), (entry.task_id, entry.state, state)
        entry.state = state
        entry.statuses.append((state, now))
        if healthy is not None:
            entry.healthy = healthy
        if entry.executor_id and ts.is_terminal(state) and entry.process != GONE:
            entry.process = GONE  # its executor is done with it
            self._use_cache = None
        self._touch(entry.task_id)
        status = self._status(entry.task_id, state, now, message, reason, source, entry.healthy,
                              uuid, data, entry.executor_id)
        return self.updates.add(entry.framework_id, status, now)

    # ------------------------------------------------------------ views

    def tasks(self) -> dict[str, TaskEntry]:
        """Live task records by task id (read-only use)."""
        return dict(self._tasks)

    def wants_launch(self, task_id: str) -> bool:
        """Is the task still to be started (not ended or killed while it was prepared)?"""
        entry = self._tasks.get(task_id)
        return (entry is not None and not self.terminating
                and not ts.is_terminal(entry.state))

    def frameworks(self) -> dict[str, FrameworkInfo]:
        return dict(self._frameworks)

    def draining(self) -> set[str]:
        return set(self._draining)

    def containers(self) -> set[str]:
        """What the containerizer should be running for us: command tasks and executors."""
        return {tid for tid, e in self._tasks.items() if not e.executor_id} | set(self._by_key)

    def executors(self) -> list[ExecutorEntry]:
        """Live custom executors (read-only use)."""
        return list(self._executors.values())

    def state_json(self) -> dict[str, Any]:
        """The agent's `/state` document (Mesos agent shape, see records.py)."""
        aid = self.agent_id or ""
        by_fw: dict[str, _FwGroup] = {
            fid: (info, [], []) for fid, info in self._frameworks.items()}
        for e in self._tasks.values():
            if not e.executor_id:
                by_fw[e.framework_id][1].append(records.executor_json(e, aid, False))
        for ex in self._executors.values():
            by_fw[ex.framework_id][1].append(
                records.custom_executor_json(ex, list(self._executor_tasks(ex)), aid))
        done: dict[str, _FwGroup] = {}
        for info, completed in self._completed:
            fid = info.id or ""
            (by_fw if fid in by_fw else done).setdefault(fid, (info, [], []))[2].append(completed)
        used = sum((e.task.resources for e in self._tasks.values() if not ts.is_terminal(e.state)),
                   EMPTY) + sum((ex.info.resources for ex in self._executors.values()), EMPTY)
        cfg = self.config
        return {
            "version": cfg.version, "id": aid, "pid": f"slave(1)@{cfg.ip}:{cfg.port}",
            "hostname": cfg.hostname, "port": cfg.port, "state": self.state,
            "master_id": self.master_id or "", "start_time": self.start_time,
            "resources": cfg.resources.to_map(), "used_resources": used.to_map(),
            "reserved_resources": {r: self.reserved.reserved(r).to_map()
                                   for r in sorted(self.reserved.roles())},
            "attributes": dict(cfg.attributes), "flags": dict(cfg.flags),
            "frameworks": [records.framework_json(*v) for v in by_fw.values()],
            "completed_frameworks": [records.framework_json(*v) for v in done.values()],
        }

    def check_invariants(self) -> None:
        assert self.state in (DISCONNECTED, REGISTERING, RUNNING), self.state
        assert self.updates.paused == (self.state != RUNNING), (self.state, self.updates.paused)
        if self.state == RUNNING:
            assert self.agent_id is not None and self.heartbeat_interval is not None
        for tid, e in self._tasks.items():
            assert e.task.task_id == tid and e.framework_id in self._frameworks, tid
            assert tid not in self._draining, tid
            assert (e.state != ts.STAGING or e.process == LAUNCHING or self.terminating
                    or e.executor_id), tid
            assert e.process != GONE or ts.is_terminal(e.state), (tid, e.state)
            if ts.is_terminal(e.state):  # kept only until its terminal update is acked
                assert self.updates.has_terminal(tid), (tid, e.state)
        for fid in self._frameworks:
            assert any(e.framework_id == fid for e in self._tasks.values()) \
                or self._has_executors(fid), fid
        self._check_executors()
        for tid in self.updates.task_ids():
            assert tid in self._tasks or self.updates.has_terminal(tid), tid
        assert self._use_cache is None or self._use_cache == self._sum_in_use()
        self.updates.check_invariants()


#: Event -> handler (anything else is logged and ignored).
EVENTS: dict[type, Callable[[Agent, Any, float], Effects]] = {
    Recovered: Agent._on_recovered,
    Start: Agent._start,
    TimerFired: Agent._timer,
    Received: Agent._received,
    TaskLaunched: Agent._task_launched,
    TaskLaunchFailed: Agent._task_launch_failed,
    TaskExited: Agent._task_exited,
    HealthResult: Agent._health_result,
    StopAgent: Agent._stop_agent,
    **core_registration.EVENTS,
    **core_executors.EVENTS,
}

#: Message from the master -> handler (anything else is logged and ignored).
MESSAGES: dict[type, Callable[[Agent, Any, float], Effects]] = {
    CheckpointResources: Agent._on_checkpoint_resources,
    RunTask: Agent._on_run_task,
    KillTask: Agent._on_kill_task,
    ShutdownFramework: Agent._on_shutdown_framework,
    StatusUpdateAck: Agent._on_ack,
    **core_registration.MESSAGES,
    **core_executors.MESSAGES,
}
