"""Scheduler: backoff, Retry-After, hard timeouts, isolation between sources."""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, ClassVar

import pytest
from aiohttp import web

from monitor.daemon import Daemon
from monitor.scheduler import Scheduler, backoff_delay
from monitor.store import mentions as mention_store
from monitor.store import sources as source_store
from sources.base import FetchResult, Source, SourceState
from tests.helpers.servers import LocalServer, rss


def test_backoff_grows_exponentially_and_is_capped() -> None:
    interval = timedelta(minutes=1)
    no_jitter = {"rand": lambda: 0.5, "max_backoff": timedelta(hours=1)}
    delays = [backoff_delay(streak, interval, **no_jitter) for streak in range(1, 9)]
    assert delays[:4] == [timedelta(minutes=m) for m in (1, 2, 4, 8)]
    assert delays[-1] == timedelta(hours=1)


def test_backoff_jitter_stays_within_ten_percent() -> None:
    low = backoff_delay(3, timedelta(minutes=1), rand=lambda: 0.0)
    high = backoff_delay(3, timedelta(minutes=1), rand=lambda: 0.999999)
    assert timedelta(minutes=3.6) <= low < high <= timedelta(minutes=4.4)


def test_retry_after_wins_even_over_the_cap() -> None:
    delay = backoff_delay(
        1, timedelta(seconds=30), retry_after=timedelta(hours=8), max_backoff=timedelta(hours=6)
    )
    assert delay == timedelta(hours=8)


def test_permanent_errors_wait_longer() -> None:
    delay = backoff_delay(1, timedelta(minutes=1), permanent=True, rand=lambda: 0.5)
    assert delay == timedelta(minutes=30)


def feed_source(name: str, url: str, every: str = "1s") -> dict[str, str]:
    return {"type": "rss", "name": name, "url": url, "every": every}


async def state_of(daemon: Daemon, name: str) -> source_store.SourceHealth:
    async with daemon.store.read() as connection:
        return next(h for h in await source_store.health(connection) if h.source == name)


async def test_429_records_retry_after_and_backs_off(
    local_server: LocalServer, make_daemon: Callable[..., Daemon]
) -> None:
    local_server.serve_bytes("/feed", b"slow down", status=429, headers={"Retry-After": "120"})
    daemon = make_daemon(sources=[feed_source("limited", local_server.url("/feed"))])
    before = datetime.now(UTC)
    (outcome,) = await daemon.run_once()
    assert not outcome.ok and "rate limited (HTTP 429)" in outcome.error
    daemon2 = make_daemon(config=daemon.config)
    await daemon2.open()
    try:
        health = await state_of(daemon2, "limited")
        assert health.error_streak == 1
        assert health.next_check_at >= before + timedelta(seconds=120)
        assert (
            health.retry_after_until is not None
            and health.retry_after_until >= before + timedelta(seconds=119)
        )
    finally:
        await daemon2.close()


async def test_a_hung_source_times_out_and_others_still_run(
    local_server: LocalServer, make_daemon: Callable[..., Daemon]
) -> None:
    async def hang(_request: web.Request) -> web.Response:
        await asyncio.sleep(30)
        return web.Response(text="never")

    local_server.route("/hang", hang)
    local_server.serve_bytes(
        "/ok",
        rss(
            [
                {
                    "id": "1",
                    "title": "Acme Cloud down",
                    "link": "https://x.test/1",
                    "text": "acme cloud is down, awful",
                }
            ]
        ),
    )
    daemon = make_daemon(
        sources=[
            feed_source("hung", local_server.url("/hang")),
            feed_source("fine", local_server.url("/ok")),
        ],
        daemon={"source_timeout": "0.5s"},
    )
    outcomes = {o.source: o for o in await daemon.run_once()}
    assert outcomes["fine"].ok and outcomes["fine"].stats and outcomes["fine"].stats.new == 1
    assert not outcomes["hung"].ok and "no answer within" in outcomes["hung"].error


class ExplodingSource(Source):
    kind: ClassVar[str] = "rss"
    docs_url: ClassVar[str] = "https://example.invalid"

    async def fetch(self, state: SourceState) -> FetchResult:
        raise KeyError("adapter bug")


async def test_an_adapter_bug_is_recorded_not_fatal(
    local_server: LocalServer, make_daemon: Callable[..., Daemon]
) -> None:
    daemon = make_daemon(sources=[feed_source("buggy", local_server.url("/x"))])
    await daemon.open()
    try:
        await daemon._register_sources()
        source = ExplodingSource("buggy", daemon.config.sources[0], daemon.sources["buggy"].context)
        outcome = await daemon.runner.run(source)
        assert not outcome.ok and "internal error in the rss adapter" in outcome.error
        assert (await state_of(daemon, "buggy")).error_streak == 1
    finally:
        await daemon.close()


