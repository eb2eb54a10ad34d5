"""Marathon in the simulation: the real `MarathonService` behind the real `SchedulerCore`.

`SimDriver` stands in for `AsyncSchedulerDriver`: its methods queue a command that calls the
core when the cluster drains the queue (after the current effects, as the driver's queue
does), so Marathon sees the same ordering as in production. A crash drops the service and
its core; the restarted one is built from its store alone (the durable state).

The commit contract: Marathon runs `deferred` as the daemon does (marathon/main.py), its
store (`BufferedMemoryStore`) keeps writes pending until `commit()` and loses them in a
crash, and the cluster models the SDK driver's bursts (frameworks/driver.py): the sends of
a burst of callbacks and commands are held until `batch_done` has committed; API calls
commit before they count as answered. Crashes also land between a burst and its commit.

Health: some apps carry a Mesos health check (MESOS_TCP/MESOS_HTTP/COMMAND, run by the agent,
whose results the cluster draws); a task is healthy when RUNNING and not reported unhealthy
(`marathon.deployment`); agents kill tasks that fail their checks, and Marathon replaces them.

The upgrade-strategy invariant is checked where Marathon decides (`on_kill`, `on_launch`):
while an app has tasks of an older config version, Marathon never kills a running task of
the old version when that leaves fewer than ceil(minimumHealthCapacity * instances) running
tasks not being killed, and never launches beyond instances * (1 + maximumOverCapacity)
active (non-terminal, not replaced-while-unreachable) instances; as in Marathon's
TaskReplaceActor, {1, 0} allows one instance over so that the upgrade can move.
"""
from __future__ import annotations

import inspect
import json
import math
import random
import uuid
from typing import TYPE_CHECKING, Any, Callable

from attrs import define, field

from frameworks import core as sdk
from marathon.errors import ApiError
from marathon.deployment import config_version
from marathon.model import ValidationFailed
from marathon.service import MarathonService, Options
from marathon.store import BufferedStore
from mesos_common import messages as m
from tests.sim.node import Node

if TYPE_CHECKING:
    from tests.sim.cluster import SimCluster

EPOCH = 1_767_225_600.0  # 2026-01-01: virtual time 0 as a wall clock for Marathon's timestamps
SERVICE_CMD = 100000  # "sleep 100000+n": runs for the whole run; n is the app's cmd version


class CoroutineAwaited(AssertionError):
    """A callback awaited something real: the simulation cannot drive it."""


def run_sync(result: Any) -> Any:
    """Drive a coroutine callback to completion (it must not await real IO)."""
    if not inspect.iscoroutine(result):
        return result
    try:
        result.send(None)
    except StopIteration as done:
        return done.value
    result.close()
    raise CoroutineAwaited("a Marathon callback awaited real IO in the simulation")


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


class SimDriver:
    """The driver methods Marathon calls; each queues `core.<command>` for the cluster."""

    def __init__(self, node: "MarathonNode") -> None:
        self.node = node

    def _q(self, fn: Callable[[], list[Any]]) -> None:
        self.node.queue.append(fn)

    def launch_tasks(self, offer_ids: Any, tasks: Any, refuse_seconds: float | None = None,
                     ) -> None:
        ids = (offer_ids,) if isinstance(offer_ids, str) else tuple(offer_ids)
        tasks = (tasks,) if isinstance(tasks, m.TaskInfo) else tuple(tasks)
        self.node.on_launch(tasks)
        self._q(lambda: self.node.core.launch(ids, tasks, refuse_seconds))

    def decline_offer(self, offer_ids: Any, refuse_seconds: float | None = None) -> None:
        ids = (offer_ids,) if isinstance(offer_ids, str) else tuple(offer_ids)
        self._q(lambda: self.node.core.decline(ids, refuse_seconds))

    def kill_task(self, task_id: str, agent_id: str | None = None) -> None:
        self.node.on_kill(task_id)
        self._q(lambda: self.node.core.kill(task_id, agent_id))

    def acknowledge_status_update(self, status: m.TaskStatus) -> None:
        if status.uuid is not None and status.agent_id:
            self._q(lambda: self.node.core.acknowledge(status.agent_id, status.task_id,
                                                       status.uuid))

    def reconcile_tasks(self, statuses_or_ids: Any = ()) -> None:
        tasks = tuple(t if isinstance(t, m.ReconcileTask) else m.ReconcileTask(task_id=t)
                      for t in statuses_or_ids)
        self._q(lambda: self.node.core.reconcile(tasks))

    def revive_offers(self, roles: Any = ()) -> None:
        self._q(lambda: self.node.core.revive(roles))

    def suppress_offers(self, roles: Any = ()) -> None:
        self._q(lambda: self.node.core.suppress(roles))


