"""The `zookeeper` fixture: a fresh private ZooKeeper per test, always stopped afterwards."""
from __future__ import annotations

import pytest

from mesos_master.ha_local import ZooKeeper, zk_available


@pytest.fixture
def zookeeper(tmp_path_factory: pytest.TempPathFactory):
    if not zk_available():
        pytest.skip("ZooKeeper is not installed (run scripts/install-system-deps.sh all)")
    zk = ZooKeeper(tmp_path_factory.mktemp("zk"))
    try:
        zk.start()
        yield zk
    finally:
        zk.stop()
