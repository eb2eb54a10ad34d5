"""Marathon in the simulation: the real `MarathonCore` behind the real `SchedulerCore`.

The simulation drives Marathon's core through `handle` only, as it drives the master's and
the agents': the SDK core's callbacks, the ticker, the offer pump and API calls become
events, and `MarathonNode.perform` does what the runtime (marathon/server.py) does with
the effects. Driver effects queue a command that calls the SDK core when the cluster drains
the queue (after the current effects, as the driver's queue does), so Marathon sees the
same ordering as in production. A crash drops both cores; the restarted Marathon is built
from its store alone (the durable state).

The commit contract: Marathon runs `deferred` as the daemon does (marathon/main.py), its
store (`BufferedMemoryStore`) keeps writes pending until the core's `Commit` and loses them
in a crash, and the cluster models the SDK driver's bursts (frameworks/driver.py): the
sends of a burst of callbacks and commands are held until `batch_done` has committed; API
calls commit before they count as answered. Crashes also land between a burst and its
commit.

Health: some apps carry a Mesos health check (MESOS_TCP/MESOS_HTTP/COMMAND, run by the agent,
whose results the cluster draws); a task is healthy when RUNNING and not reported unhealthy
(`marathon.deployment`); agents kill tasks that fail their checks, and Marathon replaces them.

The upgrade-strategy invariant is checked on the core's Kill and Launch effects: while an
app has tasks of an older config version, Marathon never kills a running task of the old
version when that leaves fewer than ceil(minimumHealthCapacity * instances) running tasks
not being killed, and never launches beyond instances * (1 + maximumOverCapacity) active
(non-terminal, not replaced-while-unreachable) instances; as in Marathon's
TaskReplaceActor, {1, 0} allows one instance over so that the upgrade can move.
"""
from __future__ import annotations

import json
import math
import random
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from attrs import define, field

from frameworks import core as sdk
from marathon import core_events as ev
from marathon.core import MarathonCore
from marathon.core_state import MarathonState, Options
from marathon.deployment import config_version
from marathon.errors import ApiError
from marathon.model import ValidationFailed
from marathon.server import framework_info
from marathon.store import BufferedStore
from mesos_common import messages as m
from mesos_common.runtime import Performers
from tests.sim.node import Node

if TYPE_CHECKING:
    pass

EPOCH = 1_767_225_600.0  # 2026-01-01: virtual time 0 as a wall clock for Marathon's timestamps
SERVICE_CMD = 100000  # "sleep 100000+n": runs for the whole run; n is the app's cmd version
OPTIONS = Options(hostname="marathon", tick_interval=1.0, reconcile_interval=30.0)
# The SDK core's callbacks Marathon acts on, as the runtime turns them into events.
CALLBACKS: dict[str, Callable[..., Any]] = {
    "registered": lambda fid, info: ev.Registered(fid, info),
    "reregistered": lambda info: ev.Reregistered(info),
    "resource_offers": lambda offers: ev.Offers(tuple(offers)),
    "offer_rescinded": lambda offer_id: ev.OfferRescinded(offer_id),
    "status_update": lambda status: ev.StatusUpdate(status),
    "disconnected": lambda: ev.Disconnected(),
}


class BufferedMemoryStore(BufferedStore):
    """SQLiteStore's semantics in memory (marathon.store.BufferedStore): `commit` makes the
    buffer durable at once, and a crash (`drop_pending`) loses what was not committed.
    `write_in_thread` stays false: `flush_async` then commits synchronously, which the
    simulation can drive."""

    def __init__(self) -> None:
        super().__init__()
        self._data: dict[str, dict[str, str]] = {}

    def _committed(self, kind: str) -> dict[str, Any]:
        return {k: json.loads(v) for k, v in self._data.get(kind, {}).items()}

    def _write(self, batch: dict[tuple[str, str], str | None]) -> None:
        for (kind, key), doc in batch.items():
            if doc is None:
                self._data.get(kind, {}).pop(key, None)
            else:
                self._data.setdefault(kind, {})[key] = doc

    def drop_pending(self) -> None:
        """The process died: its uncommitted writes never reached the disk."""
        self._pending.clear()

    def close(self) -> None:
        self.commit()


