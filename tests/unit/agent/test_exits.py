"""ExitWatch over real children: exits seen before and after anyone asks, codes, signals."""
from __future__ import annotations

import asyncio
import os
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
        assert watch.add(quick) and watch.add(slow)
        first = watch.future(slow, True)  # sets up the loop's reader
        deadline = time.monotonic() + 10
        while quick not in watch._codes and time.monotonic() < deadline:
            await asyncio.sleep(0.01)  # the loop reaps it with nobody waiting yet
        assert watch._codes[quick] == 3
        codes = [await asyncio.wait_for(watch.future(quick, True), 5)]
        os.kill(slow, 9)
        codes.append(await asyncio.wait_for(first, 5))
        unwatched = _child(str(tmp_path), "true")  # no pidfd: a thread waits
        codes.append(await asyncio.wait_for(watch.future(unwatched, False), 5))
        watch.close()
        return codes
    assert asyncio.run(go()) == [3, -9, 0]
