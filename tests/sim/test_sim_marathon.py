"""The simulation's Marathon adapter: coroutine callbacks and the upgrade-strategy bounds."""
from __future__ import annotations

import pytest

from tests.sim.sim_marathon import CoroutineAwaited, MarathonNode, run_sync


def test_coroutine_callbacks_are_driven_to_completion() -> None:
    async def callback(x: int) -> int:
        return x + 1
    assert run_sync(callback(1)) == 2
    assert run_sync(3) == 3  # a plain callback's result passes through


class RealIO:
    """What awaiting a socket looks like to whoever drives the coroutine: it yields."""

    def __await__(self):
        yield "waiting for a socket"


def test_a_callback_awaiting_real_io_is_an_error_not_a_hang() -> None:
    async def callback() -> None:
        await RealIO()
    with pytest.raises(CoroutineAwaited):
        run_sync(callback())


@pytest.mark.parametrize("instances, min_h, max_o, bounds", [
    (5, 1.0, 1.0, (5, 10)), (5, 0.6, 0.2, (3, 6)), (1, 0.0, 0.0, (0, 1)),
    (3, 1.0, 0.0, (3, 4)),  # {1, 0}: one over, or the upgrade could never move
    (4, 0.5, 0.5, (2, 6))])
def test_bounds_follow_marathons_definitions(instances, min_h, max_o, bounds) -> None:
    app = {"instances": instances,
           "upgradeStrategy": {"minimumHealthCapacity": min_h, "maximumOverCapacity": max_o}}
    assert MarathonNode.bounds(app) == bounds
