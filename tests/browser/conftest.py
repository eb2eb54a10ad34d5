"""Browser tests: Playwright drives Debian's Chromium (installed by
scripts/install-system-deps.sh) against a real `mesos-local` cluster."""
from __future__ import annotations

import os
import shutil
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, sync_playwright

from mesos_common.daemons import kill_task_processes
from tests.helpers import search, start_mesos_local

CHROMIUM = os.environ.get("CORRAL_CHROMIUM", "/usr/bin/chromium")
# Set to a directory (docs/screenshots) to keep a screenshot of each page the tests visit.
SHOTS = os.environ.get("CORRAL_SCREENSHOTS")


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """One Chromium per module, with Playwright's driver stopped at the module's end:
    Playwright's sync API holds an event loop on the thread while it runs, so a browser kept
    for the whole session would break every later test of the worker that runs asyncio."""
    if not shutil.which(CHROMIUM):
        pytest.fail(f"{CHROMIUM} is missing: run scripts/install-system-deps.sh all")
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=[
            "--no-sandbox", "--disable-gpu", "--disable-background-networking"])
        try:
            yield b
        finally:
            b.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    try:
        yield context.new_page()
    finally:
        context.close()


class Local:
    """A running `mesos-local`: the master's and Marathon's base URLs."""

    def __init__(self, out: str) -> None:
        self.master = search(r"mesos-local: master (http://\S+)", out).group(1)
        self.marathon = search(r"mesos-local: marathon (http://\S+)", out).group(1)


@pytest.fixture(scope="module")
def local(tmp_path_factory) -> Iterator[Local]:
    work = tmp_path_factory.mktemp("local")
    proc, out = start_mesos_local("--num_agents=2", "--port=0", f"--work_dir={work}")
    try:
        assert "ready" in out, out
        yield Local(out)
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.communicate(timeout=60)
        except Exception:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()
        kill_task_processes(work)


def shot(page, name: str) -> None:
    if SHOTS:
        Path(SHOTS).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(SHOTS) / f"{name}.png"), full_page=True)
