"""CURVE keys: the master's certificate pair and how a peer picks the key it encrypts to.

Certificates are ZeroMQ's (`zmq.auth.create_certificates`: `<name>.key` holds the public key,
`<name>.key_secret` both). A peer given `--master_public_key` encrypts to that key and to
nothing else; without it, it trusts the key the leader publishes with its info (HTTP
/master/info or ZooKeeper) and logs that it did, once per key.
"""
from __future__ import annotations

import logging
import os

import zmq
import zmq.auth
from attrs import define, field

from mesos_common.auth.credentials import Credential

log = logging.getLogger("mesos_common.curve")

MASTER_CERT_NAME = "master"


class CurveError(ValueError):
    pass


def _load(path: str) -> tuple[bytes | None, bytes | None]:
    try:
        return zmq.auth.load_certificate(path)
    except (OSError, ValueError) as e:
        raise CurveError(f"cannot read CURVE certificate {path}: {e}") from None


def load_secret_cert(path: str) -> tuple[bytes, bytes]:
    """(public, secret) z85 keys from a `*.key_secret` certificate."""
    public, secret = _load(path)
    if not public or not secret:
        raise CurveError(f"{path} holds no secret key (give the *.key_secret file)")
    return public, secret


def load_public_cert(path: str) -> bytes:
    public, _ = _load(path)
    if not public:
        raise CurveError(f"{path} holds no public key")
    return public


def ensure_master_cert(work_dir: str) -> tuple[str, str]:
    """The master's generated pair under `<work_dir>/curve/`, made on first start:
    (public certificate path, secret certificate path)."""
    folder = os.path.join(work_dir, "curve")
    public = os.path.join(folder, f"{MASTER_CERT_NAME}.key")
    secret = os.path.join(folder, f"{MASTER_CERT_NAME}.key_secret")
    if not os.path.exists(secret):
        os.makedirs(folder, mode=0o700, exist_ok=True)
        old = os.umask(0o077)
        try:
            zmq.auth.create_certificates(folder, MASTER_CERT_NAME)
        finally:
            os.umask(old)
        os.chmod(public, 0o644)
    return public, secret


@define
class PeerSecurity:
    """What an agent or framework brings to its master connection: the master's public key
    (None: trust the published one, if any) and its own credential (None: none)."""

    master_public_key: bytes | None = None
    credential: Credential | None = field(default=None, repr=False)
    _trusted: set[bytes] = field(factory=set, repr=False)

    @classmethod
    def from_flags(cls, master_public_key: str | None, credential: Credential | None
                   ) -> PeerSecurity:
        key = load_public_cert(master_public_key) if master_public_key else None
        return cls(key, credential)

    def server_key(self, published: str | None, source: str) -> bytes | None:
        """The key to encrypt to for a master that published `published` (z85 or None)."""
        if self.master_public_key is not None:
            if published and published.encode() != self.master_public_key:
                log.warning("the master at %s publishes a CURVE key other than "
                            "--master_public_key; encrypting to --master_public_key", source)
            return self.master_public_key
        if not published:
            return None
        key = published.encode()
        if key not in self._trusted:
            self._trusted.add(key)
            log.warning("trusting the CURVE key the master publishes at %s (%s); give "
                        "--master_public_key to pin it", source, published)
        return key
