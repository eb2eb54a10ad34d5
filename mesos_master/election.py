"""The masters' election (cf. Mesos LeaderContender / ZooKeeperMasterDetector): the shared
recipe (mesos_common.election) with `json.info_<seq>` znodes under the zk:// path, each
holding its master's info as JSON, so every agent and framework (mesos_common.leader) reads
who leads from the same znodes."""
from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

from mesos_common.election import Candidacy
from mesos_common.leader import ZNODE_PREFIX


class Contender(Candidacy):
    def __init__(self, zk_url: str, session_timeout: float, info: dict[str, Any],
                 loop: asyncio.AbstractEventLoop,
                 on_group: Callable[[str | None, dict[str, Any] | None, int], None],
                 on_session: Callable[[str], None]) -> None:
        super().__init__(zk_url, session_timeout, loop, on_group, on_session,
                         prefix=ZNODE_PREFIX, data=json.dumps(info).encode(),
                         decode=json.loads)
        self.info = info


__all__ = ["Contender"]