@define(eq=False)
class MarathonNode(Node):
    """Marathon's process: its store is durable, everything else dies in a crash."""

    store: BufferedMemoryStore = field(factory=BufferedMemoryStore)  # committed part survives
    marathon: MarathonCore | None = None
    core: sdk.SchedulerCore | None = None
    clock: Callable[[], float] = lambda: 0.0  # the cluster's virtual time
    queue: list[Callable[[], list[Any]]] = field(factory=list)
    violations: list[str] = field(factory=list)
    user_kill: bool = False  # the current kills come from an API call, not a deployment
    killed: set[str] = field(factory=set)  # tasks Marathon decided to kill (a retry is no news)
    cmd_version: int = 0
    ops: int = 0
    acked: set[bytes] = field(factory=set)
    seen: dict[str, list[tuple[bytes, str]]] = field(factory=dict)
    held: list[Any] | None = None  # sends of the open burst, waiting for its batch_done
    answered: dict[str, str] = field(factory=dict)  # app -> version of its last answered change
    unknown_since: dict[str, float] = field(factory=dict)  # agents run it, Marathon forgot
    wake_pump: Callable[[], None] = lambda: None  # the cluster schedules the offer pump
    check_share: float = 0.0  # share of created apps with a Mesos health check
    check_rng: random.Random = field(factory=lambda: random.Random(0))
    # task -> healthy=false of an update Marathon acknowledged (so committed), until an update
    # saying healthy=true reaches it: Marathon must not count such a task as healthy
    unhealthy_acked: set[str] = field(factory=set)
    uuid_health: dict[bytes, tuple[str, int]] = field(factory=dict)  # uuid -> (task, seq)
    last_health: dict[str, int] = field(factory=dict)  # task -> seq of its last health news
    health_seq: int = 0

    @property
    def state(self) -> MarathonState | None:
        return self.marathon.state if self.marathon is not None else None

    def on_ack(self, uuid: bytes) -> None:
        """An ack goes out: an unhealthy update it acknowledges is committed, unless newer
        health news of that task came in meanwhile."""
        task_seq = self.uuid_health.pop(uuid, None)
        if task_seq is not None and self.last_health.get(task_seq[0]) == task_seq[1]:
            self.unhealthy_acked.add(task_seq[0])

    # ------------------------------------------------------------ building it

    def boot(self, now: Callable[[], float], rng: random.Random) -> None:
        """A fresh process: both cores rebuilt from the store only."""
        self.clock = lambda: EPOCH + now()
        state = MarathonState.from_store(self.store.load, self.clock())
        self.marathon = MarathonCore(state, OPTIONS, lambda: uuid.UUID(
            int=rng.getrandbits(128), version=1), deferred=True)  # as the daemon runs it
        self.core = sdk.SchedulerCore(framework_info(OPTIONS, state.framework_id))
        self.queue.clear()
        self.held = None

    # ------------------------------------------------------------ the runtime's part

    def handle(self, event: Any) -> list[Any]:
        assert self.marathon is not None
        effects = self.marathon.handle(event, self.clock())
        self.perform(effects)
        return effects

    def perform(self, effects: list[Any]) -> None:
        """What marathon/server.py does with each effect; driver calls queue SDK commands."""
        for e in effects:
            _PERFORM[type(e)](self, e)  # an unknown effect raises

    @property
    def live_core(self) -> sdk.SchedulerCore:
        """The SDK core of the running process: queued driver calls run only while it is up."""
        assert self.core is not None
        return self.core

    def _q(self, fn: Callable[[], list[Any]]) -> None:
        self.queue.append(fn)

    def _launch(self, e: ev.Launch) -> None:
        self.on_launch(e.tasks)
        self._q(lambda: self.live_core.launch((e.offer_id,), e.tasks, None))

    def _kill(self, e: ev.Kill) -> None:
        self.on_kill(e.task_id)
        self._q(lambda: self.live_core.kill(e.task_id, e.agent_id))

    def command(self, event: Any) -> Any:
        """An API call: its reply's value, or the error that refused it."""
        reply = self.handle(event)[-1]
        if reply.error is not None:
            raise reply.error
        return reply.value

    def flush(self) -> bool:
        """The runtime's flush up to its commit (dirty apps driven, writes staged); True
        when the core asked for the commit."""
        effects = self.handle_uncommitted(ev.Flush())
        return bool(effects) and isinstance(effects[-1], ev.Commit)

    def handle_uncommitted(self, event: Any) -> list[Any]:
        assert self.marathon is not None
        effects = self.marathon.handle(event, self.clock())
        self.perform([e for e in effects if not isinstance(e, ev.Commit)])
        return effects

    def commit(self) -> None:
        """`flush_async` as the API handlers, the ticker and the driver's `batch_done` call
        it (dirty-app ticks are spaced by virtual time alone: no FlushCost, so a run does
        not depend on the machine)."""
        if self.flush():
            self.store.commit()

    def callback(self, name: str, args: tuple[Any, ...]) -> None:
        assert self.marathon is not None
        if name == "status_update" and args[0].uuid is not None:
            self.seen.setdefault(args[0].task_id, []).append((args[0].uuid, args[0].state))
        if name == "status_update" and args[0].healthy is not None:
            st = args[0]
            self.health_seq += 1
            self.last_health[st.task_id] = self.health_seq
            if st.healthy:
                self.unhealthy_acked.discard(st.task_id)
            elif st.uuid is not None:
                self.uuid_health[st.uuid] = (st.task_id, self.health_seq)
        make = CALLBACKS.get(name)
        if make is not None:
            self.handle(make(*args))  # deferred: its commit is the burst's

    # ------------------------------------------------------------ the invariant

    def _replacing(self, app_id: str) -> dict[str, Any] | None:
        """The app's effective definition while tasks of an older config version remain."""
        svc = self.state
        assert svc is not None
        app = svc.effective_app(app_id)
        if app is None:
            return None
        cv = config_version(app)
        if any(t.active and (t.config_version or t.version) != cv
               for t in svc.tasks_of(app_id)):
            return app
        return None

    @staticmethod
    def bounds(app: dict[str, Any]) -> tuple[int, int]:
        """Marathon's upgradeStrategy bounds (TaskReplaceActor): min healthy, max active."""
        n = int(app["instances"])
        strategy = app.get("upgradeStrategy") or {}
        low = math.ceil(n * float(strategy.get("minimumHealthCapacity", 1.0)))
        high = math.floor(n * (1 + float(strategy.get("maximumOverCapacity", 1.0))))
        return low, (high + 1 if low == high else high)

    def on_kill(self, task_id: str) -> None:
        svc = self.state
        assert svc is not None
        t = svc.tasks.get(task_id)
        if task_id in self.killed:
            return
        self.killed.add(task_id)
        if t is None or self.user_kill or not t.running:
            return
        app = self._replacing(t.app_id)
        if app is None or (t.config_version or t.version) == config_version(app):
            return
        low, _ = self.bounds(app)
        left = [x for x in svc.tasks_of(t.app_id) if x.running and not x.killing]
        if len(left) < low:
            self.violations.append(
                f"Marathon killed running task {task_id} of {t.app_id} during an upgrade, "
                f"leaving {len(left)} running < ceil(minimumHealthCapacity * instances) = {low}")

    def on_launch(self, tasks: tuple[m.TaskInfo, ...]) -> None:
        svc = self.state
        assert svc is not None
        for aid in sorted({svc.tasks[t.task_id].app_id for t in tasks if t.task_id in svc.tasks}):
            app = self._replacing(aid)
            if app is None:
                continue
            _, high = self.bounds(app)
            active = [x for x in svc.tasks_of(aid) if x.active and not x.unreachable_inactive]
            if len(active) > high:
                self.violations.append(
                    f"Marathon launched {aid} up to {len(active)} active instances during an "
                    f"upgrade > instances * (1 + maximumOverCapacity) = {high}")


