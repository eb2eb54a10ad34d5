"""corral-batch: run a list of shell commands on the cluster, then report and exit.

    python -m frameworks.examples.batch --master 127.0.0.1:5050 \
        --command 'echo hi' --command 'sleep 1'
    python -m frameworks.examples.batch --master ... --commands_file jobs.txt
    python -m frameworks.examples.batch --master ... --tasks 10 --command 'echo $TASK_INDEX'

Packs as many tasks into each offer as fit (`--cpus`/`--mem` per task), declines what is
left with a refuse filter, and suppresses offers once nothing is waiting. Prints one line
per finished task, then one JSON summary line::

    {"finished": 3, "failed": 0, "by_agent": {"<agent>": 3},
     "tasks": {"task-0": "TASK_FINISHED", ...}}

and exits 0 if every task finished successfully, 1 otherwise (2 for bad flags). Every task
gets its 0-based `TASK_INDEX` in the environment. Tasks that the master reports lost
because they never reached an agent (stale offers after a failover, or no master at launch
time) are launched again, up to `--max_retries` times.
"""
from __future__ import annotations

import json
import logging
import sys
from collections import deque
from collections.abc import Sequence
from pathlib import Path
from typing import IO, Any

from attrs import define

from frameworks.examples._cli import add_security_flags, make_driver
from frameworks.scheduler import DRIVER_STOPPED, ResourcesLeft, Scheduler
from mesos_common import flags, task_states
from mesos_common.messages import Offer, TaskInfo, TaskStatus

log = logging.getLogger("corral-batch")

# Lost before reaching an agent: safe to run again.
_NEVER_STARTED = frozenset({"REASON_INVALID_OFFERS", "REASON_MASTER_DISCONNECTED"})


@define
class BatchTask:
    task_id: str
    command: str
    index: int
    state: str | None = None  # None: waiting to be launched
    agent_id: str | None = None
    retries: int = 0


class BatchScheduler(Scheduler):
    """The batch policy; every callback runs on the driver thread, so no locks."""

    def __init__(self, commands: Sequence[str], cpus: float = 0.1, mem: float = 32,
                 refuse_seconds: float = 5.0, max_retries: int = 3,
                 out: IO[str] | None = None) -> None:
        self.cpus, self.mem = cpus, mem
        self.refuse_seconds = refuse_seconds
        self.max_retries = max_retries
        self.out = out if out is not None else sys.stdout
        self.tasks = {f"task-{i}": BatchTask(f"task-{i}", cmd, i) for i, cmd in enumerate(commands)}
        self.pending: deque[str] = deque(self.tasks)
        self.suppressed = False
        self.summary_printed = False

    # ------------------------------------------------------------ queries

    @property
    def all_done(self) -> bool:
        return all(t.state in task_states.TERMINAL_STATES for t in self.tasks.values())

    @property
    def succeeded(self) -> bool:
        return self.all_done and all(t.state == task_states.FINISHED
                                     for t in self.tasks.values())

    def summary(self) -> dict[str, Any]:
        done = [t for t in self.tasks.values() if t.state in task_states.TERMINAL_STATES]
        by_agent: dict[str, int] = {}
        for t in done:
            if t.agent_id:
                by_agent[t.agent_id] = by_agent.get(t.agent_id, 0) + 1
        return {"finished": sum(t.state == task_states.FINISHED for t in done),
                "failed": sum(t.state != task_states.FINISHED for t in done),
                "by_agent": by_agent,
                "tasks": {t.task_id: t.state or "TASK_PENDING" for t in self.tasks.values()}}

    def print_summary(self) -> None:
        if not self.summary_printed:
            self.summary_printed = True
            self._print(json.dumps(self.summary()))

    # ------------------------------------------------------------ callbacks

    def registered(self, driver: Any, framework_id: str, master_info: dict[str, Any]) -> None:
        log.debug("registered with framework id %s", framework_id)

    def reregistered(self, driver: Any, master_info: dict[str, Any]) -> None:
        """A new master may have lost our suppression and our running tasks: ask."""
        self.suppressed = False
        active = [t.task_id for t in self.tasks.values()
                  if t.state is not None and t.state not in task_states.TERMINAL_STATES]
        if active:
            driver.reconcile_tasks(active)

    def disconnected(self, driver: Any) -> None:
        log.warning("disconnected from the master; waiting to re-subscribe")

    def resource_offers(self, driver: Any, offers: list[Offer]) -> None:
        for offer in offers:
            launched = self._pack(offer)
            if launched:
                driver.launch_tasks(offer.id, launched, refuse_seconds=self.refuse_seconds)
            else:
                driver.decline_offer(offer.id, refuse_seconds=self.refuse_seconds)
        if not self.pending and not self.suppressed:
            self.suppressed = True
            driver.suppress_offers()

    def status_update(self, driver: Any, status: TaskStatus) -> None:
        t = self.tasks.get(status.task_id)
        if t is None or t.state in task_states.TERMINAL_STATES:
            return  # not ours, or a duplicate after the end
        t.state = status.state
        t.agent_id = status.agent_id or t.agent_id
        if status.state not in task_states.TERMINAL_STATES:
            return
        if self._retry(driver, t, status):
            return
        detail = f": {status.message}" if status.message else ""
        self._print(f"Task '{t.task_id}' {status.state} on agent '{t.agent_id}'{detail}")
        if self.all_done:
            self.print_summary()
            driver.stop()

    def error(self, driver: Any, message: str) -> None:
        print(f"corral-batch: error: {message}", file=sys.stderr, flush=True)

    # ------------------------------------------------------------ internals

    def _pack(self, offer: Offer) -> list[TaskInfo]:
        left = ResourcesLeft(offer)
        while self.pending:
            t = self.tasks[self.pending[0]]
            info = left.take(t.task_id, t.command, self.cpus, self.mem,
                             env={"TASK_INDEX": str(t.index)})
            if info is None:
                break
            self.pending.popleft()
            t.state, t.agent_id = task_states.STAGING, offer.agent_id
        return left.tasks

    def _retry(self, driver: Any, t: BatchTask, status: TaskStatus) -> bool:
        if (status.reason not in _NEVER_STARTED or status.source != "SOURCE_MASTER"
                or t.retries >= self.max_retries):
            return False
        t.retries += 1
        t.state, t.agent_id = None, None
        self.pending.append(t.task_id)
        log.warning("task %s never started (%s); launching it again", t.task_id, status.reason)
        if self.suppressed:
            self.suppressed = False
            driver.revive_offers()
        return True

    def _print(self, line: str) -> None:
        print(line, file=self.out, flush=True)


