"""The master's ZAP handler (ZeroMQ's authentication protocol, RFC 27) on the event loop.

With CURVE on, libzmq asks this handler about each new connection after the handshake has
proved the client holds the secret key of the public key it presents. Any CURVE client may
connect (principals are proven afterwards with an Authenticate message, over the encrypted
channel); any other mechanism that reaches it is refused and its address logged once. A
plain-text client, or one encrypting to another key, fails the handshake inside libzmq
before any ZAP request: a monitor of the ROUTER (`watch`) logs those once per address and
reason too.
`decide` is pure; `run` is a task of the master's task group.
"""
from __future__ import annotations

import asyncio
import logging
import os
import socket
import threading
from collections import Counter
from typing import Any

import zmq
import zmq.asyncio
import zmq.utils.z85
from zmq.utils.monitor import parse_monitor_message

log = logging.getLogger("mesos_common.zap")

ZAP_ENDPOINT = "inproc://zeromq.zap.01"
MAX_LOGGED = 10_000  # refused addresses remembered for "logged once"
HANDSHAKE_EVENTS = (zmq.EVENT_ACCEPTED | zmq.EVENT_DISCONNECTED
                    | zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL | zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL
                    | zmq.EVENT_HANDSHAKE_FAILED_AUTH)
UNSEEN = "a peer gone before its address was read"
HANDSHAKE_REASONS: dict[int, str] = {
    zmq.PROTOCOL_ERROR_ZMTP_MECHANISM_MISMATCH: "not CURVE (plain text?)",
    zmq.PROTOCOL_ERROR_ZMTP_CRYPTOGRAPHIC: "CURVE to another key, or a bad CURVE handshake",
}


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


def handshake_reason(event: int, value: int) -> str:
    if event == zmq.EVENT_HANDSHAKE_FAILED_AUTH:
        return f"refused by ZAP (status {value})"
    if event == zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL:
        return HANDSHAKE_REASONS.get(value, f"ZMTP protocol error {value:#x}")
    return "handshake failed"


def peer_address(fd: int) -> str | None:
    """The remote host of an accepted connection's descriptor (a dup: libzmq keeps its
    own), or None once libzmq has closed it. The host, as ZAP's address: a peer retrying
    from new ports is still one address."""
    try:
        with socket.socket(fileno=os.dup(fd)) as s:
            return str(s.getpeername()[0])
    except OSError:
        return None


class ZapHandler:
    def __init__(self, ctx: zmq.asyncio.Context) -> None:
        self.sock = ctx.socket(zmq.REP)
        self.sock.setsockopt(zmq.LINGER, 0)
        self.sock.bind(ZAP_ENDPOINT)
        self.counts: Counter[str] = Counter()
        self._logged: set[str] = set()
        self._monitor: zmq.Socket | None = None  # watch()'s, read by its own thread
        # open connection's fd -> its peer (None: closed before it was read); fds are bounded
        self._accepted: dict[int, str | None] = {}
        self._log_lock = threading.Lock()

    def watch(self, router: zmq.Socket) -> None:
        """Also log the peers `router` drops in the CURVE handshake (they never reach ZAP)."""
        endpoint = f"inproc://corral-handshakes-{id(router):x}"
        router.monitor(endpoint, HANDSHAKE_EVENTS)
        self._monitor = zmq.Context.shadow(self.sock.context.underlying).socket(zmq.PAIR)
        self._monitor.connect(endpoint)

    async def run(self) -> None:
        async with asyncio.TaskGroup() as tg:
            if self._monitor is not None:
                tg.create_task(self._watch(self._monitor))
            while True:
                frames = await self.sock.recv_multipart()
                reply, ok = decide(frames)
                self.counts["allowed" if ok else "refused"] += 1
                if not ok:
                    self._log_refusal(frames)
                await self.sock.send_multipart(reply)

    async def _watch(self, monitor: zmq.Socket) -> None:
        stop = threading.Event()
        try:
            await asyncio.to_thread(self._watch_events, monitor, stop)
        finally:
            stop.set()  # the thread sees it within one poll

    def _watch_events(self, monitor: zmq.Socket, stop: threading.Event) -> None:
        """A thread of its own: a refused connection's descriptor is closed within
        microseconds of its ACCEPTED event, so its peer is read as soon as the event comes
        (not after the event loop's turn). One gone already is logged as UNSEEN (a CURVE
        peer retries, so it is named on a later try; a plain-text one gives up at once).
        One I/O thread emits a connection's handshake failure and then its disconnection,
        back to back: the failure belongs to the next descriptor disconnected."""
        failed: str | None = None
        try:
            while not stop.is_set():
                if not monitor.poll(200):
                    continue
                event = parse_monitor_message(monitor.recv_multipart())
                kind, value = int(event["event"]), int(event["value"])
                if kind == zmq.EVENT_ACCEPTED:
                    self._accepted[value] = peer_address(value)
                elif kind == zmq.EVENT_DISCONNECTED:
                    address = self._accepted.pop(value, None) or UNSEEN
                    if failed is not None:
                        self.counts["handshake_failed"] += 1
                        self._log_once(f"refused a ZeroMQ connection from {address} in the "
                                       f"CURVE handshake: {failed}")
                    failed = None
                else:
                    failed = handshake_reason(kind, value)
        except zmq.ZMQError:  # the context is ending
            pass
        finally:
            monitor.close(linger=0)

    def _log_refusal(self, frames: list[Any]) -> None:
        address = (frames[3] if len(frames) > 3 else b"?").decode(errors="replace")
        mechanism = frames[5].decode(errors="replace") if len(frames) > 5 else "?"
        self._log_once(f"refused a ZeroMQ connection from {address}: mechanism {mechanism!r}, "
                       "CURVE required")

    def _log_once(self, line: str) -> None:
        """Log `line` (naming an address and a reason) once; the set of lines is bounded."""
        with self._log_lock:  # the event loop and the monitor's thread
            if line in self._logged:
                return
            if len(self._logged) >= MAX_LOGGED:
                self._logged.clear()
            self._logged.add(line)
        log.warning("%s", line)

    def close(self) -> None:
        self.sock.close(linger=0)
