"""ZeroMQ edges: a ROUTER for the master, a DEALER for agents and frameworks.

Frames in, decoded messages (or DecodeError values) out. Nothing here knows what a message
means; heartbeats and re-registration live in the cores. Sends never block: when a peer is
gone or its queue is full the message is dropped and counted, and the cores' retries
(status updates, heartbeats, re-registration) make up for it. Socket options that a later
CURVE setup needs are applied in one place, `_configure`.

One ZeroMQ message carries one or more encoded messages, one per frame (after the ROUTER's
identity frame). The messages sent to one peer in one turn of the event loop go out together
at the end of the turn (`BATCH_MAX` messages or `BATCH_BYTES` at most per ZeroMQ message):
in a burst (a thousand status updates and their acknowledgements) that is one hand-over to
libzmq's I/O thread, one wake-up and one read on the other side instead of one per message.
Order per peer is kept; each frame is decoded on its own (a bad one is a DecodeError, its
neighbours still count).
"""
from __future__ import annotations

import asyncio
import logging
import os
import weakref
from collections import deque
from typing import Any, cast

import zmq
import zmq.asyncio

from mesos_common import codec
from mesos_common import messages as m
from mesos_common.curve import PeerSecurity

log = logging.getLogger(__name__)

HWM = 200_000
ROUTER_RCVHWM = 64
BATCH_MAX = 64  # messages in one ZeroMQ message (the master's RCVHWM counts those)
BATCH_BYTES = 256 * 1024
# Bodies this large or larger are handed to libzmq without a copy. Below it a copy is
# cheaper: a zero-copy send goes through pyzmq's garbage-collector thread, which the first
# such send in a process starts (~1 ms, e.g. on a framework's first 1,000-task ACCEPT, a
# 230 KB body), and costs ~60 us per send where copying 230 KB costs ~20-30 us.
COPY_BELOW = 512 * 1024
_NOBLOCK = int(zmq.NOBLOCK)  # plain ints: IntFlag arithmetic per send showed in profiles
_MORE_NOBLOCK = int(zmq.NOBLOCK | zmq.SNDMORE)
_EVENTS = int(zmq.EVENTS)
_POLLIN, _POLLOUT = int(zmq.POLLIN), int(zmq.POLLOUT)
# A waiting recv re-checks the socket at least this often: code outside the transport that
# touches the socket (zmq.asyncio's poll or get) may consume the fd's signal of a message.
RECHECK_SECONDS = 1.0


def _configure(sock: zmq.Socket) -> None:
    sock.setsockopt(zmq.MAXMSGSIZE, codec.MAX_MESSAGE_BYTES)
    sock.setsockopt(zmq.LINGER, 0)
    sock.setsockopt(zmq.SNDHWM, HWM)
    sock.setsockopt(zmq.RCVHWM, HWM)
    sock.setsockopt(zmq.RECONNECT_IVL, 100)
    sock.setsockopt(zmq.RECONNECT_IVL_MAX, 2000)


