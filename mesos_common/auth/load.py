"""Reading the security documents named by flags (inline JSON, a path or `file://`): the IO
edge of the pure parsers in acls.py, credentials.py and rate_limits.py."""
from __future__ import annotations

from mesos_common.auth.acls import Acls, parse_acls
from mesos_common.auth.credentials import (
    Credential,
    Credentials,
    parse_credential,
    parse_credentials,
)
from mesos_common.auth.jsonflag import load_json_flag, read_flag_text
from mesos_common.auth.rate_limits import RateLimits, parse_rate_limits


def load_acls(flag: str) -> Acls:
    return parse_acls(load_json_flag(flag, "acls"))


def load_rate_limits(flag: str) -> RateLimits:
    return parse_rate_limits(load_json_flag(flag, "rate_limits"))


def load_credentials(flag: str) -> Credentials:
    return parse_credentials(read_flag_text(flag))


def load_credential(flag: str) -> Credential:
    return parse_credential(read_flag_text(flag))
