"""The reminder ladder for alerted mentions nobody acknowledged or answered, and the
message updates that follow every state change.

A mention is on the ladder while it is ``open`` (acknowledged, answered, resolved and
ignored all stop it). Its clock starts when it became open (stored, or reopened):

    step 1 at reply_within            → the owner (and the watchlist's people)
    step 2 at 2 × reply_within         → owner and backup, also shown in the channel
    step 3… every ``reminder_every``   → owner and backup, ``escalation.reminders`` times

Each step is one alert per sink, in the thread of the mention's first alert. After a
pause (the daemon was down) only the step now due is sent, not the ones missed.
Mentions that arrived inside a storm alert are listed in the digest instead, so a storm
never turns into fifty escalations.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from alerts.rules import notify_people, quiet_until
from monitor.durations import format_duration
from monitor.store import alert_state, outbox
from monitor.store.outbox import OutboxItem
from monitor.store.tables import alert_outbox, events, mentions

if TYPE_CHECKING:
    from monitor.config import Config, EscalationConfig, WatchlistConfig

# Events after which the mention's message is redrawn.
REDRAW_EVENTS = ("state_changed", "assigned", "corrected")
EVENTS_CURSOR = "message_updates"


def due_step(elapsed: timedelta, watchlist: WatchlistConfig, settings: EscalationConfig) -> int:
    """The highest ladder step due after ``elapsed`` open time (0: none yet)."""
    sla = watchlist.sla
    if elapsed < sla:
        return 0
    if elapsed < 2 * sla:
        return 1
    every = settings.reminder_every or sla
    reminders = int((elapsed - 2 * sla) / every) if every > timedelta(0) else 0
    return 2 + min(reminders, settings.reminders)


async def enqueue_escalations(
    connection: AsyncConnection, config: Config, sinks: list[str], now: datetime
) -> int:
    settings = config.alerts.escalation
    if not settings.enabled:
        return 0
    rows = await connection.execute(
        select(alert_outbox, mentions.c.state_at.label("open_since"))
        .select_from(alert_outbox.join(mentions, mentions.c.id == alert_outbox.c.mention_id))
        .where(
            alert_outbox.c.dedup_key.startswith("mention:"),
            alert_outbox.c.sink.in_(sinks),
            alert_outbox.c.status != "skipped",
            mentions.c.state == "open",
        )
        .order_by(alert_outbox.c.id)
    )
    items = []
    for row in rows:
        payload = row.payload or {}
        if str(payload.get("grouped_in", "")).startswith("storm:"):
            continue
        watchlist = config.watchlist(str(payload.get("watchlist", "")))
        if watchlist is None:
            continue
        elapsed = now - row.open_since
        step = due_step(elapsed, watchlist, settings)
        if step:
            items.append(_escalation(row, payload, watchlist, step, elapsed, config, now))
    return len(await outbox.enqueue(connection, items, now))


def _escalation(
    row: Any,
    payload: dict[str, Any],
    watchlist: WatchlistConfig,
    step: int,
    elapsed: timedelta,
    config: Config,
    now: datetime,
) -> OutboxItem:
    waited = format_duration(timedelta(seconds=int(elapsed.total_seconds())))
    episode = int(row.open_since.timestamp())
    who = "backup" if step == 2 and watchlist.backup else ("owner" if step == 1 else "reminder")
    return OutboxItem(
        dedup_key=f"escalation:{row.mention_id}:{episode}:{step}:{row.sink}",
        kind="escalation",
        sink=row.sink,
        payload={
            "title": f"Unanswered for {waited}: {payload.get('title', 'mention')}",
            "reasons": [f"unanswered {waited}", *payload.get("reasons", [])],
            "watchlist": watchlist.name,
            "watchlists": payload.get("watchlists", [watchlist.name]),
            "people": notify_people(watchlist, backup=step >= 2),
            "step": step,
            "ladder": who,
            "reply_within": format_duration(watchlist.sla),
            "critical": watchlist.critical,
        },
        mention_id=row.mention_id,
        target=row.target,
        thread_of_id=row.thread_of or row.id,
        not_before=quiet_until(config.alerts, row.sink, now, critical=watchlist.critical),
    )


async def enqueue_message_updates(connection: AsyncConnection, now: datetime) -> int:
    """Redraw the alert message of every mention whose state changed since the last pass."""
    cursor = await alert_state.get_cursor(connection, EVENTS_CURSOR)
    if cursor is None:  # first start: history before it needs no redraw
        last = await connection.scalar(select(func.max(events.c.id))) or 0
        await alert_state.set_cursor(connection, EVENTS_CURSOR, {"last_id": int(last)}, now)
        return 0
    changes = (
        await connection.execute(
            select(events.c.id, events.c.mention_id)
            .where(
                events.c.id > int(cursor["last_id"]),
                events.c.kind.in_(REDRAW_EVENTS),
                events.c.mention_id.is_not(None),
            )
            .order_by(events.c.id)
            .limit(500)
        )
    ).all()
    if not changes:
        return 0
    latest: dict[int, int] = {}
    for change in changes:
        latest[change.mention_id] = change.id  # one redraw per mention per pass
    messages = await connection.execute(
        select(alert_outbox).where(
            alert_outbox.c.mention_id.in_(list(latest)),
            alert_outbox.c.dedup_key.startswith("mention:"),
            alert_outbox.c.status.in_(("pending", "sending", "sent", "failed")),
        )
    )
    by_mention: dict[int, list[Any]] = defaultdict(list)
    for message in messages:
        by_mention[message.mention_id].append(message)
    items = [
        OutboxItem(
            dedup_key=f"update:{event_id}:{message.sink}",
            kind="update",
            sink=message.sink,
            payload=dict(message.payload or {}),
            mention_id=mention_id,
            target=message.target,
            thread_of_id=message.id,
        )
        for mention_id, event_id in latest.items()
        for message in by_mention.get(mention_id, [])
    ]
    await alert_state.set_cursor(connection, EVENTS_CURSOR, {"last_id": changes[-1].id}, now)
    return len(await outbox.enqueue(connection, items, now))
