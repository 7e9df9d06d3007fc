"""The daemon as users run it: `run --once`, graceful shutdown, SIGHUP reload, healthcheck."""

from __future__ import annotations

import asyncio
import json
import signal
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from monitor.config import Config
from monitor.daemon import Daemon
from monitor.store import Store, outbox
from monitor.store import heartbeat as heartbeat_store
from monitor.store import mentions as mention_store
from tests.conftest import base_config_dict, deep_merge
from tests.helpers.process import MonitorProcess, run_monitor, write_config
from tests.helpers.servers import LocalServer, rss

NEGATIVE = (
    "Acme Cloud lost my files and support is useless. Awful, terrible experience, I am furious."
)


def feed_items(count: int, prefix: str = "item") -> list[dict[str, Any]]:
    return [
        {
            "id": f"{prefix}-{i}",
            "title": f"Acme Cloud problem {i}",
            "link": f"https://blog.test/{prefix}/{i}",
            "text": NEGATIVE,
        }
        for i in range(count)
    ]


async def test_run_once_stores_alerts_and_is_idempotent(
    local_server: LocalServer, make_daemon: Callable[..., Daemon]
) -> None:
    local_server.serve_bytes(
        "/feed",
        rss(
            [
                *feed_items(3),
                {"id": "x", "title": "Weather", "link": "https://w.test", "text": "sunny"},
            ]
        ),
    )
    overrides = {
        "sources": [
            {"type": "rss", "name": "blog", "url": local_server.url("/feed"), "every": "1m"}
        ]
    }
    daemon = make_daemon(**overrides)
    (outcome,) = await daemon.run_once()
    assert outcome.ok and outcome.stats and (outcome.stats.fetched, outcome.stats.new) == (4, 3)
    console = daemon.console_stream.getvalue()  # type: ignore[union-attr]
    assert console.count("━━ MENTION ━━") == 3

    again = make_daemon(config=daemon.config)
    (outcome,) = await again.run_once()
    assert outcome.stats and outcome.stats.new == 0
    assert again.console_stream.getvalue() == ""  # type: ignore[union-attr]


async def test_run_once_without_alerts_seeds_quietly(
    local_server: LocalServer, make_daemon: Callable[..., Daemon]
) -> None:
    local_server.serve_bytes("/feed", rss(feed_items(2)))
    daemon = make_daemon(
        sources=[{"type": "rss", "name": "blog", "url": local_server.url("/feed")}]
    )
    await daemon.run_once(alerts_enabled=False)
    assert daemon.console_stream.getvalue() == ""  # type: ignore[union-attr]
    store = await Store.open(daemon.config.database)
    try:
        async with store.read() as connection:
            assert len(await mention_store.list_mentions(connection)) == 2
            assert await outbox.counts(connection) == {}
    finally:
        await store.dispose()


async def test_no_alerts_runs_store_backfill_that_report_never_counts_as_overdue(
    tmp_path: Path, local_server: LocalServer
) -> None:
    """`run --once --no-alerts` after the first poll: nobody was told, so nothing is overdue."""
    first, second = feed_items(2)
    path = process_config(
        tmp_path,
        watchlists=[{"name": "brand", "query": "acme", "reply_within": "1s"}],
        sources=[{"type": "rss", "name": "blog", "url": local_server.url("/feed")}],
        alerts={"console": {"enabled": True}, "backfill_first_poll": True},
    )
    local_server.serve_bytes("/feed", rss([first]))
    code, _, stderr = await run_monitor(tmp_path, "run", "--once", "--no-alerts", "-c", str(path))
    assert code == 0, stderr
    # published after the source and the watchlist were set up: not old news by any other rule
    second["published"] = datetime.now(UTC)
    local_server.serve_bytes("/feed", rss([first, second]))
    code, stdout, stderr = await run_monitor(
        tmp_path, "run", "--once", "--no-alerts", "-c", str(path)
    )
    assert code == 0, stderr
    assert "━━" not in stdout  # nothing alerted

    code, stdout, stderr = await run_monitor(tmp_path, "mentions", "--json", "-c", str(path))
    assert code == 0, stderr
    stored = [json.loads(line) for line in stdout.splitlines()]
    assert sorted((m["title"], m["backfill"]) for m in stored) == [
        ("Acme Cloud problem 0", True),
        ("Acme Cloud problem 1", True),
    ]
    await asyncio.sleep(1.1)  # past reply_within: an alerted mention would now be overdue
    code, stdout, stderr = await run_monitor(tmp_path, "report", "--json", "-c", str(path))
    assert code == 0, stderr
    report = json.loads(stdout)
    assert (report["total"], report["backfill"]) == (2, 2)
    assert report["overdue"] == [] and report["needing_attention"] == 0
    assert report["within_sla_share"] is None  # no SLA to miss for what was never alerted


