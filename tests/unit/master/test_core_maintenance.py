"""The maintenance schedule in the pure master core: parsing, checks, inverse offers, machines
down and up, all durable first."""
from __future__ import annotations

from mesos_common import effects as fx
from mesos_common import messages as m
from mesos_common import task_states as ts
from mesos_master import views
from mesos_master.core_maintenance import (
    MaintenanceRequest,
    StartMaintenanceRequest,
    StopMaintenanceRequest,
    UpdateScheduleRequest,
    applied,
    parse_machines,
    parse_schedule,
    request_error,
)
from mesos_master.registry.base import RegistryState, RemoveAgent, StartMaintenance, Window
from tests.unit.master.harness import Harness, agent_info, command_task, persisted, sent

NS = 10**9


def _window(host: str, start: float = 2000.0, duration: float | None = 3600.0) -> dict:
    un = {"start": {"nanoseconds": int(start * NS)}}
    if duration is not None:
        un["duration"] = {"nanoseconds": int(duration * NS)}
    return {"machine_ids": [{"hostname": host}], "unavailability": un}


def _schedule(raw: object) -> UpdateScheduleRequest:
    req = parse_schedule(raw)
    assert isinstance(req, UpdateScheduleRequest), req
    return req


def _refusal(registry: RegistryState, req: MaintenanceRequest) -> str:
    error = request_error(registry, req)
    assert error is not None
    return error


def test_parse_and_check_requests() -> None:
    req = parse_schedule({"windows": [_window("h1"), _window("h2", duration=None)]})
    assert req == UpdateScheduleRequest((Window((("h1", ""),), 2000.0, 3600.0),
                                         Window((("h2", ""),), 2000.0, None)))
    bad: object
    for bad in ([], {"windows": [{}]}, {"windows": [_window("h1"), _window("h1")]},
                {"windows": [{"machine_ids": [{"hostname": 3}], "unavailability": {}}]},
                {"windows": [{"machine_ids": [{}], "unavailability": {"start": {}}}]},
                {"windows": [_window("h1", duration=-1)]}, {"other": 1}):
        assert isinstance(parse_schedule(bad), str), bad
    assert parse_machines([{"hostname": "h1", "ip": "10.0.0.1"}]) == (("h1", "10.0.0.1"),)
    assert isinstance(parse_machines([{"host": "h1"}]), str)
    h = Harness()
    down = StartMaintenanceRequest((("h1", ""),))
    assert "not in the maintenance schedule" in _refusal(h.master.registry, down)
    assert "not down" in _refusal(h.master.registry, StopMaintenanceRequest(down.machines))


def test_schedule_down_and_up() -> None:
    h = Harness()
    fw = h.subscribe()
    a1 = h.register_agent(b"a1", agent_info("h1"))
    h.register_agent(b"a2", agent_info("h2"))
    (offer,) = [o for o in h.offers() if o.agent_id == a1]
    h.launch(b"fw1", fw, offer, [command_task("t1", a1)])
    h.recv(b"a1", m.StatusUpdate(fw, m.TaskStatus("t1", ts.RUNNING, agent_id=a1, uuid=b"u")))

    req = _schedule({"windows": [_window("h1")]})
    out = h.handle(req)
    assert applied(h.master.registry, req)
    (inv,) = sent(out, m.InverseOffers, to=b"fw1")
    io = inv.inverse_offers[0]
    assert (io.agent_id, io.start, io.duration) == (a1, 2000.0, 3600.0)
    h.recv(b"fw1", m.DeclineInverseOffers(fw, (io.id,)))
    status = views.maintenance_status_json(h.master)
    assert status["draining_machines"][0]["id"] == {"hostname": "h1"}
    assert [s["status"] for s in status["draining_machines"][0]["statuses"]] == ["DECLINE"]
    assert views.schedule_json(h.master) == {"windows": [_window("h1")]}

    out = h.handle(StartMaintenanceRequest((("h1", ""),)))
    assert StartMaintenance((("h1", ""),)) in persisted(out) and RemoveAgent(a1) in persisted(out)
    assert sent(out, m.ShutdownAgent, to=b"a1") and a1 not in h.master.agents
    assert [u.status.state for u in sent(out, m.Update, to=b"fw1")] == [ts.LOST]
    assert "are down" in _refusal(h.master.registry, UpdateScheduleRequest(()))
    out = h.recv(b"a1b", m.RegisterAgent(agent_info("h1")))
    assert sent(out, m.ShutdownAgent, to=b"a1b") and not persisted(out)
    h.restart("M2")  # durable: a new master refuses it too
    assert sent(h.recv(b"a1b", m.RegisterAgent(agent_info("h1"))), m.ShutdownAgent)

    h.handle(StopMaintenanceRequest((("h1", ""),)))
    assert h.master.registry.schedule == [] and not h.master.registry.down
    h.register_agent(b"a1b", agent_info("h1"))


def test_a_failed_write_changes_nothing() -> None:
    h = Harness(auto_persist=False)
    req = _schedule({"windows": [_window("h1")]})
    (op,) = persisted(h.handle(req))
    h.handle(fx.PersistDone(op, False))
    assert not applied(h.master.registry, req) and h.master.registry.schedule == []


def _inverse(out: list, peer: bytes) -> list[m.InverseOffer]:
    return [io for msg in sent(out, m.InverseOffers, to=peer) for io in msg.inverse_offers]


def test_frameworks_not_asked_yet_are_asked_at_the_periodic_allocation() -> None:
    """As Mesos's allocator keeps generating them: a framework that re-subscribes (a new
    connection) or gets its first task on a scheduled agent is asked; one that answered is
    not asked again, nor is one asked on its current connection."""
    h = Harness()
    fw = h.subscribe()
    a1 = h.register_agent(b"a1", agent_info("h1"))
    h.handle(_schedule({"windows": [_window("h1")]}))  # nothing runs there yet: nobody asked
    (offer,) = [o for o in h.offers() if o.agent_id == a1]
    h.launch(b"fw1", fw, offer, [command_task("t1", a1)])
    h.recv(b"a1", m.StatusUpdate(fw, m.TaskStatus("t1", ts.RUNNING, agent_id=a1, uuid=b"u")))
    first = _inverse(h.advance(1.0), b"fw1")
    assert [(io.agent_id, io.start) for io in first] == [(a1, 2000.0)]
    assert _inverse(h.advance(1.0), b"fw1") == []  # asked on this connection already
    h.recv(b"fw9", m.Subscribe(m.FrameworkInfo(name="fw", id=fw)))  # a new connection
    (io,) = _inverse(h.advance(1.0), b"fw9")
    assert io.agent_id == a1 and io.id != first[0].id
    h.recv(b"fw9", m.DeclineInverseOffers(fw, (io.id,)))
    h.recv(b"fw8", m.Subscribe(m.FrameworkInfo(name="fw", id=fw)))
    assert _inverse(h.advance(1.0), b"fw8") == []  # answered: not asked again
