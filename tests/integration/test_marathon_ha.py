"""Marathon HA end to end: a real private ZooKeeper, real masters, agents, task processes and
several Marathon processes with `--zk`.

One leader; standbys proxy the API (create through a standby, read the events stream through
it); kill -9 of the leader hands the same apps and tasks to a standby (same task ids, same
processes, no extra instances) which can still scale; `DELETE /v2/leader` moves leadership;
`--master zk://` finds an HA master. Also ZkStore against the real server (escaped keys,
chunked commits over 1 MB, fencing) and the `--zk` flag's checks.
"""
from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from types import SimpleNamespace
from typing import cast

import psutil
import pytest

from marathon.leadership import Node
from marathon.proxy import StoredFrameworkId
from marathon.store_zk import StoreError, ZkStore, escape
from mesos_common import launch_log
from mesos_common.daemons import Daemon, free_port, python_module, spawn
from mesos_common.leader import make_zk_client
from mesos_master.ha_local import HaCluster
from tests.helpers import http_json, wait_for
from tests.integration.marathon_helpers import MarathonApi
from tests.integration.test_ha_failover import Proxy

pytestmark = pytest.mark.slow

AGENT = "cpus:2;mem:1024;disk:1024;ports:[31000-31099]"
SESSION = 2.0
SLEEPER = {"id": "/prod/sleeper", "cmd": "sleep 600", "cpus": 0.1, "mem": 16, "instances": 2}


class Marathons:
    """Marathon processes by slot (None once killed) on one ZooKeeper path."""

    def __init__(self, root: Path, master: str, zk_url: str) -> None:
        self.root, self.master, self.zk_url = root, master, zk_url
        self.procs: list[Daemon | None] = []
        self.ports: list[int] = []
        self.session = SESSION
        self.extra: tuple[str, ...] = ()  # more flags for every Marathon

    def start(self, index: int | None = None, zk_url: str | None = None) -> Daemon:
        i = len(self.procs) if index is None else index
        port = free_port() if index is None else self.ports[i]
        d = spawn(f"marathon{i + 1}", python_module(
            "marathon", f"--master={self.master}", f"--zk={zk_url or self.zk_url}",
            f"--http_port={port}", f"--zk_session_timeout={self.session}secs",
            "--scale_apps_interval=0.5", "--decline_offer_duration=1secs", *self.extra),
            self.root / "logs" / f"marathon{i + 1}.log", "marathon: listening")
        if index is None:
            self.procs.append(d)
            self.ports.append(port)
        else:
            self.procs[index] = d
        return d

    def api(self, i: int) -> MarathonApi:
        return MarathonApi(f"http://127.0.0.1:{self.ports[i]}")

    def alive(self) -> list[int]:
        return [i for i, d in enumerate(self.procs) if d is not None and d.alive()]

    def leader(self) -> int | None:
        """The slot every live Marathon names as leader, once that one says it is elected."""
        named = set()
        for i in self.alive():
            status, body = self.api(i).call("GET", "/v2/leader")
            named.add(body.get("leader") if status == 200 else None)
        leader = named.pop() if len(named) == 1 else None
        if leader is None:
            return None
        port = int(leader.rsplit(":", 1)[1])
        if port not in self.ports:
            return None
        slot = self.ports.index(port)
        status, info = self.api(slot).call("GET", "/v2/info")
        return slot if status == 200 and info["elected"] else None

    def wait_leader(self, what: str, timeout: float = 30.0, not_slot: int | None = None,
                    slot: int | None = None) -> int:
        """Wait for a leader (other than `not_slot`, or exactly `slot`); its slot."""
        def found():
            s = self.leader()
            ok = s is not None and s != not_slot and slot in (None, s)
            return (s,) if ok else None
        return wait_for(found, timeout, 0.1, what)[0]

    def kill9(self, i: int) -> None:
        d = self.procs[i]
        if d is not None:
            d.kill9()
        self.procs[i] = None

    def stop(self) -> None:
        for d in self.procs:
            if d is not None:
                d.stop(timeout=20)

    def dump(self) -> str:
        out = []
        for p in sorted((self.root / "logs").glob("*.log")):
            out.append(f"===== {p.name}\n" + "".join(p.read_text().splitlines(True)[-40:]))
        return "\n".join(out)


