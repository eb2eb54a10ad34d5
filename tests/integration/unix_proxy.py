"""`python -m tests.integration.unix_proxy LISTEN TARGET`: forwards every connection on the
unix socket LISTEN to the unix socket TARGET, printing "ready" once it listens. Killing it
breaks every connection through it, as an engine restart breaks a client's."""
from __future__ import annotations

import asyncio
import os
import sys


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except ConnectionError:
        pass
    finally:
        writer.close()


async def main(listen: str, target: str) -> None:
    async def serve(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        tr, tw = await asyncio.open_unix_connection(target)
        async with asyncio.TaskGroup() as tg:
            tg.create_task(_pipe(r, tw))
            tg.create_task(_pipe(tr, w))

    if os.path.exists(listen):
        os.unlink(listen)
    server = await asyncio.start_unix_server(serve, listen)
    print("ready", flush=True)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2]))
