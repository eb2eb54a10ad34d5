"""Mesos-spelled command-line flags, also read from `MESOS_<FLAG>` environment variables.

Explicit flags win over the environment, the environment over defaults. Any bad flag or
bad environment value ends the program with a one-line error and exit code 2.
"""
from __future__ import annotations

import argparse
import logging
import os
import re
import sys
from collections.abc import Callable, Sequence
from typing import Any

_DURATION = re.compile(r"^\s*([0-9]*\.?[0-9]+)\s*(ns|us|ms|secs?|s|mins?|hrs?|days?|weeks?)?\s*$")
_UNITS = {"ns": 1e-9, "us": 1e-6, "ms": 1e-3, "sec": 1.0, "secs": 1.0, "s": 1.0, "min": 60.0,
          "mins": 60.0, "hr": 3600.0, "hrs": 3600.0, "day": 86400.0, "days": 86400.0,
          "week": 604800.0, "weeks": 604800.0, None: 1.0}


def duration(text: str) -> float:
    """Seconds from `15secs`, `100ms`, `2mins` or a bare number of seconds."""
    m = _DURATION.match(str(text))
    if not m:
        raise argparse.ArgumentTypeError(f"invalid duration {text!r} (e.g. 15secs, 100ms, 2mins)")
    return float(m.group(1)) * _UNITS[m.group(2)]


_BYTES = re.compile(r"^\s*([0-9]*\.?[0-9]+)\s*(B|KB|MB|GB|TB)?\s*$", re.IGNORECASE)


def byte_size(text: str) -> int:
    """Bytes from Mesos's Bytes form (`2GB`, `512MB`, `64KB`, `100B`) or a bare number."""
    m = _BYTES.match(str(text))
    if not m:
        raise argparse.ArgumentTypeError(f"invalid size {text!r} (e.g. 2GB, 512MB, 1048576)")
    power = ["B", "KB", "MB", "GB", "TB"].index((m.group(2) or "B").upper())
    return int(float(m.group(1)) * 1024 ** power)


def boolean(text: str) -> bool:
    v = str(text).strip().lower()
    if v in ("1", "true", "yes", "on"):
        return True
    if v in ("0", "false", "no", "off"):
        return False
    raise argparse.ArgumentTypeError(f"invalid boolean {text!r} (true or false)")


def port(text: str) -> int:
    try:
        p = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid port {text!r}") from None
    if not 0 <= p < 65536:
        raise argparse.ArgumentTypeError(f"port {p} out of range 0-65535")
    return p


def positive_int(text: str) -> int:
    try:
        n = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid integer {text!r}") from None
    if n < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {n}")
    return n


class FlagParser(argparse.ArgumentParser):
    """argparse with Mesos conventions: `--name=value`, `--[no-]flag`, env fallbacks."""

    def __init__(self, prog: str, description: str, env_prefix: str = "MESOS_",
                 log_level: str = "INFO") -> None:
        super().__init__(prog=prog, description=description, allow_abbrev=False)
        self.env_prefix = env_prefix
        self._env_flags: list[tuple[str, str, Callable[[str], Any]]] = []
        self.add_flag("log_level", default=log_level, choices=["DEBUG", "INFO", "WARNING", "ERROR"],
                      type=str.upper, help="logging threshold")

    def add_flag(self, name: str, type: Callable[[str], Any] = str, default: Any = None,
                 help: str = "", **kw: Any) -> None:
        if type is boolean:
            self.add_argument(f"--{name}", dest=name, type=boolean, nargs="?", const=True,
                              default=None, help=help)
            self.add_argument(f"--no-{name}", dest=name, action="store_false")
        else:
            self.add_argument(f"--{name}", dest=name, type=type, default=None, help=help, **kw)
        self._env_flags.append((name, self.env_prefix + name.upper(), type))
        self.set_defaults(**{f"_default_{name}": default})

    def error(self, message: str) -> None:  # type: ignore[override]
        sys.stderr.write(f"{self.prog}: error: {message}\n")
        sys.exit(2)

    def parse(self, argv: Sequence[str] | None = None) -> argparse.Namespace:
        ns = self.parse_args(argv)
        for name, env, conv in self._env_flags:
            if getattr(ns, name) is None and env in os.environ:
                try:
                    setattr(ns, name, conv(os.environ[env]))
                except (argparse.ArgumentTypeError, ValueError) as e:
                    self.error(f"{env}: {e}")
            if getattr(ns, name) is None:
                setattr(ns, name, getattr(ns, f"_default_{name}"))
            delattr(ns, f"_default_{name}")
        for action in self._actions:  # env values must respect choices too
            if action.choices is not None and action.dest in vars(ns):
                v = getattr(ns, action.dest)
                if v is not None and v not in action.choices:
                    self.error(f"--{action.dest}: invalid choice {v!r}")
        return ns


def setup_logging(level: str, name: str) -> None:
    logging.basicConfig(
        level=getattr(logging, level, logging.INFO),
        format=f"%(asctime)s {name}[%(process)d] %(levelname)s %(name)s: %(message)s")
    logging.getLogger("aiohttp.server").addFilter(_client_mistakes)


def _client_mistakes(record: logging.LogRecord) -> bool:
    """A malformed HTTP request is the client's mistake (aiohttp answers it 400): one debug
    line, not an error with a traceback per request a client may send by the thousand."""
    exc = record.exc_info[1] if record.exc_info else None
    if exc is not None and type(exc).__module__.startswith("aiohttp.http_exceptions"):
        record.levelno, record.levelname = logging.DEBUG, "DEBUG"
        record.msg, record.args, record.exc_info, record.exc_text = (
            f"bad HTTP request: {exc}".splitlines()[0], None, None, None)
        return logging.getLogger("aiohttp.server").isEnabledFor(logging.DEBUG)
    return True
