"""Alert outbox: alerts are written in the same transaction as the decision that made
them, then delivered by a worker that records each attempt.

A crash between a sink accepting an alert and ``mark_sent`` leaves the row in
``sending``; on restart it is retried, marked ``INTERRUPTED`` so the sink can first look
for the message it may already have delivered (``monitor.delivery``). Where a sink cannot
look, that one alert may be repeated once. That is the only duplicate the design allows.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from monitor.store.tables import alert_outbox

# A storm or batch alert lists this many of its mentions (the first ones); beyond them its
# payload keeps only their number (``mention_count``), so a storm of a hundred thousand
# negative mentions still rewrites a payload of a few hundred bytes per batch. Every member
# is also linked by its own held row (``thread_of``).
GROUP_LISTED = 15


@dataclass(slots=True)
class OutboxItem:
    dedup_key: str
    kind: str
    sink: str
    payload: dict[str, Any]
    mention_id: int | None = None
    target: str = ""
    thread_of_key: str | None = None  # dedup_key of the alert this one threads under
    thread_of_id: int | None = None  # or that alert's row id, when already known
    not_before: datetime | None = None  # quiet hours, batching
    # "held": recorded but never sent itself (the mention went out in a storm or batch
    # alert, which thread_of points at).
    status: str = "pending"
    # For storm and batch alerts: mentions to add to payload["mention_ids"], also when the
    # row already exists (a storm grows while it lasts).
    merge_ids: list[int] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)


async def enqueue(connection: AsyncConnection, items: list[OutboxItem], now: datetime) -> list[int]:
    """Insert the items whose dedup_key is new; return the new row ids.

    An item may thread under one inserted earlier in the same call. Rows go in with one
    bulk insert per threading level (a storm or batch alert, then what it holds)."""
    if not items:
        return []
    keys = list(dict.fromkeys(item.dedup_key for item in items))
    known: dict[str, _Known] = {}
    for start in range(0, len(keys), _CHUNK):
        rows = await connection.execute(
            select(alert_outbox.c.id, alert_outbox.c.dedup_key, alert_outbox.c.payload).where(
                alert_outbox.c.dedup_key.in_(keys[start : start + _CHUNK])
            )
        )
        known.update({row.dedup_key: _Known(row.id, row.payload) for row in rows})
    parents = await _ids_for_keys(connection, [i.thread_of_key for i in items if i.thread_of_key])
    waiting: list[OutboxItem] = []
    merges: dict[int, set[int]] = {}
    for item in items:
        if item.dedup_key in known:
            if item.merge_ids and known[item.dedup_key].id:
                merges.setdefault(known[item.dedup_key].id, set()).update(item.merge_ids)
            continue
        if item.merge_ids:
            members = sorted(set(item.merge_ids))
            item.payload = {
                **item.payload,
                "mention_ids": members[:GROUP_LISTED],
                "mention_count": len(members),
            }
        known[item.dedup_key] = _Known(0, item.payload)  # later duplicates in `items` skip
        waiting.append(item)
    await _merge_ids(connection, merges)
    ids: list[int] = []
    pending_keys = {item.dedup_key for item in waiting}
    while waiting:
        ready = [i for i in waiting if not i.thread_of_key or i.thread_of_key not in pending_keys]
        if not ready:
            ready = waiting  # a cycle cannot happen; never loop forever if it did
        rows = [
            {
                "dedup_key": item.dedup_key,
                "mention_id": item.mention_id,
                "kind": item.kind,
                "sink": item.sink,
                "target": item.target,
                "payload": item.payload,
                "status": item.status,
                "attempts": 0,
                "next_attempt_at": item.not_before or now,
                "thread_of": item.thread_of_id or parents.get(item.thread_of_key or ""),
                "created_at": now,
            }
            for item in ready
        ]
        result = await connection.execute(
            insert(alert_outbox).returning(alert_outbox.c.id, alert_outbox.c.dedup_key), rows
        )
        by_key = {row.dedup_key: int(row.id) for row in result}  # dedup_key is unique
        new_ids = [by_key[row["dedup_key"]] for row in rows]
        for item, row_id in zip(ready, new_ids, strict=True):
            parents[item.dedup_key] = row_id
            pending_keys.discard(item.dedup_key)
        ids += new_ids
        ready_keys = {id(item) for item in ready}
        waiting = [item for item in waiting if id(item) not in ready_keys]
    return ids


_CHUNK = 500


@dataclass(slots=True)
class _Known:
    id: int
    payload: dict[str, Any]


async def _merge_ids(connection: AsyncConnection, merges: dict[int, set[int]]) -> None:
    """Add new mentions to existing storm/batch rows (one read for all): the first
    ``GROUP_LISTED`` are listed, every one is counted.

    Only mentions stored in this transaction are merged, so none was counted before."""
    if not merges:
        return
    rows = await connection.execute(
        select(alert_outbox.c.id, alert_outbox.c.payload).where(alert_outbox.c.id.in_(merges))
    )
    for row in rows.all():
        payload = dict(row.payload or {})
        listed = [int(i) for i in payload.get("mention_ids", [])]
        added = merges[row.id] - set(listed)
        if not added:
            continue
        payload["mention_count"] = int(payload.get("mention_count", len(listed))) + len(added)
        payload["mention_ids"] = sorted({*listed, *added})[:GROUP_LISTED]
        await connection.execute(
            update(alert_outbox).where(alert_outbox.c.id == row.id).values(payload=payload)
        )


async def _ids_for_keys(connection: AsyncConnection, keys: list[str]) -> dict[str, int]:
    if not keys:
        return {}
    rows = await connection.execute(
        select(alert_outbox.c.dedup_key, alert_outbox.c.id).where(
            alert_outbox.c.dedup_key.in_(keys)
        )
    )
    return {row.dedup_key: row.id for row in rows}


async def exists(connection: AsyncConnection, dedup_key: str) -> bool:
    return (
        await connection.scalar(
            select(alert_outbox.c.id).where(alert_outbox.c.dedup_key == dedup_key)
        )
    ) is not None


# last_error of a row whose attempt a crash cut short: the sink may have delivered it.
INTERRUPTED = "interrupted by a restart; retrying"


def delivery_key(row: Any) -> str:
    """Identity of one outbox row for the sinks, the same on every retry: Slack message
    metadata and the email Message-ID carry it. Row ids start again at 1 in a new
    database, so the creation time makes it unique across installs and resets."""
    created = getattr(row, "created_at", None)
    return f"{row.id}.{created:%Y%m%d%H%M%S%f}" if created is not None else str(row.id)


async def recover_in_flight(connection: AsyncConnection) -> int:
    """After a crash, rows left in `sending` may or may not have been delivered: retry them.

    ``next_attempt_at`` is kept: it holds when the interrupted attempt started (see
    ``mark_sending``), which bounds where a sink looks for an earlier delivery, and it is
    already past, so the row is due at once."""
    result = await connection.execute(
        update(alert_outbox)
        .where(alert_outbox.c.status == "sending")
        .values(status="pending", last_error=INTERRUPTED)
    )
    return result.rowcount or 0


async def due(
    connection: AsyncConnection, now: datetime, sinks: list[str], limit: int = 50
) -> list[Any]:
    rows = await connection.execute(
        select(alert_outbox)
        .where(
            alert_outbox.c.status == "pending",
            alert_outbox.c.next_attempt_at <= now,
            alert_outbox.c.sink.in_(sinks),
        )
        .order_by(alert_outbox.c.next_attempt_at, alert_outbox.c.id)
        .limit(limit)
    )
    return list(rows)


async def mark_sending(
    connection: AsyncConnection, row_id: int, now: datetime | None = None
) -> bool:
    """Claim a row; False if someone else (another worker, a restart) claimed it first.

    ``now`` is kept in ``next_attempt_at`` (unused while a row is `sending`): when a crash
    interrupts this attempt, it says since when the alert may be with the provider."""
    values: dict[str, Any] = {"status": "sending", "attempts": alert_outbox.c.attempts + 1}
    if now is not None:
        values["next_attempt_at"] = now
    result = await connection.execute(
        update(alert_outbox)
        .where(alert_outbox.c.id == row_id, alert_outbox.c.status == "pending")
        .values(**values)
    )
    return (result.rowcount or 0) == 1


async def mark_sent(
    connection: AsyncConnection, row_id: int, provider_id: str | None, now: datetime
) -> None:
    await connection.execute(
        update(alert_outbox)
        .where(alert_outbox.c.id == row_id)
        .values(status="sent", provider_id=provider_id, sent_at=now, last_error=None)
    )


async def mark_retry(
    connection: AsyncConnection, row_id: int, error: str, next_attempt_at: datetime
) -> None:
    await connection.execute(
        update(alert_outbox)
        .where(alert_outbox.c.id == row_id)
        .values(status="pending", last_error=error[:2000], next_attempt_at=next_attempt_at)
    )


async def mark_failed(connection: AsyncConnection, row_id: int, error: str) -> None:
    """A permanent failure (bad token, unknown channel). Kept, and retried after a config reload."""
    await connection.execute(
        update(alert_outbox)
        .where(alert_outbox.c.id == row_id)
        .values(status="failed", last_error=error[:2000])
    )


async def mark_skipped(connection: AsyncConnection, row_id: int, reason: str) -> None:
    """Not sent because it no longer applies (the mention was acknowledged meanwhile)."""
    await connection.execute(
        update(alert_outbox)
        .where(alert_outbox.c.id == row_id)
        .values(status="skipped", last_error=reason[:2000])
    )


async def row(connection: AsyncConnection, dedup_key: str) -> Any | None:
    return (
        await connection.execute(select(alert_outbox).where(alert_outbox.c.dedup_key == dedup_key))
    ).first()


async def rows_with_prefix(
    connection: AsyncConnection, prefix: str, *, since: datetime | None = None
) -> list[Any]:
    """Rows whose dedup_key starts with ``prefix`` (e.g. every alert of mention 42)."""
    query = select(alert_outbox).where(alert_outbox.c.dedup_key.startswith(prefix, autoescape=True))
    if since is not None:
        query = query.where(alert_outbox.c.created_at >= since)
    return list(await connection.execute(query.order_by(alert_outbox.c.id)))


async def retry_failed(connection: AsyncConnection, now: datetime) -> int:
    result = await connection.execute(
        update(alert_outbox)
        .where(alert_outbox.c.status == "failed")
        .values(status="pending", next_attempt_at=now)
    )
    return result.rowcount or 0


async def provider_id_of(connection: AsyncConnection, row_id: int) -> tuple[str, str | None]:
    row = (
        await connection.execute(
            select(alert_outbox.c.status, alert_outbox.c.provider_id).where(
                alert_outbox.c.id == row_id
            )
        )
    ).first()
    return (row.status, row.provider_id) if row else ("missing", None)


async def count_to_send(connection: AsyncConnection, row_ids: list[int]) -> int:
    """How many of these rows will be delivered (not held inside a group alert)."""
    if not row_ids:
        return 0
    return int(
        await connection.scalar(
            select(func.count()).where(
                alert_outbox.c.id.in_(row_ids), alert_outbox.c.status == "pending"
            )
        )
        or 0
    )


async def counts(connection: AsyncConnection) -> dict[str, int]:
    rows = await connection.execute(
        select(alert_outbox.c.status, func.count().label("n")).group_by(alert_outbox.c.status)
    )
    return {row.status: int(row.n) for row in rows}