class _Edge:
    """What both ends share: decoded messages handed out in bursts, a flush of the turn's
    sends at its end, and the wake-up of a waiting recv.

    Receiving does not go through zmq.asyncio: its recv builds a Future, raises and catches
    EAGAIN and does a dozen IntFlag operations per wake-up (about 40 us of a ~100 us round
    trip). A recv here reads the socket's EVENTS and waits on a reader of its own for the
    socket's fd (a dup, so zmq.asyncio may register the fd too). That fd only signals that
    the socket's state changed, and anything that processes the socket's commands (a send,
    reading EVENTS) consumes the signal: so after sending, a waiting recv is woken when
    EVENTS shows a message (`kick`)."""

    _ONE = 1  # frames of a ZeroMQ message that carries exactly one message

    def _setup(self, sock: zmq.asyncio.Socket) -> None:
        self.sock = sock
        # non-blocking drains and sends
        self._sync: zmq.Socket[bytes] = zmq.Socket.shadow(sock.underlying)
        self._sent = False
        self._flush_due = False
        self._in: deque[Any] = deque()  # decoded, not yet handed out
        self.dropped = 0
        self._fd = os.dup(self._sync.fileno())
        self._close_fd = weakref.finalize(self, os.close, self._fd)
        self._reader: asyncio.AbstractEventLoop | None = None  # where `_fd` is watched
        self._waiter: asyncio.Future[None] | None = None  # a recv waiting for the fd

    def _events(self) -> int:
        """The socket's EVENTS bit mask (an int option; pyzmq types every option int | bytes)."""
        return cast(int, self._sync.getsockopt(_EVENTS))

    def _decode(self, frames: list[bytes]) -> list[Any]:
        raise NotImplementedError

    def _decode_one(self, frames: list[bytes]) -> Any:
        raise NotImplementedError

    def flush(self) -> None:
        raise NotImplementedError

    async def recv(self) -> Any:
        while not self._in:
            frames = None
            if self._events() & _POLLIN:
                try:
                    frames = self._sync.recv_multipart(_NOBLOCK, copy=True)
                except zmq.Again:
                    pass
            if frames is None:
                await self._signalled()
            else:
                self._in.extend(self._decode(frames))
        return self._in.popleft()

    async def _signalled(self) -> None:
        """Until the fd signals, `_wake` is called, or RECHECK_SECONDS pass."""
        loop = asyncio.get_running_loop()
        if self._reader is not loop:
            self._drop_reader()
            loop.add_reader(self._fd, self._on_fd)
            self._reader = loop
        waiter = self._waiter = loop.create_future()
        recheck = loop.call_later(RECHECK_SECONDS, self._wake)
        try:
            await waiter
        finally:
            self._waiter = None
            recheck.cancel()

    def _on_fd(self) -> None:
        if self._sync.closed:  # closed behind our back (`sock.close()`)
            self._drop_reader()
            self._wake()
        elif self._events() & _POLLIN:  # reading EVENTS clears the signal
            self._wake()

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def _drop_reader(self) -> None:
        if self._reader is not None:
            self._reader.remove_reader(self._fd)
            self._reader = None

    async def recv_batch(self, limit: int = 256) -> list[Any]:
        """Wait for one message, then take whatever else is already queued (up to `limit`,
        whole ZeroMQ messages) without going back to the event loop: one wake-up per burst,
        not per message."""
        out = [await self.recv()]
        while self._in and len(out) < limit:
            out.append(self._in.popleft())
        one = self._ONE
        while len(out) < limit:
            try:
                frames = self._sync.recv_multipart(_NOBLOCK, copy=True)
            except zmq.Again:
                break
            if len(frames) == one:  # the common case: no list to build
                out.append(self._decode_one(frames))
            else:
                out.extend(self._decode(frames))
        return out

    def _flush_soon(self) -> None:
        if not self._flush_due:
            self._flush_due = True
            _call_soon(self.kick)

    def kick(self) -> None:
        """Flush, then: the ZeroMQ fd is edge-triggered and a send may consume the signal of
        a message that arrived meanwhile; a waiting recv is woken if EVENTS shows one."""
        self._flush_due = False
        self.flush()
        if self._sent:
            self._sent = False
            if self._waiter is not None:
                try:
                    if self._events() & _POLLIN:
                        self._wake()
                except zmq.ZMQError:  # closed meanwhile
                    pass

    def close(self, linger_ms: int = 0) -> None:
        """Send what is queued and close; what libzmq has not put on the wire by then is
        dropped, unless `linger_ms` gives it that long."""
        self.flush()
        self._drop_reader()
        if self._waiter is not None and not self._waiter.done():
            self._waiter.cancel()
        self._close_fd()
        self.sock.close(linger=linger_ms)


