"""Mentions, their sightings, extra identities and watchlist matches."""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, Boolean, insert, select, type_coerce, update
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.types import NullType

from monitor.store import events
from monitor.store.tables import (
    MENTION_STATES,
    UTCDateTime,
    mention_keys,
    mention_matches,
    mentions,
)

# Lookups with IN (...) are chunked: SQLite caps bound parameters per statement.
_CHUNK = 500


def _chunks(values: Sequence[Any]) -> Iterable[Sequence[Any]]:
    for start in range(0, len(values), _CHUNK):
        yield values[start : start + _CHUNK]


async def insert_mention(connection: AsyncConnection, values: dict[str, Any]) -> int:
    result = await connection.execute(insert(mentions).values(**values).returning(mentions.c.id))
    return int(result.scalar_one())


async def add_matches(
    connection: AsyncConnection, mention_id: int, matches: Iterable[Any], now: datetime
) -> list[str]:
    """Attach watchlist matches; return the watchlists that are new for this mention."""
    existing = await connection.execute(
        select(mention_matches.c.watchlist).where(mention_matches.c.mention_id == mention_id)
    )
    known = {row.watchlist for row in existing}
    new_rows = []
    for match in matches:
        if match.watchlist in known:
            continue
        known.add(match.watchlist)
        new_rows.append(
            {
                "mention_id": mention_id,
                "watchlist": match.watchlist,
                "terms": list(match.terms),
                "spans": [list(span) for span in match.spans],
                "matched_at": now,
            }
        )
    if new_rows:
        await connection.execute(insert(mention_matches), new_rows)
    return [row["watchlist"] for row in new_rows]


async def watchlists_of(
    connection: AsyncConnection, mention_ids: Sequence[int]
) -> dict[int, list[str]]:
    found: dict[int, list[str]] = defaultdict(list)
    for chunk in _chunks(list(mention_ids)):
        rows = await connection.execute(
            select(mention_matches.c.mention_id, mention_matches.c.watchlist)
            .where(mention_matches.c.mention_id.in_(chunk))
            .order_by(mention_matches.c.id)
        )
        for row in rows:
            found[row.mention_id].append(row.watchlist)
    return dict(found)


def as_dict(row: Any, watchlists: list[str] | None = None) -> dict[str, Any]:
    """The public shape of a mention (CLI JSON, alerts)."""
    data = dict(row._mapping)
    data["watchlists"] = watchlists or []
    return data


async def get(connection: AsyncConnection, mention_id: int) -> dict[str, Any] | None:
    row = (await connection.execute(select(mentions).where(mentions.c.id == mention_id))).first()
    if row is None:
        return None
    lists = await watchlists_of(connection, [mention_id])
    return as_dict(row, lists.get(mention_id, []))


async def list_mentions(
    connection: AsyncConnection,
    *,
    state: str | None = None,
    watchlist: str | None = None,
    since: datetime | None = None,
    limit: int | None = None,
    columns: Sequence[str] | None = None,
) -> list[dict[str, Any]]:
    """Mentions, newest first, with their watchlists.

    ``columns`` (the CLI's listing) reads only those columns and decodes them here rather
    than through SQLAlchemy's per-value result processing, which was four fifths of the
    time for 16k rows (bench/store_scale.py)."""
    # Newest first by fetch time: the fetched_at index serves both `--since` and `--limit`
    # (ordering by id made SQLite walk the whole table backwards at a million rows).
    names = list(dict.fromkeys(["id", *columns])) if columns else []
    chosen = [type_coerce(mentions.c[name], NullType()).label(name) for name in names]
    wanted = select(mentions.c.id).order_by(mentions.c.fetched_at.desc(), mentions.c.id.desc())
    if state:
        wanted = wanted.where(mentions.c.state == state)
    if since:
        wanted = wanted.where(mentions.c.fetched_at >= since)
    if watchlist:
        wanted = wanted.where(
            mentions.c.id.in_(
                select(mention_matches.c.mention_id).where(mention_matches.c.watchlist == watchlist)
            )
        )
    if limit:
        wanted = wanted.limit(limit)
    query = wanted.with_only_columns(*(chosen or [mentions]), maintain_column_froms=True)
    rows = (await connection.execute(query)).all()
    if len(rows) > _CHUNK:
        # One query for every listed mention's watchlists rather than a round trip per 500.
        lists = await _watchlists_in(connection, wanted.subquery())
    else:
        lists = await watchlists_of(connection, [row.id for row in rows])
    if not names:
        return [as_dict(row, lists.get(row.id, [])) for row in rows]
    decoders = [(index, _decoder(mentions.c[name].type)) for index, name in enumerate(names)]
    decoders = [(index, decode) for index, decode in decoders if decode is not None]
    found = []
    for row in rows:
        values = list(row)
        for index, decode in decoders:
            if values[index] is not None:
                values[index] = decode(values[index])
        data = dict(zip(names, values, strict=True))
        data["watchlists"] = lists.get(data["id"], [])
        found.append(data)
    return found