# ---------------------------------------------------------------- operations

def app_doc(app_id: str, rng: random.Random, cmd_version: int) -> dict[str, Any]:
    return {"id": app_id, "cmd": f"sleep {SERVICE_CMD + cmd_version}",
            "instances": rng.randint(1, 5), "cpus": 0.1, "mem": 16, "disk": 0,
            "portDefinitions": [{"port": 0}] if rng.random() < 0.3 else [],
            "backoffSeconds": 1, "maxLaunchDelaySeconds": 8,
            "upgradeStrategy": strategy(rng)}


def mesos_check(rng: random.Random, has_port: bool) -> dict[str, Any]:
    """A Mesos (agent-run) health check with short timings."""
    protocol = rng.choice(["MESOS_TCP", "MESOS_HTTP", "COMMAND"] if has_port else ["COMMAND"])
    hc: dict[str, Any] = {"protocol": protocol, "gracePeriodSeconds": rng.choice([0, 2, 10]),
                          "intervalSeconds": rng.choice([1, 3]), "timeoutSeconds": 1,
                          "maxConsecutiveFailures": rng.choice([1, 2, 3]),
                          "delaySeconds": rng.choice([0, 1, 2])}
    if protocol == "COMMAND":
        hc["command"] = {"value": "true"}
    return hc


