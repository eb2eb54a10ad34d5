"""The pure launch queue: packing, ports, constraints, task environment, backoff."""
from __future__ import annotations

import itertools

import pytest

from marathon import launch_queue as lq
from marathon.model import validate
from mesos_common import messages as m
from mesos_common.resources import Resources


def app(**kw):
    doc = validate(dict({"id": "/web", "cmd": "python3 -m http.server $PORT0", "cpus": 0.5,
                         "mem": 64}, **kw))
    doc["version"] = "2020-08-21T10:00:00.000Z"
    return doc


def offer(res="cpus:2;mem:1024;disk:100;ports:[31000-31009]", host="h1",
          containerizers=("docker", "mesos"), **attrs):
    return m.Offer(id="o1", framework_id="f", agent_id="a-" + host, hostname=host,
                   resources=Resources.parse(res), attributes=attrs,
                   containerizers=containerizers)


ids = (f"web.instance-{i}" for i in itertools.count())


def match(o, a, n, placed=None):
    return lq.match(o, [lq.Want(a, n)], placed or {}, lambda aid: next(ids))


def test_packs_as_many_as_fit_and_takes_resources_from_the_offer():
    got = match(offer(), app(), 10)
    assert len(got) == 4  # 2 cpus / 0.5
    used = Resources()
    for ln in got:
        used += ln.task.resources
        assert ln.task.resources.scalar("cpus") == 0.5 and len(ln.ports) == 1
    assert offer().resources.contains(used)
    assert len({ln.ports[0] for ln in got}) == 4
    assert match(offer("cpus:0.1;mem:1024;ports:[1-5]"), app(), 3) == []


def test_task_environment():
    a = app(labels={"tier": "web-1", "a.b": "c"}, env={"PORT": "keep-mine"},
            portDefinitions=[{"port": 0, "name": "http"}, {"port": 0}])
    a["portDefinitions"][0]["port"], a["portDefinitions"][1]["port"] = 10000, 10001
    (ln,) = match(offer(), a, 1)
    env = ln.task.command.environment
    p0, p1 = ln.ports
    assert env["PORT0"] == str(p0) and env["PORT1"] == str(p1) and env["PORTS"] == f"{p0},{p1}"
    assert env["PORT_HTTP"] == str(p0) and env["PORT_10000"] == str(p0)
    assert env["PORT"] == "keep-mine"  # the app's own env wins
    assert env["HOST"] == "h1" and env["MESOS_TASK_ID"] == ln.task.task_id
    assert env["MARATHON_APP_ID"] == "/web" and env["MARATHON_APP_VERSION"] == a["version"]
    assert env["MARATHON_APP_LABELS"] == "TIER A_B"
    assert env["MARATHON_APP_LABEL_TIER"] == "web-1"
    assert env["MARATHON_APP_RESOURCE_CPUS"] == "0.5"


def test_required_ports_must_be_offered():
    a = app(portDefinitions=[{"port": 31005}], requirePorts=True)
    (ln,) = match(offer(), a, 3)  # the port exists once
    assert ln.ports == (31005,)
    assert match(offer("cpus:2;mem:1024;ports:[31000-31001]"), a, 1) == []


def test_docker_bridge_host_port_zero_gets_an_offered_port():
    a = app(cmd=None, container={"type": "DOCKER", "docker": {
        "image": "corral/busybox:test", "network": "BRIDGE",
        "portMappings": [{"containerPort": 80, "hostPort": 0}]}})
    (ln,) = match(offer(), a, 1)
    pm = ln.task.container.docker.port_mappings[0]
    assert pm.container_port == 80 and 31000 <= pm.host_port <= 31009
    assert ln.task.container.docker.network == "BRIDGE"
    assert ln.task.command.environment["PORT0"] == str(pm.host_port)
    assert ln.task.command.environment["PORT_80"] == str(pm.host_port)


def docker_app(**kw):
    return app(cmd="httpd -f -p 8000", container={"type": "DOCKER", "docker": {
        "image": "corral/busybox:test"}, "portMappings": [{"containerPort": 8000, "hostPort": 0}]},
        networks=[{"mode": "container/bridge"}], **kw)


