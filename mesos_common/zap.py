"""The master's ZAP handler (ZeroMQ's authentication protocol, RFC 27) on the event loop.

With CURVE on, libzmq asks this handler about each new connection after the handshake has
proved the client holds the secret key of the public key it presents. Any CURVE client may
connect (principals are proven afterwards with an Authenticate message, over the encrypted
channel); any other mechanism that reaches it is refused and its address logged once. (A
plain-text client, or one encrypting to another key, fails the handshake inside libzmq
before any ZAP request.) `decide` is pure; `run` is a task of the master's task group.
"""
from __future__ import annotations

import logging
from collections import Counter
from typing import Any

import zmq
import zmq.asyncio
import zmq.utils.z85

log = logging.getLogger("mesos_common.zap")

ZAP_ENDPOINT = "inproc://zeromq.zap.01"
MAX_LOGGED = 10_000  # refused addresses remembered for "logged once"


def decide(frames: list[bytes]) -> tuple[list[bytes], bool]:
    """The reply to one ZAP request, and whether it allows the peer."""
    if len(frames) < 6:
        request_id = frames[1] if len(frames) > 1 else b""
        return [b"1.0", request_id, b"500", b"malformed ZAP request", b"", b""], False
    version, request_id, _domain, _address, _identity, mechanism, *creds = frames
    if version != b"1.0":
        return [b"1.0", request_id, b"500", b"unsupported ZAP version", b"", b""], False
    if mechanism == b"CURVE" and len(creds) == 1 and len(creds[0]) == 32:
        return [b"1.0", request_id, b"200", b"OK", zmq.utils.z85.encode(creds[0]), b""], True
    return [b"1.0", request_id, b"400", b"CURVE required", b"", b""], False


class ZapHandler:
    def __init__(self, ctx: zmq.asyncio.Context) -> None:
        self.sock = ctx.socket(zmq.REP)
        self.sock.setsockopt(zmq.LINGER, 0)
        self.sock.bind(ZAP_ENDPOINT)
        self.counts: Counter[str] = Counter()
        self._logged: set[bytes] = set()

    async def run(self) -> None:
        while True:
            frames = await self.sock.recv_multipart()
            reply, ok = decide(frames)
            self.counts["allowed" if ok else "refused"] += 1
            if not ok:
                self._log_refusal(frames)
            await self.sock.send_multipart(reply)

    def _log_refusal(self, frames: list[Any]) -> None:
        address = frames[3] if len(frames) > 3 else b"?"
        if address in self._logged:
            return
        if len(self._logged) >= MAX_LOGGED:
            self._logged.clear()
        self._logged.add(address)
        mechanism = frames[5].decode(errors="replace") if len(frames) > 5 else "?"
        log.warning("refused a ZeroMQ connection from %s: mechanism %s, CURVE required",
                    address.decode(errors="replace"), mechanism)

    def close(self) -> None:
        self.sock.close(linger=0)
