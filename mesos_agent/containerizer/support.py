"""Which containerizer a task needs, and why an agent cannot run it: the one place for the rule.

A containerizer never runs a task it does not implement. The process containerizer runs a
command on the host, so a DOCKER task there would run its command outside its image (and
crash-loop, or worse, run); it has no images and no volumes either. Such tasks are refused
with a message naming what is missing, which the agent reports as TASK_FAILED with
REASON_CONTAINER_LAUNCH_FAILED, and nothing is started.
"""
from __future__ import annotations

from collections.abc import Collection

from mesos_common.messages import TaskInfo

DOCKER, MESOS, SIM = "docker", "mesos", "sim"
KINDS = (DOCKER, MESOS)  # what `--containerizers` may name besides `sim`


def needed(task: TaskInfo) -> str:
    """The containerizer kind a task's container type asks for."""
    c = task.container
    return DOCKER if c is not None and c.type == "DOCKER" else MESOS


def refusal(task: TaskInfo, kinds: Collection[str]) -> str | None:
    """Why an agent with containerizers `kinds` cannot run `task`; None when it can.
    `sim` (in memory) pretends to run anything."""
    if SIM in kinds:
        return None
    c = task.container
    have = ",".join(sorted(kinds))
    if c is not None and c.type not in ("DOCKER", "MESOS"):
        return (f"container type {c.type} is not supported (this agent runs "
                f"--containerizers={have}; use DOCKER or MESOS)")
    kind = needed(task)
    if kind == DOCKER and DOCKER not in kinds:
        return ("DOCKER task on an agent without the docker containerizer: start a Docker "
                "engine or run the agent with --containerizers=docker,mesos")
    if kind == DOCKER:
        return None if c is not None and c.docker is not None else "DOCKER task without an image"
    if MESOS not in kinds:
        return ("task without a DOCKER container on an agent without the mesos containerizer: "
                "run the agent with --containerizers=docker,mesos")
    if c is not None and c.docker is not None:
        return (f"MESOS container with image {c.docker.image!r}: the mesos containerizer runs "
                "commands on the host and has no images; use a DOCKER container")
    if c is not None and c.volumes:
        return ("container volumes need a DOCKER container: the mesos containerizer runs "
                "commands on the host")
    return None
