"""Principals and secrets in Mesos's formats.

Master `--credentials`: `{"credentials": [{"principal": .., "secret": ..}, ..]}` (or Mesos's
text form, one `principal secret` per line). Agent `--credential` and frameworks:
`{"principal": .., "secret": ..}` (or one `principal secret` line). Secrets never appear in a
repr, an error message or a log line: `Credential` hides its secret and errors name only
principals.
"""
from __future__ import annotations

import hmac
import json
from collections.abc import Iterable, Mapping
from typing import Any

from attrs import field, frozen

from mesos_common.auth.errors import AuthConfigError


@frozen
class Credential:
    principal: str
    secret: str = field(repr=False)


class Credentials:
    """The master's table of principals; `check` compares in constant time."""

    def __init__(self, creds: Iterable[Credential] = ()) -> None:
        self._secrets: dict[str, bytes] = {}
        for c in creds:
            self._secrets[c.principal] = c.secret.encode()

    def __repr__(self) -> str:
        return f"Credentials(principals={sorted(self._secrets)!r})"

    def __len__(self) -> int:
        return len(self._secrets)

    def __contains__(self, principal: object) -> bool:
        return principal in self._secrets

    def check(self, principal: str, secret: str) -> bool:
        known = self._secrets.get(principal)
        given = secret.encode() if isinstance(secret, str) else b""
        if known is None:
            hmac.compare_digest(given, given)  # the same work whether or not it exists
            return False
        return hmac.compare_digest(known, given)

    def secrets(self) -> list[str]:
        """For redaction (logs, documents); never for display."""
        return [s.decode() for s in self._secrets.values()]


def _one(doc: Any, where: str) -> Credential:
    if not isinstance(doc, Mapping):
        raise AuthConfigError(f"{where}: expected an object with principal and secret")
    principal, secret = doc.get("principal"), doc.get("secret")
    if not isinstance(principal, str) or not principal:
        raise AuthConfigError(f"{where}: principal must be a non-empty string")
    if not isinstance(secret, str) or not secret:
        raise AuthConfigError(f"{where}: secret of {principal!r} must be a non-empty string")
    unknown = set(doc) - {"principal", "secret"}
    if unknown:
        raise AuthConfigError(f"{where}: unknown field(s) {sorted(unknown)}")
    return Credential(principal, secret)


def _text_lines(text: str) -> list[Credential]:
    out = []
    for n, line in enumerate(text.splitlines(), 1):
        parts = line.split()
        if not parts:
            continue
        if len(parts) != 2:
            raise AuthConfigError(f"line {n}: expected 'principal secret'")
        out.append(Credential(parts[0], parts[1]))
    return out


def parse_credentials(text: str) -> Credentials:
    """The master's `--credentials` document."""
    stripped = text.strip()
    if not stripped.startswith("{"):
        creds = _text_lines(stripped)
    else:
        try:
            doc = json.loads(stripped)
        except ValueError:
            raise AuthConfigError("credentials: not valid JSON") from None
        if not isinstance(doc, Mapping) or not isinstance(doc.get("credentials"), list):
            raise AuthConfigError('credentials: expected {"credentials": [{"principal", '
                                  '"secret"}, ...]}')
        creds = [_one(c, f"credentials[{i}]") for i, c in enumerate(doc["credentials"])]
    seen: set[str] = set()
    for c in creds:
        if c.principal in seen:
            raise AuthConfigError(f"credentials: principal {c.principal!r} given twice")
        seen.add(c.principal)
    if not creds:
        raise AuthConfigError("credentials: no principal given")
    return Credentials(creds)


def parse_credential(text: str) -> Credential:
    """An agent's or framework's `--credential` document."""
    stripped = text.strip()
    if not stripped.startswith("{"):
        lines = _text_lines(stripped)
        if len(lines) != 1:
            raise AuthConfigError("credential: expected one 'principal secret' line")
        return lines[0]
    try:
        doc = json.loads(stripped)
    except ValueError:
        raise AuthConfigError("credential: not valid JSON") from None
    return _one(doc, "credential")


