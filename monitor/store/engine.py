"""Engine creation, SQLite pragmas and automatic migrations."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config as AlembicConfig
from sqlalchemy import event
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

log = logging.getLogger(__name__)
MIGRATIONS = Path(__file__).with_name("migrations")

# WAL lets `monitor mentions` read while the daemon writes; busy_timeout turns brief lock
# contention into a wait instead of an error; NORMAL is durable across process crashes in WAL.
SQLITE_PRAGMAS = (
    "PRAGMA journal_mode=WAL",
    "PRAGMA busy_timeout=10000",
    "PRAGMA synchronous=NORMAL",
    "PRAGMA foreign_keys=ON",
)


class StoreError(Exception):
    """The database cannot be opened or migrated; the message says what to check."""


def create_engine(url: str, **kwargs: Any) -> AsyncEngine:
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database or ""
        if database and database != ":memory:" and not database.startswith("file:"):
            try:
                Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise StoreError(
                    f"database: cannot create the directory for {database} ({exc.strerror}); "
                    "check the path in `database:` and that this user may write there"
                ) from None
    engine = create_async_engine(url, **kwargs)
    if parsed.get_backend_name() == "sqlite":
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
    return engine


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    for pragma in SQLITE_PRAGMAS:
        cursor.execute(pragma)
    cursor.close()


def alembic_config(connection: Connection | None = None) -> AlembicConfig:
    config = AlembicConfig()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = connection
    return config


def _upgrade(connection: Connection) -> None:
    command.upgrade(alembic_config(connection), "head")


async def migrate(engine: AsyncEngine) -> None:
    """Bring the schema to the newest revision; safe to call on every start."""
    try:
        async with engine.begin() as connection:
            await connection.run_sync(_upgrade)
    except OSError as exc:
        raise StoreError(
            f"database: cannot open ({exc}); check `database:` and disk space"
        ) from None
    except Exception as exc:
        if exc.__class__.__module__.startswith(("sqlalchemy", "alembic", "asyncpg", "sqlite3")):
            raise StoreError(
                f"database: migration failed ({exc.__class__.__name__}: {str(exc).splitlines()[0]}); "
                "check the `database:` URL, permissions and free disk space"
            ) from exc
        raise
