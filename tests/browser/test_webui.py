"""The master's and Marathon's web UIs in a real browser against a real `mesos-local`: what a
person sees matches the JSON APIs, and what they do through the pages happens."""
from __future__ import annotations

import re
import time

import pytest
from playwright.sync_api import Page, expect

from tests.browser.conftest import SHOTS, Local, shot
from tests.helpers import http_json, wait_for
from tests.integration.marathon_helpers import MarathonApi

pytestmark = pytest.mark.slow

APP = "/ui/ticker"
# Prints a timestamped line twice a second (binds no port: the machine may be shared) and
# takes its kill grace period to die, so that a rolling restart lasts long enough to be seen.
CMD = 'trap "" TERM; while true; do echo "tick $(date +%s.%N)"; sleep 0.5; done'
WAIT = 60_000  # ms


def pooled_from_page(page: Page) -> dict[str, dict[str, float]]:
    out: dict[str, dict[str, float]] = {}
    for row in page.locator("#pooled tbody tr").all():
        res = row.get_attribute("data-res")
        assert res is not None
        out[res] = {}
        for cell in row.locator("td[data-kind]").all():
            kind, value = cell.get_attribute("data-kind"), cell.get_attribute("data-value")
            assert kind is not None and value is not None
            out[res][kind] = float(value)
    return out


def test_overview_pooled_totals_equal_metrics_snapshot(local: Local, page: Page) -> None:
    page.goto(local.master + "/")
    expect(page.locator("#pooled tbody tr")).to_have_count(4, timeout=WAIT)

    def same() -> bool:
        snap = http_json(local.master + "/metrics/snapshot")
        shown = pooled_from_page(page)
        return all(shown[r]["total"] == pytest.approx(snap[f"master/{r}_total"]) and
                   shown[r]["used"] == pytest.approx(snap[f"master/{r}_used"])
                   for r in ("cpus", "mem", "disk", "gpus"))
    wait_for(same, 30, 0.3, "pooled totals on the page equal to /metrics/snapshot")
    expect(page.locator('[data-count="Agents"]')).to_have_text("2")
    page.goto(local.master + "/#/agents")
    expect(page.locator("#agents tbody tr")).to_have_count(2, timeout=WAIT)


def test_invalid_form_shows_the_api_message_at_the_field(local: Local, page: Page) -> None:
    page.goto(local.marathon + "/")
    page.click("#create")
    page.fill("#f-id", "/Bad Id")
    page.fill("#f-cmd", "sleep 100")
    page.fill("#f-cpus", "-1")
    page.click("#submit")
    expect(page.locator('.field-error[data-for="cpus"]')).to_contain_text(
        "less than the minimum of 0", timeout=WAIT)
    expect(page.locator('.field-error[data-for="id"]')).to_contain_text("must fully match")
    shot(page, "marathon-create-invalid")
    page.fill("#f-cmd", "")
    page.fill("#f-id", "/ok")
    page.fill("#f-cpus", "0.1")
    page.click("#submit")  # neither cmd nor container: the message is about the whole app
    expect(page.locator('.field-error[data-for="_"]')).to_contain_text(
        "must either contain one of 'cmd' or 'args'", timeout=WAIT)
    assert MarathonApi(local.marathon).call("GET", "/v2/apps/ok")[0] == 404