def process_config(tmp_path: Path, **overrides: Any) -> Path:
    data = deep_merge(base_config_dict(f"sqlite+aiosqlite:///{tmp_path / 'monitor.db'}"), overrides)
    return write_config(tmp_path / "config.yaml", data)


async def test_sigterm_drains_flushes_and_logs_one_summary(
    tmp_path: Path, local_server: LocalServer
) -> None:
    local_server.serve_bytes("/feed", rss(feed_items(2)))
    path = process_config(
        tmp_path,
        sources=[{"type": "rss", "name": "blog", "url": local_server.url("/feed"), "every": "1s"}],
    )
    process = await MonitorProcess(tmp_path, "run", "-c", str(path)).start()
    try:
        await process.wait_for_log("blog: 2 fetched")
        process.send(signal.SIGTERM)
        assert await process.wait(15) == 0
    finally:
        await process.kill()
    assert process.stderr.count("stopped after") == 1
    assert "Traceback" not in process.stderr
    assert process.stdout.count("━━ MENTION ━━") == 2  # flushed before exit


async def test_sighup_reloads_and_rejects_a_broken_config(
    tmp_path: Path, local_server: LocalServer
) -> None:
    local_server.serve_bytes("/feed", rss(feed_items(1)))
    sources = [{"type": "rss", "name": "blog", "url": local_server.url("/feed"), "every": "1s"}]
    path = process_config(tmp_path, sources=sources)
    process = await MonitorProcess(tmp_path, "run", "-c", str(path)).start()
    try:
        await process.wait_for_log("health:")
        process_config(
            tmp_path,
            sources=[
                *sources,
                {"type": "rss", "name": "second", "url": local_server.url("/feed"), "every": "1s"},
            ],
        )
        process.send(signal.SIGHUP)
        await process.wait_for_log("reload: now 2 sources")
        await process.wait_for_log("second: 1 fetched")

        path.write_text(path.read_text() + "\nunknown_key: 1\n")
        process.send(signal.SIGHUP)
        await process.wait_for_log("new config rejected")
        assert "unknown_key: unknown key" in process.stderr
        await process.wait_for_log("blog: 1 fetched", count=3)  # still polling with the old config
        process.send(signal.SIGTERM)
        assert await process.wait(15) == 0
    finally:
        await process.kill()


async def test_healthcheck_fresh_stale_and_missing(
    tmp_path: Path, make_config: Callable[..., Config]
) -> None:
    path = process_config(tmp_path, daemon={"stale_after": "1m"})
    code, out, _ = await run_monitor(tmp_path, "healthcheck", "-c", str(path))
    assert code == 1 and "no heartbeat yet" in out

    store = await Store.open(f"sqlite+aiosqlite:///{tmp_path / 'monitor.db'}")
    try:
        now = datetime.now(UTC)
        async with store.begin() as connection:
            await heartbeat_store.beat(
                connection, started_at=now, now=now, summary="1/1 sources ok"
            )
        code, out, _ = await run_monitor(tmp_path, "healthcheck", "-c", str(path))
        assert code == 0 and "healthy" in out and "1/1 sources ok" in out

        async with store.begin() as connection:
            await heartbeat_store.beat(
                connection, started_at=now, now=now - timedelta(minutes=5), summary="old"
            )
        code, out, _ = await run_monitor(tmp_path, "healthcheck", "-c", str(path))
        assert code == 1 and "unhealthy: last heartbeat 5m" in out
    finally:
        await store.dispose()


async def test_close_is_safe_before_open_and_twice(make_daemon: Callable[..., Daemon]) -> None:
    daemon = make_daemon()
    await daemon.close()  # never opened: nothing to close
    await daemon.open()
    engine = daemon.store.engine
    await daemon.close()
    assert engine.pool.checkedout() == 0
    await daemon.close()  # and the fixture's teardown closes it once more