@pytest.fixture
def marathons(cluster, zookeeper, tmp_path, request):
    cluster.start_master()
    cluster.start_agent(AGENT)
    cluster.wait_agents(1)
    ms = Marathons(tmp_path, cluster.master_addr, zookeeper.url("/marathon"))
    try:
        yield ms
    finally:
        rep = getattr(request.node, "rep_call", None)
        if rep is not None and rep.failed:
            print(ms.dump())
        ms.stop()


def running_tasks(cluster) -> list[dict]:
    """Marathon's live tasks as the master sees them."""
    return [t for f in cluster.state()["frameworks"] if f["name"] == "marathon"
            for t in f["tasks"] if t["state"] in ("TASK_STAGING", "TASK_STARTING",
                                                   "TASK_RUNNING")]


def app_running(api: MarathonApi, n: int):
    status, body = api.call("GET", "/v2/apps/prod/sleeper")
    if status != 200:
        return None
    tasks = body["app"]["tasks"]
    ok = len(tasks) == n and all(t["state"] == "TASK_RUNNING" for t in tasks) \
        and not body["app"]["deployments"]
    return sorted(t["id"] for t in tasks) if ok else None


def task_pids(cluster) -> dict[str, int]:
    out = {}
    for work in cluster.agent_dirs:
        out.update(launch_log.task_pids(str(work)))
    return out


def raw(url: str, method: str = "GET", body: dict | None = None):
    req = urllib.request.Request(url, method=method,
                                 data=None if body is None else json.dumps(body).encode(),
                                 headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, dict(r.headers), json.loads(r.read() or b"null")
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), json.loads(e.read() or b"null")


def create_sleeper(api: MarathonApi) -> list[str]:
    """POST the 2-instance sleeper app and wait until both run; their task ids."""
    assert api.call("POST", "/v2/apps", SLEEPER)[0] == 201
    return wait_for(lambda: app_running(api, 2), 60, 0.2, "2 running tasks")


def test_one_leader_standbys_proxy_and_events_stream_through_them(marathons, cluster,
                                                                   zookeeper):
    for _ in range(3):
        marathons.start()
    lead = marathons.wait_leader("one leader named by all")
    standby = next(i for i in range(3) if i != lead)
    leader_url = f"http://127.0.0.1:{marathons.ports[lead]}"
    elected = [marathons.api(i).call("GET", "/v2/info")[1]["elected"] for i in range(3)]
    assert elected.count(True) == 1 and elected[lead]
    info = marathons.api(standby).call("GET", "/v2/info")[1]
    assert info["leader"] == f"127.0.0.1:{marathons.ports[lead]}"
    assert info["zookeeper_config"]["zk"] == zookeeper.url("/marathon")

    # an SSE stream opened on a standby is proxied from the leader, as it happens
    sse = urllib.request.urlopen(urllib.request.Request(
        f"http://127.0.0.1:{marathons.ports[standby]}/v2/events?event_type=api_post_event",
        headers={"Accept": "text/event-stream"}), timeout=20)
    assert sse.headers["X-Marathon-Leader"] == leader_url

    status, headers, body = raw(f"http://127.0.0.1:{marathons.ports[standby]}/v2/apps",
                                "POST", SLEEPER)
    assert status == 201, body
    assert headers["X-Marathon-Leader"] == leader_url
    assert body["id"] == "/prod/sleeper" and headers["Location"] == "/v2/apps/prod/sleeper"
    lines: list[bytes] = []
    while not any(line.startswith(b"data:") for line in lines):
        lines.append(sse.readline())
    sse.close()
    assert b"event: api_post_event\n" in lines
    ev = json.loads(next(line for line in lines if line.startswith(b"data:"))[5:])
    assert ev["appDefinition"]["id"] == "/prod/sleeper"

    ids = wait_for(lambda: app_running(marathons.api(standby), 2), 60, 0.2, "2 running tasks")
    assert sorted(t["id"] for t in running_tasks(cluster)) == ids
    # a standby reports the leader's framework id (read from ZooKeeper), not null
    fid = marathons.api(lead).call("GET", "/v2/info")[1]["frameworkId"]
    assert fid and fid in {f["id"] for f in cluster.state()["frameworks"]}
    wait_for(lambda: marathons.api(standby).call("GET", "/v2/info")[1]["frameworkId"] == fid,
             10, 0.2, "the standby's /v2/info frameworkId")
    # the state is in ZooKeeper under escaped keys
    client = make_zk_client(zookeeper.hosts)
    client.start(timeout=10)
    try:
        assert escape("/prod/sleeper") in client.get_children("/marathon/state/app")
        assert set(client.get_children("/marathon/state/task")) == {escape(i) for i in ids}
    finally:
        client.stop()
        client.close()
    # errors are the leader's too, proxied unchanged
    status, _, body = raw(f"http://127.0.0.1:{marathons.ports[standby]}/v2/apps/nope")
    assert status == 404 and "does not exist" in body["message"]


