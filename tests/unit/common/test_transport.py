"""ROUTER/DEALER adapters over real ZeroMQ sockets on loopback."""
from __future__ import annotations

import asyncio
import time
from typing import Any

import zmq
import zmq.asyncio

from mesos_common import codec
from mesos_common import messages as m
from mesos_common.transport import DealerTransport, RouterTransport


def test_round_trip_and_bad_frames():
    async def main():
        ctx = zmq.asyncio.Context()
        router = RouterTransport(ctx)
        endpoint = router.bind("tcp://127.0.0.1:0")
        assert endpoint.startswith("tcp://127.0.0.1:") and not endpoint.endswith(":0")
        dealer = DealerTransport(ctx)
        dealer.connect(endpoint)
        for _ in range(100):  # IMMEDIATE: sends fail until the connection is up
            if dealer.send(m.Heartbeat()):
                break
            await asyncio.sleep(0.02)
        peer, msg = await asyncio.wait_for(router.recv(), 5)
        assert peer == dealer.identity and msg == m.Heartbeat()
        router.send(peer, m.Error(message="x"))
        assert await asyncio.wait_for(dealer.recv(), 5) == m.Error(message="x")
        # garbage and multi-frame messages become DecodeError values
        dealer.sock.send(b"\xc1garbage")
        _, bad = await asyncio.wait_for(router.recv(), 5)
        assert isinstance(bad, codec.DecodeError)
        # several messages in one ZeroMQ message: each frame on its own, in order
        dealer.sock.send_multipart([codec.encode(m.Heartbeat()), b"\xc1bad",
                                    codec.encode(m.Error(message="y"))])
        got = [await asyncio.wait_for(router.recv(), 5) for _ in range(3)]
        assert got[0] == (dealer.identity, m.Heartbeat()) and got[2][1] == m.Error(message="y")
        assert isinstance(got[1][1], codec.DecodeError)
        # a burst of one turn goes out as few ZeroMQ messages and arrives whole, in order
        for i in range(200):
            router.send(peer, m.Error(message=str(i)))
            assert dealer.send(m.Error(message=str(i)))
        await asyncio.sleep(0)  # the end of the turn: both flush
        back: list[Any] = []
        while len(back) < 200:
            back += await asyncio.wait_for(dealer.recv_batch(1000), 5)
        assert back == [m.Error(message=str(i)) for i in range(200)]
        there: list[Any] = []
        while len(there) < 200:
            there += [msg for _, msg in await asyncio.wait_for(router.recv_batch(1000), 5)]
        assert there == [m.Error(message=str(i)) for i in range(200)]
        # unknown peers are dropped silently, not raised
        router.send(b"nobody", m.Heartbeat())
        assert dealer.sock.getsockopt(zmq.MAXMSGSIZE) == codec.MAX_MESSAGE_BYTES
        dealer.close()
        router.close()
        ctx.term()
    asyncio.run(main())


def test_dealer_drops_when_no_master():
    async def main():
        ctx = zmq.asyncio.Context()
        dealer = DealerTransport(ctx)
        dealer.connect("tcp://127.0.0.1:1")  # nothing listens there
        assert dealer.send(m.Heartbeat()) is False and dealer.dropped == 1
        dealer.close()
        ctx.term()
    asyncio.run(main())


def test_ping_pong_never_loses_a_wake_up(monkeypatch):
    """Each side sends while its recv waits (a send consumes the fd's signal): every message
    is still received at once, without the periodic re-check (disabled here)."""
    import mesos_common.transport as tr
    monkeypatch.setattr(tr, "RECHECK_SECONDS", 3600.0)

    async def main():
        ctx = zmq.asyncio.Context()
        router = RouterTransport(ctx)
        dealer = DealerTransport(ctx)
        dealer.connect(router.bind("tcp://127.0.0.1:0"))
        while not dealer.writable():
            await asyncio.sleep(0.01)

        async def echo():
            for _ in range(300):
                for peer, msg in await router.recv_batch():
                    router.send(peer, msg)

        server = asyncio.create_task(echo())
        for i in range(300):
            dealer.send(m.Error(message=str(i)))
            assert await asyncio.wait_for(dealer.recv(), 5) == m.Error(message=str(i))
        await asyncio.wait_for(server, 5)
        # a message lands while the loop is busy, then a send consumes the fd's signal
        # before the loop looks: the waiting recv is woken all the same (by the kick)
        waiting = asyncio.create_task(dealer.recv())
        await asyncio.sleep(0.01)
        router.send(dealer.identity, m.Error(message="late"))
        router.flush()
        time.sleep(0.1)  # the loop is busy; libzmq delivers meanwhile
        dealer.send(m.Heartbeat())
        assert await asyncio.wait_for(waiting, 5) == m.Error(message="late")
        # a recv waiting when its transport closes ends (cancelled), it does not hang
        waiting = asyncio.create_task(dealer.recv())
        await asyncio.sleep(0.01)
        dealer.close()
        try:
            await asyncio.wait_for(waiting, 5)
        except asyncio.CancelledError:
            pass
        assert waiting.cancelled()
        router.close()
        ctx.term()
    asyncio.run(main())
