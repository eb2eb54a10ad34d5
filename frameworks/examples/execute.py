"""mesos-execute: run one command as a task, print its status updates, exit with its status.

    mesos-execute --master=127.0.0.1:5050 --name=hello --command='echo hello'
    mesos-execute --master=... --name=web --docker_image=nginx:alpine --resources='cpus:0.5;mem:128'

Like Mesos's tool: launches on the first offer that holds `--resources`, prints::

    Subscribed with ID <framework id>
    Submitted task 'hello' to agent '<agent id>'
    Received status update TASK_RUNNING for task 'hello'
      source: SOURCE_EXECUTOR
    Received status update TASK_FINISHED for task 'hello'
      message: 'Command exited with status 0'
      source: SOURCE_EXECUTOR

then tears the framework down and exits with the task's exit status: 0 on TASK_FINISHED,
N from "Command exited with status N", 1 for a task killed, lost, failed or in error without
a code (or a fatal framework error), 2 for bad flags.
"""
from __future__ import annotations

import json
import re
import sys
from collections.abc import Sequence
from typing import IO, Any

from frameworks.examples._cli import add_security_flags, make_driver
from frameworks.scheduler import Scheduler
from mesos_common import flags, task_states
from mesos_common.messages import (
    CommandInfo,
    ContainerInfo,
    DockerInfo,
    Offer,
    TaskInfo,
    TaskStatus,
)
from mesos_common.resources import ResourceError, Resources

_EXIT_STATUS = re.compile(r"exited with status (\d+)", re.IGNORECASE)


def exit_code(status: TaskStatus) -> int:
    """The process exit status a terminal TaskStatus stands for."""
    if status.state == task_states.FINISHED:
        return 0
    match = _EXIT_STATUS.search(status.message or "")
    if match and int(match.group(1)) != 0:
        return min(int(match.group(1)), 255)
    return 1


class ExecuteScheduler(Scheduler):
    """Launch one task on the first offer that holds its resources; remember its exit."""

    def __init__(self, name: str, command: str | None, resources: Resources,
                 env: dict[str, str] | None = None, shell: bool = True,
                 docker_image: str | None = None, out: IO[str] | None = None) -> None:
        self.name = name
        self.resources = resources
        self.command = CommandInfo(value=command or "", shell=shell and command is not None,
                                   environment=dict(env or {}))
        self.container = (ContainerInfo(type="DOCKER", docker=DockerInfo(docker_image))
                          if docker_image else None)
        self.out = out if out is not None else sys.stdout
        self.launched = False
        self.exit_code: int | None = None

    def registered(self, driver: Any, framework_id: str, master_info: dict[str, Any]) -> None:
        self._print(f"Subscribed with ID {framework_id}")

    def resource_offers(self, driver: Any, offers: list[Offer]) -> None:
        for offer in offers:
            if self.launched or not offer.resources.contains(self.resources):
                driver.decline_offer(offer.id, refuse_seconds=5.0)
                continue
            task = TaskInfo(name=self.name, task_id=self.name, agent_id=offer.agent_id,
                            resources=self.resources, command=self.command,
                            container=self.container)
            driver.launch_tasks(offer.id, [task])
            self.launched = True
            self._print(f"Submitted task '{self.name}' to agent '{offer.agent_id}'")
            driver.suppress_offers()

    def status_update(self, driver: Any, status: TaskStatus) -> None:
        if status.task_id != self.name or self.exit_code is not None:
            return
        self._print(f"Received status update {status.state} for task '{status.task_id}'")
        if status.message:
            self._print(f"  message: '{status.message}'")
        if status.reason:
            self._print(f"  reason: {status.reason}")
        self._print(f"  source: {status.source}")
        if status.state in task_states.TERMINAL_STATES:
            self.exit_code = exit_code(status)
            driver.stop()

    def error(self, driver: Any, message: str) -> None:
        self._print(f"Error: {message}")
        if self.exit_code is None:
            self.exit_code = 1

    def _print(self, line: str) -> None:
        print(line, file=self.out, flush=True)


def _parser() -> flags.FlagParser:
    p = flags.FlagParser("mesos-execute", "Run one command as a task on a Corral cluster.",
                         log_level="WARNING")
    p.add_flag("master", help="master address host:port[,host:port] (or MESOS_MASTER)")
    p.add_flag("name", help="name (and id) of the task")
    p.add_flag("command", help="shell command to run (optional with --docker_image)")
    p.add_flag("resources", default="cpus:0.1;mem:32", help="task resources, Mesos text form")
    p.add_flag("env", help='environment as a JSON object, e.g. {"FOO": "bar"}')
    p.add_flag("shell", type=flags.boolean, default=True,
               help="run --command with /bin/sh -c (--no-shell: exec it directly)")
    p.add_flag("docker_image", help="run in this Docker image")
    p.add_flag("framework_name", default="mesos-execute instance", help="framework name")
    p.add_flag("role", default="*", help="role to receive offers for")
    add_security_flags(p)
    return p


def _env(p: flags.FlagParser, text: str | None) -> dict[str, str]:
    if not text:
        return {}
    try:
        env = json.loads(text)
    except ValueError as e:
        p.error(f"--env: invalid JSON: {e}")
    if not isinstance(env, dict) or not all(isinstance(v, str) for v in env.values()):
        p.error('--env: expected a JSON object of strings, e.g. {"FOO": "bar"}')
    return dict(env)


def main(argv: Sequence[str] | None = None) -> int:
    p = _parser()
    ns = p.parse(argv)
    if not ns.master:
        p.error("--master is required (or set MESOS_MASTER)")
    if not ns.name:
        p.error("--name is required")
    if not ns.command and not ns.docker_image:
        p.error("--command is required (unless --docker_image is given)")
    try:
        resources = Resources.parse(ns.resources)
    except ResourceError as e:
        p.error(f"--resources: {e}")
    env = _env(p, ns.env)
    flags.setup_logging(ns.log_level, "mesos-execute")
    sched = ExecuteScheduler(ns.name, ns.command, resources, env, ns.shell, ns.docker_image)
    driver = make_driver(p, sched, ns.framework_name, ns.role, ns.master, ns)
    try:
        driver.run()
    except KeyboardInterrupt:
        driver.stop()
        return 130
    return 1 if sched.exit_code is None else sched.exit_code


if __name__ == "__main__":
    sys.exit(main())
