"""Rules that look at more than one mention, applied where the pipeline stores a batch.

In order, for the new mentions of one transaction:

1. *Reopen*: a new message from a customer in a thread the brand already answered
   reopens the answered mention.
2. *Storm*: when a brand watchlist's negative mentions in ``storm.window`` reach
   ``min_count`` and ``factor`` × its own baseline, its negative mentions go out as one
   storm alert (grown while the storm lasts) instead of one alert each.
3. *Thread cooldown*: another alert-worthy message in a conversation alerted within
   ``thread_cooldown`` goes into that alert's thread, not the channel.
4. *Batching*: beyond ``batch.max_alerts`` single alerts per sink in ``batch.window``,
   the rest go out as one list.

A mention sent inside a storm or batch alert still gets its own outbox row
(``mention:<id>:<sink>``), with status ``held`` and ``thread_of`` pointing at the group
alert, so escalations and message updates always find where the mention was shown.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import and_, case, func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from alerts.rules import (
    RuleContext,
    decide_new_mention,
    notify_people,
    primary_watchlist,
    quiet_until,
)
from monitor.durations import format_duration
from monitor.store import mentions as mention_store
from monitor.store import outbox
from monitor.store.outbox import OutboxItem
from monitor.store.tables import alert_outbox, mention_matches, mentions

if TYPE_CHECKING:
    from monitor.config import WatchlistConfig


@dataclass(slots=True)
class NewMention:
    row: dict[str, Any]  # the stored mention, with its id
    watchlists: list[WatchlistConfig]


async def enqueue_new_mentions(
    connection: AsyncConnection, new: list[NewMention], ctx: RuleContext
) -> int:
    """Decide and enqueue the alerts for a batch of new mentions; return how many will be sent."""
    if not new:
        return 0
    await reopen_answered_threads(connection, [n.row for n in new], ctx.now)
    decided = {n.row["id"]: decide_new_mention(n.row, n.watchlists, ctx) for n in new}
    decided = {mention_id: items for mention_id, items in decided.items() if items}
    if not decided:
        return 0
    by_id = {n.row["id"]: n for n in new if n.row["id"] in decided}
    groups: list[OutboxItem] = []
    groups += await _apply_storms(connection, by_id, decided, ctx)
    await _apply_thread_cooldown(connection, by_id, decided, ctx)
    groups += await _apply_batching(connection, decided, ctx)
    items = groups + [item for items in decided.values() for item in items]
    new_ids = await outbox.enqueue(connection, items, ctx.now)
    return await outbox.count_to_send(connection, new_ids)


# ------------------------------------------------------------------------------ reopen


async def reopen_answered_threads(
    connection: AsyncConnection, rows: list[dict[str, Any]], now: datetime
) -> list[int]:
    """A customer writing again in a thread the brand answered reopens that mention.

    One query for the whole batch: most new mentions start no thread the brand answered."""
    writers = [row for row in rows if not row["backfill"] and row["thread_key"] and row["author"]]
    if not writers:
        return []
    answered = await connection.execute(
        select(
            mentions.c.id,
            mentions.c.thread_key,
            mentions.c.platform,
            mentions.c.author,
            mentions.c.answered_at,
        ).where(
            mentions.c.state == "answered",
            mentions.c.thread_key.in_({row["thread_key"] for row in writers}),
        )
    )
    by_thread: dict[tuple[str, str, str], list[Any]] = defaultdict(list)
    for stored in answered:
        by_thread[(stored.thread_key, stored.platform, stored.author)].append(stored)
    reopened = []
    for row in writers:
        written_at = row["published_at"] or now
        for stored in by_thread.get((row["thread_key"], row["platform"], row["author"]), []):
            if stored.id == row["id"] or stored.id in reopened:
                continue
            if stored.answered_at is None or not stored.answered_at < written_at:
                continue
            await mention_store.set_state(
                connection,
                stored.id,
                "open",
                actor="daemon",
                now=now,
                reason=f"{row['author']} wrote again in the thread (mention {row['id']})",
            )
            reopened.append(stored.id)
    return reopened


# ------------------------------------------------------------------------------- storm


async def negative_counts(
    connection: AsyncConnection,
    watchlists: list[str],
    *,
    since: datetime,
    recent_since: datetime,
    until: datetime,
) -> dict[str, tuple[int, int]]:
    """Per watchlist: negative mentions since ``recent_since`` and in [since, recent_since)."""
    recent = case((mentions.c.fetched_at >= recent_since, 1), else_=0)
    rows = await connection.execute(
        select(
            mention_matches.c.watchlist,
            func.coalesce(func.sum(recent), 0).label("recent"),
            func.count().label("total"),
        )
        .select_from(mentions.join(mention_matches, mention_matches.c.mention_id == mentions.c.id))
        .where(
            mention_matches.c.watchlist.in_(watchlists),
            mentions.c.sentiment == "negative",
            mentions.c.backfill.is_(False),
            mentions.c.fetched_at >= since,
            mentions.c.fetched_at <= until,
        )
        .group_by(mention_matches.c.watchlist)
    )
    return {row.watchlist: (int(row.recent), int(row.total) - int(row.recent)) for row in rows}


@dataclass(slots=True)
class Storm:
    watchlist: str
    stamp: str  # identifies the storm across sinks and transactions
    count: int
    baseline_per_window: float


async def detect_storms(
    connection: AsyncConnection, watchlists: list[str], ctx: RuleContext
) -> dict[str, Storm]:
    """The storm each watchlist is in now (one already running, or one starting), if any.
    Two queries however many watchlists the batch touched."""
    settings = ctx.config.alerts.storm
    if not settings.enabled or not watchlists:
        return {}
    now, window = ctx.now, settings.window
    counts = await negative_counts(
        connection, watchlists, since=now - settings.baseline, recent_since=now - window, until=now
    )
    running: dict[str, str] = {}
    for row in await outbox.rows_with_prefix(connection, "storm:", since=now - window):
        running[row.dedup_key.split(":")[1]] = row.dedup_key.split(":")[2]
    windows = max((settings.baseline - window) / window, 1.0)
    storms = {}
    for name in watchlists:
        count, history = counts.get(name, (0, 0))
        baseline = history / windows
        if name in running:
            storms[name] = Storm(name, running[name], count, baseline)
        elif count >= max(settings.min_count, settings.factor * baseline):
            storms[name] = Storm(name, now.strftime("%Y%m%dT%H%M%S"), count, baseline)
    return storms


async def _apply_storms(
    connection: AsyncConnection,
    by_id: dict[int, NewMention],
    decided: dict[int, list[OutboxItem]],
    ctx: RuleContext,
) -> list[OutboxItem]:
    negatives: dict[str, list[int]] = defaultdict(list)
    owners: dict[str, WatchlistConfig] = {}
    for mention_id, new in by_id.items():
        primary = primary_watchlist(new.watchlists)
        if primary is not None and new.row["sentiment"] == "negative":
            negatives[primary.name].append(mention_id)
            owners[primary.name] = primary
    groups = []
    storms = await detect_storms(connection, list(negatives), ctx)
    for name, mention_ids in negatives.items():
        storm = storms.get(name)
        if storm is None:
            continue
        watchlist = owners[name]
        window = format_duration(ctx.config.alerts.storm.window)
        for sink in ctx.sinks:
            key = f"storm:{name}:{storm.stamp}:{sink}"
            groups.append(
                OutboxItem(
                    dedup_key=key,
                    kind="storm",
                    sink=sink,
                    payload={
                        "title": f"Storm on {name}: {storm.count} negative mentions in {window}",
                        "reasons": [
                            f"{storm.count} negative in {window}",
                            f"usual {storm.baseline_per_window:.1f} per {window}",
                        ],
                        "watchlist": name,
                        "watchlists": [name],
                        "people": notify_people(watchlist, backup=True),
                        "critical": watchlist.critical,
                        "count": storm.count,
                    },
                    target=watchlist.route.get(sink, ""),
                    not_before=quiet_until(
                        ctx.config.alerts, sink, ctx.now, critical=watchlist.critical
                    ),
                    merge_ids=list(mention_ids),
                )
            )
            for mention_id in mention_ids:
                _hold(decided[mention_id], sink, key)
    return groups


def _hold(items: list[OutboxItem], sink: str, group_key: str) -> None:
    for item in items:
        if item.sink == sink and item.status == "pending":
            item.status = "held"
            item.thread_of_key = group_key
            item.payload = {**item.payload, "grouped_in": group_key}


# ----------------------------------------------------------------------- thread cooldown


async def _apply_thread_cooldown(
    connection: AsyncConnection,
    by_id: dict[int, NewMention],
    decided: dict[int, list[OutboxItem]],
    ctx: RuleContext,
) -> None:
    since = ctx.now - ctx.config.alerts.thread_cooldown
    threads = {n.row["thread_key"] for n in by_id.values() if n.row["thread_key"]}
    if not threads or ctx.config.alerts.thread_cooldown <= timedelta(0):
        return
    roots = await _recent_thread_roots(connection, sorted(threads), since)
    for mention_id in sorted(decided):
        thread = by_id[mention_id].row["thread_key"]
        if not thread:
            continue
        for item in decided[mention_id]:
            if item.status != "pending" or item.kind != "mention":
                continue
            root = roots.get((thread, item.sink))
            if root is None:
                roots[(thread, item.sink)] = item.dedup_key  # later ones thread under this
                continue
            item.kind = "followup"
            if isinstance(root, int):
                item.thread_of_id = root
            else:
                item.thread_of_key = root


async def _recent_thread_roots(
    connection: AsyncConnection, threads: list[str], since: datetime
) -> dict[tuple[str, str], int | str]:
    """(thread_key, sink) → id of the alert message that conversation was shown in."""
    rows = await connection.execute(
        select(
            mentions.c.thread_key, alert_outbox.c.sink, alert_outbox.c.id, alert_outbox.c.thread_of
        )
        .select_from(alert_outbox.join(mentions, mentions.c.id == alert_outbox.c.mention_id))
        .where(
            mentions.c.thread_key.in_(threads),
            alert_outbox.c.dedup_key.startswith("mention:"),
            alert_outbox.c.created_at >= since,
            alert_outbox.c.status != "skipped",
        )
        .order_by(alert_outbox.c.id)
    )
    roots: dict[tuple[str, str], int | str] = {}
    for row in rows:
        roots.setdefault((row.thread_key, row.sink), row.thread_of or row.id)
    return roots


# ----------------------------------------------------------------------------- batching


async def _apply_batching(
    connection: AsyncConnection, decided: dict[int, list[OutboxItem]], ctx: RuleContext
) -> list[OutboxItem]:
    settings = ctx.config.alerts.batch
    since = ctx.now - settings.window
    groups = []
    for sink in ctx.sinks:
        singles = [
            item
            for mention_id in sorted(decided)
            for item in decided[mention_id]
            if item.sink == sink and item.kind == "mention" and item.status == "pending"
        ]
        if not singles:
            continue
        recent = int(
            await connection.scalar(
                select(func.count()).where(
                    and_(
                        alert_outbox.c.sink == sink,
                        alert_outbox.c.kind == "mention",
                        alert_outbox.c.status != "held",
                        alert_outbox.c.created_at >= since,
                    )
                )
            )
            or 0
        )
        overflow = singles[max(settings.max_alerts - recent, 0) :]
        if not overflow:
            continue
        key = await _open_batch_key(connection, sink, since) or (
            f"batch:{sink}:{ctx.now.strftime('%Y%m%dT%H%M%S')}:{overflow[0].mention_id}"
        )
        people = list(dict.fromkeys(p for item in overflow for p in item.payload["people"]))
        watchlists = list(dict.fromkeys(item.payload["watchlist"] for item in overflow))
        critical = any(item.payload["critical"] for item in overflow)
        groups.append(
            OutboxItem(
                dedup_key=key,
                kind="batch",
                sink=sink,
                payload={
                    "title": f"More mentions need attention ({', '.join(watchlists)})",
                    "reasons": [
                        f"more than {settings.max_alerts} alerts within "
                        f"{format_duration(settings.window)}"
                    ],
                    "watchlists": watchlists,
                    "people": people,
                    "critical": critical,
                },
                target=overflow[0].target,
                not_before=quiet_until(ctx.config.alerts, sink, ctx.now, critical=critical),
                merge_ids=[int(item.mention_id or 0) for item in overflow],
            )
        )
        for item in overflow:
            _hold([item], sink, key)
    return groups


async def _open_batch_key(connection: AsyncConnection, sink: str, since: datetime) -> str | None:
    """A batch alert for this sink still waiting to be sent can take more mentions."""
    row = (
        await connection.execute(
            select(alert_outbox.c.dedup_key)
            .where(
                alert_outbox.c.kind == "batch",
                alert_outbox.c.sink == sink,
                alert_outbox.c.status == "pending",
                alert_outbox.c.created_at >= since,
            )
            .order_by(alert_outbox.c.id.desc())
            .limit(1)
        )
    ).first()
    return row.dedup_key if row else None
