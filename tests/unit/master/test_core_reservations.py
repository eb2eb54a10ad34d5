"""Master core: dynamic reservations from ACCEPT and from the operator, durable and offered
to their role only."""
from __future__ import annotations

from mesos_common import effects as fx
from mesos_common import messages as m
from mesos_common.auth.acls import parse_acls
from mesos_common.resources import Resources
from mesos_master import views
from mesos_master.auth_config import MasterAuth
from mesos_master.core_reservations import ReserveRequest, UnreserveRequest
from mesos_master.registry.base import RegistryState, UpdateReservations
from mesos_master.reservations import NOBODY, Reservations

from .harness import Harness, agent_info, command_task, only, persisted, sent

WEB = Resources.parse("cpus(web):1;mem(web):128")


def totals(registry: RegistryState) -> dict[str, Resources]:
    """The registry's reservations per agent, whoever made them."""
    return {aid: r.total for aid, r in registry.reserved.items()}


def _reserve(h: Harness, fid: str, offer: m.Offer, op: str = "RESERVE",
             res: Resources = WEB, tasks: tuple = ()) -> list:
    ops = (m.Operation(op, resources=res),) + ((m.Operation("LAUNCH", tasks),) if tasks else ())
    return h.recv(b"fw1", m.Accept(fid, (offer.id,), ops, refuse_seconds=0))


def test_reserve_from_an_offer_is_durable_told_to_the_agent_and_offered_to_the_role() -> None:
    h = Harness()
    aid = h.register_agent(b"a1")
    fid = h.subscribe(b"fw1", roles=("web",))
    out = _reserve(h, fid, only(h.offers()))
    assert only(persisted(out)) == UpdateReservations(aid, Reservations.of({NOBODY: WEB}))
    assert only(sent(out, m.CheckpointResources, to=b"a1")).reserved == WEB
    assert totals(h.master.registry) == {aid: WEB}
    assert h.master.agents[aid].total.reserved("web") == WEB
    offer = only(h.offers())
    assert offer.resources.reserved("web") == WEB
    assert offer.resources.scalar("cpus") == 4
    # Another role's framework never sees the reservation.
    _reserve(h, fid, offer, op="UNRESERVE", res=Resources.parse("cpus(web):0.5"))
    h.recv(b"fw1", m.Suppress(fid))
    h.recv(b"fw2", m.Subscribe(m.FrameworkInfo(name="other", roles=("ads",))))
    other = only(h.offers(b"fw2"))
    assert other.resources.reserved() == Resources.empty()
    assert other.resources.scalar("cpus") == 3.5
    assert totals(h.master.registry)[aid] == Resources.parse("cpus(web):0.5;mem(web):128")


def test_reserve_and_launch_in_one_accept_and_bad_operations_are_dropped() -> None:
    h = Harness()
    aid = h.register_agent(b"a1")
    fid = h.subscribe(b"fw1", roles=("web",))
    task = command_task("t1", aid, res="cpus(web):1;mem(web):128")
    _reserve(h, fid, only(h.offers()), tasks=(task,))
    assert h.master.frameworks[fid].tasks["t1"].info.resources == WEB
    offer = only(h.offers())
    for bad in (Resources.parse("cpus(ads):1"), Resources.parse("cpus:1"),
                Resources.parse("cpus(web):100")):
        out = _reserve(h, fid, offer, res=bad)
        assert not persisted(out) and not sent(out, m.CheckpointResources)
        offer = only(h.offers())
    out = _reserve(h, fid, offer, op="UNRESERVE", res=Resources.parse("cpus(web):2"))
    assert not persisted(out)  # only one cpu is reserved
    assert h.master.agents[aid].reserved == WEB


def test_registry_reservations_survive_a_master_restart_and_correct_the_agent() -> None:
    h = Harness()
    aid = h.register_agent(b"a1")
    fid = h.subscribe(b"fw1", roles=("web",))
    _reserve(h, fid, only(h.offers()))
    h2 = Harness(registry=h.registry, master_id="M2")
    booked = Resources.parse("cpus:3;mem:3968;disk:10000;ports:[31000-31099]") + WEB
    # An agent that missed the CheckpointResources reports nothing reserved: it is told.
    out = h2.recv(b"a1", m.ReregisterAgent(aid, agent_info()))
    assert h2.master.agents[aid].total == booked
    assert only(sent(out, m.CheckpointResources, to=b"a1")).reserved == WEB
    # One that reports them is not told again, and its total is not converted twice.
    info = agent_info(res="cpus:3;mem:3968;disk:10000;ports:[31000-31099];"
                          "cpus(web):1;mem(web):128")
    out = h2.recv(b"a1-new", m.ReregisterAgent(aid, info, reserved=WEB))
    assert h2.master.agents[aid].total == booked and not sent(out, m.CheckpointResources)


