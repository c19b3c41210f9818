#!/usr/bin/env python3
"""A webhook receiver for bench/webhooks.sh: answers every request with 204
at once (HTTP/1.1, keep-alive) and writes how many it has received to the
file named by its second argument, every 0.2 s. Listens on 127.0.0.1:<port>.

    bench/receiver.py PORT COUNT_FILE
"""

import asyncio
import os
import sys

received = 0


async def serve(reader, writer):
    global received
    try:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            length = 0
            for line in head.split(b"\r\n"):
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value.strip())
            if length:
                await reader.readexactly(length)
            received += 1
            writer.write(b"HTTP/1.1 204 No Content\r\n\r\n")
            await writer.drain()
    except (asyncio.IncompleteReadError, ConnectionError, asyncio.LimitOverrunError):
        pass
    finally:
        writer.close()


async def report(path):
    while True:
        with open(path + ".tmp", "w") as out:
            out.write(f"{received}\n")
        os.replace(path + ".tmp", path)
        await asyncio.sleep(0.2)


async def main():
    port, path = int(sys.argv[1]), sys.argv[2]
    server = await asyncio.start_server(serve, "127.0.0.1", port, backlog=1024)
    asyncio.create_task(report(path))
    async with server:
        await server.serve_forever()


asyncio.run(main())
