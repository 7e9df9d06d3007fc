"""Per-source durable state: cursor, conditional-GET validators, schedule and health."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import func, insert, literal, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from monitor.store.tables import UTCDateTime, sightings, source_state
from sources.base import FetchResult, SourceState


async def ensure(connection: AsyncConnection, name: str, kind: str, now: datetime) -> None:
    """Create the row for a newly configured source; due immediately."""
    exists = await connection.scalar(
        select(source_state.c.source).where(source_state.c.source == name)
    )
    if exists is None:
        await connection.execute(
            insert(source_state).values(
                source=name,
                kind=kind,
                cursor={},
                next_check_at=now,
                created_at=now,
                updated_at=now,
                stats={},
            )
        )


async def due(connection: AsyncConnection, names: list[str], now: datetime) -> list[str]:
    if not names:
        return []
    rows = await connection.execute(
        select(source_state.c.source)
        .where(source_state.c.source.in_(names), source_state.c.next_check_at <= now)
        .order_by(source_state.c.next_check_at)
    )
    return [row.source for row in rows]


async def load(connection: AsyncConnection, name: str) -> SourceState:
    row = (
        await connection.execute(select(source_state).where(source_state.c.source == name))
    ).first()
    if row is None:
        return SourceState()
    return SourceState(
        cursor=dict(row.cursor or {}),
        etag=row.etag,
        last_modified=row.last_modified,
        first_run=row.last_success_at is None,
    )


async def record_success(
    connection: AsyncConnection,
    name: str,
    result: FetchResult,
    *,
    now: datetime,
    next_check_at: datetime,
    stats: dict[str, Any] | None = None,
) -> None:
    values: dict[str, Any] = {
        "cursor": result.cursor,
        "etag": result.etag,
        "last_modified": result.last_modified,
        "next_check_at": next_check_at,
        "error_streak": 0,
        "failing_since": None,
        "last_attempt_at": now,
        "last_success_at": now,
        "retry_after_until": None,
        "runs": source_state.c.runs + 1,
        "items_total": source_state.c.items_total + len(result.mentions),
        "warning": "; ".join(result.warnings)[:2000] or None,
        "degraded": result.degraded,
        "updated_at": now,
    }
    if had_items(result):
        values["last_item_at"] = now
        values["item_runs"] = source_state.c.item_runs + 1
    if stats is not None:
        values["stats"] = stats
    await connection.execute(
        update(source_state).where(source_state.c.source == name).values(**values)
    )


async def record_failure(
    connection: AsyncConnection,
    name: str,
    message: str,
    *,
    now: datetime,
    next_check_at: datetime,
    retry_after_until: datetime | None,
) -> int:
    """Record an error; return the new error streak."""
    await connection.execute(
        update(source_state)
        .where(source_state.c.source == name)
        .values(
            error_streak=source_state.c.error_streak + 1,
            failing_since=func.coalesce(source_state.c.failing_since, literal(now, UTCDateTime())),
            last_error=message[:4000],
            last_error_at=now,
            last_attempt_at=now,
            next_check_at=next_check_at,
            retry_after_until=retry_after_until,
            runs=source_state.c.runs + 1,
            updated_at=now,
        )
    )
    streak = await connection.scalar(
        select(source_state.c.error_streak).where(source_state.c.source == name)
    )
    return int(streak or 0)


def had_items(result: FetchResult) -> bool:
    """The run saw items: new ones, or an unchanged document that still holds some (304)."""
    try:
        unchanged = int(result.stats.get("unchanged_items", 0) or 0)
    except (TypeError, ValueError):
        unchanged = 0
    return bool(result.mentions) or unchanged > 0


async def set_dark(
    connection: AsyncConnection, name: str, since: datetime | None, reason: str | None = None
) -> None:
    """Mark a source dark since ``since`` for ``reason`` (monitor.health), or clear it."""
    await connection.execute(
        update(source_state)
        .where(source_state.c.source == name)
        .values(dark_since=since, dark_reason=reason if since else None)
    )


async def reschedule(connection: AsyncConnection, name: str, next_check_at: datetime) -> None:
    await connection.execute(
        update(source_state)
        .where(source_state.c.source == name)
        .values(next_check_at=next_check_at)
    )


@dataclass(slots=True)
class SourceHealth:
    source: str
    kind: str
    last_success_at: datetime | None
    last_attempt_at: datetime | None
    items_24h: int
    error_streak: int
    next_check_at: datetime
    last_error: str | None
    warning: str | None
    degraded: str | None
    dark_since: datetime | None
    retry_after_until: datetime | None
    stats: dict[str, Any]
    dark_reason: str | None = None
    failing_since: datetime | None = None
    last_item_at: datetime | None = None
    item_runs: int = 0
    runs: int = 0
    created_at: datetime | None = None


async def health(
    connection: AsyncConnection, now: datetime | None = None, *, count_items: bool = True
) -> list[SourceHealth]:
    """Every source's state; ``count_items=False`` skips counting the last 24 h of
    sightings (items_24h is then 0) for callers that only need the state."""
    now = now or datetime.now(UTC)
    if count_items:
        recent = (
            select(sightings.c.source, func.count().label("n"))
            .where(sightings.c.seen_at >= now - timedelta(hours=24))
            .group_by(sightings.c.source)
            .subquery()
        )
        query = select(source_state, func.coalesce(recent.c.n, 0).label("items_24h")).outerjoin(
            recent, recent.c.source == source_state.c.source
        )
    else:
        query = select(source_state, literal(0).label("items_24h"))
    rows = await connection.execute(query.order_by(source_state.c.source))
    return [
        SourceHealth(
            source=row.source,
            kind=row.kind,
            last_success_at=row.last_success_at,
            last_attempt_at=row.last_attempt_at,
            items_24h=int(row.items_24h),
            error_streak=row.error_streak,
            next_check_at=row.next_check_at,
            last_error=row.last_error,
            warning=row.warning,
            degraded=row.degraded,
            dark_since=row.dark_since,
            retry_after_until=row.retry_after_until,
            stats=dict(row.stats or {}),
            dark_reason=row.dark_reason,
            failing_since=row.failing_since,
            last_item_at=row.last_item_at,
            item_runs=row.item_runs,
            runs=row.runs,
            created_at=row.created_at,
        )
        for row in rows
    ]
