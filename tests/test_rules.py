"""Alert rules: who hears about what, quiet hours, storm, batching, thread cooldown, backfill."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from datetime import UTC, datetime, time, timedelta
from typing import Any

from sqlalchemy import select

from alerts.rules import RuleContext, decide_new_mention, quiet_hours_end
from monitor.config import Config, QuietHoursConfig
from monitor.mention import Mention
from monitor.pipeline import Pipeline
from monitor.store import Store, alert_state
from monitor.store import sources as source_store
from monitor.store.outbox import GROUP_LISTED
from monitor.store.tables import alert_outbox, mentions
from sources.base import FetchResult

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
ANGRY = (
    "Acme Cloud deleted my project and support is useless. Awful, terrible, I am furious about it."
)


def row(**overrides: Any) -> dict[str, Any]:
    values = {
        "id": 1,
        "platform": "rss",
        "sentiment": "negative",
        "sentiment_score": 0.93,
        "needs_reply": False,
        "tagged": False,
        "backfill": False,
    }
    values.update(overrides)
    return values


def test_decide_new_mention_routes_and_skips(make_config: Callable[..., Config]) -> None:
    config = make_config(
        people={"priya": {"name": "P"}, "sam": {"name": "S"}, "lee": {"name": "L"}},
        watchlists=[
            {
                "name": "brand",
                "query": "acme",
                "owner": "priya",
                "backup": "sam",
                "people": ["lee"],
                "route": {"console": "#support"},
            },
            {"name": "rivals", "query": "globex", "kind": "competitor"},
        ],
    )
    brand, rivals = config.watchlists
    ctx = RuleContext(config, ["console"], NOW)
    (item,) = decide_new_mention(row(), [brand, rivals], ctx)
    assert (item.dedup_key, item.target, item.not_before) == ("mention:1:console", "#support", None)
    assert item.payload["people"] == ["priya", "lee"] and item.payload["reasons"] == [
        "negative 0.93"
    ]
    assert decide_new_mention(row(), [rivals], ctx) == []  # competitor → digest
    assert decide_new_mention(row(sentiment="positive", needs_reply=True), [brand], ctx) == []
    assert decide_new_mention(row(sentiment="neutral"), [brand], ctx) == []
    assert decide_new_mention(row(backfill=True), [brand], ctx) == []
    assert decide_new_mention(row(sentiment="neutral", needs_reply=True), [brand], ctx)


def test_quiet_hours_wrap_midnight_and_critical_overrides(
    make_config: Callable[..., Config],
) -> None:
    quiet = QuietHoursConfig(enabled=True, start=time(22), end=time(7))
    at = lambda h, m=0: datetime(2026, 11, 23, h, m, tzinfo=UTC)  # noqa: E731
    assert quiet_hours_end(quiet, "UTC", at(23, 30)) == datetime(2026, 11, 24, 7, tzinfo=UTC)
    assert quiet_hours_end(quiet, "UTC", at(3)) == at(7)
    assert quiet_hours_end(quiet, "UTC", at(12)) is None
    # 22:00 in Kolkata is 16:30 UTC
    assert quiet_hours_end(quiet, "Asia/Kolkata", at(17)) == datetime(
        2026, 11, 24, 1, 30, tzinfo=UTC
    )
    config = make_config(
        watchlists=[
            {"name": "brand", "query": "acme", "critical": True},
            {"name": "other", "query": "acme"},
        ],
        alerts={
            "quiet_hours": {"enabled": True},
            "quiet_hours_per_sink": {
                "console": {"enabled": True, "start": "11:00", "end": "13:00"}
            },
        },
    )
    ctx = RuleContext(config, ["console"], NOW)
    assert decide_new_mention(row(), [config.watchlists[0]], ctx)[0].not_before is None
    assert decide_new_mention(row(), [config.watchlists[1]], ctx)[0].not_before == NOW + timedelta(
        hours=1
    )


async def ingest(pipeline: Pipeline, items: list[Mention], now: datetime = NOW) -> Any:
    async with pipeline.store.begin() as connection:
        await source_store.ensure(connection, "feed", "rss", now)
    return await pipeline.ingest(
        "feed", FetchResult(items), first_run=False, next_check_at=now, now=now
    )


def angry(i: int, **kw: Any) -> Mention:
    """A distinct complaint each time (near-identical texts would be deduplicated)."""
    words = " ".join(hashlib.sha1(f"{i}-{k}".encode()).hexdigest()[:7] for k in range(15))
    return Mention(f"rss:{i}", f"https://x.test/{i}", text=f"{ANGRY} Ticket {words}.", **kw)


async def outbox_rows(store: Store) -> list[Any]:
    async with store.read() as connection:
        return list(await connection.execute(select(alert_outbox).order_by(alert_outbox.c.id)))


async def test_a_burst_of_negatives_is_one_storm_alert(
    make_config: Callable[..., Config], database_url: str
) -> None:
    config = make_config(database=database_url, alerts={"storm": {"min_count": 5}})
    store = await Store.open(database_url)
    try:
        pipeline = Pipeline(store, config)
        await ingest(pipeline, [angry(i) for i in range(2)])  # an ordinary morning
        stats = await ingest(pipeline, [angry(i) for i in range(2, 52)], NOW + timedelta(minutes=5))
        assert stats.alerts == 1
        rows = await outbox_rows(store)
        sendable = [r for r in rows if r.status == "pending"]
        assert [r.kind for r in sendable] == ["mention", "mention", "storm"]
        storm = sendable[-1]
        # the storm lists the first mentions of the burst and counts all 50; its title
        # counts every negative in the window (the morning's two as well)
        assert len(stats.new_ids) == 50
        assert storm.payload["mention_ids"] == sorted(stats.new_ids)[:GROUP_LISTED]
        assert storm.payload["mention_count"] == 50
        assert storm.payload["title"] == "Storm on brand: 52 negative mentions in 1h"
        assert storm.payload["count"] == 52
        held = [r for r in rows if r.status == "held"]
        assert len(held) == 50 and {r.thread_of for r in held} == {storm.id}
        # the storm goes on: later negatives join it instead of alerting
        later = await ingest(pipeline, [angry(99)], NOW + timedelta(minutes=20))
        assert later.alerts == 0
        rows = await outbox_rows(store)
        assert (rows[-1].status, rows[-1].thread_of) == ("held", storm.id)
        grown = next(r for r in rows if r.id == storm.id).payload
        assert grown["mention_count"] == 51
        assert grown["mention_ids"] == sorted(stats.new_ids)[:GROUP_LISTED]  # a bounded list
    finally:
        await store.dispose()


async def test_many_at_once_are_batched_and_a_thread_cools_down(
    make_config: Callable[..., Config], sqlite_url: str
) -> None:
    config = make_config(alerts={"batch": {"max_alerts": 3}, "storm": {"enabled": False}})
    store = await Store.open(sqlite_url)
    try:
        pipeline = Pipeline(store, config)
        stats = await ingest(pipeline, [angry(i) for i in range(10)])
        assert stats.alerts == 4  # three single alerts and one list of the other seven
        rows = await outbox_rows(store)
        batch = next(r for r in rows if r.kind == "batch")
        assert len(batch.payload["mention_ids"]) == batch.payload["mention_count"] == 7
        # the same conversation again within thread_cooldown: a reply in its thread
        first = angry(100, thread_key="forum:t9", author="dee")
        second = angry(101, thread_key="forum:t9", author="dee")
        later = NOW + timedelta(minutes=10)
        await ingest(pipeline, [first], later)
        await ingest(pipeline, [second], later + timedelta(minutes=1))
        rows = await outbox_rows(store)
        parent, reply = rows[-2], rows[-1]
        assert (parent.kind, reply.kind, reply.thread_of) == ("mention", "followup", parent.id)
    finally:
        await store.dispose()


async def test_posts_older_than_a_new_watchlist_are_backfill(
    make_config: Callable[..., Config], sqlite_url: str
) -> None:
    config = make_config(alerts={"backfill_first_poll": True})
    store = await Store.open(sqlite_url)
    try:
        async with store.begin() as connection:
            await alert_state.register_watchlists(connection, ["brand"], NOW)
        pipeline = Pipeline(store, config)
        stats = await ingest(
            pipeline,
            [
                angry(1, published_at=NOW - timedelta(hours=3)),  # before the watchlist existed
                angry(2, published_at=NOW + timedelta(minutes=1)),
            ],
            NOW + timedelta(minutes=2),
        )
        assert stats.alerts == 1
        async with store.read() as connection:
            flags = dict(
                (r.source_key, r.backfill)
                for r in await connection.execute(
                    select(mentions.c.source_key, mentions.c.backfill)
                )
            )
        assert flags == {"rss:1": True, "rss:2": False}
    finally:
        await store.dispose()
