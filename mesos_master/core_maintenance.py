"""Maintenance (Mesos docs/maintenance.md): a schedule of windows during which machines are
unavailable, inverse offers to the frameworks running on them, and machines taken down and
brought back up by the operator. Everything is durable before it takes effect.

A scheduled machine stays in use; every framework with tasks on an agent there gets an inverse
offer whose unavailability is the window, and its answer (accept / decline) is shown by
/maintenance/status. `machine/down` takes scheduled machines down: their agents are shut down
and removed (their tasks GONE), and an agent on a down machine may not register. `machine/up`
brings down machines back and drops them from the schedule. A machine is a (hostname, ip)
pair; it holds an agent whose advertised hostname is either.

The HTTP layer parses bodies (`parse_schedule`, `parse_machines`), checks them against the
registry (`schedule_error`, `down_error`, `up_error`) and feeds the request to the core.
"""
from __future__ import annotations

import math
from typing import Any

from attrs import frozen

from mesos_common import messages as m
from mesos_master.core_base import EventTable
from mesos_master.core_drain import DrainHandlers
from mesos_master.registry.base import (
    Machine,
    RegistryState,
    RemoveAgent,
    StartMaintenance,
    StopMaintenance,
    UpdateSchedule,
    Window,
)
from mesos_master.state import Agent


@frozen
class UpdateScheduleRequest:
    windows: tuple[Window, ...]


@frozen
class StartMaintenanceRequest:
    machines: tuple[Machine, ...]


@frozen
class StopMaintenanceRequest:
    machines: tuple[Machine, ...]


# ------------------------------------------------------------------ parsing and checks (pure)

def _machine(raw: Any) -> Machine | str:
    if not isinstance(raw, dict) or set(raw) - {"hostname", "ip"}:
        return f"a machine id is {{\"hostname\": ..., \"ip\": ...}}, got {raw!r}"
    host, ip = raw.get("hostname", ""), raw.get("ip", "")
    if not isinstance(host, str) or not isinstance(ip, str) or not (host or ip):
        return f"a machine id needs a hostname or an ip (strings), got {raw!r}"
    return (host, ip)


def parse_machines(raw: Any) -> tuple[Machine, ...] | str:
    """A JSON list of Mesos MachineIDs."""
    if not isinstance(raw, list) or not raw:
        return "expected a non-empty JSON list of machine ids"
    out = []
    for item in raw:
        mc = _machine(item)
        if isinstance(mc, str):
            return mc
        out.append(mc)
    return tuple(dict.fromkeys(out))


def _nanos(raw: Any, what: str) -> float | str:
    value = raw.get("nanoseconds") if isinstance(raw, dict) else None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or \
            not math.isfinite(value):
        return f"{what} must be {{\"nanoseconds\": <number>}}, got {raw!r}"
    return value / 1e9


def parse_schedule(raw: Any) -> UpdateScheduleRequest | str:
    """Mesos' maintenance Schedule: `{"windows": [{"machine_ids": [...], "unavailability":
    {"start": {"nanoseconds": N}, "duration": {"nanoseconds": D}}}]}`."""
    if not isinstance(raw, dict) or set(raw) - {"windows"}:
        return "expected a JSON object {\"windows\": [...]}"
    windows: list[Window] = []
    seen: set[Machine] = set()
    for w in raw.get("windows", []):
        if not isinstance(w, dict):
            return f"a window is a JSON object, got {w!r}"
        machines = parse_machines(w.get("machine_ids"))
        if isinstance(machines, str):
            return machines
        if seen & set(machines):
            return f"machines {sorted(seen & set(machines))} are in more than one window"
        seen |= set(machines)
        un = w.get("unavailability")
        if not isinstance(un, dict):
            return "a window needs an unavailability {\"start\": ..., \"duration\": ...}"
        start = _nanos(un.get("start"), "unavailability.start")
        if isinstance(start, str):
            return start
        duration = None if un.get("duration") is None else _nanos(un["duration"], "duration")
        if isinstance(duration, str):
            return duration
        if duration is not None and duration < 0:
            return "unavailability.duration must not be negative"
        windows.append(Window(machines, start, duration))
    return UpdateScheduleRequest(tuple(windows))


def scheduled(registry: RegistryState) -> set[Machine]:
    return {mc for w in registry.schedule for mc in w.machines}


def schedule_error(registry: RegistryState, req: UpdateScheduleRequest) -> str | None:
    missing = registry.down - {mc for w in req.windows for mc in w.machines}
    if missing:
        return f"machines {sorted(missing)} are down: bring them up before unscheduling them"
    return None


def down_error(registry: RegistryState, machines: tuple[Machine, ...]) -> str | None:
    unknown = set(machines) - scheduled(registry)
    if unknown:
        return f"machines {sorted(unknown)} are not in the maintenance schedule"
    return None


def up_error(registry: RegistryState, machines: tuple[Machine, ...]) -> str | None:
    up = set(machines) - registry.down
    if up:
        return f"machines {sorted(up)} are not down"
    return None


