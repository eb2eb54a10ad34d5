"""Master core: authentication, ACLs, rate limits and per-principal caps (pure)."""
from __future__ import annotations

import attrs
from hypothesis import given, settings
from hypothesis import strategies as st

from mesos_common import effects as fx
from mesos_common import messages as m
from mesos_common import task_states as ts
from mesos_common.auth.acls import parse_acls
from mesos_common.auth.credentials import Credential, Credentials
from mesos_common.auth.rate_limits import parse_rate_limits
from mesos_master.auth_config import MasterAuth
from mesos_master.core_frameworks import REASON_TASK_UNAUTHORIZED

from .harness import Harness, agent_info, command_task, only, sent, updates

CREDS = Credentials([Credential("agent", "agent-secret"), Credential("fw", "fw-secret"),
                     Credential("other", "other-secret")])
ANY_ = {"type": "ANY"}


def secure(**kw) -> Harness:
    auth = MasterAuth(credentials=CREDS, authenticate_agents=True,
                      authenticate_frameworks=True, **kw)
    return Harness(auth=auth)


def logs(out):
    return [e.text for e in out if isinstance(e, fx.Log)]


def test_agent_without_or_with_wrong_credential_is_refused_once_logged():
    h = secure()
    out = h.recv(b"a1", m.RegisterAgent(agent_info()))
    err = only(sent(out, m.ProtocolError, to=b"a1"))
    assert "authentication required" in err.message and not h.master.agents
    assert len(logs(out)) == 1
    again = h.recv(b"a1", m.RegisterAgent(agent_info()))
    assert sent(again, m.ProtocolError) and not logs(again)  # logged once per peer
    out = h.recv(b"a2", m.Authenticate("agent", "wrong"))
    out += h.recv(b"a2", m.RegisterAgent(agent_info()))
    assert "authentication failed for principal 'agent'" in sent(out, m.ProtocolError)[0].message
    assert not h.master.agents and not persisted_any(out)
    assert all("wrong" not in text for text in logs(out))


def persisted_any(out):
    return [e for e in out if isinstance(e, fx.Persist)]


def test_authenticated_agent_registers_with_its_principal():
    h = secure()
    h.recv(b"a1", m.Authenticate("agent", "agent-secret"))
    aid = h.register_agent(b"a1")
    assert h.master.agents[aid].principal == "agent"


def test_framework_auth_and_principal_recorded():
    h = secure()
    out = h.recv(b"f1", m.Subscribe(m.FrameworkInfo("fw")))
    assert "authentication required" in only(sent(out, m.ProtocolError)).message
    assert not h.master.frameworks
    h.recv(b"f1", m.Authenticate("fw", "fw-secret"))
    fid = h.subscribe(b"f1")
    assert h.master.frameworks[fid].info.principal == "fw"
    h.recv(b"f2", m.Authenticate("fw", "fw-secret"))
    out = h.recv(b"f2", m.Subscribe(m.FrameworkInfo("x", principal="other")))
    assert "not the authenticated one" in only(sent(out, m.ProtocolError)).message


def test_refused_framework_gets_no_offers():
    h = secure()
    h.recv(b"a1", m.Authenticate("agent", "agent-secret"))
    h.register_agent(b"a1")
    h.recv(b"f1", m.Subscribe(m.FrameworkInfo("fw")))
    assert not sent(h.allocate(), m.Offers)


def test_register_frameworks_acl_refuses_role():
    acls = parse_acls({"register_frameworks": [
        {"principals": {"values": ["fw"]}, "roles": {"values": ["dev"]}},
        {"principals": ANY_, "roles": {"type": "NONE"}}]})
    h = secure(acls=acls)
    h.recv(b"f1", m.Authenticate("fw", "fw-secret"))
    out = h.recv(b"f1", m.Subscribe(m.FrameworkInfo("fw", roles=("prod",))))
    assert "may not register frameworks in role 'prod'" in only(sent(out, m.Error)).message
    assert not h.master.frameworks
    h.subscribe(b"f1", roles=("dev",))


