"""The master drives the allocator: batched cycles, restricted to what changed; roles."""
from __future__ import annotations

from mesos_common import effects as fx
from mesos_common import messages as m
from mesos_common.resources import Resources

from .harness import Harness, agent_info, only, sent

R = Resources.parse


def _allocate_timers(effects) -> list:
    return [e for e in effects if isinstance(e, fx.SetTimer) and e.key == ("allocate",)]


def test_a_burst_of_changes_is_one_cycle_over_the_changed_agents() -> None:
    h = Harness()  # allocation_interval defaults to 100 ms
    out = []
    for i in range(5):
        out += h.recv(f"a{i}".encode(), m.RegisterAgent(agent_info(f"h{i}")))
    out += h.recv(b"fw1", m.Subscribe(m.FrameworkInfo(name="fw")))
    (timer,) = _allocate_timers(out)  # one batching timer for the whole burst
    assert timer.at == h.now + 0.1
    runs = h.master.counters["allocation_runs"]
    (msg,) = sent(h.fire(("allocate",)), m.Offers, to=b"fw1")
    assert len(msg.offers) == 5 and h.master.counters["allocation_runs"] == runs + 1
    # a decline frees one agent: the next cycle is restricted to it
    fid = msg.offers[0].framework_id
    h.recv(b"fw1", m.Decline(fid, (msg.offers[0].id,), refuse_seconds=0.0))
    assert h.master._alloc_agents == {msg.offers[0].agent_id} and not h.master._alloc_all
    again = only(sent(h.fire(("allocate",)), m.Offers, to=b"fw1"))
    assert [o.agent_id for o in again.offers] == [msg.offers[0].agent_id]


def test_reservations_go_to_their_role_through_the_master() -> None:
    h = Harness()
    h.register_agent(b"a1", agent_info("h1", res="cpus:2;mem:512;cpus(ads):2;mem(ads):256"))
    h.subscribe(b"ads", name="ads", roles=("ads",))
    h.subscribe(b"other", name="other")
    out = h.allocate()
    ads = only(only(sent(out, m.Offers, to=b"ads")).offers)
    assert ads.resources.reserved("ads") == R("cpus(ads):2;mem(ads):256")
    for msg in sent(out, m.Offers, to=b"other"):
        assert all(not o.resources.reserved() for o in msg.offers)
