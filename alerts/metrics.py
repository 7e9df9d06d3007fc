"""How the team is doing: volumes, share negative, time to first reply, SLA, what is overdue.

Shared by the daily digest and `monitor report`. A mention's reply clock starts when it
was published (or found, if the source gives no date) and stops at ``answered_at``.
Only alert-worthy mentions (brand, live, negative or needing a reply) count for the SLA.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncConnection

from alerts.rules import needs_attention, primary_watchlist
from alerts.text import digest_line_text
from monitor.store import mentions as mention_store
from monitor.store.tables import mentions

if TYPE_CHECKING:
    from monitor.config import Config, WatchlistConfig

LIST_LIMIT = 10
OPEN_STATES = ("open", "acknowledged")


def percentile(values: list[float], fraction: float) -> float | None:
    """Linear interpolation between closest ranks (the median of [1, 2] is 1.5)."""
    if not values:
        return None
    ordered = sorted(values)
    position = (len(ordered) - 1) * fraction
    low, high = math.floor(position), math.ceil(position)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def summary(mention: dict[str, Any], now: datetime | None = None) -> dict[str, Any]:
    """The JSON-safe shape of a mention inside a digest or report list."""
    item = {
        "id": mention["id"],
        "title": digest_line_text(mention),
        "url": mention["url"],
        "author": mention["author"],
        "platform": mention["platform"],
        "source": mention["source"],
        "sentiment": mention["sentiment"],
        "state": mention["state"],
        "watchlists": mention["watchlists"],
        "language": mention["language"],
    }
    if now is not None:
        item["age_s"] = int((now - clock_start(mention)).total_seconds())
    return item


def clock_start(mention: dict[str, Any]) -> datetime:
    published, fetched = mention.get("published_at"), mention["fetched_at"]
    return published if published is not None and published <= fetched else fetched


@dataclass(slots=True)
class Report:
    since: datetime
    until: datetime
    total: int = 0
    backfill: int = 0
    by_watchlist: dict[str, int] = field(default_factory=dict)
    by_source: dict[str, int] = field(default_factory=dict)
    by_language: dict[str, int] = field(default_factory=dict)
    negative: int = 0
    negative_share: float = 0.0
    needing_attention: int = 0
    answered: int = 0
    answered_within_sla: int = 0
    within_sla_share: float | None = None
    first_reply_median_s: float | None = None
    first_reply_p90_s: float | None = None
    overdue: list[dict[str, Any]] = field(default_factory=list)
    top_authors: list[dict[str, Any]] = field(default_factory=list)
    competitors: list[dict[str, Any]] = field(default_factory=list)
    praise: list[dict[str, Any]] = field(default_factory=list)
    backfill_items: list[dict[str, Any]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["since"], data["until"] = self.since.isoformat(), self.until.isoformat()
        return data


def _lists(config: Config, mention: dict[str, Any]) -> list[WatchlistConfig]:
    return [w for name in mention["watchlists"] if (w := config.watchlist(name)) is not None]


async def compute(
    connection: AsyncConnection, config: Config, since: datetime, until: datetime
) -> Report:
    rows = [
        m
        for m in await mention_store.list_mentions(connection, since=since)
        if m["fetched_at"] <= until
    ]
    report = Report(since=since, until=until, total=len(rows))
    report.by_watchlist = dict(Counter(w for m in rows for w in m["watchlists"]).most_common())
    report.by_source = dict(Counter(m["source"] for m in rows).most_common())
    report.by_language = dict(Counter(m["language"] or "unknown" for m in rows).most_common())
    report.negative = sum(1 for m in rows if m["sentiment"] == "negative")
    report.negative_share = round(report.negative / len(rows), 4) if rows else 0.0
    report.backfill = sum(1 for m in rows if m["backfill"])
    report.backfill_items = [summary(m) for m in rows if m["backfill"]][:LIST_LIMIT]

    reply_times, within = [], 0
    attention = [m for m in rows if needs_attention(m, _lists(config, m))]
    for mention in attention:
        if mention["answered_at"] is None:
            continue
        elapsed = max(mention["answered_at"] - clock_start(mention), timedelta(0))
        reply_times.append(elapsed.total_seconds())
        primary = primary_watchlist(_lists(config, mention))
        if primary is not None and elapsed <= primary.sla:
            within += 1
    report.needing_attention = len(attention)
    report.answered = len(reply_times)
    report.answered_within_sla = within
    report.within_sla_share = round(within / len(attention), 4) if attention else None
    median, p90 = percentile(reply_times, 0.5), percentile(reply_times, 0.9)
    report.first_reply_median_s = round(median, 1) if median is not None else None
    report.first_reply_p90_s = round(p90, 1) if p90 is not None else None

    report.overdue = await overdue(connection, config, until)
    authors = Counter((m["platform"], m["author"]) for m in rows if m["author"])
    negative_authors = Counter(
        (m["platform"], m["author"]) for m in rows if m["author"] and m["sentiment"] == "negative"
    )
    report.top_authors = [
        {"platform": p, "author": a, "mentions": n, "negative": negative_authors[(p, a)]}
        for (p, a), n in authors.most_common(LIST_LIMIT)
    ]
    report.competitors = [
        summary(m)
        for m in rows
        if any(w.kind == "competitor" for w in _lists(config, m))
        and not any(w.kind == "brand" for w in _lists(config, m))
    ][:LIST_LIMIT]
    report.praise = [
        summary(m)
        for m in rows
        if m["sentiment"] == "positive" and any(w.kind == "brand" for w in _lists(config, m))
    ][:LIST_LIMIT]
    return report


async def overdue(
    connection: AsyncConnection, config: Config, now: datetime, limit: int = 50
) -> list[dict[str, Any]]:
    """Alert-worthy mentions still open or only acknowledged after their reply_within."""
    rows = (
        await connection.execute(
            select(mentions)
            .where(
                mentions.c.state.in_(OPEN_STATES),
                mentions.c.backfill.is_(False),
                or_(mentions.c.sentiment == "negative", mentions.c.needs_reply.is_(True)),
            )
            .order_by(mentions.c.id)
        )
    ).all()
    lists_of = await mention_store.watchlists_of(connection, [row.id for row in rows])
    found = []
    for row in rows:
        mention = mention_store.as_dict(row, lists_of.get(row.id, []))
        lists = _lists(config, mention)
        if not needs_attention(mention, lists):
            continue
        primary = primary_watchlist(lists)
        assert primary is not None
        if now - clock_start(mention) > primary.sla:
            item = summary(mention, now)
            item["owner"] = primary.owner or ""
            item["reply_within_s"] = int(primary.sla.total_seconds())
            found.append(item)
    found.sort(key=lambda item: -item["age_s"])
    return found[:limit]
