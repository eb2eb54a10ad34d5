"""SimCluster's health-check edges: what the agent runtime's probe loop does
(mesos_agent/server.py `_health_loop`), with the world deciding each probe's result.

A task launched with a Mesos health check fails its probes from `Proc.fails_at` on (drawn
from the seed's health stream for `SimOptions.unhealthy` of the checked tasks launched while
faults are on; None: it stays healthy); half the failing probes hang until the check's
timeout. Results are fed to the agent core as `HealthResult`s, so the core's rules
(core_health.py) flip `healthy` in its updates and kill tasks past the threshold.
"""
from __future__ import annotations

import random
from typing import TYPE_CHECKING, Any

from mesos_agent import events as agent_events
from mesos_common import messages as m

if TYPE_CHECKING:
    from tests.sim.cluster import AgentNode, SimOptions


class HealthEdges:
    """Mixed into SimCluster (which provides push, feed, _note, now, health_rng)."""

    o: SimOptions
    now: float
    health_rng: random.Random
    health_kills: int

    if TYPE_CHECKING:
        def push(self, at: float, kind: str, node: str, payload: Any) -> None: ...
        def feed(self, name: str, event: Any) -> None: ...
        def _note(self, text: str) -> None: ...

    def _maybe_check(self) -> m.HealthCheck | None:
        """A Mesos health check for a batch task, in `health_checks` of them."""
        r = self.health_rng
        if r.random() >= self.o.health_checks:
            return None
        return sim_check(r, r.choice(["COMMAND", "TCP", "HTTP"]))

    def _health_effect(self, node: AgentNode, e: Any) -> None:
        """The runtime's probe loop (mesos_agent/server.py): after the check's delay, then
        every interval, until stopped; a new start replaces the old loop."""
        gen = node.probe_gen.get(e.task_id, 0) + 1
        node.probe_gen[e.task_id] = gen
        if isinstance(e, agent_events.StartHealthCheck):
            self.push(self.now + max(0.0, e.check.delay_seconds), "probe", node.name,
                      (e.task_id, gen, e.check))

    def _probe(self, node: AgentNode, payload: tuple) -> None:
        """One probe: it fails once the task's `fails_at` has passed (the world's choice);
        half the failing ones hang until the check's timeout, as a wedged task does."""
        task_id, gen, check, *hung = payload
        proc = node.procs.get(task_id)
        if node.probe_gen.get(task_id) != gen or proc is None:
            return
        healthy = not hung and (proc.fails_at is None or self.now < proc.fails_at)
        if not healthy and not hung and self.health_rng.random() < 0.5:
            self.push(self.now + check.timeout_seconds, "probe", node.name, (*payload, True))
            return
        before = node.core.tasks().get(task_id) if node.core else None
        self.feed(node.name, agent_events.HealthResult(
            task_id, healthy, "" if healthy else "sim: the probe failed"))
        if before is not None and before.health_killed:
            self.health_kills += 1
            self._note(f"{node.name} killed {task_id} for failing its health checks")
        if node.probe_gen.get(task_id) == gen:
            self.push(self.now + max(0.05, check.interval_seconds), "probe", node.name,
                      (task_id, gen, check))


def sim_check(r: random.Random, kind: str) -> m.HealthCheck:
    """Short Mesos health-check timings (the defaults' 15 s/10 s/10 s, scaled down)."""
    return m.HealthCheck(type=kind, command=m.CommandInfo(value="true") if kind == "COMMAND"
                         else None, port=None if kind == "COMMAND" else 31000,
                         delay_seconds=r.choice([0.0, 1.0, 2.0]),
                         interval_seconds=r.choice([0.5, 1.0, 3.0]), timeout_seconds=1.0,
                         consecutive_failures=r.choice([1, 2, 3]),
                         grace_period_seconds=r.choice([0.0, 2.0, 10.0]))
