"""The daily digest: sent once a day at ``alerts.digest.at`` in ``alerts.digest.timezone``.

It covers everything since the previous digest (at most a week): counts per watchlist,
source and language, share negative, time to first reply and SLA, what is still open
and overdue, top authors, competitor mentions, praise worth a thank-you, and the
backfill that was stored without alerts. Its content is computed when it is enqueued,
so a digest retried after an outage still describes its own day.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from sqlalchemy.ext.asyncio import AsyncConnection

from alerts import metrics
from monitor.durations import format_duration
from monitor.store import alert_state, outbox
from monitor.store.outbox import OutboxItem

if TYPE_CHECKING:
    from monitor.config import Config

DIGEST_KIND = "digest"
CURSOR = "digest"
LONGEST_PERIOD = timedelta(days=7)


def is_due(config: Config, cursor: dict[str, Any] | None, now: datetime) -> str | None:
    """Today's local date when the digest should go out now, else None."""
    settings = config.alerts.digest
    if not settings.enabled:
        return None
    local = now.astimezone(ZoneInfo(settings.timezone))
    today = local.date().isoformat()
    if local.time().replace(tzinfo=None) < settings.at:
        return None
    if cursor and cursor.get("last_date") == today:
        return None
    return today


def first_cursor(config: Config, now: datetime) -> dict[str, Any]:
    """On the very first start, a digest time already past today waits for tomorrow."""
    local = now.astimezone(ZoneInfo(config.alerts.digest.timezone))
    if local.time().replace(tzinfo=None) >= config.alerts.digest.at:
        return {"last_date": local.date().isoformat(), "last_at": now.isoformat()}
    return {"last_date": "", "last_at": now.isoformat()}


async def enqueue_digest(
    connection: AsyncConnection, config: Config, sinks: list[str], now: datetime
) -> int:
    """Enqueue today's digest for every sink if it is time; return how many were enqueued."""
    cursor = await alert_state.get_cursor(connection, CURSOR)
    if cursor is None:
        cursor = first_cursor(config, now)
        await alert_state.set_cursor(connection, CURSOR, cursor, now)
    today = is_due(config, cursor, now)
    if today is None:
        return 0
    since = now - timedelta(days=1)
    if cursor and cursor.get("last_at"):
        since = max(datetime.fromisoformat(cursor["last_at"]), now - LONGEST_PERIOD)
    payload = await build_payload(connection, config, since, now, today)
    ids = await outbox.enqueue(
        connection,
        [
            OutboxItem(
                dedup_key=f"digest:{today}:{sink}", kind=DIGEST_KIND, sink=sink, payload=payload
            )
            for sink in sinks
        ],
        now,
    )
    await alert_state.set_cursor(
        connection, CURSOR, {"last_date": today, "last_at": now.isoformat()}, now
    )
    return len(ids)


async def build_payload(
    connection: AsyncConnection, config: Config, since: datetime, now: datetime, day: str
) -> dict[str, Any]:
    report = await metrics.compute(connection, config, since, now)
    data = report.as_dict()
    data["title"] = f"Daily digest for {config.brand.name} — {day}"
    data["period"] = format_duration(now - since)
    data["reasons"] = [headline(report)]
    return data


def headline(report: metrics.Report) -> str:
    parts = [
        f"{report.total} mentions",
        f"{report.negative_share:.0%} negative",
        f"{len(report.overdue)} overdue",
    ]
    if report.first_reply_median_s is not None:
        parts.append(
            f"median first reply {format_duration(timedelta(seconds=report.first_reply_median_s))}"
        )
    if report.within_sla_share is not None:
        parts.append(f"{report.within_sla_share:.0%} answered within SLA")
    return ", ".join(parts)


def seconds(value: float | None) -> str:
    return format_duration(timedelta(seconds=value)) if value is not None else "–"


def sections(data: dict[str, Any]) -> list[tuple[str, list[str], list[dict[str, Any]]]]:
    """(heading, plain lines, mention items) for every part of the digest, in order.

    The lines hold only numbers and config names; the items hold untrusted mention
    text, which each sink escapes for its medium."""

    def counts(mapping: dict[str, int]) -> str:
        return ", ".join(f"{key} {value}" for key, value in mapping.items()) or "none"

    within = data.get("within_sla_share")
    return [
        (
            "Numbers",
            [
                f"{data['total']} mentions in {data['period']} ({data['backfill']} stored as backfill)",
                f"{data['negative_share']:.0%} negative ({data['negative']})",
                f"per watchlist: {counts(data['by_watchlist'])}",
                f"per source: {counts(data['by_source'])}",
                f"per language: {counts(data['by_language'])}",
                f"time to first reply: median {seconds(data['first_reply_median_s'])}, "
                f"90th percentile {seconds(data['first_reply_p90_s'])}",
                f"answered within SLA: {'–' if within is None else f'{within:.0%}'} "
                f"({data['answered_within_sla']} of {data['needing_attention']})",
            ],
            [],
        ),
        ("Open and overdue", [], data["overdue"]),
        (
            "Top authors",
            [],
            [
                {
                    "title": f"{a['author']} ({a['platform']}): {a['mentions']} mentions, "
                    f"{a['negative']} negative"
                }
                for a in data["top_authors"]
            ],
        ),
        ("Competitor mentions", [], data["competitors"]),
        ("Praise — thank them", [], data["praise"]),
        ("Backfill (stored, not alerted)", [], data["backfill_items"]),
    ]