def _parser() -> flags.FlagParser:
    p = flags.FlagParser("corral-batch", "Run shell commands as tasks on a Corral cluster.",
                         log_level="WARNING")
    p.add_flag("master", help="master address host:port[,host:port] (or MESOS_MASTER)")
    p.add_flag("name", default="corral-batch", help="framework name")
    p.add_flag("role", default="*", help="role to receive offers for")
    add_security_flags(p)
    p.add_flag("cpus", type=float, default=0.1, help="cpus per task")
    p.add_flag("mem", type=float, default=32.0, help="memory (MB) per task")
    p.add_flag("refuse_seconds", type=flags.duration, default=5.0,
               help="how long declined resources stay away (e.g. 5secs)")
    p.add_flag("max_retries", type=int, default=3,
               help="relaunches of a task lost before it reached an agent")
    p.add_argument("--command", action="append", default=[],
                   help="shell command to run (repeatable)")
    p.add_argument("--commands_file", help="file with one shell command per line")
    p.add_argument("--tasks", type=flags.positive_int,
                   help="run the single --command this many times")
    return p


def _commands(p: flags.FlagParser, ns: Any) -> list[str]:
    commands = list(ns.command)
    if ns.commands_file:
        try:
            text = Path(ns.commands_file).read_text()
        except OSError as e:
            p.error(f"--commands_file: {e.strerror or e}: {ns.commands_file}")
        commands += [ln.strip() for ln in text.splitlines()
                     if ln.strip() and not ln.lstrip().startswith("#")]
    if ns.tasks is not None:
        if len(commands) != 1:
            p.error("--tasks needs exactly one --command")
        commands = commands * ns.tasks
    if not commands:
        p.error("nothing to run: give --command, --commands_file or --tasks N --command CMD")
    return commands


def main(argv: Sequence[str] | None = None) -> int:
    p = _parser()
    ns = p.parse(argv)
    if not ns.master:
        p.error("--master is required (or set MESOS_MASTER)")
    if ns.cpus <= 0 or ns.mem <= 0:
        p.error("--cpus and --mem must be positive")
    commands = _commands(p, ns)
    flags.setup_logging(ns.log_level, "corral-batch")
    sched = BatchScheduler(commands, ns.cpus, ns.mem, ns.refuse_seconds, ns.max_retries)
    driver = make_driver(p, sched, ns.name, ns.role, ns.master, ns)
    try:
        status = driver.run()
    except KeyboardInterrupt:
        status = driver.stop()
    sched.print_summary()
    return 0 if status == DRIVER_STOPPED and sched.succeeded else 1


if __name__ == "__main__":
    sys.exit(main())
