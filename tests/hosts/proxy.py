"""A TCP proxy that delays what it forwards (this kernel has no `netem`).

Each chunk read from one side is written to the other `delay` plus a random part of `jitter`
later. Within one connection bytes keep their order (TCP's promise; a chunk never overtakes
the one before it); across connections the random part reorders: of two messages sent on
different connections, the later may arrive first.

    python -m tests.hosts.proxy --listen IP:PORT --to IP:PORT --delay 0.2 --jitter 0.3 --seed 7
"""
from __future__ import annotations

import argparse
import asyncio
import random
import sys

CHUNK = 65536


def parse_addr(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    if not host or not port.isdigit():
        raise argparse.ArgumentTypeError(f"expected IP:PORT, got {text!r}")
    return host, int(port)


class DelayProxy:
    def __init__(self, to: tuple[str, int], delay: float, jitter: float, seed: int) -> None:
        self.to = to
        self.delay = delay
        self.jitter = jitter
        self.rng = random.Random(seed)

    async def _pump(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue(maxsize=256)

        async def deliver() -> None:
            while True:
                at, data = await queue.get()
                await asyncio.sleep(max(0.0, at - loop.time()))
                if not data:
                    writer.write_eof() if writer.can_write_eof() else writer.close()
                    return
                writer.write(data)
                await writer.drain()

        async with asyncio.TaskGroup() as tg:
            tg.create_task(deliver())
            last = 0.0
            while True:
                data = await reader.read(CHUNK)
                last = max(last, loop.time() + self.delay + self.rng.uniform(0, self.jitter))
                await queue.put((last, data))
                if not data:
                    break

    async def handle(self, client_r: asyncio.StreamReader,
                     client_w: asyncio.StreamWriter) -> None:
        try:
            server_r, server_w = await asyncio.open_connection(*self.to)
        except OSError:
            client_w.close()
            return
        try:
            async with asyncio.TaskGroup() as tg:
                tg.create_task(self._pump(client_r, server_w))
                tg.create_task(self._pump(server_r, client_w))
        except* (OSError, asyncio.IncompleteReadError):
            pass
        finally:
            client_w.close()
            server_w.close()


async def serve(listen: tuple[str, int], proxy: DelayProxy) -> None:
    server = await asyncio.start_server(proxy.handle, *listen)
    port = server.sockets[0].getsockname()[1]
    print(f"proxy: listening port={port}", flush=True)
    async with server:
        await server.serve_forever()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="delay-proxy")
    p.add_argument("--listen", type=parse_addr, required=True)
    p.add_argument("--to", type=parse_addr, required=True)
    p.add_argument("--delay", type=float, default=0.1, help="seconds added to every chunk")
    p.add_argument("--jitter", type=float, default=0.0, help="up to this many more seconds")
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args(argv)
    if a.delay < 0 or a.jitter < 0:
        p.error("--delay and --jitter must be >= 0")
    try:
        asyncio.run(serve(a.listen, DelayProxy(a.to, a.delay, a.jitter, a.seed)))
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