def test_kill9_of_the_leader_hands_apps_and_tasks_to_a_standby(marathons, cluster):
    for _ in range(2):
        marathons.start()
    lead = marathons.wait_leader("a leader")
    ids = create_sleeper(marathons.api(lead))
    pids = wait_for(lambda: (p := task_pids(cluster)) and len(p) == 2 and p, 20, what="pids")
    versions = marathons.api(lead).call("GET", "/v2/apps/prod/sleeper/versions")[1]

    marathons.kill9(lead)
    t0 = time.monotonic()
    new = marathons.wait_leader("a new leader", not_slot=lead)
    took = time.monotonic() - t0
    assert new != lead
    api = marathons.api(new)
    assert wait_for(lambda: app_running(api, 2), 30, 0.2, "the same 2 tasks") == ids
    assert api.call("GET", "/v2/apps/prod/sleeper/versions")[1] == versions
    # no duplicate instance was launched and the task processes were left alone
    time.sleep(2 * 0.5 + 1)  # a few control ticks of the new leader
    assert sorted(t["id"] for t in running_tasks(cluster)) == ids
    assert {k: v for k, v in task_pids(cluster).items()} == pids
    assert all(psutil.pid_exists(p) for p in pids.values())
    fws = [f for f in cluster.state()["frameworks"] if f["name"] == "marathon"]
    assert len(fws) == 1 and fws[0]["active"]  # the same framework, re-subscribed

    status, body = api.call("PUT", "/v2/apps/prod/sleeper", {"instances": 3})
    assert status == 200, body
    ids3 = wait_for(lambda: app_running(api, 3), 60, 0.2, "3 running tasks")
    assert set(ids) < set(ids3)
    # the killed Marathon comes back as a standby and proxies to the new leader
    marathons.start(lead)
    marathons.wait_leader("the restarted one following", slot=new)
    assert app_running(marathons.api(lead), 3) == ids3
    print(f"takeover after kill -9: {took:.2f}s (session timeout {SESSION}s)")


def test_delete_leader_abdicates_and_another_takes_over(marathons, cluster):
    for _ in range(2):
        marathons.start()
    lead = marathons.wait_leader("a leader")
    ids = create_sleeper(marathons.api(lead))

    sse = urllib.request.urlopen(urllib.request.Request(
        f"http://127.0.0.1:{marathons.ports[lead]}/v2/events",
        headers={"Accept": "text/event-stream"}), timeout=20)
    assert sse.readline() == b"event: event_stream_attached\n"
    status, body = marathons.api(lead).call("DELETE", "/v2/leader")
    assert (status, body) == (200, {"message": "Leadership abdicated"})
    while sse.readline():  # the old leader's event stream ends with its term
        pass
    sse.close()
    new = marathons.wait_leader("another leader", not_slot=lead)
    assert app_running(marathons.api(new), 2) == ids
    assert app_running(marathons.api(lead), 2) == ids  # now proxied by the old leader
    # and back again, this time asking through the standby (proxied to the leader)
    status, body = marathons.api(lead).call("DELETE", "/v2/leader")
    assert (status, body) == (200, {"message": "Leadership abdicated"})
    marathons.wait_leader("the first leader again", slot=lead)
    assert wait_for(lambda: app_running(marathons.api(lead), 2), 30, 0.2, "tasks") == ids
    assert sorted(t["id"] for t in running_tasks(cluster)) == ids


