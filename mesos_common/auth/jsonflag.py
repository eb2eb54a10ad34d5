"""Mesos's JSON-valued flags: inline JSON, a path, or `file:///path`."""
from __future__ import annotations

import json
from typing import Any

from mesos_common.auth.errors import AuthConfigError

__all__ = ["AuthConfigError", "load_json_flag", "read_flag_text"]


def read_flag_text(value: str) -> str:
    """The flag's text: inline when it starts with `{` or `[`, else the file it names."""
    text = value.strip()
    if text.startswith(("{", "[")):
        return text
    path = text[len("file://"):] if text.startswith("file://") else text
    try:
        with open(path, encoding="utf-8") as f:
            return f.read()
    except OSError as e:
        raise AuthConfigError(f"cannot read {path}: {e.strerror}") from None


def load_json_flag(value: str, what: str) -> Any:
    text = read_flag_text(value)
    try:
        return json.loads(text)
    except ValueError as e:
        # The position only: the document may hold secrets and must not be echoed.
        raise AuthConfigError(f"{what}: not valid JSON (line {getattr(e, 'lineno', '?')})") \
            from None