class RouterTransport(_Edge):
    """The master's socket; peers are addressed by their DEALER identity."""

    _ONE = 2

    def __init__(self, ctx: zmq.asyncio.Context | None = None,
                 curve_keys: tuple[bytes, bytes] | None = None) -> None:
        """`curve_keys` (public, secret): a CURVE server; peers must encrypt to the public
        key (and a ZAP handler in `ctx`, mesos_common.zap, refuses any other mechanism)."""
        self._ctx = ctx or zmq.asyncio.Context.instance()
        sock = self._ctx.socket(zmq.ROUTER)
        _configure(sock)
        if curve_keys is not None:
            sock.setsockopt(zmq.CURVE_SERVER, 1)
            sock.setsockopt(zmq.CURVE_PUBLICKEY, curve_keys[0])
            sock.setsockopt(zmq.CURVE_SECRETKEY, curve_keys[1])
            sock.setsockopt(zmq.ZAP_DOMAIN, b"corral")
        # Per peer, at most this many received messages wait inside this process; beyond it
        # libzmq stops reading that connection and the backlog stays with its sender (kernel
        # buffers, then the sender's own queue). Nothing is dropped on this side. At 10k
        # agents retrying status updates faster than a framework acknowledged them, the
        # master's input queues held ~0.5 GiB.
        sock.setsockopt(zmq.RCVHWM, ROUTER_RCVHWM)
        self._setup(sock)
        self._out: dict[bytes, _Batch] = {}  # this turn's messages, by peer

    def bind(self, endpoint: str) -> str:
        """Bind and return the resolved endpoint (`tcp://ip:0` picks a free port)."""
        self.sock.bind(endpoint)
        return self.sock.getsockopt_string(zmq.LAST_ENDPOINT)

    async def recv_batch(self, limit: int = 512) -> list[tuple[bytes, Any]]:
        return await super().recv_batch(limit)

    def _decode_one(self, frames: list[bytes]) -> tuple[bytes, Any]:
        return frames[0], codec.decode(frames[1])

    def _decode(self, frames: list[bytes]) -> list[tuple[bytes, Any]]:
        peer = frames[0] if frames else b""
        if len(frames) < 2:
            return [(peer, codec.DecodeError("expected at least 1 body frame, got none"))]
        return [(peer, codec.decode(f)) for f in frames[1:]]

    def send(self, peer: bytes, msg: Any) -> None:
        self.send_raw(peer, codec.encode(msg))

    def send_raw(self, peer: bytes, body: bytes) -> None:
        """Queue for `peer`; out with the rest of this turn's messages to it, on `kick()`
        (the server calls it after each burst) or at the end of the turn, whichever comes
        first. Sends go straight to the socket: a ROUTER never blocks (it drops for an
        unknown peer or a full queue), so the asyncio wrapper's Future per send (a quarter
        of the master's time per message) buys nothing."""
        batch = self._out.get(peer)
        if batch is None:
            batch = self._out[peer] = _Batch()
        batch.add(body)
        if batch.full():
            self._flush_peer(peer, self._out.pop(peer))
        self._flush_soon()

    def _flush_peer(self, peer: bytes, batch: _Batch) -> None:
        try:
            self._sync.send(peer, _MORE_NOBLOCK)
            _send_bodies(self._sync, batch)
        except zmq.Again:
            self.dropped += len(batch.bodies)
        else:
            self._sent = True

    def flush(self) -> None:
        """Send what was queued (per peer, in order)."""
        if not self._out:
            return
        out, self._out = self._out, {}
        for peer, batch in out.items():
            self._flush_peer(peer, batch)