async def test_scheduler_polls_due_sources_and_does_not_overlap_runs(
    local_server: LocalServer, make_daemon: Callable[..., Daemon]
) -> None:
    calls = {"slow": 0, "fast": 0}

    def handler(name: str, delay: float) -> Callable[[web.Request], object]:
        async def serve(_request: web.Request) -> web.Response:
            calls[name] += 1
            await asyncio.sleep(delay)
            return web.Response(body=rss([]), content_type="application/rss+xml")

        return serve

    local_server.route("/slow", handler("slow", 1.5))  # type: ignore[arg-type]
    local_server.route("/fast", handler("fast", 0))  # type: ignore[arg-type]
    daemon = make_daemon(
        sources=[
            feed_source("slow", local_server.url("/slow"), every="0.2s"),
            feed_source("fast", local_server.url("/fast"), every="0.2s"),
        ],
    )
    await daemon.start()
    try:
        await asyncio.sleep(1.2)
        assert calls["slow"] == 1  # still in flight: never started twice
        assert calls["fast"] >= 3  # the slow one does not hold the others back
    finally:
        assert isinstance(daemon.scheduler, Scheduler)
        await daemon.shutdown()


async def test_storing_is_never_cut_short_but_an_overrun_is_logged(
    local_server: LocalServer,
    make_daemon: Callable[..., Daemon],
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """source_timeout bounds fetching. Storing runs on past it (cancelling a SQLite write
    mid-transaction would leave the write lock held by an orphaned connection), and the
    overrun is logged with what to check: here another process holds the write lock."""
    items = [
        {
            "id": str(i),
            "title": f"Acme Cloud down {i}",
            "link": f"https://x.test/{i}",
            "text": f"acme cloud is down again, awful {i}",
        }
        for i in range(3)
    ]
    local_server.serve_bytes("/feed", rss(items))
    daemon = make_daemon(
        sources=[feed_source("blog", local_server.url("/feed"))],
        daemon={"source_timeout": "0.5s"},
    )
    await daemon.open()
    holder = sqlite3.connect(tmp_path / "monitor.db", isolation_level=None)
    try:
        await daemon._register_sources()
        holder.execute("BEGIN IMMEDIATE")  # what a backup or a second daemon might do
        release = asyncio.get_running_loop().call_later(1.0, holder.execute, "COMMIT")
        with caplog.at_level(logging.WARNING, logger="monitor.scheduler"):
            outcome = await daemon.runner.run(daemon.sources["blog"])
        release.cancel()
        assert outcome.ok and outcome.stats and outcome.stats.new == 3
        (warning,) = [r.getMessage() for r in caplog.records if "past daemon" in r.getMessage()]
        assert warning.startswith("blog: this run took ")
        assert "past daemon.source_timeout (0.5s), storing 3 fetched items" in warning
        assert "another process holds a lock on the database" in warning
        async with daemon.store.begin() as connection:  # and nothing is left locked
            assert len(await mention_store.list_mentions(connection)) == 3
    finally:
        holder.close()
        await daemon.close()


class QuietStream(Source):
    """A streaming adapter that connects and then just stays connected."""

    kind: ClassVar[str] = "rss"
    docs_url: ClassVar[str] = "https://example.invalid"
    streaming = True

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.connected = asyncio.Event()

    async def stream(
        self, state: SourceState, deliver: Callable[[FetchResult], Awaitable[None]]
    ) -> None:
        self.connected.set()
        await asyncio.Event().wait()


async def test_a_stream_outlives_a_database_error_while_loading_its_state(
    local_server: LocalServer, make_daemon: Callable[..., Daemon], caplog: pytest.LogCaptureFixture
) -> None:
    daemon = make_daemon(sources=[feed_source("live", local_server.url("/x"))])
    await daemon.open()
    scheduler = None
    try:
        await daemon._register_sources()
        source = QuietStream("live", daemon.config.sources[0], daemon.sources["live"].context)
        async with daemon.store.begin() as connection:
            await connection.exec_driver_sql("ALTER TABLE source_state RENAME TO away")
        scheduler = Scheduler(daemon.store, daemon.runner, daemon.config.daemon, {})
        with caplog.at_level(logging.WARNING):
            scheduler.start({"live": source})
            async with asyncio.timeout(5):
                while "cannot load its state from the database" not in caplog.text:  # noqa: ASYNC110
                    await asyncio.sleep(0.02)
        assert "free disk space and permissions); the stream is retried with backoff" in caplog.text
        assert not scheduler.streams["live"].done(), "the stream task died with the error"
        async with daemon.store.begin() as connection:
            await connection.exec_driver_sql("ALTER TABLE away RENAME TO source_state")
        # The supervisor backs off (about 2 s after one failure), then connects.
        await asyncio.wait_for(source.connected.wait(), timeout=5)
    finally:
        if scheduler is not None:
            scheduler.stop_scheduling()
            await scheduler.drain(timedelta(seconds=1))
        await daemon.close()
