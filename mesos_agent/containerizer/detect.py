"""`--containerizers auto`: Docker where a Docker engine answers, process tasks everywhere.

The engine is found as the docker SDK's `from_env` finds it (`DOCKER_HOST`, `DOCKER_TLS_VERIFY`,
`DOCKER_CERT_PATH`, else the local socket), which is also how the docker containerizer
connects, so what answers here is what will run the containers.
"""
from __future__ import annotations

from collections.abc import Mapping

from attrs import frozen

from mesos_agent.containerizer.support import DOCKER, KINDS, MESOS, SIM

AUTO = "auto"
PING_TIMEOUT = 5.0  # seconds: a socket that accepts and never answers is no engine


@frozen
class Choice:
    """The containerizers an agent runs, and why (for the log and `mesos-local`)."""

    kinds: frozenset[str]
    why: str

    @property
    def text(self) -> str:
        return ",".join(sorted(self.kinds))


def parse(text: str) -> frozenset[str] | None:
    """`--containerizers` -> kinds, None for `auto`; raises ValueError with a one-line reason."""
    names = [k.strip() for k in text.split(",") if k.strip()]
    if names == [AUTO]:
        return None
    kinds = frozenset(MESOS if k == "process" else k for k in names)
    bad = kinds - {*KINDS, SIM}
    if bad or not kinds or (SIM in kinds and len(kinds) > 1):
        raise ValueError(f"unsupported containerizers {text!r} (use auto, mesos, docker, "
                         "docker,mesos or sim)")
    return kinds


def docker_engine(environ: Mapping[str, str] | None = None,
                  timeout: float = PING_TIMEOUT) -> str | None:
    """None when a Docker engine answers a ping, else why not (one line)."""
    import docker  # here: the SDK's import costs time an agent without Docker need not spend

    try:
        client = docker.from_env(timeout=timeout, environment=environ)
    except Exception as e:  # bad DOCKER_HOST, TLS files missing, ...
        return _line(e)
    try:
        client.ping()
    except Exception as e:
        return _line(e)
    finally:
        client.close()
    return None


def choose(text: str, environ: Mapping[str, str] | None = None) -> Choice:
    """Resolve `--containerizers` (raises ValueError for a bad value)."""
    kinds = parse(text)
    if kinds is not None:
        return Choice(kinds, "as given by --containerizers")
    why_not = docker_engine(environ)
    if why_not is None:
        return Choice(frozenset({DOCKER, MESOS}), "auto: a Docker engine answers")
    return Choice(frozenset({MESOS}), f"auto: no Docker engine ({why_not})")


def _line(e: Exception) -> str:
    text = " ".join(str(e).split()) or type(e).__name__
    return text if len(text) <= 200 else text[:197] + "..."