def test_a_docker_app_goes_only_to_agents_that_run_docker():
    a = docker_app()
    assert match(offer(containerizers=("mesos",)), a, 1) == []
    assert len(match(offer(containerizers=("docker", "mesos")), a, 1)) == 1
    assert len(match(offer(containerizers=("sim",)), a, 1)) == 1
    assert len(match(offer(containerizers=()), a, 1)) == 1  # not said: the agent decides
    assert len(match(offer(containerizers=("mesos",)), app(), 1)) == 1
    image = app(container={"type": "MESOS", "docker": {"image": "corral/busybox:test"}})
    assert match(offer(containerizers=("mesos",)), image, 1) == []  # it runs in Docker
    # a DOCKER app that cannot go here does not stop the apps behind it
    both = lq.match(offer(containerizers=("mesos",)), [lq.Want(a, 1), lq.Want(app(), 1)], {},
                    lambda aid: next(ids))
    assert [ln.task.container for ln in both] == [None]


def test_rejections_say_why_an_offer_cannot_take_an_instance():
    assert lq.rejections(docker_app(), offer(containerizers=("mesos",))) == [lq.NO_DOCKER]
    assert lq.rejections(docker_app(), offer()) == []
    small = offer("cpus:0.1;mem:16;ports:[31000-31000]")
    assert lq.rejections(app(mem=64), small) == ["insufficient cpus", "insufficient mem"]
    unique = app(constraints=[["hostname", "UNIQUE"]], portDefinitions=[{"port": 0}] * 2)
    assert lq.rejections(unique, small, [P("h1", {})]) == [
        "constraint UNIQUE hostname", "insufficient cpus", "insufficient mem",
        "insufficient ports"]


P = lq.Placement


@pytest.mark.parametrize("constraint,host,attrs,placed,ok", [
    (["hostname", "UNIQUE"], "h1", {}, [P("h2", {})], True),
    (["hostname", "UNIQUE"], "h1", {}, [P("h1", {})], False),
    (["rack", "UNIQUE"], "h1", {"rack": "r1"}, [P("h2", {"rack": "r1"})], False),
    (["rack", "CLUSTER", "r1"], "h1", {"rack": "r1"}, [], True),
    (["rack", "CLUSTER", "r1"], "h1", {"rack": "r2"}, [], False),
    (["rack", "CLUSTER"], "h1", {"rack": "r2"}, [P("h2", {"rack": "r1"})], False),
    (["rack", "GROUP_BY"], "h1", {"rack": "r1"},
     [P("h2", {"rack": "r1"}), P("h4", {"rack": "r1"}), P("h3", {"rack": "r2"})], False),
    (["rack", "GROUP_BY"], "h1", {"rack": "r2"}, [P("h2", {"rack": "r1"})], True),
    (["rack", "GROUP_BY", "2"], "h1", {"rack": "r2"}, [P("h2", {"rack": "r1"})], True),
    (["hostname", "LIKE", "h[0-9]"], "h1", {}, [], True),
    (["hostname", "LIKE", "h[0-9]"], "x1", {}, [], False),
    (["hostname", "UNLIKE", "h[0-9]"], "h1", {}, [], False),
    (["rack", "UNLIKE", "r1"], "h1", {}, [], True),  # missing attribute: not like
    (["rack", "LIKE", "r1"], "h1", {}, [], False),  # missing attribute: cannot match
    (["hostname", "MAX_PER", "2"], "h1", {}, [P("h1", {})], True),
    (["hostname", "MAX_PER", "2"], "h1", {}, [P("h1", {}), P("h1", {})], False),
    (["ssd", "IS", "true"], "h1", {"ssd": "true"}, [], True),
    (["cores", "IS", "8"], "h1", {"cores": 8.0}, [], True),
    (["ssd", "IS", "true"], "h1", {"ssd": "false"}, [], False),
])
def test_constraints(constraint, host, attrs, placed, ok):
    assert lq.constraints_ok([constraint], host, attrs, placed) is ok


def test_unique_hostname_limits_one_per_offer_and_counts_earlier_tasks():
    a = app(constraints=[["hostname", "UNIQUE"]])
    assert len(match(offer(), a, 3)) == 1
    assert match(offer(), a, 3, {"/web": [P("h1", {})]}) == []


def test_many_apps_share_one_offer():
    a, b = app(), dict(app(), id="/other")
    got = lq.match(offer(), [lq.Want(a, 2), lq.Want(b, 2)], {}, lambda aid: next(ids))
    assert [ln.app_id for ln in got] == ["/web", "/web", "/other", "/other"]


def test_backoff_grows_by_factor_and_is_capped():
    a = app(backoffSeconds=2, backoffFactor=3, maxLaunchDelaySeconds=10)
    b = lq.Backoff()
    b.failed(a, 100.0)
    assert b.until == 102.0
    b.failed(a, 100.0)
    assert b.until == 106.0
    b.failed(a, 100.0)
    assert b.until == 110.0  # 18 capped at 10
    b.reset()
    assert b.until == 0.0 and b.failures == 0


