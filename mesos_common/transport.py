"""ZeroMQ edges: a ROUTER for the master, a DEALER for agents and frameworks.

Frames in, decoded messages (or DecodeError values) out. Nothing here knows what a message
means; heartbeats and re-registration live in the cores. Sends never block: when a peer is
gone or its queue is full the message is dropped and counted, and the cores' retries
(status updates, heartbeats, re-registration) make up for it. Socket options that a later
CURVE setup needs are applied in one place, `_configure`.
"""
from __future__ import annotations

import asyncio
import logging
import os
from typing import Any

import zmq
import zmq.asyncio

from mesos_common import codec

log = logging.getLogger(__name__)

HWM = 200_000
ROUTER_RCVHWM = 64
_NOBLOCK = int(zmq.NOBLOCK)  # plain ints: IntFlag arithmetic per send showed in profiles
_MORE_NOBLOCK = int(zmq.NOBLOCK | zmq.SNDMORE)


def _configure(sock: zmq.Socket) -> None:
    sock.setsockopt(zmq.MAXMSGSIZE, codec.MAX_MESSAGE_BYTES)
    sock.setsockopt(zmq.LINGER, 0)
    sock.setsockopt(zmq.SNDHWM, HWM)
    sock.setsockopt(zmq.RCVHWM, HWM)
    sock.setsockopt(zmq.RECONNECT_IVL, 100)
    sock.setsockopt(zmq.RECONNECT_IVL_MAX, 2000)


class RouterTransport:
    """The master's socket; peers are addressed by their DEALER identity."""

    def __init__(self, ctx: zmq.asyncio.Context | None = None) -> None:
        self._ctx = ctx or zmq.asyncio.Context.instance()
        self.sock = self._ctx.socket(zmq.ROUTER)
        _configure(self.sock)
        # Per peer, at most this many received messages wait inside this process; beyond it
        # libzmq stops reading that connection and the backlog stays with its sender (kernel
        # buffers, then the sender's own queue). Nothing is dropped on this side. At 10k
        # agents retrying status updates faster than a framework acknowledged them, the
        # master's input queues held ~0.5 GiB.
        self.sock.setsockopt(zmq.RCVHWM, ROUTER_RCVHWM)
        self._sync = zmq.Socket.shadow(self.sock.underlying)  # non-blocking drains and sends
        self._sent = False
        self.dropped = 0

    def bind(self, endpoint: str) -> str:
        """Bind and return the resolved endpoint (`tcp://ip:0` picks a free port)."""
        self.sock.bind(endpoint)
        return self.sock.getsockopt_string(zmq.LAST_ENDPOINT)

    async def recv(self) -> tuple[bytes, Any]:
        return self._decode(await self.sock.recv_multipart(copy=True))

    async def recv_batch(self, limit: int = 512) -> list[tuple[bytes, Any]]:
        """Wait for one message, then take whatever else is already queued (up to `limit`)
        without going back to the event loop: one wake-up per burst, not per message."""
        out = [await self.recv()]
        while len(out) < limit:
            try:
                frames = self._sync.recv_multipart(_NOBLOCK, copy=True)
            except zmq.Again:
                break
            out.append(self._decode(frames))
        return out

    @staticmethod
    def _decode(frames: list[bytes]) -> tuple[bytes, Any]:
        if len(frames) != 2:
            return (frames[0] if frames else b""), codec.DecodeError(
                f"expected 1 body frame, got {len(frames) - 1}")
        return frames[0], codec.decode(frames[1])

    def send(self, peer: bytes, msg: Any) -> None:
        self.send_raw(peer, codec.encode(msg))

    def send_raw(self, peer: bytes, body: bytes) -> None:
        """Straight to the socket: a ROUTER never blocks (it drops for an unknown peer or a
        full queue), so the asyncio wrapper's Future per send (a quarter of the master's
        time per message) buys nothing. Call `kick()` after sending from outside `recv`."""
        sock = self._sync
        try:
            sock.send(peer, _MORE_NOBLOCK)
            sock.send(body, _NOBLOCK, copy=len(body) < 65536)
        except zmq.Again:
            self.dropped += 1
        else:
            self._sent = True

    def kick(self) -> None:
        """The ZeroMQ fd is edge-triggered and a send may consume the edge of a message that
        arrived meanwhile; reading EVENTS through the asyncio socket re-arms a waiting recv."""
        if self._sent:
            self._sent = False
            self.sock.get(zmq.EVENTS)

    def close(self) -> None:
        self.sock.close(linger=0)


class DealerTransport:
    """An agent's or framework's single upstream connection to the (leading) master."""

    def __init__(self, ctx: zmq.asyncio.Context | None = None, identity: bytes | None = None) -> None:
        self._ctx = ctx or zmq.asyncio.Context.instance()
        self.identity = identity or os.urandom(8).hex().encode()
        self.sock = self._ctx.socket(zmq.DEALER)
        self.sock.setsockopt(zmq.IDENTITY, self.identity)
        self.sock.setsockopt(zmq.IMMEDIATE, 1)  # never queue for a master that is not there
        _configure(self.sock)
        self._sync = zmq.Socket.shadow(self.sock.underlying)  # non-blocking drains, sends
        self._kick_due = False
        self.endpoint: str | None = None
        self.dropped = 0

    def connect(self, endpoint: str) -> None:
        """(Re)point at `endpoint`; a no-op when already connected there."""
        if endpoint == self.endpoint:
            return
        if self.endpoint is not None:
            try:
                self.sock.disconnect(self.endpoint)
            except zmq.ZMQError:
                pass
        self.sock.connect(endpoint)
        self.endpoint = endpoint

    async def recv(self) -> Any:
        return self._decode(await self.sock.recv_multipart(copy=True))

    async def recv_batch(self, limit: int = 256) -> list[Any]:
        """As `RouterTransport.recv_batch`: one awaited message, then whatever else is
        already queued (up to `limit`), read without going back to the event loop."""
        out = [await self.recv()]
        while len(out) < limit:
            try:
                frames = self._sync.recv_multipart(_NOBLOCK, copy=True)
            except zmq.Again:
                break
            out.append(self._decode(frames))
        return out

    @staticmethod
    def _decode(frames: list[bytes]) -> Any:
        if len(frames) != 1:
            return codec.DecodeError(f"expected 1 frame, got {len(frames)}")
        return codec.decode(frames[0])

    def send(self, msg: Any) -> bool:
        """Straight to the socket, as `RouterTransport.send_raw` (the asyncio wrapper's
        Future per send cost a quarter of a framework's time per message). A NOBLOCK send
        fails when no master is connected (IMMEDIATE) or its queue is full: dropped."""
        body = codec.encode(msg)
        try:
            self._sync.send(body, _NOBLOCK, copy=len(body) < 65536)
        except zmq.Again:
            self.dropped += 1
            return False
        if not self._kick_due:  # once per turn of the loop, after this turn's sends
            self._kick_due = True
            try:
                asyncio.get_running_loop().call_soon(self._kick)
            except RuntimeError:  # no loop running here: re-arm now
                self._kick()
        return True

    def _kick(self) -> None:
        """See `RouterTransport.kick`: a send may eat the edge of a message that arrived
        meanwhile; reading EVENTS through the asyncio socket re-arms a waiting recv."""
        self._kick_due = False
        try:
            self.sock.get(zmq.EVENTS)
        except zmq.ZMQError:  # closed meanwhile
            pass

    def close(self) -> None:
        self.sock.close(linger=0)
