"""Where the CLI points, and as whom: flag, then `CORRAL_<KEY>` environment variable, then the
config file (`$XDG_CONFIG_HOME/corral/config.toml`, written by `corral config set`), then the
default. Addresses have defaults; the HTTP credentials (`principal`, `secret`, as the daemons
take them: the secret or `file:///path`) and the CA that signs the servers' TLS certificates
(`ca_cert`) have none.

A `zk://` master (or a comma list of masters) is resolved to the leader the way the SDK does
(`mesos_common.leader.detect`).
"""
from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from corral.errors import CliError

DEFAULTS = {"master": "http://127.0.0.1:5050", "marathon": "http://127.0.0.1:8080"}
SECURITY_KEYS = ("principal", "secret", "ca_cert")
KEYS = tuple(DEFAULTS) + SECURITY_KEYS


def config_path(environ: Mapping[str, str] | None = None) -> Path:
    env = os.environ if environ is None else environ
    base = env.get("XDG_CONFIG_HOME") or os.path.join(os.path.expanduser("~"), ".config")
    return Path(base) / "corral" / "config.toml"


def read_file(path: Path) -> dict[str, Any]:
    if not path.exists():
        return {}
    import tomllib
    try:
        with path.open("rb") as f:
            return tomllib.load(f)
    except (OSError, tomllib.TOMLDecodeError) as e:
        raise CliError(f"{path}: {e}") from None


def write_key(path: Path, key: str, value: str | None) -> None:
    """Set (or, with None, remove) one key of the config file."""
    if key not in KEYS:
        raise CliError(f"unknown config key {key!r} (one of: {', '.join(KEYS)})")
    import tomli_w
    data = read_file(path)
    if value is None:
        data.pop(key, None)
    else:
        data[key] = normalize(value) if key in DEFAULTS else value
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(tomli_w.dumps(data))
    tmp.replace(path)


def normalize(address: str) -> str:
    """`host:port` -> `http://host:port`; zk:// and http(s):// URLs stay as written."""
    a = address.strip().rstrip("/")
    if not a:
        raise CliError("an empty address")
    if a.startswith(("http://", "https://", "zk://")):
        return a
    return "http://" + a


def resolve(key: str, flag: str | None, environ: Mapping[str, str] | None = None,
            path: Path | None = None) -> tuple[str | None, str]:
    """(value, where it came from) for one of KEYS; addresses come back normalized."""
    env = os.environ if environ is None else environ
    norm = normalize if key in DEFAULTS else str
    if flag:
        return norm(flag), f"--{key.replace('_', '-')}"
    var = f"CORRAL_{key.upper()}"
    if env.get(var):
        return norm(env[var]), var
    p = path or config_path(env)
    value = read_file(p).get(key)
    if value:
        return norm(str(value)), str(p)
    return DEFAULTS.get(key), "default" if key in DEFAULTS else "unset"


def secret_value(value: str) -> str:
    """A secret as the daemons take it: the secret itself or `file:///path` holding it."""
    from mesos_common.auth.errors import AuthConfigError
    from mesos_common.auth.flags import read_secret
    try:
        return read_secret(value)
    except (AuthConfigError, OSError) as e:
        raise CliError(f"secret: {e}") from None


def master_url(address: str, ca_cert: str | None = None) -> str:
    """The leading master's URL for a master address (zk:// or a list)."""
    tls = "https://" in address or (address.startswith("zk://") and ca_cert is not None)
    if not address.startswith("zk://") and "," not in address:
        return address
    import asyncio

    from mesos_common.leader import DetectError, detect
    if ca_cert:  # the SDK's detection reads the CA as libprocess does
        os.environ.setdefault("LIBPROCESS_SSL_CA_FILE", ca_cert)
    try:
        info = asyncio.run(detect(address))
    except DetectError as e:
        raise CliError(f"cannot find the leading master via {address}: {e}") from None
    host = info.ip if info.ip not in ("", "0.0.0.0") else info.hostname
    return f"{'https' if tls else 'http'}://{host}:{info.port}"