def test_app_life_through_the_uis(local: Local, page: Page) -> None:
    marathon = MarathonApi(local.marathon)
    # Create from the form.
    page.goto(local.marathon + "/")
    page.click("#create")
    page.fill("#f-id", APP)
    page.fill("#f-cmd", CMD)
    page.fill("#f-mem", "48")
    shot(page, "marathon-create")
    page.click("#submit")
    expect(page.locator("#app-id")).to_have_text(APP, timeout=WAIT)
    expect(page.locator('[data-card="Instances"]')).to_have_text("1 / 1", timeout=WAIT)

    # Scale to 3 from the UI (once the creation's deployment is done): the page follows
    # without a reload.
    expect(page.locator("#app-status [data-status]")).to_have_text("running", timeout=WAIT)
    page.click("#scale")
    page.fill("#scale-n", "3")
    page.click("#scale-ok")
    expect(page.locator('[data-card="Instances"]')).to_have_text("3 / 3", timeout=WAIT)
    expect(page.locator("#tasks tbody tr")).to_have_count(3)
    shot(page, "marathon-app")

    # The master's task table lists the running tasks on the agents Marathon reports.
    tasks = wait_for(lambda: (t := marathon.app(APP)["tasks"]) and len(t) == 3 and
                     all(x["state"] == "TASK_RUNNING" for x in t) and t, 60, 0.2, "3 running")
    agents = {a["id"]: f"{a['hostname']}:{a['port']}"
              for a in http_json(local.master + "/master/state-summary")["slaves"]}
    page.goto(local.master + "/#/tasks?state=TASK_RUNNING")
    for t in tasks:
        row = page.locator(f'#tasks tr[data-id="{t["id"]}"]')
        expect(row).to_contain_text("RUNNING", timeout=WAIT)
        expect(row.locator("td").nth(4)).to_have_text(agents[t["slaveId"]])
    shot(page, "master-tasks")
    for name, path, table in (("master-overview", "", "#pooled"),
                              ("master-agents", "#/agents", "#agents"),
                              ("master-frameworks", "#/frameworks", "#frameworks"),
                              ("master-roles", "#/roles", "#roles")):
        page.goto(f"{local.master}/{path}")
        expect(page.locator(f"{table} tbody tr").first).to_be_visible(timeout=WAIT)
        page.wait_for_timeout(11_000 if SHOTS and name == "master-overview" else 300)
        shot(page, name)  # (the overview's chart needs a few samples to draw a line)
    page.goto(local.master + "/#/tasks")

    # The log viewer tails stdout: a line printed after the page opened shows up.
    page.locator(f'#tasks tr[data-id="{tasks[0]["id"]}"]').click()
    opened = time.time()
    expect(page.locator("#task-state")).to_have_text("TASK_RUNNING", timeout=WAIT)

    def later_line() -> bool:
        stamps = [float(s) for s in re.findall(r"tick (\d+\.\d+)", page.inner_text("#log"))]
        return any(s > opened + 1 for s in stamps)
    wait_for(later_line, 30, 0.3, "a line printed after the page opened")
    expect(page.locator("#file-table")).to_contain_text("stdout")
    shot(page, "master-task")

    # A rolling restart (old tasks take 2 s to die) appears and completes without a reload.
    status, body = marathon.call("PUT", f"/v2/apps{APP}", {"taskKillGracePeriodSeconds": 2})
    assert status == 200, body
    wait_for(lambda: not marathon.deployments() and marathon.app(APP)["tasksRunning"] == 3,
             90, 0.3, "the new version deployed")
    page.goto(f"{local.marathon}/#/apps{APP}")
    expect(page.locator("#app-status [data-status]")).to_have_text("running", timeout=WAIT)
    page.click("#restart")
    page.click("#confirm")
    expect(page.locator("#app-status [data-status]")).to_have_text("deploying", timeout=WAIT)
    page.click('#app-tabs button[data-tab="deployments"]')
    expect(page.locator("#app-deps tr[data-deployment]")).to_have_count(1, timeout=WAIT)
    shot(page, "marathon-deployment")
    expect(page.locator("#app-status [data-status]")).to_have_text("running", timeout=90_000)
    expect(page.locator("#app-deps")).to_contain_text("No deployment in progress")
    assert marathon.deployments() == []

    # Versions: the diff of the first version against the current one shows the change.
    page.click('#app-tabs button[data-tab="versions"]')
    page.locator("#versions tr[data-v]").last.click()
    expect(page.locator("#diff .add").first).to_be_visible(timeout=WAIT)
    expect(page.locator("#diff .add")).to_contain_text(['"taskKillGracePeriodSeconds": 2'])
    shot(page, "marathon-versions")
    page.goto(local.marathon + "/")
    expect(page.locator(f'tr[data-app="{APP}"] [data-status]')).to_have_text("running",
                                                                             timeout=WAIT)
    shot(page, "marathon-apps")

    # Kill & scale one instance; then apply the first version (one instance, no grace).
    page.goto(f"{local.marathon}/#/apps{APP}")
    expect(page.locator("#tasks tbody input[data-task]")).to_have_count(3, timeout=WAIT)
    page.locator("#tasks tbody input[data-task]").first.check()
    expect(page.locator("#selected")).to_have_text("1 selected")
    page.click("#kill-scale")
    page.click("#confirm")
    expect(page.locator('[data-card="Instances"]')).to_have_text("2 / 2", timeout=WAIT)
    page.click('#app-tabs button[data-tab="versions"]')
    page.locator("#versions tr[data-v]").last.click()
    expect(page.locator("#apply")).to_be_visible(timeout=WAIT)
    page.click("#apply")
    page.click("#confirm")
    expect(page.locator('[data-card="Instances"]')).to_have_text("1 / 1", timeout=90_000)
    wait_for(lambda: not marathon.app(APP).get("taskKillGracePeriodSeconds"), 30, 0.3,
             "the first version back")

    # Destroy removes it, from Marathon's list and, its tasks killed, from the master's.
    page.goto(f"{local.marathon}/#/apps{APP}")
    page.click("#destroy")
    page.click("#confirm")
    expect(page.locator(f'tr[data-app="{APP}"]')).to_have_count(0, timeout=WAIT)
    assert marathon.call("GET", f"/v2/apps{APP}")[0] == 404
    wait_for(lambda: http_json(local.master + "/metrics/snapshot")["master/tasks_running"] == 0,
             60, 0.3, "tasks killed")


@pytest.mark.parametrize("base,path", [("master", "/"), ("master", "/#/tasks"),
                                       ("marathon", "/"), ("marathon", "/#/deployments")])
def test_pages_fit_a_phone(local: Local, page: Page, base: str, path: str) -> None:
    page.set_viewport_size({"width": 390, "height": 844})
    page.goto(getattr(local, base) + path)
    expect(page.locator("main h1")).to_be_visible(timeout=WAIT)
    page.wait_for_timeout(500)
    overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 0, f"{base}{path} is {overflow}px wider than the phone"
    if path == "/":
        shot(page, f"{base}-phone")
