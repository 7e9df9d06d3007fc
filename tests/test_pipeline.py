"""Pipeline stages one by one, then ingest as a whole (SQLite and PostgreSQL)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select

from monitor.config import Config
from monitor.matching import Matcher
from monitor.mention import Mention
from monitor.pipeline import Pipeline, brand_handles, is_backfill, is_tagged, prepare
from monitor.store import Store, outbox
from monitor.store import mentions as mention_store
from monitor.store import sources as source_store
from monitor.store.tables import alert_outbox, mention_matches, sightings
from sources.base import FetchResult

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
COMPLAINT = "Acme Cloud has been down for three hours, awful service and terrible support. I am so angry and disappointed."


def mention(
    key: str, text: str = COMPLAINT, url: str = "https://blog.test/outage", **kw: object
) -> Mention:
    return Mention(source_key=key, url=url, title=kw.pop("title", ""), text=text, **kw)  # type: ignore[arg-type]


# ------------------------------------------------------------------------------ stages


def test_prepare_drops_mentions_that_match_no_watchlist(make_config: Callable[..., Config]) -> None:
    config = make_config()
    matcher = Matcher.from_config(config.watchlists)
    names = {w.name for w in config.watchlists}
    assert prepare(mention("rss:1", "the weather is fine"), matcher, [], names) is None
    prepared = prepare(mention("rss:2"), matcher, [], names)
    assert prepared is not None
    assert [m.watchlist for m in prepared.matches] == ["brand"]
    assert prepared.language == "en"
    assert prepared.candidate.canonical_url == "https://blog.test/outage"


def test_watchlist_hint_routes_without_a_query_match(make_config: Callable[..., Config]) -> None:
    config = make_config()
    matcher = Matcher.from_config(config.watchlists)
    item = mention(
        "ga:1", "an article that only google alerts knows is relevant", watchlist_hint="brand"
    )
    prepared = prepare(item, matcher, [], {"brand", "competitors"})
    assert prepared is not None and [m.watchlist for m in prepared.matches] == ["brand"]


def test_tagged_means_an_at_mention_of_a_brand_account(make_config: Callable[..., Config]) -> None:
    handles = brand_handles(make_config())
    assert handles == ["acmecloud"]
    assert is_tagged("hey @AcmeCloud where is my refund", handles)
    assert not is_tagged("acmecloud is down", handles)
    assert not is_tagged("mail me at bob@acmecloud.test", handles)


def test_backfill_rules() -> None:
    fresh = mention("rss:1", published_at=NOW - timedelta(hours=1))
    old = mention("rss:2", published_at=NOW - timedelta(days=3))
    args = {"backfill_first_poll": True, "max_age": timedelta(days=2), "now": NOW}
    assert is_backfill(fresh, first_run=True, **args)
    assert not is_backfill(fresh, first_run=False, **args)
    assert is_backfill(old, first_run=False, **args)
    assert not is_backfill(mention("rss:3"), first_run=False, **args)  # no date: not old


# ---------------------------------------------------------------------------- ingest


async def ingest(
    pipeline: Pipeline, source: str, items: list[Mention], first_run: bool = False
) -> object:
    async with pipeline.store.begin() as connection:
        await source_store.ensure(connection, source, "rss", NOW)
    return await pipeline.ingest(
        source,
        FetchResult(items, cursor={"seen": len(items)}),
        first_run=first_run,
        next_check_at=NOW + timedelta(minutes=5),
        now=NOW,
    )


async def test_ingest_stores_once_alerts_once_and_saves_cursor(
    make_config: Callable[..., Config], database_url: str
) -> None:
    config = make_config(database=database_url)
    store = await Store.open(database_url)
    try:
        pipeline = Pipeline(store, config)
        stats = await ingest(
            pipeline, "blog", [mention("rss:blog#1"), mention("rss:blog#2", "nothing relevant")]
        )
        assert (stats.fetched, stats.matched, stats.new, stats.alerts) == (2, 1, 1, 1)  # type: ignore[attr-defined]
        # the same article from another feed, with tracking parameters: a sighting, not a mention
        again = await ingest(
            pipeline, "news", [mention("rss:news#9", url="https://blog.test/outage?utm_source=x")]
        )
        assert (again.new, again.duplicates, again.alerts) == (0, 1, 0)  # type: ignore[attr-defined]
        async with store.read() as connection:
            rows = await mention_store.list_mentions(connection)
            assert len(rows) == 1 and rows[0]["sentiment"] == "negative"
            assert await connection.scalar(select(func.count()).select_from(sightings)) == 2
            assert await connection.scalar(select(func.count()).select_from(alert_outbox)) == 1
            state = await source_store.load(connection, "blog")
        assert state.cursor == {"seen": 2} and not state.first_run
    finally:
        await store.dispose()


async def test_two_watchlists_one_mention_one_alert(
    make_config: Callable[..., Config], database_url: str
) -> None:
    config = make_config(
        database=database_url,
        watchlists=[
            {"name": "brand", "query": '"acme cloud"'},
            {"name": "outages", "query": "acme down"},
        ],
    )
    store = await Store.open(database_url)
    try:
        stats = await ingest(Pipeline(store, config), "blog", [mention("rss:1")])
        assert stats.new == 1 and stats.alerts == 1  # type: ignore[attr-defined]
        async with store.read() as connection:
            lists = await connection.execute(
                select(mention_matches.c.watchlist).order_by(mention_matches.c.watchlist)
            )
            assert [r.watchlist for r in lists] == ["brand", "outages"]
    finally:
        await store.dispose()


async def test_first_poll_is_backfill_without_alerts(
    make_config: Callable[..., Config], sqlite_url: str
) -> None:
    config = make_config(alerts={"backfill_first_poll": True})
    store = await Store.open(sqlite_url)
    try:
        stats = await ingest(Pipeline(store, config), "blog", [mention("rss:1")], first_run=True)
        assert stats.new == 1 and stats.alerts == 0  # type: ignore[attr-defined]
        async with store.read() as connection:
            (row,) = await mention_store.list_mentions(connection)
            assert row["backfill"] is True
            assert await outbox.counts(connection) == {}
    finally:
        await store.dispose()


async def test_large_batches_are_split_but_all_stored(
    make_config: Callable[..., Config], sqlite_url: str
) -> None:
    config = make_config()
    store = await Store.open(sqlite_url)
    items = [
        mention(
            f"rss:{i}",
            f"acme cloud complaint number {i}: terrible service",
            url=f"https://x.test/{i}",
        )
        for i in range(1200)
    ]
    try:
        stats = await ingest(Pipeline(store, config), "big", items)
        assert stats.new == 1200  # type: ignore[attr-defined]
    finally:
        await store.dispose()


def test_language_filters_hold_whether_or_not_language_is_detected_first(
    make_config: Callable[..., Config],
) -> None:
    """Without `lang:` in any query, prepare() matches first and detects the language only for
    what matched; `languages:` must filter exactly as before. With `lang:`, it detects first."""
    hindi = mention("rss:hi", "एक्मे क्लाउड की सेवा बहुत खराब है, कोई जवाब नहीं मिला")
    english = mention("rss:en", "Acme Cloud support never answered, awful service")
    for extra in ([], [{"name": "hindi-only-query", "query": '"एक्मे क्लाउड" lang:hi'}]):
        config = make_config(
            watchlists=[
                {"name": "hindi", "query": '"एक्मे क्लाउड" OR "acme cloud"', "languages": ["hi"]},
                {"name": "any", "query": '"एक्मे क्लाउड" OR "acme cloud"'},
                *extra,
            ]
        )
        matcher = Matcher.from_config(config.watchlists)
        assert matcher.needs_language is bool(extra)
        names = {w.name for w in config.watchlists}
        found_hi = prepare(hindi, matcher, [], names)
        found_en = prepare(english, matcher, [], names)
        assert found_hi is not None and found_en is not None
        assert (found_hi.language, found_en.language) == ("hi", "en")
        assert {m.watchlist for m in found_hi.matches} == {
            "hindi",
            "any",
            *(w["name"] for w in extra),
        }
        assert {m.watchlist for m in found_en.matches} == {"any"}