def on_machine(agent_host: str, machines: set[Machine] | list[Machine]) -> Machine | None:
    """The machine among `machines` an agent advertising `agent_host` runs on."""
    for mc in machines:
        if agent_host and agent_host in mc:
            return mc
    return None


def window_of(registry: RegistryState, machine: Machine) -> Window | None:
    for w in registry.schedule:
        if machine in w.machines:
            return w
    return None


# ------------------------------------------------------------------ the core's side

class MaintenanceHandlers(DrainHandlers):

    def _on_update_schedule(self, req: UpdateScheduleRequest) -> None:
        self._persist(UpdateSchedule(req.windows))

    def _on_start_maintenance(self, req: StartMaintenanceRequest) -> None:
        self._persist(StartMaintenance(req.machines))

    def _on_stop_maintenance(self, req: StopMaintenanceRequest) -> None:
        self._persist(StopMaintenance(req.machines))

    def _maintenance_persisted(self, op: UpdateSchedule | StartMaintenance | StopMaintenance,
                               ok: bool) -> None:
        if not ok:
            self._log("error", f"registry write {op} failed; not applied")
            return
        if isinstance(op, UpdateSchedule):
            self._send_maintenance_offers()
        elif isinstance(op, StartMaintenance):
            for _, agent in sorted(self.agents.items()):
                if on_machine(agent.info.hostname, list(op.machines)) is not None:
                    self._take_down(agent)
        self._log("info", f"maintenance: {len(self.registry.schedule)} window(s), "
                          f"{len(self.registry.down)} machine(s) down")

    def _send_maintenance_offers(self) -> None:
        """Ask every framework with tasks on an agent of a scheduled machine for it back
        (a new schedule; an answer is kept for /maintenance/status). What was sent or
        answered for agents no longer wanted back is forgotten."""
        wanted = {a.id for a in self.agents.values() if a.drain is not None or on_machine(
            a.info.hostname, scheduled(self.registry)) is not None}
        for io_id, (agent_id, _) in list(self.inverse_offers.items()):
            if agent_id not in wanted:
                del self.inverse_offers[io_id]
        for agent_id in set(self.inverse_answers) - wanted:
            del self.inverse_answers[agent_id]
        self.maintenance_asked = {k: v for k, v in self.maintenance_asked.items()
                                  if k[0] in wanted}
        self._ask_for_scheduled_agents(again=True)

    def _ask_for_scheduled_agents(self, again: bool) -> None:
        """Inverse offers for the agents of scheduled machines, to every connected framework
        with tasks there. With `again` (a new schedule) everyone is asked; otherwise (the
        periodic allocation) only those not asked on their current connection and not yet
        answered: a framework that (re)subscribed, one whose first task there is new, and
        every framework after a master failover, as Mesos's allocator keeps doing."""
        machines = scheduled(self.registry) - self.registry.down
        if not machines:
            return
        for _, agent in sorted(self.agents.items()):
            mc = on_machine(agent.info.hostname, machines)
            window = window_of(self.registry, mc) if mc is not None else None
            if window is None:
                continue
            answered = self.inverse_answers.get(agent.id, {})
            for fw_id in sorted({fw for (fw, _), t in agent.tasks.items() if not t.terminal}):
                fw = self.frameworks[fw_id]
                if not fw.connected:
                    continue
                if not again and (fw_id in answered or self.maintenance_asked.get(
                        (agent.id, fw_id), b"") == fw.peer):
                    continue
                self._send_inverse_offer(fw, agent, window.start, window.duration)
                self.maintenance_asked[(agent.id, fw_id)] = fw.peer

    def _take_down(self, agent: Agent) -> None:
        self._log("warning", f"agent {agent.id} ({agent.info.hostname}) is on a machine "
                             "taken down for maintenance: shutting it down")
        self._send(agent.peer, m.ShutdownAgent("its machine is down for maintenance"))
        self._persist(RemoveAgent(agent.id))


EVENTS: EventTable[MaintenanceHandlers] = {
    UpdateScheduleRequest: MaintenanceHandlers._on_update_schedule,
    StartMaintenanceRequest: MaintenanceHandlers._on_start_maintenance,
    StopMaintenanceRequest: MaintenanceHandlers._on_stop_maintenance,
}

MaintenanceRequest = UpdateScheduleRequest | StartMaintenanceRequest | StopMaintenanceRequest


def request_error(registry: RegistryState, req: MaintenanceRequest) -> str | None:
    """Why the request cannot be applied to the registry as it is (a 400)."""
    if isinstance(req, UpdateScheduleRequest):
        return schedule_error(registry, req)
    if isinstance(req, StartMaintenanceRequest):
        return down_error(registry, req.machines)
    return up_error(registry, req.machines)


def applied(registry: RegistryState, req: MaintenanceRequest) -> bool:
    """Whether the registry now holds the request (False after a failed write: a 503)."""
    if isinstance(req, UpdateScheduleRequest):
        return registry.schedule == list(req.windows)
    if isinstance(req, StartMaintenanceRequest):
        return set(req.machines) <= registry.down
    return not set(req.machines) & registry.down
