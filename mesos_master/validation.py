"""Pure checks of ACCEPT and LAUNCH against live master state (Nomad's plan_apply idea).

A framework decides from a possibly stale view; the master re-checks every operation against
what is true now and answers a stale or malformed one with a task update, never a crash.
Functions return an error text, or None when the thing is valid.
"""
from __future__ import annotations

import re
from collections.abc import Container, Mapping, Sequence

from mesos_common import messages as m
from mesos_common.resources import EMPTY, Resources
from mesos_master.state import Offer

MAX_ID_LENGTH = 255
# A slash, a backslash or whitespace (`\s` on str is exactly str.isspace): one scan in C
# instead of two generator walks per id (a 1000-task ACCEPT validates 1000 ids).
_SLASH_OR_SPACE = re.compile(r"[/\\\s]")


def validate_id(kind: str, value: str) -> str | None:
    """Mesos common::validation::validateID: ids become paths on agents, so keep them tame."""
    if not value:
        return f"{kind} must not be empty"
    if len(value) > MAX_ID_LENGTH:
        return f"{kind} is longer than {MAX_ID_LENGTH} characters"
    if value in (".", ".."):
        return f"{kind} must not be '.' or '..'"
    if _SLASH_OR_SPACE.search(value) or not value.isprintable():
        return (f"{kind} {value!r} contains a slash, a backslash, whitespace or unprintable "
                "characters")
    return None


def validate_offers(framework_id: str, offer_ids: Sequence[str],
                    live: Mapping[str, Offer]) -> str | None:
    """All offers must be live, this framework's, distinct, and on one agent."""
    if not offer_ids:
        return "no offers given"
    if len(set(offer_ids)) != len(offer_ids):
        return "offer ids are duplicated"
    agents = set()
    for oid in offer_ids:
        offer = live.get(oid)
        if offer is None:
            return f"offer {oid} is no longer valid"
        if offer.framework_id != framework_id:
            return f"offer {oid} belongs to another framework"
        agents.add(offer.agent_id)
    if len(agents) > 1:
        return "aggregated offers must belong to a single agent"
    return None


def executor_need(running: Container[tuple[str, str]], framework_id: str,
                  task: m.TaskInfo) -> Resources:
    """What `task`'s custom executor adds on an agent: its own resources unless it is
    running there already (`running`: (framework, executor id) keys), as Mesos counts."""
    ex = task.executor
    if ex is None or (framework_id, ex.executor_id) in running:
        return EMPTY
    return ex.resources


def validate_task(task: m.TaskInfo, *, agent_id: str, remaining: Resources,
                  known_task_ids: Container[str],
                  executor_resources: Resources = EMPTY) -> str | None:
    """One LAUNCH task against the offers' agent and what is left of the offered resources
    (with `executor_resources`, what its executor needs if it must be started)."""
    error = validate_id("task id", task.task_id)
    if error:
        return error
    if task.task_id in known_task_ids:
        return f"task id {task.task_id!r} is already in use by this framework"
    if task.agent_id != agent_id:
        return f"task uses agent {task.agent_id!r} but the offers are for agent {agent_id!r}"
    if not task.resources:
        return "task uses no resources"
    if executor_resources and not remaining.contains(task.resources + executor_resources):
        return (f"Total resources {task.resources + executor_resources!r} required by task "
                f"and its executor is more than available {remaining!r}")
    if not remaining.contains(task.resources):
        return (f"task uses more resources ({task.resources!r}) than remain in the offers "
                f"({remaining!r})")
    if task.kill_grace_period is not None and not task.kill_grace_period >= 0:
        return "kill_grace_period must not be negative"
    if task.executor is not None:
        return _validate_executor(task)
    return _validate_executable(task)


def _validate_executor(task: m.TaskInfo) -> str | None:
    """Mesos: exactly one of command and executor; the executor needs a command."""
    ex = task.executor
    assert ex is not None
    if task.command is not None:
        return "Task should have at least one (but not both) of CommandInfo or ExecutorInfo present"
    error = validate_id("executor id", ex.executor_id)
    if error:
        return error
    if not (ex.command.value or ex.command.arguments):
        return "the executor needs a command"
    if task.container is not None and task.container.type == "DOCKER":
        return "a task with a custom executor cannot have a DOCKER container"
    return None


def _validate_executable(task: m.TaskInfo) -> str | None:
    """Something must say what to run: a command, a Docker image, or both (the command then
    overrides the image's default)."""
    cmd, container = task.command, task.container
    if cmd is None and container is None:
        return "task needs a command or a container"
    if cmd is not None and cmd.shell and not cmd.value:
        return "command.value must not be empty for a shell command"
    if cmd is not None and not cmd.shell and not (cmd.value or cmd.arguments):
        return "a non-shell command needs a value or arguments"
    if container is not None:
        if container.type not in ("MESOS", "DOCKER"):
            return f"unknown container type {container.type!r}"
        if container.type == "DOCKER" and container.docker is None:
            return "a DOCKER container needs docker info"
        if container.type == "DOCKER" and not container.docker.image:  # type: ignore[union-attr]
            return "a DOCKER container needs an image"
        if container.type == "MESOS" and cmd is None:
            return "a MESOS container needs a command"
    return None