class DealerTransport(_Edge):
    """An agent's or framework's single upstream connection to the (leading) master.

    With a `security` (mesos_common.curve.PeerSecurity) it encrypts to the master's CURVE
    key when there is one, and precedes each registration or subscription with an
    Authenticate carrying its credential (one place for every kind of peer)."""

    def __init__(self, ctx: zmq.asyncio.Context | None = None, identity: bytes | None = None,
                 security: PeerSecurity | None = None) -> None:
        self._ctx = ctx or zmq.asyncio.Context.instance()
        self.security = security or PeerSecurity()
        cred = self.security.credential
        self._hello = codec.encode(m.Authenticate(cred.principal, cred.secret)) if cred else None
        self._server_key: bytes | None = None
        self.identity = identity or os.urandom(8).hex().encode()
        sock = self._ctx.socket(zmq.DEALER)
        sock.setsockopt(zmq.IDENTITY, self.identity)
        sock.setsockopt(zmq.IMMEDIATE, 1)  # never queue for a master that is not there
        _configure(sock)
        self._setup(sock)
        self._out = _Batch()  # this turn's messages
        self.endpoint: str | None = None

    def connect(self, endpoint: str, published_key: str | None = None, source: str = "") -> None:
        """(Re)point at `endpoint`, encrypting to the key `security` picks given the one
        the master publishes; a no-op when already connected there with that key."""
        key = self.security.server_key(published_key, source or endpoint)
        if endpoint == self.endpoint and key == self._server_key:
            return
        if self.endpoint is not None:
            try:
                self.sock.disconnect(self.endpoint)
            except zmq.ZMQError:
                pass
        if key != self._server_key:
            _set_curve_client(self.sock, key)
            self._server_key = key
        self.sock.connect(endpoint)
        self.endpoint = endpoint

    def _decode_one(self, frames: list[bytes]) -> Any:
        return codec.decode(frames[0])

    def _decode(self, frames: list[bytes]) -> list[Any]:
        return [codec.decode(f) for f in frames]

    def send(self, msg: Any) -> bool:
        """Queue the message; it goes out with the rest of this turn's at the end of the
        turn (see the module docstring). False when there is no master connection to send
        on; a send that fails later (queue full, connection gone meanwhile) is counted in
        `dropped`, as the master's lost messages are: the cores' retries cover both."""
        if self.endpoint is None or (not self._out.bodies and not self._writable()):
            self.dropped += 1
            return False
        if self._hello is not None and type(msg) in _REGISTRATIONS:
            self._out.add(self._hello)
        self._out.add(codec.encode(msg))
        if self._out.full():
            self.flush()
        self._flush_soon()
        return True

    def _writable(self) -> bool:
        """Would a send go out now (a connected master, room in its queue)? Asked once
        per batch, so that a send with no master to go to says so (IMMEDIATE)."""
        self._sent = True  # reading EVENTS may eat the read edge too: re-check at the kick
        return bool(self._events() & _POLLOUT)

    def writable(self) -> bool:
        """Is a master connected, with room in its queue (IMMEDIATE: POLLOUT only then)?
        Wakes a waiting recv when the same look shows a message."""
        events = self._events()
        if events & _POLLIN:
            self._wake()
        return bool(events & _POLLOUT)

    def flush(self) -> None:
        batch, self._out = self._out, _Batch()
        if not batch.bodies:
            return
        try:
            _send_bodies(self._sync, batch)
        except zmq.Again:  # no master connected (IMMEDIATE) or its queue is full
            self.dropped += len(batch.bodies)
            log.debug("no master connection: dropped %d message(s)", len(batch.bodies))
        else:
            self._sent = True


_REGISTRATIONS = frozenset(m.REGISTRATIONS)


def _set_curve_client(sock: zmq.Socket, server_key: bytes | None) -> None:
    """CURVE client options for the next connect (a fresh keypair: the master knows peers
    by principal, not by key); None: back to the NULL mechanism."""
    if server_key is None:
        sock.setsockopt(zmq.CURVE_SERVER, 0)  # libzmq: resets the mechanism to NULL
        return
    public, secret = zmq.curve_keypair()
    sock.setsockopt(zmq.CURVE_SERVERKEY, server_key)
    sock.setsockopt(zmq.CURVE_PUBLICKEY, public)
    sock.setsockopt(zmq.CURVE_SECRETKEY, secret)


def _send_bodies(sock: zmq.Socket, batch: _Batch) -> None:
    """The batch's messages as the (last) frames of one ZeroMQ message."""
    last = len(batch.bodies) - 1
    for i, body in enumerate(batch.bodies):
        sock.send(body, _MORE_NOBLOCK if i < last else _NOBLOCK, copy=len(body) < COPY_BELOW)


class _Batch:
    """Encoded messages waiting for the end of the turn."""

    __slots__ = ("bodies", "size")

    def __init__(self) -> None:
        self.bodies: list[bytes] = []
        self.size = 0

    def add(self, body: bytes) -> None:
        self.bodies.append(body)
        self.size += len(body)

    def full(self) -> bool:
        return len(self.bodies) >= BATCH_MAX or self.size >= BATCH_BYTES


def _call_soon(fn: Any) -> None:
    """At the end of this turn of the running loop; at once when no loop runs here."""
    try:
        asyncio.get_running_loop().call_soon(fn)
    except RuntimeError:
        fn()
