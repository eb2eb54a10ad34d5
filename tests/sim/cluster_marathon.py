"""SimCluster's Marathon edges: what the daemon's runtime does around the core.

The ticker (tick, then commit), API calls (commit before the answer counts), the offer
pump, and the SDK driver's bursts: deliveries and driver commands hold their sends until
the burst's `batch_done` has committed (frameworks/driver.py). Crashes land before any of
those commits now and then, while writes are pending.
"""
from __future__ import annotations

import random
from typing import TYPE_CHECKING, Any

from marathon import core_events as ev
from tests.sim import sim_marathon as sm

if TYPE_CHECKING:
    from mesos_common import effects as fx
    from tests.sim.cluster import SimOptions
    from tests.sim.node import Node

CHANGES = ("scale", "upgrade", "restart")  # answered: the app's new version is durable
BURST = 0.002  # virtual seconds from a Marathon burst's first item to its batch_done


class MarathonEdges:
    """Mixed into SimCluster (which provides push, perform, _send, _note, _crash, rng)."""

    o: SimOptions
    now: float
    faults: bool
    rng: Any

    if TYPE_CHECKING:
        def push(self, at: float, kind: str, node: str, payload: Any) -> None: ...
        def perform(self, node: Node, effects: list[Any]) -> None: ...
        def _send(self, node: Node, e: fx.Send) -> None: ...
        def _note(self, text: str) -> None: ...
        def _crash(self, node: Node, downtime: float) -> None: ...

    def _new_marathon(self, node: sm.MarathonNode) -> None:
        node.wake_pump = lambda: self.push(self.now, "mpump", node.name, None)
        node.boot(lambda: self.now, random.Random(self.rng.getrandbits(64)))
        self.push(self.now + 0.1, "connect", node.name, None)
        self.push(self.now + 1.0, "mtick", node.name, None)
        if self.faults:
            self.push(self.now + 2.0, "mop", node.name, None)

    def _marathon_tick(self, node: sm.MarathonNode) -> None:
        node.handle(ev.Tick())
        if not self._commit_unless_crashed(node, "the tick's"):
            return
        self._drain(node)
        self.push(self.now + sm.OPTIONS.tick_interval, "mtick", node.name, None)

    def _marathon_op(self, node: sm.MarathonNode) -> None:
        """An API call (while faults are on); it goes on in the liveness phase no more."""
        if not self.faults:
            return
        node.ops += 1
        st = node.state
        assert st is not None
        before = set(st.apps)
        op = sm.random_op(node, self.rng)
        self._note(f"marathon api: {op}")
        if not self._commit_unless_crashed(node, "an API call's"):
            return  # the call was never answered: nothing to hold Marathon to
        # answered: what it did must survive any crash from now on
        kind, aid = (op.split() + [""])[:2]
        for a in set(st.apps) - before | ({aid} if kind in CHANGES else set()):
            if a in st.apps:
                node.answered[a] = st.apps[a]["version"]
        if kind == "delete":
            node.answered.pop(aid, None)
        self._drain(node)
        self.push(self.now + self.rng.expovariate(self.o.marathon_ops_per_min / 60),
                  "mop", node.name, None)

    def _drain(self, node: sm.MarathonNode) -> None:
        """Perform the commands Marathon gave its driver, in order (the driver's queue), in
        the open burst: what they send waits for the burst's commit."""
        if node.queue and node.up:
            self._open_burst(node)
        while node.queue and node.up:
            self.perform(node, node.queue.pop(0)())

    def _open_burst(self, node: sm.MarathonNode) -> None:
        """The driver's burst: deliveries and commands until `batch_done` (a later event,
        so other events and crashes can come in between) hold their sends."""
        if node.held is None:
            node.held = []
            self.push(self.now + BURST, "mbatch", node.name, None)

    def _marathon_batch_done(self, node: sm.MarathonNode) -> None:
        """`batch_done` commits the burst's state, then its sends go out, in order."""
        if not self._commit_unless_crashed(node, "a burst's"):
            return
        held, node.held = node.held or [], None
        for e in held:
            self._send(node, e)

    def _marathon_pump(self, node: sm.MarathonNode) -> None:
        """The daemon's offer pump: match the backlog; launches go out after a commit."""
        st = node.state
        assert st is not None
        if st.offer_backlog:
            while st.offer_backlog:
                node.handle(ev.PlaceBacklog())
            self._drain(node)

    def _commit_unless_crashed(self, node: sm.MarathonNode, what: str) -> bool:
        """The runtime's flush and commit; now and then Marathon dies in between, with
        writes pending: they are lost, nothing was answered or sent for them. True when
        Marathon lived to commit."""
        rate = self.o.marathon_crashes_per_min
        commit = node.flush()  # dirty apps driven, the records it would write staged
        if self.faults and rate > 0 and node.store.pending \
                and self.rng.random() < rate / 20:
            self._note(f"marathon dies before {what} commit ({node.store.pending} writes "
                       "pending)")
            self._crash(node, self.rng.uniform(0.5, 5.0))
            return False
        if commit:
            node.store.commit()
        return True
