"""ExitWatch over real children: exits seen before and after anyone asks, codes, signals;
children that are not its own are left to their waiters and do not hide its own."""
from __future__ import annotations

import asyncio
import os
import subprocess
import time

from mesos_agent.containerizer.exits import ExitWatch
from mesos_agent.containerizer.spawn import spawn


def _child(tmp: str, *argv: str) -> int:
    out = os.open(os.path.join(tmp, "out"), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    try:
        return spawn(list(argv), None, tmp, {"PATH": os.environ["PATH"]}, out, out)
    finally:
        os.close(out)


def test_exit_codes_whether_the_exit_comes_before_or_after_the_question(tmp_path) -> None:
    async def go() -> list[int | None]:
        watch = ExitWatch()
        quick = _child(str(tmp_path), "sh", "-c", "exit 3")
        slow = _child(str(tmp_path), "sleep", "30")
        watch.add(quick)
        watch.add(slow)
        first = watch.future(slow)
        deadline = time.monotonic() + 10
        while quick not in watch._codes and time.monotonic() < deadline:
            await asyncio.sleep(0.01)  # reaped with nobody waiting yet
        assert watch._codes[quick] == 3
        codes = [await asyncio.wait_for(watch.future(quick), 5)]
        os.kill(slow, 9)
        codes.append(await asyncio.wait_for(first, 5))
        watch.close()
        return codes
    assert asyncio.run(go()) == [3, -9]


def test_children_not_ours_are_left_to_their_waiters_and_do_not_hide_ours(tmp_path) -> None:
    """A Popen child exits and stays a zombie until its owner waits (a health check's
    waiter, say): its status is still there for the owner, and ours exiting behind it are
    reported all the same."""
    async def go() -> None:
        watch = ExitWatch()
        ours = _child(str(tmp_path), "sleep", "30")
        watch.add(ours)
        theirs = subprocess.Popen(["sh", "-c", "exit 7"])
        await asyncio.sleep(0.2)  # theirs is a zombie now, in front of ours
        later = [_child(str(tmp_path), "sh", "-c", f"exit {i}") for i in range(1, 4)]
        for pid in later:
            watch.add(pid)
        os.kill(ours, 9)
        codes = await asyncio.wait_for(
            asyncio.gather(*(watch.future(p) for p in [ours, *later])), 5)
        assert codes == [-9, 1, 2, 3]
        assert theirs.wait(5) == 7  # nobody took its status
        watch.close()
    asyncio.run(go())


def test_many_exits_at_once(tmp_path) -> None:
    async def go() -> list[int | None]:
        watch = ExitWatch()
        pids = [_child(str(tmp_path), "sh", "-c", f"exit {i % 5}") for i in range(50)]
        futs = []
        for pid in pids:
            watch.add(pid)
            futs.append(watch.future(pid))
        out = await asyncio.wait_for(asyncio.gather(*futs), 10)
        watch.close()
        return out
    assert asyncio.run(go()) == [i % 5 for i in range(50)]
