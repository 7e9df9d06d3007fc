"""Storage: migrations from empty, pragmas, outbox and event log semantics (SQLite and PostgreSQL)."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import select, text

from monitor.store import Store, events, outbox
from monitor.store import mentions as mention_store
from monitor.store.tables import alert_outbox, metadata

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


def mention_values(key: str = "rss:feed#1", **overrides: object) -> dict[str, object]:
    values: dict[str, object] = {
        "source": "feed",
        "platform": "rss",
        "source_key": key,
        "url": "https://x.test/a",
        "canonical_url": "https://x.test/a",
        "title": "t",
        "text": "acme cloud is down",
        "html": "",
        "author": "a",
        "author_url": "",
        "thread_key": "",
        "fetched_at": NOW,
        "language": "en",
        "tagged": False,
        "sentiment": "negative",
        "sentiment_score": 0.9,
        "sentiment_scores": {},
        "sentiment_backend": "test",
        "needs_reply": True,
        "signals": {},
        "backfill": False,
        "state": "open",
        "state_by": "daemon",
        "state_at": NOW,
        "extra": {},
    }
    values.update(overrides)
    return values


async def test_migrations_from_empty_match_the_models(database_url: str) -> None:
    store = await Store.open(database_url)
    try:
        async with store.read() as connection:
            diff = await connection.run_sync(
                lambda sync: compare_metadata(
                    MigrationContext.configure(sync, opts={"compare_type": False}), metadata
                )
            )
        assert diff == []
    finally:
        await store.dispose()


async def test_migrating_twice_is_harmless(database_url: str) -> None:
    for _ in range(2):
        store = await Store.open(database_url)
        await store.dispose()


async def test_sqlite_pragmas_on_every_connection(sqlite_url: str) -> None:
    store = await Store.open(sqlite_url)
    try:
        async with store.read() as connection:
            assert (await connection.scalar(text("PRAGMA journal_mode"))) == "wal"
            assert (await connection.scalar(text("PRAGMA foreign_keys"))) == 1
            assert (await connection.scalar(text("PRAGMA synchronous"))) == 1  # NORMAL
            assert (await connection.scalar(text("PRAGMA busy_timeout"))) == 10000
    finally:
        await store.dispose()


async def test_datetimes_round_trip_as_aware_utc(database_url: str) -> None:
    store = await Store.open(database_url)
    try:
        async with store.begin() as connection:
            mention_id = await mention_store.insert_mention(
                connection, mention_values(published_at=NOW - timedelta(hours=1))
            )
        async with store.read() as connection:
            row = await mention_store.get(connection, mention_id)
        assert row is not None
        assert row["published_at"] == NOW - timedelta(hours=1)
        assert row["published_at"].tzinfo is not None
    finally:
        await store.dispose()


async def test_state_changes_are_logged_with_who_and_when(database_url: str) -> None:
    store = await Store.open(database_url)
    try:
        async with store.begin() as connection:
            mention_id = await mention_store.insert_mention(connection, mention_values())
            await mention_store.set_state(
                connection, mention_id, "acknowledged", actor="slack:U1", now=NOW
            )
            await mention_store.set_state(
                connection,
                mention_id,
                "answered",
                actor="cli:priya",
                now=NOW + timedelta(minutes=5),
                answer_url="https://x.test/reply",
            )
        async with store.read() as connection:
            row = await mention_store.get(connection, mention_id)
            log = await events.for_mention(connection, mention_id)
        assert row is not None
        assert (row["state"], row["state_by"], row["answer_url"]) == (
            "answered",
            "cli:priya",
            "https://x.test/reply",
        )
        assert [(e["actor"], e["data"]["from"], e["data"]["to"]) for e in log] == [
            ("slack:U1", "open", "acknowledged"),
            ("cli:priya", "acknowledged", "answered"),
        ]
        with pytest.raises(mention_store.StateChangeError, match="no mention with id 999"):
            async with store.begin() as connection:
                await mention_store.set_state(connection, 999, "resolved", actor="x", now=NOW)
    finally:
        await store.dispose()


async def test_outbox_dedup_key_prevents_double_enqueue(database_url: str) -> None:
    store = await Store.open(database_url)
    try:
        item = outbox.OutboxItem(
            dedup_key="mention:1:console", kind="mention", sink="console", payload={"title": "x"}
        )
        async with store.begin() as connection:
            first = await outbox.enqueue(connection, [item, item], NOW)
            second = await outbox.enqueue(connection, [item], NOW)
        assert len(first) == 1 and second == []
        async with store.begin() as connection:
            assert await outbox.mark_sending(connection, first[0])
            assert not await outbox.mark_sending(connection, first[0])  # already claimed
            assert await outbox.recover_in_flight(connection) == 1
            rows = await outbox.due(connection, NOW, ["console"])
        assert [r.id for r in rows] == first
    finally:
        await store.dispose()


async def test_nothing_is_deleted_only_appended(database_url: str) -> None:
    """The daemon has no code path that deletes: check no DELETE statement runs during use."""
    from sqlalchemy import event

    store = await Store.open(database_url)
    statements: list[str] = []
    event.listen(
        store.engine.sync_engine, "before_cursor_execute", lambda *a: statements.append(a[2])
    )
    try:
        async with store.begin() as connection:
            mention_id = await mention_store.insert_mention(connection, mention_values())
            await mention_store.set_state(
                connection, mention_id, "ignored", actor="cli:x", now=NOW, reason="spam"
            )
            await outbox.enqueue(
                connection, [outbox.OutboxItem("k", "mention", "console", {})], NOW
            )
            assert (await connection.scalar(select(alert_outbox.c.id))) is not None
        assert not [s for s in statements if s.lstrip().upper().startswith("DELETE")]
    finally:
        await store.dispose()


def test_head_revision_is_what_alembic_says() -> None:
    from alembic.script import ScriptDirectory

    from monitor.store.engine import alembic_config, head_revision

    assert head_revision() == ScriptDirectory.from_config(alembic_config()).get_current_head()


def test_an_up_to_date_database_opens_without_importing_alembic(tmp_path: Path) -> None:
    """Memory on a 1 GB VPS: alembic and Mako are only loaded when there is a migration to run."""
    script = (
        "import asyncio, sys\n"
        "from monitor.store import Store\n"
        "async def main():\n"
        "    store = await Store.open(sys.argv[1]); await store.dispose()\n"
        "asyncio.run(main())\n"
        "print('alembic' in sys.modules)\n"
    )
    url = f"sqlite+aiosqlite:///{tmp_path / 'monitor.db'}"
    runs = [
        subprocess.run(
            [sys.executable, "-c", script, url], capture_output=True, text=True, check=True
        )
        for _ in range(2)
    ]
    assert [run.stdout.strip() for run in runs] == ["True", "False"]


async def test_planner_statistics_are_refreshed_while_writers_keep_committing(
    tmp_path: Path,
) -> None:
    """Store.optimize does real work on any pooled connection, and other connections
    committing meanwhile (every source writing its first result at start) do not make it
    fail with "database is locked"."""
    path = tmp_path / "monitor.db"
    store = await Store.open(f"sqlite+aiosqlite:///{path}")
    stop = threading.Event()
    failures: list[str] = []

    def writer() -> None:
        connection = sqlite3.connect(path, isolation_level=None, timeout=10)
        try:
            while not stop.is_set():
                connection.execute("BEGIN IMMEDIATE")
                connection.execute(
                    "INSERT INTO heartbeat (name, pid, host, version, started_at, beat_at, "
                    "summary) VALUES ('other', 1, 'h', 'v', '2026-01-01', '2026-01-01', '') "
                    "ON CONFLICT (name) DO UPDATE SET pid = pid + 1"
                )
                connection.execute("COMMIT")
                time.sleep(0.001)
        except sqlite3.Error as exc:
            failures.append(repr(exc))
        finally:
            connection.close()

    threads = [threading.Thread(target=writer) for _ in range(2)]
    try:
        for thread in threads:
            thread.start()
        for _ in range(5):
            await store.optimize()
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=10)
        await store.dispose()
    assert failures == []
    with sqlite3.connect(path) as connection:  # tables with rows get statistics
        analysed = {row[0] for row in connection.execute("SELECT tbl FROM sqlite_stat1")}
    assert "heartbeat" in analysed
