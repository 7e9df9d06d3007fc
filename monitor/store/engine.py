"""Engine creation, SQLite pragmas and automatic migrations."""

from __future__ import annotations

import logging
import re
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import event, text
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

if TYPE_CHECKING:
    from alembic.config import Config as AlembicConfig

log = logging.getLogger(__name__)
MIGRATIONS = Path(__file__).with_name("migrations")

# WAL lets `monitor mentions` read while the daemon writes; busy_timeout turns brief lock
# contention into a wait instead of an error; NORMAL is durable across process crashes in WAL.
SQLITE_PRAGMAS = (
    "PRAGMA journal_mode=WAL",
    "PRAGMA busy_timeout=10000",
    "PRAGMA synchronous=NORMAL",
    "PRAGMA foreign_keys=ON",
    # 1 MiB of page cache per connection (SQLite's default is 2): the OS page cache holds
    # the rest, and the daemon's lookups are by index (bench/store_scale.py at 1 M mentions).
    "PRAGMA cache_size=-1024",
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
    if parsed.get_backend_name() == "sqlite":
        # SQLite has one writer at a time, so more connections only add page caches and
        # worker threads (each aiosqlite connection is a thread): at most five, as measured
        # by bench/memory.py, keep the daemon's memory flat.
        kwargs.setdefault("pool_size", 2)
        kwargs.setdefault("max_overflow", 3)
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
    from alembic.config import Config as AlembicConfig

    config = AlembicConfig()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = connection
    return config


def _upgrade(connection: Connection) -> None:
    from alembic import command

    command.upgrade(alembic_config(connection), "head")


_REVISION = re.compile(r"^(down_)?revision\s*=\s*['\"]?([\w]+)['\"]?", re.MULTILINE)


@cache
def head_revision() -> str:
    """The newest migration, read from the version files without importing alembic (and
    Mako): an up-to-date database then costs the daemon ~12 MB less resident memory."""
    revisions, parents = set(), set()
    for path in (MIGRATIONS / "versions").glob("*.py"):
        for down, value in _REVISION.findall(path.read_text(encoding="utf-8")):
            (parents if down else revisions).add(value)
    heads = revisions - parents
    if len(heads) != 1:
        raise StoreError(f"database: migrations have {len(heads)} heads; the package is broken")
    return heads.pop()


async def _current_revision(connection: Any) -> str | None:
    try:
        return await connection.scalar(text("SELECT version_num FROM alembic_version"))
    except DBAPIError:
        return None  # a new database: no version table yet


async def migrate(engine: AsyncEngine) -> None:
    """Bring the schema to the newest revision; safe to call on every start."""
    try:
        async with engine.connect() as connection:
            if await _current_revision(connection) == head_revision():
                return
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
