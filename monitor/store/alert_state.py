"""Durable bits of the alert workflow: when watchlists were first seen, job cursors."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from monitor.store.tables import alert_cursors, watchlists_seen


async def register_watchlists(
    connection: AsyncConnection, names: Iterable[str], now: datetime
) -> list[str]:
    """Remember when each watchlist was first configured; return the ones that are new."""
    names = list(dict.fromkeys(names))
    if not names:
        return []
    rows = await connection.execute(
        select(watchlists_seen.c.name).where(watchlists_seen.c.name.in_(names))
    )
    known = {row.name for row in rows}
    new = [name for name in names if name not in known]
    if new:
        await connection.execute(
            insert(watchlists_seen), [{"name": name, "first_seen_at": now} for name in new]
        )
    return new


async def watchlists_first_seen(
    connection: AsyncConnection, names: Iterable[str]
) -> dict[str, datetime]:
    names = list(dict.fromkeys(names))
    if not names:
        return {}
    rows = await connection.execute(
        select(watchlists_seen).where(watchlists_seen.c.name.in_(names))
    )
    return {row.name: row.first_seen_at for row in rows}


async def get_cursor(connection: AsyncConnection, name: str) -> dict[str, Any] | None:
    value = await connection.scalar(
        select(alert_cursors.c.value).where(alert_cursors.c.name == name)
    )
    return dict(value) if value is not None else None


async def set_cursor(
    connection: AsyncConnection, name: str, value: dict[str, Any], now: datetime
) -> None:
    result = await connection.execute(
        update(alert_cursors)
        .where(alert_cursors.c.name == name)
        .values(value=value, updated_at=now)
    )
    if not result.rowcount:
        await connection.execute(
            insert(alert_cursors).values(name=name, value=value, updated_at=now)
        )


async def cursors_with_prefix(connection: AsyncConnection, prefix: str) -> dict[str, dict]:
    rows = await connection.execute(
        select(alert_cursors.c.name, alert_cursors.c.value).where(
            alert_cursors.c.name.startswith(prefix, autoescape=True)
        )
    )
    return {row.name: dict(row.value) for row in rows}
