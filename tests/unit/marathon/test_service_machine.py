"""A hypothesis state machine: random API calls, offers, task failures and kills against the
service with a simulated cluster; bounds hold after every step, and everything converges."""
from __future__ import annotations

import itertools
import math
import uuid
from collections import Counter

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from marathon import deployment
from marathon.errors import ApiError
from marathon.server import MarathonServer
from marathon.store import MemoryStore
from mesos_common import messages as m
from mesos_common.resources import Resources
from tests.unit.marathon.conftest import FakeDriver

APP_IDS = st.sampled_from(["/a", "/b", "/g/c"])
BIG = "cpus:100;mem:100000;disk:1000;ports:[31000-32000]"


class Clock:
    t = 1_700_000_000.0

    def __call__(self) -> float:
        return self.t


class ServiceMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.clock = Clock()
        ids = itertools.count(1)
        self.svc = MarathonServer(MemoryStore(), clock=self.clock,
                                   new_uuid=lambda: uuid.UUID(int=next(ids)))  # replayable
        self.driver = FakeDriver()
        self.svc.driver = self.driver
        self.offers = 0

    def _api(self, fn, *args):
        try:
            fn(*args)
        except ApiError as e:
            assert e.status in (404, 409), e.body

    @rule(aid=APP_IDS, n=st.integers(0, 4), cmd=st.sampled_from(["sleep 1", "sleep 2"]),
          min_h=st.sampled_from([0, 0.5, 1]), max_o=st.sampled_from([0, 0.5, 1]))
    def create(self, aid, n, cmd, min_h, max_o):
        self._api(self.svc.create_app, {"id": aid, "cmd": cmd, "instances": n, "cpus": 0.1,
                                        "mem": 16, "upgradeStrategy": {
                                            "minimumHealthCapacity": min_h,
                                            "maximumOverCapacity": max_o}}, False)

    @rule(aid=APP_IDS, n=st.integers(0, 5), force=st.booleans())
    def scale(self, aid, n, force):
        if aid in self.svc.state.apps:
            self._api(self.svc.update_app, aid, {"instances": n}, force)

    @rule(aid=APP_IDS, cmd=st.sampled_from(["sleep 3", "sleep 4"]), force=st.booleans())
    def change_cmd(self, aid, cmd, force):
        if aid in self.svc.state.apps:
            self._api(self.svc.update_app, aid, {"cmd": cmd}, force)

    @rule(aid=APP_IDS, force=st.booleans())
    def restart(self, aid, force):
        self._api(self.svc.restart_app, aid, force)

    @rule(aid=APP_IDS)
    def delete(self, aid):
        self._api(self.svc.delete_app, aid, True)

    @rule(force=st.booleans())
    def cancel_a_deployment(self, force):
        if self.svc.state.deployments:
            self.svc.cancel_deployment(sorted(self.svc.state.deployments)[0], force)

    @rule()
    def offer(self):
        self.offers += 1
        self.svc.resource_offers(self.driver, [m.Offer(
            id=f"o{self.offers}", framework_id="F", agent_id="A", hostname="h",
            resources=Resources.parse(BIG))])

    @rule()
    def cluster_acts(self):
        """The cluster carries out what the driver was asked: launches run, kills end."""
        calls, self.driver.calls = self.driver.calls, []
        for name, args in calls:
            if name == "launch_tasks":
                for t in args[1]:
                    self._update(t.task_id, "TASK_RUNNING")
            elif name == "kill_task":
                self._update(args[0], "TASK_KILLED")

    @precondition(lambda self: self.svc.state.tasks)
    @rule(data=st.data())
    def a_task_fails(self, data):
        tid = data.draw(st.sampled_from(sorted(self.svc.state.tasks)))
        self._update(tid, "TASK_FAILED")

    @rule(dt=st.floats(0, 400))
    def time_passes(self, dt):
        self.clock.t += dt
        self.svc.tick()

    def _update(self, tid, state):
        self.svc.status_update(self.driver, m.TaskStatus(task_id=tid, state=state,
                                                         agent_id="A"))

    @invariant()
    def tasks_belong_to_apps_and_stay_within_bounds(self):
        for t in self.svc.state.tasks.values():
            if t.active and not t.killing:
                assert self.svc.state.effective_app(t.app_id) is not None, t
        for aid in self.svc.state.apps:
            app = self.svc.state.effective_app(aid)
            if app is None:
                continue
            live = [t for t in self.svc.state.tasks_of(aid) if t.active and not t.killing]
            n = app["instances"]
            us = app["upgradeStrategy"]
            cap = max(n + math.floor(n * us["maximumOverCapacity"]),
                      math.ceil(n * us["minimumHealthCapacity"]) + 1)
            assert len(live) <= max(cap, n), (aid, len(live), cap)

    @invariant()
    def the_tally_matches_a_recount_and_its_shortcuts_agree_with_the_scans(self):
        recount: dict = {}
        for t in self.svc.state.tasks.values():
            key = (t.state, t.killing, t.unreachable_inactive, t.config_version or t.version)
            recount.setdefault(t.app_id, Counter())[key] += 1
        assert self.svc.state.tally.by_app == recount
        for aid in self.svc.state.apps:
            app = self.svc.state.effective_app(aid)
            fast = self.svc.core._fast(aid, app)
            if fast is not None:
                assert app is not None
                tasks = self.svc.state.tasks_of(aid)
                assert fast == deployment._all_current(app, tasks)
                if fast[0] <= app["instances"]:
                    assert deployment.step(app, tasks).launch == app["instances"] - fast[0]
                    assert deployment.step(app, tasks).kill == ()
                done = deployment.progress(app, tasks).done
                assert self.svc.core._progress_done(aid, app) == done

    def teardown(self):
        """Liveness: with offers and no more faults, every deployment finishes."""
        for _ in range(60):
            self.clock.t += 400  # past any launch delay
            self.svc.tick()
            self.offer()
            self.cluster_acts()
            state = self.svc.state
            if not state.deployments and not self.driver.calls and not state.wants:
                break
        deployments = self.svc.state.deployments
        assert not deployments, [d.steps for d in deployments.values()]
        for aid, app in self.svc.state.apps.items():
            live = [t for t in self.svc.state.tasks_of(aid) if t.active]
            assert len(live) == app["instances"], (aid, len(live), app["instances"])
            cv = app["versionInfo"]["lastConfigChangeAt"]
            assert all(t.config_version == cv for t in live)
        assert all(t.app_id in self.svc.state.apps for t in self.svc.state.tasks.values())


ServiceMachine.TestCase.settings = settings(max_examples=150, stateful_step_count=40)
TestServiceMachine = ServiceMachine.TestCase
