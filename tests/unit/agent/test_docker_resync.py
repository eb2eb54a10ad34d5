"""What a listing of the agent's containers means for the exits it awaits and the launches
it gave up (pure; the engine side is tests/integration/test_docker_scale.py)."""
from __future__ import annotations

from mesos_agent.containerizer.docker import ABANDONED_KEEP, resync_plan


def c(cid: str, name: str, state: str) -> dict:
    return {"Id": cid, "Names": [f"/{name}"], "State": state}


def test_exits_missed_by_the_stream_and_abandoned_launches() -> None:
    listed = [c("a", "corral-a", "running"), c("b", "corral-b", "exited"),
              c("late", "corral-late", "created")]
    plan = resync_plan(listed, watched={"a", "b", "gone"},
                       abandoned={"corral-late": 100.0, "corral-never": 100.0,
                                  "corral-recent": 100.0 + ABANDONED_KEEP},
                       now=101.0 + ABANDONED_KEEP)
    assert plan.resolve == ["b", "gone"]  # exited, or removed behind our back
    assert plan.remove == [("late", "corral-late")]  # created after its launch gave up
    assert plan.forget == ["corral-never"]  # given up long ago and never shown
