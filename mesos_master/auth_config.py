"""The master's security settings, as the core sees them (pure data)."""
from __future__ import annotations

from attrs import field, frozen

from mesos_common.auth.acls import Acls
from mesos_common.auth.credentials import Credentials
from mesos_common.auth.rate_limits import RateLimits


@frozen
class MasterAuth:
    """The master's security settings (all off by default)."""

    credentials: Credentials | None = field(default=None, eq=False)
    authenticate_agents: bool = False
    authenticate_frameworks: bool = False
    acls: Acls = Acls()
    rate_limits: RateLimits | None = None
    max_frameworks_per_principal: int | None = None
    max_agents_per_principal: int | None = None
