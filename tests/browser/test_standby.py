"""A standby master serves the same web UI, which names the leading master and links there
(two real masters contending through a private ZooKeeper)."""
from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from mesos_master.ha_local import HaCluster
from tests.browser.conftest import shot
from tests.helpers import wait_for

pytestmark = pytest.mark.slow


def test_standby_page_links_to_the_leader(zookeeper, tmp_path, page: Page):
    cluster = HaCluster(tmp_path, zookeeper.url(), quorum=1)
    try:
        masters = [cluster.start_master(), cluster.start_master()]
        slot, leader = wait_for(cluster.leader, 60, 0.2, "a leading master")
        standby = masters[1 - slot]
        page.goto(standby.field("http") + "/")
        link = page.locator("#leader-link")
        expect(link).to_have_text(cluster.http_of(leader), timeout=30_000)
        expect(page.locator("#banner")).to_contain_text("standby")
        shot(page, "master-standby")
        link.click()
        expect(page.locator("#pooled tbody tr")).to_have_count(4, timeout=30_000)
        assert page.url.startswith(leader.field("http"))
    finally:
        cluster.stop()
