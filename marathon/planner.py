"""The pure deployment planner: original apps -> target apps = ordered steps of actions.

Like Marathon's DeploymentPlan: stop removed apps first, then start new apps (at 0),
then scale/restart in dependency order (an app's dependencies in an earlier step).
Each step's actions may run in parallel; a step is done when every app in it is.
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from attrs import frozen

from marathon.model import needs_restart

START, STOP, SCALE, RESTART = ("StartApplication", "StopApplication", "ScaleApplication",
                               "RestartApplication")


@frozen
class Action:
    action: str
    app: str

    def to_json(self) -> dict[str, str]:
        return {"action": self.action, "app": self.app}


Step = tuple[Action, ...]


def _layers(ids: list[str], target: Mapping[str, Mapping[str, Any]]) -> list[list[str]]:
    """Group `ids` by the longest dependency chain below them (dependencies first)."""
    depth: dict[str, int] = {}

    def longest(a: str, seen: frozenset[str]) -> int:
        if a in depth:
            return depth[a]
        deps = [d for d in target.get(a, {}).get("dependencies", [])
                if d in target and d not in seen]
        depth[a] = 1 + max((longest(d, seen | {a}) for d in deps), default=-1)
        return depth[a]

    for a in ids:
        longest(a, frozenset())
    out: dict[int, list[str]] = {}
    for a in sorted(ids):
        out.setdefault(depth[a], []).append(a)
    return [out[k] for k in sorted(out)]


def plan(original: Mapping[str, Mapping[str, Any]], target: Mapping[str, Mapping[str, Any]],
         restart: frozenset[str] = frozenset()) -> list[Step]:
    """Steps turning `original` into `target` (app id -> definition); `restart` forces
    a RestartApplication for those ids even without a config change."""
    steps: list[Step] = []
    removed = sorted(set(original) - set(target))
    if removed:
        steps.append(tuple(Action(STOP, a) for a in removed))
    added = sorted(set(target) - set(original))
    if added:
        steps.append(tuple(Action(START, a) for a in added))
    changed = []
    for a in sorted(target):
        old = original.get(a)
        if old is None:
            if int(target[a].get("instances", 0)) > 0:
                changed.append((a, SCALE))
        elif a in restart or needs_restart(dict(old), dict(target[a])):
            changed.append((a, RESTART))
        elif old.get("instances") != target[a].get("instances"):
            changed.append((a, SCALE))
    kinds = dict(changed)
    for layer in _layers([a for a, _ in changed], target):
        steps.append(tuple(Action(kinds[a], a) for a in layer))
    return steps