def test_executor_health_checks_go_to_mesos_in_the_task_info():
    """MESOS_* and COMMAND checks are the agent's to run (Marathon never probes them):
    the first one becomes TaskInfo.health_check, with its port resolved from portIndex."""
    a = app(healthChecks=[{"protocol": "HTTP", "portIndex": 0},
                          {"protocol": "MESOS_TCP", "portIndex": 0, "gracePeriodSeconds": 5,
                           "intervalSeconds": 2, "maxConsecutiveFailures": 4,
                           "delaySeconds": 1, "timeoutSeconds": 3}])
    (ln,) = match(offer(), a, 1)
    hc = ln.task.health_check
    assert hc is not None and hc.type == "TCP" and hc.port == ln.ports[0]
    assert (hc.grace_period_seconds, hc.interval_seconds, hc.consecutive_failures,
            hc.delay_seconds, hc.timeout_seconds) == (5, 2, 4, 1, 3)
    cmd = app(healthChecks=[{"protocol": "COMMAND", "command": {"value": "test -f ok"}}])
    (ln,) = match(offer(), cmd, 1)
    assert ln.task.health_check.type == "COMMAND"
    assert ln.task.health_check.command.value == "test -f ok"
    assert ln.task.health_check.grace_period_seconds == 300  # Marathon's default
    (ln,) = match(offer(), app(healthChecks=[{"protocol": "HTTP"}]), 1)
    assert ln.task.health_check is None  # Marathon probes HTTP checks itself


def test_fetch_uris_user_and_grace_period_go_into_the_task_info():
    a = app(fetch=[{"uri": "http://h/app.tgz", "cache": True},
                   {"uri": "file:///opt/run.sh", "executable": True, "destPath": "bin/run"}],
            user="nobody", taskKillGracePeriodSeconds=7)
    (ln,) = match(offer(), a, 1)
    cmd = ln.task.command
    assert cmd.uris == (m.URI("http://h/app.tgz", extract=True, cache=True),
                        m.URI("file:///opt/run.sh", executable=True, extract=True,
                              output_file="bin/run"))
    assert cmd.user == "nobody" and ln.task.kill_grace_period == 7
    (legacy,) = match(offer(), app(uris=["http://h/x.zip", "http://h/y.bin"]), 1)
    assert [(u.value, u.extract) for u in legacy.task.command.uris] == [
        ("http://h/x.zip", True), ("http://h/y.bin", False)]


MIXED = "cpus(ads):1;mem(ads):256;ports(ads):[32000-32009];cpus:2;mem:1024;ports:[31000-31009]"


@pytest.mark.parametrize("roles, role", [(["ads"], "ads"), (["*"], "*")])
def test_accepted_resource_roles_take_only_those_roles(roles, role):
    launches = match(offer(MIXED), app(acceptedResourceRoles=roles), 5)
    assert len(launches) == (2 if role == "ads" else 4)  # ads: 1 cpu; *: 2 cpus
    for ln in launches:
        assert ln.task.resources.roles() == {role}
        assert all(31000 <= p < 31010 if role == "*" else 32000 <= p < 32010
                   for p in ln.ports)


def test_unset_accepted_roles_use_any_offered_role_and_none_is_a_reason():
    assert len(match(offer(MIXED), app(), 6)) == 6
    a = app(acceptedResourceRoles=["ads"])
    assert match(offer(), a, 1) == []
    assert lq.rejections(a, offer()) == [lq.NO_ROLE]
    assert lq.rejections(app(acceptedResourceRoles=["ads"], cpus=2), offer(MIXED)) == [
        "insufficient cpus"]


def test_an_offer_without_accepted_roles_is_summarised_in_the_queue():
    from marathon.offer_log import OfferLog
    log = OfferLog()
    a = app(acceptedResourceRoles=["ads"])
    log.record(offer(), [lq.Want(a, 1)], set(), {}, 1.0)
    (first,) = log.summary(a["id"])["rejectSummaryLaunchAttempt"]
    assert first == {"reason": lq.NO_ROLE, "declined": 1, "processed": 1}


def test_gpus_come_out_of_the_offer():
    a = app(gpus=1)
    assert match(offer(), a, 1) == []
    assert lq.rejections(a, offer()) == ["insufficient gpus"]
    launches = match(offer(MIXED + ";gpus:2"), a, 5)
    assert len(launches) == 2
    assert all(ln.task.resources.scalar("gpus") == 1 for ln in launches)