def test_operator_reserves_free_resources_rescinding_offers_and_unreserves() -> None:
    h = Harness()
    aid = h.register_agent(b"a1")
    fid = h.subscribe(b"fw1", roles=("web",))
    h.launch(b"fw1", fid, only(h.offers()), [command_task("t1", aid, res="cpus:3;mem:128")],
             refuse_seconds=0)
    offer = only(h.offers())
    assert h.master.reservation_error(ReserveRequest(aid, Resources.parse("cpus(web):2")))
    assert h.master.reservation_error(ReserveRequest("nope", WEB))
    assert h.master.reservation_error(UnreserveRequest(aid, WEB))  # not reserved
    assert h.master.reservation_error(ReserveRequest(aid, Resources.parse("cpus:1")))
    out = h.handle(ReserveRequest(aid, WEB))
    assert only(sent(out, m.Rescind, to=b"fw1")).offer_id == offer.id
    assert totals(h.master.registry) == {aid: WEB}
    assert only(h.offers()).resources.reserved("web") == WEB
    h.recv(b"fw1", m.Suppress(fid))
    h.advance(10.0)
    h.handle(UnreserveRequest(aid, WEB))
    assert h.master.registry.reserved == {} and not h.master.agents[aid].reserved
    assert h.master.agents[aid].total == Resources.parse(
        "cpus:4;mem:4096;disk:10000;ports:[31000-31099]")


def test_agent_reregistering_before_the_write_is_done_keeps_the_booked_reservation() -> None:
    h = Harness()
    aid = h.register_agent(b"a1")
    fid = h.subscribe(b"fw1", roles=("web",))
    h.auto_persist = False
    op = only(persisted(_reserve(h, fid, only(h.offers()))))
    out = h.recv(b"a1-new", m.ReregisterAgent(aid, agent_info()))
    assert only(sent(out, m.CheckpointResources)).reserved == WEB  # the books, not the registry
    assert h.master.agents[aid].reserved == WEB and h.registry.load().reserved == {}
    h.registry.apply(op)
    assert only(sent(h.handle(fx.PersistDone(op)), m.CheckpointResources)).reserved == WEB
    assert totals(h.master.registry) == {aid: WEB}


def test_reservations_by_principal_take_the_requesters_first_and_read_older_json() -> None:
    one, two = Resources.parse("cpus(web):1;ports(web):[1-5]"), Resources.parse(
        "cpus(web):2;ports(web):[6-9]")
    res = Reservations.of({"alice": one}).add("bob", two).add(None, WEB)
    assert res.total == one + two + WEB and res.by_principal()[NOBODY] == WEB
    taken = res.take(Resources.parse("cpus(web):2;ports(web):[4-7]"), "bob")
    assert taken is not None
    left, by = taken
    assert by == {"bob": Resources.parse("cpus(web):2;ports(web):[6-7]"),
                  "alice": Resources.parse("ports(web):[4-5]")}
    assert left.total == res.total - Resources.parse("cpus(web):2;ports(web):[4-7]")
    assert res.take(Resources.parse("cpus(web):5"), "bob") is None  # not held
    assert Reservations.from_json(res.to_json()) == res
    assert [i["reservations"][0].get("principal") for i in res.to_json()] == \
        [None, None, "alice", "alice", "bob", "bob"]
    assert Reservations.from_json(WEB.to_json()) == Reservations.of({NOBODY: WEB})  # older


def test_the_reserver_is_recorded_and_unreserve_follows_the_acls() -> None:
    acls = parse_acls({"unreserve_resources": [
        {"principals": {"values": ["bob"]}, "reserver_principals": {"values": ["bob"]}},
        {"principals": {"values": ["bob"]}, "reserver_principals": {"type": "NONE"}}]})
    h = Harness(auth=MasterAuth(acls=acls))
    aid = h.register_agent(b"a1")
    fid = h.subscribe(b"fw1", roles=("web",), principal="alice")
    _reserve(h, fid, only(h.offers()))
    assert h.master.registry.reserved[aid] == Reservations.of({"alice": WEB})
    state = views.agent_json(h.master.agents[aid])
    assert {i["reservations"][0]["principal"] for i in state["reserved_resources_full"]["web"]} \
        == {"alice"}
    # bob may not undo alice's reservation, from an offer nor as the operator.
    h.recv(b"fw1", m.Suppress(fid))
    bob = h.subscribe(b"fw2", name="bob", roles=("web",), principal="bob")
    out = h.recv(b"fw2", m.Accept(bob, (only(h.offers(b"fw2")).id,),
                                  (m.Operation("UNRESERVE", resources=WEB),), refuse_seconds=0))
    assert not persisted(out) and h.master.agents[aid].reserved == WEB
    assert h.master.unreserve_refusal("bob", aid, WEB) == \
        "unreserve_resources reserved by 'alice'"
    assert h.master.unreserve_refusal("alice", aid, WEB) is None  # no rule: permissive
    # The operator bob reserves too; an unreserve by bob takes bob's part first.
    h.handle(ReserveRequest(aid, Resources.parse("cpus(web):1"), "bob"))
    assert h.master.unreserve_refusal("bob", aid, Resources.parse("cpus(web):1")) is None
    assert h.master.unreserve_refusal("bob", aid, Resources.parse("cpus(web):2")) is not None
    h.handle(UnreserveRequest(aid, Resources.parse("cpus(web):1"), "bob"))
    assert h.master.registry.reserved[aid] == Reservations.of({"alice": WEB})