def _decoder(column_type: Any) -> Callable[[Any], Any] | None:
    """How a raw driver value of this column type becomes what SQLAlchemy would return."""
    if isinstance(column_type, UTCDateTime):
        return _utc_datetime
    if isinstance(column_type, Boolean):
        return bool
    if isinstance(column_type, JSON):
        return lambda value: json.loads(value) if isinstance(value, str | bytes) else value
    return None


def _utc_datetime(value: Any) -> datetime:
    """SQLite returns the stored (naive UTC) text, PostgreSQL (asyncpg) an aware datetime."""
    if isinstance(value, str):
        return datetime.fromisoformat(value + "+00:00")
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


async def _watchlists_in(connection: AsyncConnection, ids: Any) -> dict[int, list[str]]:
    found: dict[int, list[str]] = defaultdict(list)
    rows = await connection.execute(
        select(mention_matches.c.mention_id, mention_matches.c.watchlist)
        .where(mention_matches.c.mention_id.in_(select(ids.c.id)))
        .order_by(mention_matches.c.id)
    )
    for mention_id, name in rows:
        found[mention_id].append(name)
    return dict(found)


class StateChangeError(ValueError):
    pass


async def set_state(
    connection: AsyncConnection,
    mention_id: int,
    state: str,
    *,
    actor: str,
    now: datetime,
    reason: str = "",
    answer_url: str | None = None,
) -> dict[str, Any]:
    """Change a mention's workflow state and log the change; return the event data."""
    if state not in MENTION_STATES:
        raise StateChangeError(f"unknown state {state!r}; use one of {', '.join(MENTION_STATES)}")
    row = (await connection.execute(select(mentions).where(mentions.c.id == mention_id))).first()
    if row is None:
        raise StateChangeError(f"no mention with id {mention_id}")
    values: dict[str, Any] = {"state": state, "state_by": actor, "state_at": now}
    if state == "answered":
        values["answered_at"] = row.answered_at or now
        if answer_url:
            values["answer_url"] = answer_url
    await connection.execute(update(mentions).where(mentions.c.id == mention_id).values(**values))
    data = {"from": row.state, "to": state}
    if reason:
        data["reason"] = reason
    if answer_url:
        data["answer_url"] = answer_url
    await events.record(
        connection, "state_changed", actor, mention_id=mention_id, data=data, at=now
    )
    return data


# ------------------------------------------------------------------ batched writes
# The pipeline stores a whole batch with a handful of statements: one round trip per
# mention and table was most of the ingest time.


async def insert_mentions(connection: AsyncConnection, rows: list[dict[str, Any]]) -> list[int]:
    """Insert mentions; return their ids in the order of ``rows``.

    Ids are matched back by the unique source_key: asking SQLAlchemy to keep parameter order
    (``sort_by_parameter_order``) makes the bulk insert 2.5 times slower."""
    if not rows:
        return []
    result = await connection.execute(
        insert(mentions).returning(mentions.c.id, mentions.c.source_key), rows
    )
    ids = {row.source_key: int(row.id) for row in result}
    return [ids[row["source_key"]] for row in rows]


async def insert_rows(connection: AsyncConnection, table: Any, rows: list[dict[str, Any]]) -> None:
    if rows:
        await connection.execute(insert(table), rows)


async def existing_keys(
    connection: AsyncConnection, mention_ids: Sequence[int]
) -> set[tuple[int, str]]:
    found: set[tuple[int, str]] = set()
    for chunk in _chunks(list(dict.fromkeys(mention_ids))):
        rows = await connection.execute(
            select(mention_keys.c.mention_id, mention_keys.c.key).where(
                mention_keys.c.mention_id.in_(chunk)
            )
        )
        found.update((row.mention_id, row.key) for row in rows)
    return found


async def existing_watchlists(
    connection: AsyncConnection, mention_ids: Sequence[int]
) -> set[tuple[int, str]]:
    found: set[tuple[int, str]] = set()
    for chunk in _chunks(list(dict.fromkeys(mention_ids))):
        rows = await connection.execute(
            select(mention_matches.c.mention_id, mention_matches.c.watchlist).where(
                mention_matches.c.mention_id.in_(chunk)
            )
        )
        found.update((row.mention_id, row.watchlist) for row in rows)
    return found
