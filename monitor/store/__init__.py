"""Durable state: mentions, sightings, matches, source state, alert outbox, events.

``Store`` owns the engine; the modules beside it hold plain query functions that take an
open connection, so one pipeline step can combine them in a single transaction.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from monitor.store.engine import StoreError, create_engine, migrate

__all__ = ["Store", "StoreError", "WriteHealth"]


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
            f"database writes failing since {self.failing_since:%H:%M:%S} UTC ({self.last_error}) — "
            "check free disk space and whether another process holds a lock on the database"
        )


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
        """Refresh the query planner's statistics (SQLite's recommended `PRAGMA optimize`,
        bounded by analysis_limit so it stays cheap on big tables; PostgreSQL's autovacuum
        does this by itself)."""
        if self.dialect != "sqlite":
            return
        async with self.engine.connect() as connection:
            await connection.exec_driver_sql("PRAGMA analysis_limit=1000")
            await connection.exec_driver_sql("PRAGMA optimize")

    async def dispose(self) -> None:
        await self.engine.dispose()