def test_run_tasks_acl_task_error_per_task():
    acls = parse_acls({"permissive": False,
                       "register_frameworks": [{"principals": ANY_, "roles": ANY_}],
                       "run_tasks": [{"principals": ANY_, "users": {"values": ["nobody"]}}]})
    h = secure(acls=acls)
    h.recv(b"a1", m.Authenticate("agent", "agent-secret"))
    aid = h.register_agent(b"a1")
    h.recv(b"f1", m.Authenticate("fw", "fw-secret"))
    fid = h.subscribe(b"f1", user="nobody")
    offer = only(h.offers(b"f1"))
    tasks = [command_task("t-ok", aid),
             attrs.evolve(command_task("t-root", aid), command=m.CommandInfo("id", user="root"))]
    out = h.launch(b"f1", fid, offer, tasks)
    (bad,) = [s for s in updates(out, to=b"f1") if s.task_id == "t-root"]
    assert bad.state == ts.ERROR and bad.reason == REASON_TASK_UNAUTHORIZED
    assert [r.task.task_id for r in sent(out, m.RunTask)] == ["t-ok"]


def test_rate_limit_refuses_over_capacity():
    limits = parse_rate_limits({"limits": [{"principal": "fw", "qps": 1, "capacity": 2}]})
    h = secure(rate_limits=limits)
    h.recv(b"f1", m.Authenticate("fw", "fw-secret"))
    fid = h.subscribe(b"f1")  # the first token
    h.now += 1.0
    outs = [h.recv(b"f1", m.Revive(fid)) for _ in range(3)]
    assert not sent(outs[0], m.ProtocolError) and not sent(outs[1], m.ProtocolError)
    assert "rate limit" in only(sent(outs[2], m.ProtocolError)).message
    assert not sent(h.recv(b"f1", m.Revive(fid), now=h.now + 1.0), m.ProtocolError)


def test_caps_per_principal():
    h = secure(max_agents_per_principal=1, max_frameworks_per_principal=1)
    for peer in (b"a1", b"a2"):
        h.recv(peer, m.Authenticate("agent", "agent-secret"))
    h.register_agent(b"a1")
    out = h.recv(b"a2", m.RegisterAgent(agent_info("h2")))
    assert "most allowed" in only(sent(out, m.ProtocolError)).message
    for peer in (b"f1", b"f2"):
        h.recv(peer, m.Authenticate("fw", "fw-secret"))
    h.subscribe(b"f1")
    out = h.recv(b"f2", m.Subscribe(m.FrameworkInfo("two")))
    assert "most allowed" in only(sent(out, m.ProtocolError)).message


def test_defaults_need_nothing():
    h = Harness()
    h.register_agent(b"a1")
    assert h.subscribe(b"f1")


_peers = st.sampled_from([b"p1", b"p2", b"p3"])
_steps = st.lists(st.tuples(_peers, st.sampled_from([
    m.Authenticate("agent", "agent-secret"), m.Authenticate("agent", "wrong"),
    m.Authenticate("fw", "fw-secret"), m.Authenticate("nobody", "x"),
    m.RegisterAgent(agent_info()), m.ReregisterAgent("M-S1", agent_info()),
    m.Subscribe(m.FrameworkInfo("f")), m.Subscribe(m.FrameworkInfo("f", principal="other")),
    m.Heartbeat()])), max_size=30)


@settings(max_examples=300, deadline=None)
@given(_steps)
def test_nothing_registers_without_a_proven_principal(steps):
    h = secure()
    proven: dict[bytes, str | None] = {}
    for peer, msg in steps:
        before = {a.id: a.principal for a in h.master.agents.values()}
        before_fw = {f.id: f.peer for f in h.master.frameworks.values()}
        h.recv(peer, msg)
        if isinstance(msg, m.Authenticate):
            ok = CREDS.check(msg.principal, msg.secret)
            proven[peer] = msg.principal if ok else None
        for agent in h.master.agents.values():
            assert agent.principal in ("agent", "fw")
            if before.get(agent.id, "-") != agent.principal:  # (re-)admitted just now
                assert proven.get(agent.peer) == agent.principal
        for fw in h.master.frameworks.values():
            assert fw.info.principal in ("agent", "fw")
            if before_fw.get(fw.id) != fw.peer:
                assert fw.peer is not None and proven.get(fw.peer) == fw.info.principal
