"""Google Alerts: the real recorded feed, served from localhost, through the daemon."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from aiohttp import web

from monitor.daemon import Daemon
from monitor.store import Store
from monitor.store import sources as source_store
from sources.base import SourceState
from sources.google_alerts import GoogleAlertsSource
from tests.helpers.feeds import FEED_FIXTURES, health_of, stored
from tests.helpers.servers import LocalServer

ALERT = (FEED_FIXTURES / "google_alerts_slack_2019.atom.xml").read_bytes()
ALERT_PATH = "/alerts/feeds/04175468913983673025/4428013283581841004"


def alert_source(server: LocalServer, **extra: Any) -> dict[str, Any]:
    return {"type": "google_alerts", "name": "alert", "url": server.url(ALERT_PATH), **extra}


def serve_alert(server: LocalServer) -> None:
    server.serve_bytes(ALERT_PATH, ALERT, content_type="application/atom+xml")


async def test_each_entry_is_one_mention_with_the_real_article_url_and_clean_text(
    local_server: LocalServer, make_daemon: Callable[..., Daemon]
) -> None:
    serve_alert(local_server)
    daemon = make_daemon(sources=[alert_source(local_server, watchlist="brand")])
    await daemon.open()
    try:
        source = daemon.sources["alert"]
        assert isinstance(source, GoogleAlertsSource)
        result = await source.fetch(await _state(daemon.store))
    finally:
        await daemon.close()

    assert len(result.mentions) == ALERT.count(b"<entry>") == 20
    assert len({m.source_key for m in result.mentions}) == 20
    assert not any("google.com" in m.url for m in result.mentions)
    first, second = result.mentions[:2]
    assert first.url == (
        "https://www.aglobalmarketresearch.com/report-offers-prediction-of-automotive-slack-market"
        "-by-top-key-players-like-haldex-meritor-bendix-mei-wabco-accuride-stemco-tbk-febi-aydinsan/"
    )
    assert first.title == (
        "Report offers Prediction of Automotive Slack Market by Top key players like Haldex, "
        "Meritor, Bendix ..."
    )
    assert first.text == (
        "Automotive Slack Market reports provides a comprehensive overview of the global market "
        "size and share. It provides strategists, marketers and senior ..."
    )
    assert first.html.startswith("Automotive <b>Slack</b> Market")  # original kept for display
    assert first.source_key == (
        "google_alerts:tag:google.com,2013:googlealerts/feed:8974135267215335962#" + first.url
    )
    assert second.url == "https://investorplace.com/2019/07/slack-stock-truly-compelling/"
    assert second.title == "Slack Stock Has a Compelling Story and the Numbers to Back It Up"
    assert "the Company's decision" in second.text
    assert all("<b>" not in m.title + m.text for m in result.mentions)
    assert {m.watchlist_hint for m in result.mentions} == {"brand"}
    assert first.extra == {"alert": "Google Alert - Slack"}
    assert first.dedup_hints == [
        "headline:report offers prediction of automotive slack market by top key players like "
        "haldex, meritor, bendix ...@aglobalmarketresearch.com"
    ]


async def _state(store: Store) -> SourceState:
    async with store.read() as connection:
        return await source_store.load(connection, "alert")


async def test_re_polling_stores_nothing_new(
    local_server: LocalServer, make_daemon: Callable[..., Daemon], sqlite_url: str
) -> None:
    serve_alert(local_server)
    config = make_daemon(
        watchlists=[{"name": "slack", "query": "slack", "owner": "priya"}],
        sources=[alert_source(local_server)],
    ).config
    (first,) = await make_daemon(config=config).run_once()
    assert first.ok and first.stats is not None and first.stats.fetched == 20
    after_first = await stored(sqlite_url)
    # Every entry is stored, as a mention or as a sighting of an identical story.
    assert after_first.sightings == first.stats.matched
    assert len(after_first.mentions) == first.stats.new > 0

    for _ in range(2):
        (again,) = await make_daemon(config=config).run_once()
        assert again.ok and again.stats is not None
        assert (again.stats.fetched, again.stats.new) == (20, 0)
    after = await stored(sqlite_url)
    assert (len(after.mentions), after.sightings) == (
        len(after_first.mentions),
        after_first.sightings,
    )
    assert {m["source_key"] for m in after.mentions} == {
        m["source_key"] for m in after_first.mentions
    }
    assert (await health_of(sqlite_url, "alert")).error_streak == 0


async def test_watchlist_routes_every_hit_even_without_a_query_match(
    local_server: LocalServer, make_daemon: Callable[..., Daemon], sqlite_url: str
) -> None:
    """The brand watchlist's query (acme cloud) matches none of the Slack alert's hits."""
    serve_alert(local_server)
    unrouted = make_daemon(sources=[alert_source(local_server)])
    (outcome,) = await unrouted.run_once()
    assert outcome.stats is not None and (outcome.stats.fetched, outcome.stats.matched) == (20, 0)

    routed = make_daemon(sources=[alert_source(local_server, watchlist="brand")])
    (outcome,) = await routed.run_once()
    assert outcome.stats is not None and outcome.stats.matched == 20
    found = await stored(sqlite_url)
    assert found.mentions and all(m["watchlists"] == ["brand"] for m in found.mentions)


async def test_an_unchanged_alert_feed_answers_304_and_keeps_its_items(
    local_server: LocalServer, make_daemon: Callable[..., Daemon], sqlite_url: str
) -> None:
    async def conditional(request: web.Request) -> web.Response:
        if request.headers.get("If-None-Match") == '"alert-1"':
            return web.Response(status=304)
        return web.Response(
            body=ALERT, content_type="application/atom+xml", headers={"ETag": '"alert-1"'}
        )

    local_server.route(ALERT_PATH, conditional)
    config = make_daemon(sources=[alert_source(local_server, watchlist="brand")]).config
    await make_daemon(config=config).run_once()
    (again,) = await make_daemon(config=config).run_once()
    assert again.ok and again.stats is not None and again.stats.fetched == 0
    health = await health_of(sqlite_url, "alert")
    assert health.stats == {"unchanged_items": 20}
