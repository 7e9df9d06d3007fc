"""Durable state: mentions, sightings, matches, source state, alert outbox, events.

``Store`` owns the engine; the modules beside it hold plain query functions that take an
open connection, so one pipeline step can combine them in a single transaction.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from monitor.store.engine import StoreError, create_engine, migrate

__all__ = ["Store", "StoreError", "WriteHealth"]

# Tries at refreshing planner statistics when SQLite says the database is locked, and the
# pause before the next (times the attempt number).
OPTIMIZE_ATTEMPTS = 4
OPTIMIZE_RETRY_S = 0.2


@dataclass(slots=True)
class WriteHealth:
    """Whether writes are getting through, for health reports (locked database, full disk)."""

    last_ok_at: datetime | None = None
    failing_since: datetime | None = None
    last_error: str = ""

    def ok(self) -> None:
        self.last_ok_at = datetime.now(UTC)
        self.failing_since = None
        self.last_error = ""

    def failed(self, exc: BaseException) -> None:
        if self.failing_since is None:
            self.failing_since = datetime.now(UTC)
        self.last_error = str(getattr(exc, "orig", None) or exc).splitlines()[0][:300]

    def describe(self) -> str | None:
        if self.failing_since is None:
            return None
        return (
            f"database writes failing since {self.failing_since:%H:%M:%S} UTC: "
            f"{database_problem(self.last_error)}"
        )


def is_database_error(exc: BaseException) -> bool:
    """A failure of the database itself (locked, full, gone), not of the data written."""
    return isinstance(exc, OperationalError | OSError) or (
        isinstance(exc, DBAPIError) and exc.connection_invalidated
    )


def database_problem(error: BaseException | str) -> str:
    """One line for the operator: what the database said, and what to check. Never the SQL
    or its parameters (mention text from the internet, thousands of characters of it)."""
    if isinstance(error, BaseException):
        error = str(getattr(error, "orig", None) or error).splitlines()[0][:300]
    lowered = error.lower()
    if "locked" in lowered or "busy" in lowered:
        hint = (
            "another process holds a lock on the database (a backup, a second daemon, an open "
            "`sqlite3` shell?); nothing is lost — the work is retried until it goes through"
        )
    elif "full" in lowered or "no space" in lowered or "quota" in lowered:
        hint = (
            "the disk holding the database is full — free space there; nothing is lost, "
            "sources are polled again and alerts stay queued"
        )
    elif "readonly" in lowered or "read-only" in lowered or "permission" in lowered:
        hint = "the database file or its folder is not writable by the daemon's user"
    else:
        hint = "check the database server or file, free disk space and permissions"
    return f"{error} — {hint}"


class Store:
    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self.write_health = WriteHealth()

    @classmethod
    async def open(cls, url: str) -> Store:
        engine = create_engine(url)
        try:
            await migrate(engine)
        except BaseException:
            await engine.dispose()
            raise
        return cls(engine)

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    @asynccontextmanager
    async def begin(self) -> AsyncIterator[AsyncConnection]:
        """A write transaction: committed on success, rolled back on any exception."""
        try:
            async with self.engine.begin() as connection:
                yield connection
        except (OperationalError, DBAPIError, OSError) as exc:
            self.write_health.failed(exc)
            raise
        self.write_health.ok()

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncConnection]:
        async with self.engine.connect() as connection:
            yield connection

    async def optimize(self) -> None:
        """Refresh the query planner's statistics: ANALYZE, bounded by analysis_limit so it
        stays cheap on big tables (PostgreSQL's autovacuum does this by itself).

        Not `PRAGMA optimize`: before SQLite 3.46 it only looks at tables the connection it
        runs on has queried, and here that is whichever pooled connection comes up, so it
        mostly did nothing. The write lock is taken first (BEGIN IMMEDIATE), so waiting for
        it follows busy_timeout: a statement that reads and then writes fails at once with
        "database is locked" when another connection commits in between (what the daemon
        logged at start, while every source wrote its first result)."""
        if self.dialect != "sqlite":
            return
        for attempt in range(1, OPTIMIZE_ATTEMPTS + 1):
            started = time.monotonic()
            try:
                async with self.engine.connect() as connection:
                    await connection.exec_driver_sql("PRAGMA analysis_limit=1000")
                    await connection.exec_driver_sql("BEGIN IMMEDIATE")
                    await connection.exec_driver_sql("ANALYZE")
                    await connection.exec_driver_sql("COMMIT")
                return
            except OperationalError as exc:
                # SQLite can refuse even BEGIN IMMEDIATE at once while writers come and go;
                # a moment later it goes through. A refusal after waiting out busy_timeout
                # means a real lock holder: retrying would only wait that long again.
                quick = time.monotonic() - started < OPTIMIZE_RETRY_S * OPTIMIZE_ATTEMPTS
                if "locked" not in str(exc) or not quick or attempt == OPTIMIZE_ATTEMPTS:
                    raise
                await asyncio.sleep(OPTIMIZE_RETRY_S * attempt)

    async def dispose(self) -> None:
        await self.engine.dispose()
