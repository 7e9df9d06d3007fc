"""Shared fixtures: real local servers, real databases, factory fixtures."""

from __future__ import annotations

import copy
import io
import os
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

from monitor.config import Config
from monitor.daemon import Daemon
from tests.helpers.servers import LocalServer

FIXTURES = Path(__file__).parent / "fixtures"
POSTGRES_ENV = "MONITOR_TEST_POSTGRES_URL"


@pytest.fixture
async def local_server() -> AsyncIterator[LocalServer]:
    server = await LocalServer().start()
    try:
        yield server
    finally:
        await server.stop()


def deep_merge(base: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    merged = copy.deepcopy(base)
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def base_config_dict(database: str) -> dict[str, Any]:
    return {
        "database": database,
        "brand": {"name": "Acme Cloud", "accounts": {"mastodon": "@acmecloud@mastodon.example"}},
        "people": {"priya": {"name": "Priya", "email": "priya@acme.example"}},
        "watchlists": [
            {"name": "brand", "query": '"acme cloud" OR acmecloud', "owner": "priya"},
            {"name": "competitors", "query": "globex", "kind": "competitor"},
        ],
        "sources": [],
        "alerts": {"console": {"enabled": True}, "backfill_first_poll": False},
        "daemon": {
            "tick": "0.2s",
            "deliver_every": "0.2s",
            "heartbeat_every": "1s",
            "shutdown_grace": "5s",
        },
    }


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite+aiosqlite:///{tmp_path / 'monitor.db'}"


@pytest.fixture
def make_config(sqlite_url: str) -> Callable[..., Config]:
    def factory(database: str | None = None, **overrides: Any) -> Config:
        return Config.model_validate(
            deep_merge(base_config_dict(database or sqlite_url), overrides)
        )

    return factory


@pytest.fixture
async def make_daemon(make_config: Callable[..., Config]) -> AsyncIterator[Callable[..., Daemon]]:
    """make_daemon(**config_overrides) → an opened-on-demand Daemon printing alerts to .console.

    Every daemon a test made is closed at teardown (sources, sinks, engine disposed), also
    when the test failed half-way; closing one the test already closed does nothing."""
    created: list[Daemon] = []

    def factory(config: Config | None = None, **overrides: Any) -> Daemon:
        daemon = Daemon(config or make_config(**overrides), console_stream=io.StringIO())
        created.append(daemon)
        return daemon

    yield factory
    for daemon in created:
        await daemon.close()


@asynccontextmanager
async def fresh_postgres_database() -> AsyncIterator[str]:
    """A new, empty PostgreSQL database, dropped afterwards; skips when no server is configured."""
    url = os.environ.get(POSTGRES_ENV)
    if not url:
        pytest.skip(
            f"PostgreSQL tests need {POSTGRES_ENV} (e.g. postgresql+asyncpg://postgres@127.0.0.1:5432/test)"
        )
    try:
        import asyncpg
    except ImportError:
        pytest.skip("asyncpg is not installed (pip install .[postgres])")
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    dsn = parsed.set(drivername="postgresql").render_as_string(hide_password=False)
    try:
        admin = await asyncpg.connect(dsn, timeout=5)
    except (OSError, asyncpg.PostgresError) as exc:
        pytest.skip(
            f"no PostgreSQL server answers at {parsed.host}:{parsed.port} ({exc.__class__.__name__})"
        )
    name = f"monitor_test_{uuid.uuid4().hex[:12]}"
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
        yield parsed.set(database=name).render_as_string(hide_password=False)
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


@pytest.fixture
async def postgres_url() -> AsyncIterator[str]:
    async with fresh_postgres_database() as url:
        yield url


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
async def database_url(request: pytest.FixtureRequest, sqlite_url: str) -> AsyncIterator[str]:
    """Runs a test once on SQLite and once on PostgreSQL (skipped where none is available)."""
    if request.param == "sqlite":
        yield sqlite_url
        return
    async with fresh_postgres_database() as url:
        yield url
