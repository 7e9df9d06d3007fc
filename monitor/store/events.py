"""Append-only event log: every state change, with who and when."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncConnection

from monitor.store.tables import events


async def record(
    connection: AsyncConnection,
    kind: str,
    actor: str,
    *,
    mention_id: int | None = None,
    data: dict[str, Any] | None = None,
    at: datetime | None = None,
) -> None:
    await connection.execute(
        insert(events).values(
            kind=kind,
            actor=actor,
            mention_id=mention_id,
            data=data or {},
            at=at or datetime.now(UTC),
        )
    )


async def for_mention(connection: AsyncConnection, mention_id: int) -> list[dict[str, Any]]:
    rows = await connection.execute(
        select(events).where(events.c.mention_id == mention_id).order_by(events.c.id)
    )
    return [dict(row._mapping) for row in rows]