def test_leader_cut_from_zookeeper_steps_down_and_a_standby_takes_over(
        marathons, cluster, zookeeper):
    proxy = Proxy(("127.0.0.1", zookeeper.port))
    try:
        first = marathons.start(zk_url=f"zk://127.0.0.1:{proxy.port}/marathon")
        marathons.wait_leader("the first Marathon leads", slot=0)
        marathons.start()
        marathons.wait_leader("both agree", slot=0)
        ids = create_sleeper(marathons.api(0))
        pids = wait_for(lambda: (p := task_pids(cluster)) and len(p) == 2 and p, 20,
                        what="pids")
        proxy.cut()
        # it stops acting at once (its session may live on for a while, not its term)
        wait_for(lambda: not marathons.api(0).call("GET", "/v2/info")[1]["elected"],
                 SESSION + 5, 0.1, "the cut-off leader steps down")
        wait_for(lambda: "stepping down as leader: ZooKeeper connection lost" in
                 first.log_path.read_text(), 10, 0.1, "the reason in its log")
        api = marathons.api(1)
        wait_for(lambda: api.call("GET", "/v2/info")[1]["elected"], 30, 0.1,
                 "the standby leads once the old session expired")
        assert wait_for(lambda: app_running(api, 2), 30, 0.2, "the same tasks") == ids
        assert sorted(t["id"] for t in running_tasks(cluster)) == ids
        assert task_pids(cluster) == pids and all(psutil.pid_exists(p) for p in pids.values())
        assert first.alive()  # stepped down, still serving
        assert marathons.api(0).call("GET", "/v2/info")[1]["elected"] is False
    finally:
        proxy.cut()


def test_zookeeper_pause_within_the_session_fences_the_leader_then_it_resumes(
        marathons, cluster, zookeeper):
    marathons.session = 6.0  # kazoo reports SUSPENDED after 2/3 of it without an answer
    first = marathons.start()
    marathons.wait_leader("the first Marathon leads", slot=0)
    marathons.start()
    marathons.wait_leader("both agree", slot=0)
    ids = create_sleeper(marathons.api(0))
    zookeeper.pause()
    try:
        wait_for(lambda: not marathons.api(0).call("GET", "/v2/info")[1]["elected"],
                 marathons.session, 0.1, "the leader stops acting while ZooKeeper is away")
        status, body = marathons.api(0).call("GET", "/v2/apps")
        assert status == 503 and "leader" in body["message"]  # nobody to answer for now
    finally:
        zookeeper.resume()
    wait_for(lambda: "stepping down as leader: ZooKeeper connection lost" in
             first.log_path.read_text(), 10, 0.1, "the reason in its log")
    # the session survived, so did our znode: nobody else led; the same Marathon leads again
    marathons.wait_leader("the same leader again", slot=0)
    wait_for(lambda: "elected leader (term 2)" in first.log_path.read_text(), 10, 0.1,
             "a second term in its log")
    assert wait_for(lambda: app_running(marathons.api(1), 2), 30, 0.2, "tasks") == ids
    assert sorted(t["id"] for t in running_tasks(cluster)) == ids


def test_marathon_finds_an_ha_master_through_zookeeper(zookeeper, tmp_path):
    ha = HaCluster(tmp_path, zookeeper.url("/mesos"), session_timeout=SESSION)
    ms = Marathons(tmp_path, zookeeper.url("/mesos"), zookeeper.url("/marathon"))
    try:
        ha.start_master()
        ha.start_master()
        ha.start_agent(AGENT)
        ms.start()
        ms.wait_leader("marathon leads", slot=0)
        create_sleeper(ms.api(0))
        slot, master = wait_for(ha.leader, 10, what="the leading master")
        state = http_json(f"http://{ha.http_of(master)}/master/state")
        assert [f["name"] for f in state["frameworks"]] == ["marathon"]
    finally:
        ms.stop()
        ha.stop()