@define(eq=False)
class MarathonNode(Node):
    """Marathon's process: its store is durable, everything else dies in a crash."""

    store: BufferedMemoryStore = field(factory=BufferedMemoryStore)  # committed part survives
    svc: MarathonService | None = None
    core: sdk.SchedulerCore | None = None
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

    def on_ack(self, uuid: bytes) -> None:
        """An ack goes out: an unhealthy update it acknowledges is committed, unless newer
        health news of that task came in meanwhile."""
        task_seq = self.uuid_health.pop(uuid, None)
        if task_seq is not None and self.last_health.get(task_seq[0]) == task_seq[1]:
            self.unhealthy_acked.add(task_seq[0])

    # ------------------------------------------------------------ building it

    def boot(self, now: Callable[[], float], rng: random.Random) -> None:
        """A fresh process: service and core rebuilt from the store only."""
        self.svc = MarathonService(self.store, Options(hostname="marathon", tick_interval=1.0,
                                                          reconcile_interval=30.0),
                                   clock=lambda: EPOCH + now(),
                                   new_uuid=lambda: uuid.UUID(int=rng.getrandbits(128),
                                                              version=1),
                                   work_clock=lambda: 0.0)
        self.svc.driver = SimDriver(self)
        self.svc.deferred = True  # as the daemon runs it: one commit per burst
        self.svc.on_backlog = self.wake_pump
        self.core = sdk.SchedulerCore(self.svc.framework_info())
        self.queue.clear()
        self.held = None

    def commit(self) -> None:
        """`flush_async` as the API handlers and the ticker call it, and the driver's
        `batch_done` (the service's work clock reads 0 here: dirty-app ticks are spaced by
        virtual time alone, so a run does not depend on the machine)."""
        assert self.svc is not None
        run_sync(self.svc.flush_async())

    def callback(self, name: str, args: tuple[Any, ...]) -> None:
        assert self.svc is not None
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
        fn = getattr(self.svc, name, None)
        if fn is not None:
            run_sync(fn(self.svc.driver, *args))  # deferred: its commit is the burst's

    # ------------------------------------------------------------ the invariant

    def _replacing(self, app_id: str) -> dict[str, Any] | None:
        """The app's effective definition while tasks of an older config version remain."""
        svc = self.svc
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
        svc = self.svc
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
        svc = self.svc
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
    svc = node.svc
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
            svc.create_app(doc, force)
            return f"create {aid}"
        aid = rng.choice(existing)
        if kind == "scale":
            n = rng.randint(0, 5)
            svc.scale_app(aid, n, force)
            return f"scale {aid} to {n}"
        if kind == "upgrade":
            node.cmd_version += 1
            body = {"cmd": f"sleep {SERVICE_CMD + node.cmd_version}",
                    "upgradeStrategy": strategy(rng)}
            if rng.random() < 0.3:
                body["instances"] = rng.randint(1, 5)
            svc.update_app(aid, body, force)
            return f"upgrade {aid} {body}"
        if kind == "restart":
            svc.restart_app(aid, force)
            return f"restart {aid}"
        node.user_kill = True
        if kind == "delete":
            svc.delete_app(aid, force)
            return f"delete {aid}"
        tasks = sorted(t.id for t in svc.tasks_of(aid))
        if not tasks:
            return f"kill {aid}: no task"
        victim = rng.choice(tasks)
        scale = rng.random() < 0.3
        svc.kill_tasks([victim], scale=scale, force=force)
        return f"kill {victim} scale={scale}"
    except (ApiError, ValidationFailed) as e:
        return f"{kind} refused: {str(e)[:80]}"
    finally:
        node.user_kill = False
