"""The simulation's Marathon adapter: its effect performer and the upgrade-strategy bounds."""
from __future__ import annotations

import pytest

from mesos_common.runtime import UnknownEffect
from tests.sim.sim_marathon import MarathonNode


def test_an_effect_the_simulation_does_not_know_is_an_error() -> None:
    with pytest.raises(UnknownEffect, match="no performer for object"):
        MarathonNode("marathon").perform([object()])


@pytest.mark.parametrize("instances, min_h, max_o, bounds", [
    (5, 1.0, 1.0, (5, 10)), (5, 0.6, 0.2, (3, 6)), (1, 0.0, 0.0, (0, 1)),
    (3, 1.0, 0.0, (3, 4)),  # {1, 0}: one over, or the upgrade could never move
    (4, 0.5, 0.5, (2, 6))])
def test_bounds_follow_marathons_definitions(instances, min_h, max_o, bounds) -> None:
    app = {"instances": instances,
           "upgradeStrategy": {"minimumHealthCapacity": min_h, "maximumOverCapacity": max_o}}
    assert MarathonNode.bounds(app) == bounds