def strategy(rng: random.Random) -> dict[str, float]:
    return {"minimumHealthCapacity": rng.choice([0.0, 0.5, 0.6, 1.0]),
            "maximumOverCapacity": rng.choice([0.0, 0.2, 0.5, 1.0])}


APP_IDS = ("/web", "/api", "/workers/queue")


def random_op(node: MarathonNode, rng: random.Random) -> str:
    """One API call chosen by the seed; a refused one (409 locked, 404) changes nothing."""
    svc = node.state
    assert svc is not None
    force = rng.random() < 0.3
    existing = sorted(svc.apps)
    kind = rng.choice(["create", "create", "scale", "upgrade", "upgrade", "restart",
                       "delete", "kill"] if existing else ["create"])
    try:
        if kind == "create":
            aid = rng.choice(APP_IDS)
            node.cmd_version += 1
            if aid in svc.apps:
                return f"create {aid}: exists"
            doc = app_doc(aid, rng, node.cmd_version)
            if node.check_rng.random() < node.check_share:
                doc["healthChecks"] = [mesos_check(node.check_rng, bool(doc["portDefinitions"]))]
            node.command(ev.CreateApp(doc, force))
            return f"create {aid}"
        aid = rng.choice(existing)
        if kind == "scale":
            n = rng.randint(0, 5)
            node.command(ev.ScaleApp(aid, n, force))
            return f"scale {aid} to {n}"
        if kind == "upgrade":
            node.cmd_version += 1
            body: dict[str, object] = {"cmd": f"sleep {SERVICE_CMD + node.cmd_version}",
                                       "upgradeStrategy": strategy(rng)}
            if rng.random() < 0.3:
                body["instances"] = rng.randint(1, 5)
            node.command(ev.UpdateApp(aid, body, force))
            return f"upgrade {aid} {body}"
        if kind == "restart":
            node.command(ev.RestartApp(aid, force))
            return f"restart {aid}"
        node.user_kill = True
        if kind == "delete":
            node.command(ev.DeleteApp(aid, force))
            return f"delete {aid}"
        tasks = sorted(t.id for t in svc.tasks_of(aid))
        if not tasks:
            return f"kill {aid}: no task"
        victim = rng.choice(tasks)
        scale = rng.random() < 0.3
        node.command(ev.KillTasks((victim,), scale=scale, force=force))
        return f"kill {victim} scale={scale}"
    except (ApiError, ValidationFailed) as e:
        return f"{kind} refused: {str(e)[:80]}"
    finally:
        node.user_kill = False


_PERFORM = Performers({
    ev.Launch: MarathonNode._launch,
    ev.Kill: MarathonNode._kill,
    ev.Decline: lambda n, e: n._q(lambda: n.live_core.decline(
        (e.offer_id,), e.refuse_seconds)),
    ev.AcceptInverseOffers: lambda n, e: n._q(lambda: n.live_core.answer_inverse_offers(
        e.inverse_offer_ids, accept=True)),
    ev.Revive: lambda n, e: n._q(lambda: n.live_core.revive(())),
    ev.Suppress: lambda n, e: n._q(lambda: n.live_core.suppress(())),
    ev.Reconcile: lambda n, e: n._q(lambda: n.live_core.reconcile(e.tasks)),
    ev.Put: lambda n, e: n.store.put(e.kind, e.key, e.doc),
    ev.PutAll: lambda n, e: [n.store.put(e.kind, k, d) for k, d in e.docs.items()],
    ev.Delete: lambda n, e: n.store.delete(e.kind, e.key),
    ev.Commit: lambda n, e: n.store.commit(),
    ev.Publish: lambda n, e: None,  # nobody listens in the simulation
    ev.WakePump: lambda n, e: n.wake_pump(),
    ev.Reply: lambda n, e: None,  # `command` reads it
})
