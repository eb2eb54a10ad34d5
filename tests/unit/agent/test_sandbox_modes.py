"""Sandboxes are closed to other users; the directories on the way are passable only; an
agent can tell when its work dir is not passable by the users its tasks switch to."""
from __future__ import annotations

import os
import stat
from pathlib import Path

from mesos_agent import paths
from mesos_agent.containerizer.sandbox import PASS_MODE, SANDBOX_MODE, make_sandbox
from mesos_agent.containerizer.users import closed_ancestor


def _mode(p: Path) -> int:
    return stat.S_IMODE(p.stat().st_mode)


def test_a_sandbox_is_closed_and_its_parents_passable(tmp_path: Path) -> None:
    work = tmp_path / "work"
    first = Path(paths.sandbox_dir(str(work), "A1", "F1", "t1", "r1"))
    make_sandbox(str(first))  # nothing there yet: every directory made on the way
    second = Path(paths.sandbox_dir(str(work), "A1", "F1", "t2", "r1"))
    make_sandbox(str(second))  # the quick path: executor dir, runs, run
    for box in (first, second):
        assert _mode(box) == SANDBOX_MODE
        for d in box.parents:
            if d == tmp_path:
                break
            assert _mode(d) == PASS_MODE, d
    assert os.readlink(first.parent / "latest") == "r1"


def test_closed_ancestor_names_the_directory_others_cannot_pass(tmp_path: Path) -> None:
    outer = tmp_path / "outer"
    inner = outer / "work" / "slaves"
    inner.mkdir(parents=True)
    for d in (tmp_path, outer, outer / "work", inner):
        d.chmod(0o711)
    # (pytest keeps its own base dir closed: only what lies above ours may be named)
    assert closed_ancestor(str(inner / "not-yet")) in (None, *map(str, tmp_path.parents))
    outer.chmod(0o700)
    assert closed_ancestor(str(inner)) == str(outer)
