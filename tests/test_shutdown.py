"""Graceful shutdown with a run still in flight: SIGTERM waits `shutdown_grace` for it,
cancels it, logs one summary line and disposes the engine, in about the grace period."""

from __future__ import annotations

import asyncio
import signal
import sqlite3
from pathlib import Path

from aiohttp import web

from tests.conftest import base_config_dict, deep_merge
from tests.helpers.process import MonitorProcess, write_config
from tests.helpers.servers import LocalServer

GRACE_S = 1.0


async def test_sigterm_cancels_a_hanging_run_after_the_grace_and_exits_cleanly(
    tmp_path: Path, local_server: LocalServer
) -> None:
    asked = asyncio.Event()

    async def hang(_request: web.Request) -> web.Response:
        asked.set()
        await asyncio.sleep(60)
        return web.Response(text="too late")

    local_server.route("/hang", hang)
    database = tmp_path / "monitor.db"
    config = deep_merge(
        base_config_dict(f"sqlite+aiosqlite:///{database}"),
        {
            "sources": [{"type": "rss", "name": "stuck", "url": local_server.url("/hang")}],
            "daemon": {"shutdown_grace": f"{GRACE_S:g}s", "source_timeout": "60s"},
        },
    )
    path = write_config(tmp_path / "config.yaml", config)
    process = await MonitorProcess(tmp_path, "run", "-c", str(path)).start()
    try:
        await process.wait_for_log("started:")
        await asyncio.wait_for(asked.wait(), timeout=20)  # the run is now in flight
        loop = asyncio.get_running_loop()
        signalled = loop.time()
        process.send(signal.SIGTERM)
        assert await process.wait(15) == 0
        took = loop.time() - signalled
    finally:
        await process.kill()

    assert took < GRACE_S + 2, f"SIGTERM took {took:.1f}s to stop the daemon"
    (summary,) = [line for line in process.stderr.splitlines() if "stopped after" in line]
    assert summary.endswith(", 1 runs cancelled")
    assert "Traceback" not in process.stderr
    # The engine was disposed: SQLite folded its write-ahead log back in on the last
    # close (a process that exits with connections open leaves monitor.db-wal behind),
    # and the database takes a writer at once.
    assert not Path(f"{database}-wal").exists()
    with sqlite3.connect(database, timeout=0) as connection:
        connection.execute("BEGIN IMMEDIATE")
        connection.rollback()