def test_zk_store_against_zookeeper(zookeeper):
    client = make_zk_client(zookeeper.hosts)
    client.start(timeout=10)
    try:
        fence = client.create("/m/leader/member_", b"me", ephemeral=True, sequence=True,
                              makepath=True)
        store = ZkStore(client, "/m", fence=fence, autocommit=False)
        big = "x" * 300_000
        for i in range(5):  # 1.5 MB in one commit: more than one request may carry
            store.put("version", f"/a/b@{i}", {"cmd": big, "i": i})
        store.put("app", "/a/b", {"id": "/a/b"})
        store.put("app", "/gone", {"id": "/gone"})
        store.delete("app", "/gone")
        store.commit()
        assert store.commits >= 3  # chunked
        again = ZkStore(client, "/m")
        assert again.load("app") == {"/a/b": {"id": "/a/b"}}
        assert list(again.load("version")) == [f"/a/b@{i}" for i in range(5)]  # write order
        store.put("app", "/a/b", {"id": "/a/b", "instances": 2})
        store.commit()
        assert ZkStore(client, "/m").load("app")["/a/b"]["instances"] == 2
        client.delete(fence)  # we are no longer the leader: writes must fail
        store.put("app", "/c", {"id": "/c"})
        with pytest.raises(StoreError, match="fenced"):
            store.commit()
        assert "/c" not in ZkStore(client, "/m").load("app")
    finally:
        client.stop()
        client.close()


def test_standby_framework_id_is_read_from_zookeeper_at_most_once_per_ttl(
        zookeeper):
    client = make_zk_client(zookeeper.hosts)
    client.start(timeout=10)
    now = [0.0]
    # what StoredFrameworkId reads of a node: its elector's path and ZooKeeper client
    node = cast(Node, SimpleNamespace(elector=SimpleNamespace(path="/fid", client=client)))

    async def scenario() -> list[tuple[list[str | None], int]]:
        cache = StoredFrameworkId(ttl=2.0, clock=lambda: now[0])
        seen = []

        async def ask(at: float) -> None:
            now[0] = at
            got = await asyncio.gather(*(cache.get(node) for _ in range(5)))
            seen.append((list(got), cache.reads))
        await ask(0.0)  # no leader has stored one yet
        ZkStore(client, "/fid").put("meta", "framework_id", "fw-1")
        await ask(1.0)  # within the TTL: cached
        await ask(2.5)
        client.delete("/fid/state/meta/framework_id")
        await ask(5.0)
        seen.append(([await StoredFrameworkId().get(cast(Node, SimpleNamespace(elector=None)))], 0))
        return seen
    try:
        assert asyncio.run(scenario()) == [
            ([None] * 5, 1),  # five concurrent requests, one read
            ([None] * 5, 1),
            (["fw-1"] * 5, 2),
            ([None] * 5, 3),
            ([None], 0)]  # no ZooKeeper (embedded store): nothing to read
    finally:
        client.stop()
        client.close()


@pytest.mark.parametrize("flag,expect", [
    ("--zk=zk://127.0.0.1:2181", "invalid ZooKeeper URL"),
    ("--zk=http://127.0.0.1:2181/m", "must be a zk://"),
    ("--zk=zk://127.0.0.1:99999/m", "invalid ZooKeeper address"),
])
def test_bad_zk_url_is_a_one_line_error(flag, expect):
    r = subprocess.run([sys.executable, "-m", "marathon", "--master=127.0.0.1:5050", flag],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 2
    assert r.stderr.count("\n") == 1 and expect in r.stderr, r.stderr


def test_zk_url_from_the_environment_is_checked_too():
    r = subprocess.run([sys.executable, "-m", "marathon", "--master=zk://127.0.0.1:2181/mesos"],
                       capture_output=True, text=True, timeout=60,
                       env=dict(os.environ, MARATHON_ZK="zk://nohost/marathon"))
    assert r.returncode == 2
    assert r.stderr.count("\n") == 1 and "invalid ZooKeeper address" in r.stderr, r.stderr
