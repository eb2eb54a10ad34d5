"""Custom executors on the agent (a mixin of `core.Agent`; pure, like the core).

A task with an ExecutorInfo is not a process of its own: the agent starts the executor once
per (framework, executor id) - a container whose command is the executor's, with the Mesos
environment its driver reads - and hands it the task over its `POST /api/v1/executor` stream
once it has subscribed. Tasks that arrive before that wait (their `process` is LAUNCHING).
The executor's updates go through the status-update manager like any other (its uuid kept,
so the acknowledgement goes back to it as ACKNOWLEDGED); its messages go to the master.

An executor that does not subscribe within `executor_registration_timeout` is killed and its
tasks fail (REASON_EXECUTOR_REGISTRATION_TIMEOUT); one whose process ends fails its
remaining tasks (REASON_EXECUTOR_TERMINATED, or KILLED when they were being killed) and the
master hears ExecutorExited (the scheduler gets FAILURE). Its container holds the executor's
own resources beside its tasks'. Mesos: src/slave/slave.cpp (Executor, launchExecutor).
"""
from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import attrs

from mesos_agent import paths, records
from mesos_agent.config import AgentConfig
from mesos_agent.core_base import AgentBase
from mesos_agent.events import (
    EndExecutorStream,
    ExecutorDisconnected,
    ExecutorMessage,
    ExecutorSubscribe,
    ExecutorSubscribed,
    ExecutorUpdate,
    KillProcess,
    LaunchTask,
    ResizeContainer,
    TaskExited,
    TaskLaunched,
    TaskLaunchFailed,
    ToExecutor,
)
from mesos_agent.records import (
    ALIVE,
    EXEC_LAUNCHING,
    EXEC_RUNNING,
    EXEC_TERMINATING,
    EXECUTOR_STATES,
    GONE,
    LAUNCHING,
    RUNNING,
    ExecutorEntry,
    TaskEntry,
)
from mesos_agent.recovery import RUNNING_FOUND, RecoveredTask, TaskCheckpoint
from mesos_common import task_states as ts
from mesos_common.effects import CancelTimer, Log, Send, SetTimer
from mesos_common.ids import random_prefix
from mesos_common.messages import (
    ExecutorExited,
    FrameworkInfo,
    FrameworkMessage,
    KillTask,
    RunTask,
    ShutdownExecutor,
    StatusUpdateAck,
    TaskInfo,
    TaskStatus,
)
from mesos_common.resources import EMPTY, Resources

Effects = list[Any]
REGISTRATION_TIMER = "executor_registration"  # key: (REGISTRATION_TIMER, container key)
KEY_PREFIX = "executor."  # the containerizer's id of an executor: executor.<id>.<run>


def executor_key(executor_id: str, run_id: str) -> str:
    return f"{KEY_PREFIX}{executor_id}.{run_id}"


def is_executor_container(task: TaskInfo) -> bool:
    """A checkpointed TaskInfo that is an executor's container, not a task."""
    return (task.executor is not None and task.command is not None
            and task.task_id.startswith(KEY_PREFIX))


def executor_environment(config: AgentConfig, framework: FrameworkInfo, executor_id: str,
                         agent_id: str, sandbox: str) -> dict[str, str]:
    """What pymesos's MesosExecutorDriver (and Mesos's libraries) read. MESOS_CHECKPOINT is
    set only for checkpointing frameworks: pymesos takes any value, "0" too, as true."""
    host = config.ip if config.ip not in ("0.0.0.0", "") else config.hostname
    env = {
        "MESOS_AGENT_ENDPOINT": f"{host}:{config.port}", "MESOS_FRAMEWORK_ID": framework.id or "",
        "MESOS_EXECUTOR_ID": executor_id, "MESOS_AGENT_ID": agent_id, "MESOS_SLAVE_ID": agent_id,
        "MESOS_DIRECTORY": sandbox, "MESOS_SANDBOX": sandbox,
        "MESOS_SLAVE_PID": f"slave(1)@{host}:{config.port}",
        "MESOS_EXECUTOR_SHUTDOWN_GRACE_PERIOD": f"{config.executor_shutdown_grace:g}secs",
        "MESOS_HTTP_COMMAND_EXECUTOR": "0",
    }
    if framework.checkpoint:
        env["MESOS_CHECKPOINT"] = "1"
        env["MESOS_RECOVERY_TIMEOUT"] = "15mins"
    return env


