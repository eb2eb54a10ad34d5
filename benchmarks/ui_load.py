"""The web UIs at scale: one Marathon app of many instances on simulated agents, opened in
headless Chromium.

Reports the time from navigation to the master's task table being interactive (every task
counted, rows drawn), to Marathon's app page being interactive (counts and actions shown) and
to its task rows being drawn, and how long a filter, a sort or a scroll takes to show; and the
master's CPU use with no page open, with the overview open and with the task table open (each
page polls at its default rate, 1 refresh/s at the least).

    python -m benchmarks.ui_load --instances 10000 --agents 20
"""
from __future__ import annotations

import argparse
import json
import tempfile
import time
import urllib.request
from pathlib import Path

import psutil
from playwright.sync_api import sync_playwright

from benchmarks._common import finish, say, wait_until
from benchmarks._fleet import agent_resources, start_fleets
from mesos_common.daemons import LocalCluster

CHROMIUM = "/usr/bin/chromium"


def get(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=60) as r:
        return json.loads(r.read())


def cpu_percent(pid: int, seconds: float) -> float:
    """The process's CPU use over `seconds`, in % of one core."""
    p = psutil.Process(pid)
    before, t0 = p.cpu_times(), time.monotonic()
    time.sleep(seconds)
    after, t1 = p.cpu_times(), time.monotonic()
    used = (after.user - before.user) + (after.system - before.system)
    return round(100 * used / (t1 - t0), 2)


def ready_ms(page, url: str, condition: str, arg: object = None) -> float:
    """ms from navigation start (a fresh document) until `condition` (a JS predicate) holds."""
    page.goto("about:blank")
    page.goto(url, wait_until="commit")
    page.wait_for_function(condition, arg=arg, timeout=120_000, polling="raf")
    return round(page.evaluate("performance.now()"), 1)


def action_ms(page, act, condition: str, arg: object = None) -> float:
    t0 = page.evaluate("performance.now()")
    act()
    page.wait_for_function(condition, arg=arg, timeout=60_000, polling="raf")
    return round(page.evaluate("performance.now()") - t0, 1)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--instances", type=int, default=10000)
    ap.add_argument("--agents", type=int, default=20)
    ap.add_argument("--window", type=float, default=30.0, help="seconds per CPU sample")
    args = ap.parse_args()
    n = args.instances
    with tempfile.TemporaryDirectory(prefix="corral-bench-") as tmp:
        cluster = LocalCluster(Path(tmp), log_level="WARNING")
        fleets = []
        try:
            master = cluster.start_master()
            fleets = start_fleets(cluster, args.agents, agent_resources(n, args.agents))
            marathon = cluster.start_marathon()
            mbase, base = f"http://{cluster.master_addr}", marathon.field("http")
            req = urllib.request.Request(f"{base}/v2/apps", method="POST", data=json.dumps({
                "id": "/bench", "cmd": "run-forever", "cpus": 0.01, "mem": 1, "instances": n,
                "portDefinitions": []}).encode(), headers={"Content-Type": "application/json"})
            urllib.request.urlopen(req, timeout=60).read()
            wait_until(lambda: get(f"{mbase}/metrics/snapshot")["master/tasks_running"] >= n,
                       900, f"{n} tasks running", "ui_load", 1.0)
            wait_until(lambda: not get(f"{base}/v2/deployments"), 300, "deployment done",
                       "ui_load", 1.0)
            say(f"{n} tasks running on {args.agents} simulated agents")
            out: dict = {"instances": n, "agents": args.agents}
            out["master_cpu_idle_pct"] = cpu_percent(master.pid, args.window)
            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
                page = browser.new_page(viewport={"width": 1280, "height": 800})
                page.goto(f"{mbase}/")
                page.wait_for_selector("#pooled tbody tr")
                out["master_cpu_overview_pct"] = cpu_percent(master.pid, args.window)
                out["task_table_interactive_ms"] = ready_ms(
                    page, f"{mbase}/#/tasks",
                    "n => (document.querySelector('#task-count') || {}).textContent"
                    " === `${n} of ${n}` && document.querySelectorAll('#tasks tbody tr')"
                    ".length > 10", n)
                out["task_table_filter_ms"] = action_ms(
                    page, lambda: page.fill("#f-text", "instance-"),
                    "() => document.querySelector('#task-count').textContent.length > 0"
                    " && document.querySelector('#f-text').value === 'instance-'")
                out["task_table_sort_ms"] = action_ms(
                    page, lambda: page.click('#tasks th[data-key="id"]'),
                    "() => document.querySelector('#tasks th[data-key=\"id\"]')"
                    ".classList.contains('asc')")
                out["task_table_scroll_ms"] = action_ms(
                    page, lambda: page.evaluate(
                        "document.querySelector('#vwrap').scrollTop = 150000"),
                    "() => document.querySelector('#tasks').style.top !== '0px'")
                out["master_cpu_task_table_pct"] = cpu_percent(master.pid, args.window)
                out["marathon_app_interactive_ms"] = ready_ms(
                    page, f"{base}/#/apps/bench",
                    "n => (document.querySelector('[data-card=\"Instances\"]') || {})"
                    ".textContent === `${n} / ${n}`", n)
                page.wait_for_function("() => document.querySelectorAll('#tasks tbody tr')"
                                       ".length > 10", timeout=120_000, polling="raf")
                out["marathon_app_tasks_drawn_ms"] = round(page.evaluate("performance.now()"), 1)
                out["marathon_app_scroll_ms"] = action_ms(
                    page, lambda: page.evaluate(
                        "document.querySelector('#vwrap').scrollTop = 150000"),
                    "() => document.querySelector('#tasks').style.top !== '0px'")
                out["marathon_apps_interactive_ms"] = ready_ms(
                    page, f"{base}/#/",
                    "() => !!document.querySelector('tr[data-app=\"/bench\"] [data-status]')")
                browser.close()
            for k in ("overview", "task_table"):
                out[f"master_cpu_added_{k}_pct"] = round(
                    out[f"master_cpu_{k}_pct"] - out["master_cpu_idle_pct"], 2)
        finally:
            for f in fleets:
                f.stop()
            cluster.stop()
    finish("ui_load", out)


if __name__ == "__main__":
    main()
