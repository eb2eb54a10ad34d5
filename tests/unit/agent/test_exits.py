"""ExitWatch over real children: exits seen before and after anyone asks, codes, signals."""
from __future__ import annotations

import asyncio
import subprocess
import time

from mesos_agent.containerizer.exits import ExitWatch


def test_exit_codes_whether_the_exit_comes_before_or_after_the_question() -> None:
    async def go() -> list[int | None]:
        watch = ExitWatch()
        quick = subprocess.Popen(["sh", "-c", "exit 3"])
        slow = subprocess.Popen(["sleep", "30"])
        assert watch.add(quick) and watch.add(slow)
        first = watch.future(slow, True)  # sets up the loop's reader
        deadline = time.monotonic() + 10
        while quick.pid not in watch._codes and time.monotonic() < deadline:
            await asyncio.sleep(0.01)  # the loop reaps it with nobody waiting yet
        assert quick.returncode == 3
        codes = [await asyncio.wait_for(watch.future(quick, True), 5)]
        slow.kill()
        codes.append(await asyncio.wait_for(first, 5))
        unwatched = subprocess.Popen(["true"])  # no pidfd: a thread waits
        codes.append(await asyncio.wait_for(watch.future(unwatched, False), 5))
        watch.close()
        return codes
    assert asyncio.run(go()) == [3, -9, 0]
