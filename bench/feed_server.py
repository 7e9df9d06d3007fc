"""Serve a folder of feeds on 127.0.0.1 from its own process, so that the benchmarked
process's CPU time and memory are its own.

    python -m bench.feed_server FOLDER     # prints "listening on PORT", serves /FILE
"""

from __future__ import annotations

import sys
from pathlib import Path

from aiohttp import web


def main() -> int:
    folder = Path(sys.argv[1])
    app = web.Application()
    app.router.add_static("/", folder)
    runner = web.AppRunner(app, access_log=None)

    async def start() -> None:
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        print(f"listening on {runner.addresses[0][1]}", flush=True)

    import asyncio

    loop = asyncio.new_event_loop()
    loop.run_until_complete(start())
    try:
        loop.run_forever()
    finally:
        loop.run_until_complete(runner.cleanup())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