class ExecutorRules(AgentBase):
    """Uses the Agent's state, `_touch`, `_update` and the admission rules' `_launch_held`
    (declared in core_base.AgentBase)."""

    # ------------------------------------------------------------ launching

    def _executor_need(self, framework_id: str, task: TaskInfo) -> Resources:
        """What the task's executor adds here: its resources unless it runs already."""
        ex = task.executor
        if ex is None or (framework_id, ex.executor_id) in self._executors:
            return EMPTY
        return ex.resources

    def _run_with_executor(self, msg: RunTask, task: TaskInfo, now: float) -> Effects:
        """The RunTask of a task with an ExecutorInfo, admitted and fitting."""
        fid = msg.framework.id or ""
        assert task.executor is not None and self.agent_id is not None
        eid = task.executor.executor_id
        effects: Effects = []
        ex = self._executors.get((fid, eid))
        if ex is None:
            run_id = random_prefix(self._rng)
            sandbox = paths.sandbox_dir(self.config.work_dir, self.agent_id, fid, eid, run_id)
            key = executor_key(eid, run_id)
            env = executor_environment(self.config, msg.framework, eid, self.agent_id, sandbox)
            info = attrs.evolve(task.executor, framework_id=fid)
            command = attrs.evolve(info.command, environment={**info.command.environment, **env})
            # The container's limits: the executor's resources and its first task's.
            container = TaskInfo(name=info.name or f"executor {eid}", task_id=key,
                                 agent_id=self.agent_id, resources=info.resources + task.resources,
                                 command=command, executor=info)
            ex = ExecutorEntry(msg.framework, info, key, container, sandbox, run_id)
            self._executors[(fid, eid)] = self._by_key[key] = ex
            self._touch(key)
            user = (info.command.user or msg.framework.user or None
                    ) if self.config.switch_user else None
            effects.append(LaunchTask(fid, container, sandbox, run_id, user))
        self._frameworks[fid] = msg.framework
        entry = TaskEntry(fid, task, ex.sandbox, ex.run_id, statuses=[(ts.STAGING, now)])
        self._tasks[task.task_id] = entry
        self._use_cache = None
        self._touch(task.task_id)
        if ex.state == EXEC_TERMINATING:
            return effects + self._update(entry, ts.FAILED, now, "Executor is terminating",
                                          "REASON_EXECUTOR_TERMINATED", records.SOURCE_AGENT)
        effects += self._grow(ex)
        if ex.state == EXEC_RUNNING and ex.connected:
            effects += self._deliver(ex, entry)
        return effects

    def _grow(self, ex: ExecutorEntry) -> Effects:
        """Its container's limits cover the executor and all its live tasks; they grow as
        tasks join and are not shrunk (the kernel would reclaim, or OOM-kill, to fit)."""
        want = ex.info.resources
        for e in self._executor_tasks(ex):
            if not ts.is_terminal(e.state):
                want = want + e.task.resources
        have = ex.limits or ex.container_task.resources
        cpus, mem = (max(want.scalar(n), have.scalar(n)) for n in ("cpus", "mem"))
        if cpus <= have.scalar("cpus") and mem <= have.scalar("mem"):
            return []
        ex.limits = Resources.from_scalars(cpus=cpus, mem=mem)
        return [ResizeContainer(ex.key, ex.limits)] if ex.process == ALIVE else []

    def _deliver(self, ex: ExecutorEntry, entry: TaskEntry) -> Effects:
        entry.process = ALIVE
        self._touch(entry.task_id)
        return [ToExecutor(ex.framework_id, ex.info.executor_id, RunTask(ex.framework, entry.task))]

    def _executor_tasks(self, ex: ExecutorEntry) -> Iterator[TaskEntry]:
        eid = ex.info.executor_id
        for e in list(self._tasks.values()):
            if e.framework_id == ex.framework_id and e.executor_id == eid:
                yield e

    # ------------------------------------------------------------ its container

    def _executor_launched(self, ex: ExecutorEntry, event: TaskLaunched, now: float) -> Effects:
        ex.process, ex.pid, ex.container = ALIVE, event.pid, event.container
        self._touch(ex.key)
        if ex.state == EXEC_TERMINATING or self.terminating:
            return [KillProcess(ex.key, 0.0)]
        grown = [ResizeContainer(ex.key, ex.limits)] if ex.limits is not None else []
        return grown + [SetTimer((REGISTRATION_TIMER, ex.key),
                                 now + self.config.executor_registration_timeout)]

    def _executor_launch_failed(self, ex: ExecutorEntry, event: TaskLaunchFailed,
                                now: float) -> Effects:
        ex.process = GONE
        reason = event.reason or "REASON_CONTAINER_LAUNCH_FAILED"
        return self._executor_gone(ex, now, -1, f"Failed to launch executor: {event.message}",
                                   reason)

    def _executor_exited(self, ex: ExecutorEntry, event: TaskExited, now: float) -> Effects:
        ex.process = GONE
        if event.signal is not None:
            status, how = event.signal, f"terminated by signal {event.signal}"
        else:
            code = event.exit_code if event.exit_code is not None else -1
            status, how = code << 8 if code >= 0 else code, f"exited with status {code}"
        return self._executor_gone(ex, now, status, f"Executor {how}",
                                   "REASON_EXECUTOR_TERMINATED")

    def _executor_gone(self, ex: ExecutorEntry, now: float, status: int, message: str,
                       reason: str) -> Effects:
        """Its process is gone: its remaining tasks end, the master and its stream hear."""
        fid, eid = ex.framework_id, ex.info.executor_id
        effects: Effects = [CancelTimer((REGISTRATION_TIMER, ex.key)),
                            EndExecutorStream(fid, eid),
                            Log("info", f"executor {eid} of framework {fid}: {message}")]
        for entry in self._executor_tasks(ex):
            if not ts.is_terminal(entry.state):
                state = ts.KILLED if entry.kill_requested else ts.FAILED
                effects += self._update(entry, state, now, message, reason, records.SOURCE_AGENT)
        del self._executors[(fid, eid)]
        del self._by_key[ex.key]
        self._touch(ex.key)
        self._use_cache = None
        if self.state == RUNNING and self.agent_id is not None:
            effects.append(Send(None, ExecutorExited(fid, self.agent_id, eid, status)))
        if fid in self._frameworks and not any(e.framework_id == fid
                                               for e in self._tasks.values()) \
                and not self._has_executors(fid):
            del self._frameworks[fid]
        return effects + self._launch_held(now)

    def _executor_timeout(self, key: str, now: float) -> Effects:
        ex = self._by_key.get(key)
        if ex is None or ex.state != EXEC_LAUNCHING:
            return []
        ex.move(EXEC_TERMINATING)
        timeout = self.config.executor_registration_timeout
        effects: Effects = [Log("warning", f"executor {ex.info.executor_id} did not subscribe "
                                           f"within {timeout:g}s: killing it")]
        for entry in self._executor_tasks(ex):
            if not ts.is_terminal(entry.state):
                effects += self._update(entry, ts.FAILED, now,
                                        f"Executor did not register within {timeout:g}s",
                                        "REASON_EXECUTOR_REGISTRATION_TIMEOUT",
                                        records.SOURCE_AGENT)
        if ex.process == ALIVE:
            effects.append(KillProcess(ex.key, 0.0))
        return effects

    def _shutdown_executor(self, ex: ExecutorEntry) -> Effects:
        """SHUTDOWN on its stream, SIGTERM after the grace period, then SIGKILL; its tasks
        end KILLED when it exits."""
        if ex.state == EXEC_TERMINATING:
            return []
        ex.move(EXEC_TERMINATING)
        for entry in self._executor_tasks(ex):
            entry.kill_requested = True
            self._touch(entry.task_id)
        effects: Effects = [ToExecutor(ex.framework_id, ex.info.executor_id,
                                       ShutdownExecutor(ex.framework_id, self.agent_id or "",
                                                        ex.info.executor_id))]
        if ex.process == ALIVE:
            effects.append(KillProcess(ex.key, self.config.executor_shutdown_grace))
        return effects

    def _shutdown_executors(self, framework_id: str | None) -> Effects:
        effects: Effects = []
        for ex in list(self._executors.values()):
            if framework_id is None or ex.framework_id == framework_id:
                effects += self._shutdown_executor(ex)
        return effects

    def _has_executors(self, framework_id: str) -> bool:
        return any(k[0] == framework_id for k in self._executors)

    # ------------------------------------------------------------ its stream

    def may_subscribe(self, framework_id: str, executor_id: str) -> str | None:
        """Why this executor may not subscribe now (the HTTP edge answers 400), or None."""
        ex = self._executors.get((framework_id, executor_id))
        if ex is None:
            return f"unknown executor {executor_id} of framework {framework_id}"
        if ex.state == EXEC_TERMINATING or ex.process == GONE:
            return f"executor {executor_id} is terminating"
        return None

    def _on_executor_subscribe(self, event: ExecutorSubscribe, now: float) -> Effects:
        ex = self._executors.get((event.framework_id, event.executor_id))
        why = self.may_subscribe(event.framework_id, event.executor_id)
        if ex is None or why is not None:
            return [Log("warning", f"executor subscription refused: {why}"),
                    EndExecutorStream(event.framework_id, event.executor_id)]
        if ex.state == EXEC_LAUNCHING:
            ex.move(EXEC_RUNNING)
        ex.connected = True
        effects: Effects = [CancelTimer((REGISTRATION_TIMER, ex.key)),
                            ToExecutor(ex.framework_id, ex.info.executor_id,
                                       ExecutorSubscribed(ex.info, ex.framework, ex.key))]
        held = set(event.unacknowledged_tasks)
        for entry in self._executor_tasks(ex):
            if ts.is_terminal(entry.state):
                continue
            # Not handed over yet, or handed over on a stream that broke before the executor
            # got it (it does not list it, and nothing was heard of it since): (again) now.
            if entry.process == LAUNCHING or (entry.state == ts.STAGING
                                              and entry.task_id not in held):
                effects += self._deliver(ex, entry)
        return effects

    def _on_executor_disconnected(self, event: ExecutorDisconnected, now: float) -> Effects:
        """A checkpointing framework's executor may come back (it re-subscribes); any other
        is shut down, as Mesos does."""
        ex = self._executors.get((event.framework_id, event.executor_id))
        if ex is None or not ex.connected:
            return []
        ex.connected = False
        if ex.framework.checkpoint or ex.state == EXEC_TERMINATING:
            return []
        return [Log("info", f"executor {ex.info.executor_id} disconnected: shutting it down"),
                *self._shutdown_executor(ex)]

    def _on_executor_update(self, event: ExecutorUpdate, now: float) -> Effects:
        status = event.status
        entry = self._tasks.get(status.task_id)
        if entry is None or entry.framework_id != event.framework_id \
                or entry.executor_id != event.executor_id:
            return [Log("warning", f"executor {event.executor_id}: update {status.state} for "
                                   f"unknown task {status.task_id} dropped")]
        if not ts.can_transition(entry.state, status.state) or status.state == ts.STAGING:
            return [Log("warning", f"executor {event.executor_id}: task {status.task_id} "
                                   f"cannot go from {entry.state} to {status.state}")]
        if status.uuid is not None and any(u.uuid == status.uuid
                                           for u in self.updates.pending(entry.task_id)):
            return []  # a resend of one we hold
        return self._update(entry, status.state, now, status.message, status.reason,
                            records.SOURCE_EXECUTOR, uuid=status.uuid, data=status.data,
                            healthy=status.healthy)

    def _on_executor_message(self, event: ExecutorMessage, now: float) -> Effects:
        if self.state != RUNNING or self.agent_id is None:
            return [Log("info", f"executor {event.executor_id}: message dropped (no master)")]
        return [Send(None, FrameworkMessage(event.framework_id, self.agent_id,
                                            event.executor_id, event.data))]

    def _to_executor_acked(self, entry: TaskEntry, head: TaskStatus) -> Effects:
        """An acknowledged update the executor sent goes back to it as ACKNOWLEDGED."""
        ex = self._executors.get((entry.framework_id, entry.executor_id))
        if ex is None or head.source != records.SOURCE_EXECUTOR or head.uuid is None:
            return []
        return [ToExecutor(ex.framework_id, ex.info.executor_id,
                           StatusUpdateAck(ex.framework_id, self.agent_id or "",
                                           entry.task_id, head.uuid))]

    def _kill_on_executor(self, entry: TaskEntry, grace: float) -> Effects:
        ex = self._executors.get((entry.framework_id, entry.executor_id))
        if ex is None or not ex.connected:
            return [Log("info", f"task {entry.task_id}: its executor is not connected; the "
                                "kill waits for it")]
        return [ToExecutor(ex.framework_id, ex.info.executor_id,
                           KillTask(ex.framework_id, entry.task_id, grace))]

    def _on_framework_message(self, msg: FrameworkMessage, now: float) -> Effects:
        ex = self._executors.get((msg.framework_id, msg.executor_id))
        if ex is None or not ex.connected:
            return [Log("info", f"message for executor {msg.executor_id} dropped: not "
                                "connected")]
        return [ToExecutor(msg.framework_id, msg.executor_id, msg)]

    def _on_shutdown_executor_msg(self, msg: ShutdownExecutor, now: float) -> Effects:
        ex = self._executors.get((msg.framework_id, msg.executor_id))
        return self._shutdown_executor(ex) if ex is not None else []

    # ------------------------------------------------------------ checkpoint, recovery

    def _executor_checkpoint(self, ex: ExecutorEntry) -> TaskCheckpoint:
        state = ts.RUNNING if ex.process == ALIVE else ts.STAGING
        return TaskCheckpoint(ex.framework, ex.container_task, ex.sandbox, ex.run_id, state,
                              pid=ex.pid, container=ex.container)

    def _recover_executor(self, rt: RecoveredTask, now: float) -> Effects:
        """A checkpointed executor container: adopted when still running (it has until the
        registration timeout to subscribe again), else forgotten."""
        cp = rt.checkpoint
        info = cp.task.executor
        assert info is not None
        fid = cp.framework.id or ""
        self._touch(cp.task.task_id)
        if rt.found.what != RUNNING_FOUND:
            return [Log("info", f"executor {info.executor_id} ended while the agent was down")]
        ex = ExecutorEntry(cp.framework, info, cp.task.task_id, cp.task, cp.sandbox, cp.run_id,
                           process=ALIVE, pid=rt.found.pid, container=cp.container)
        self._executors[(fid, info.executor_id)] = self._by_key[ex.key] = ex
        self._frameworks[fid] = cp.framework
        return [Log("info", f"reattached to executor {info.executor_id} (pid {rt.found.pid})"),
                SetTimer((REGISTRATION_TIMER, ex.key),
                         now + self.config.executor_registration_timeout)]

    def _orphaned_executor_tasks(self, now: float) -> Effects:
        """After recovery: tasks whose executor did not survive fail."""
        effects: Effects = []
        for entry in list(self._tasks.values()):
            if entry.executor_id and not ts.is_terminal(entry.state) and \
                    (entry.framework_id, entry.executor_id) not in self._executors:
                entry.process = GONE
                effects += self._update(entry, ts.FAILED, now, "Executor did not survive the "
                                        "agent's restart", "REASON_EXECUTOR_TERMINATED",
                                        records.SOURCE_AGENT)
        return effects

    def _check_executors(self) -> None:
        assert len(self._by_key) == len(self._executors)
        for (fid, eid), ex in self._executors.items():
            assert self._by_key.get(ex.key) is ex and ex.info.executor_id == eid, ex.key
            assert ex.state in EXECUTOR_STATES and ex.process != GONE, (ex.key, ex.process)
            assert fid in self._frameworks, fid
            assert not ex.connected or ex.state != EXEC_LAUNCHING, ex.key
        for e in self._tasks.values():
            if e.executor_id and not ts.is_terminal(e.state):
                assert (e.framework_id, e.executor_id) in self._executors, e.task_id


#: The events and messages handled here (mesos_agent/core.py composes the agent's tables).
EVENTS: dict[type, Callable[[ExecutorRules, Any, float], Effects]] = {
    ExecutorSubscribe: ExecutorRules._on_executor_subscribe,
    ExecutorUpdate: ExecutorRules._on_executor_update,
    ExecutorMessage: ExecutorRules._on_executor_message,
    ExecutorDisconnected: ExecutorRules._on_executor_disconnected,
}
MESSAGES: dict[type, Callable[[ExecutorRules, Any, float], Effects]] = {
    FrameworkMessage: ExecutorRules._on_framework_message,
    ShutdownExecutor: ExecutorRules._on_shutdown_executor_msg,
}
