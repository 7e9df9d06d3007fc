"""Google News: searches built from watchlists, opaque links kept, same story stored once."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest

from monitor.config import Config, ConfigError, parse_config
from monitor.daemon import Daemon
from sources.base import SourceContext
from sources.google_news import GoogleNewsSource, google_query, strip_publisher, when
from sources.http import HttpClient
from tests.helpers.feeds import FEED_FIXTURES, health_of, stored
from tests.helpers.servers import LocalServer

TOP_STORIES = (FEED_FIXTURES / "google_news_top_stories_fr_be_2020.rss.xml").read_bytes()
# Today's links carry an opaque token; built here in the documented shape of a search feed.
OPAQUE = "CBMiVkFVX3lxTE1GY2ZhcFRKRlZ0dFZxc0ZQcjRJcHNCV3ZnZ2s0SUpvdUQ5a0lTRE9tQ3ZYQ0Vz"


def search_feed(items: list[dict[str, str]]) -> bytes:
    parts = [
        f"<item><title>{i['title']} - {i['publisher']}</title>"
        f"<link>https://news.google.com/rss/articles/{i['token']}?oc=5</link>"
        f"<guid isPermaLink='false'>{i['token']}</guid>"
        "<pubDate>Mon, 23 Nov 2026 10:00:00 GMT</pubDate>"
        f'<description>&lt;a href="https://news.google.com/rss/articles/{i["token"]}?oc=5"&gt;'
        f'{i["title"]}&lt;/a&gt;&amp;nbsp;&amp;nbsp;&lt;font color="#6f6f6f"&gt;{i["publisher"]}'
        "&lt;/font&gt;</description>"
        f'<source url="{i["site"]}">{i["publisher"]}</source></item>'
        for i in items
    ]
    return (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?><rss version="2.0" '
        'xmlns:media="http://search.yahoo.com/mrss/"><channel><generator>NFE/5.0</generator>'
        "<title>search - Google News</title><language>en-US</language>"
        f"{''.join(parts)}</channel></rss>"
    ).encode()


OUTAGE = {
    "title": "Acme Cloud outage",
    "publisher": "The Register",
    "site": "https://www.theregister.com",
    "token": OPAQUE,
}


def news_source(server: LocalServer, **extra: Any) -> dict[str, Any]:
    return {"type": "google_news", "name": "news", "api_url": server.url("/rss/search"), **extra}


def built(make_config: Callable[..., Config], **source: Any) -> GoogleNewsSource:
    return built_from(make_config(sources=[{"type": "google_news", "name": "news", **source}]))


def built_from(config: Config) -> GoogleNewsSource:
    context = SourceContext(HttpClient(config.http), config.watchlists, config.brand)
    return GoogleNewsSource("news", config.sources[0], context)


# ----------------------------------------------------------------------- searches


def test_one_search_per_watchlist_from_its_positive_terms(
    make_config: Callable[..., Config],
) -> None:
    source = built(make_config)
    assert source.searches() == ['"acme cloud" OR acmecloud when:1d', "globex when:1d"]


def test_exclusions_and_filters_do_not_reach_the_search(
    make_config: Callable[..., Config],
) -> None:
    config = make_config(
        watchlists=[
            {
                "name": "brand",
                "query": '("acme cloud" OR acmecloud) -jobs site:news.test lang:en "एक्मे क्लाउड"',
            }
        ],
        sources=[{"type": "google_news", "name": "news"}],
    )
    assert built_from(config).searches() == ['"acme cloud" OR acmecloud OR "एक्मे क्लाउड" when:1d']


def test_a_routed_source_searches_its_watchlist_only(make_config: Callable[..., Config]) -> None:
    assert built(make_config, watchlist="competitors").searches() == ["globex when:1d"]


def test_the_source_query_wins_and_recency_is_hours_or_days(
    make_config: Callable[..., Config],
) -> None:
    source = built(make_config, query='"acme cloud" -jobs', recency="36h")
    assert source.searches() == ['"acme cloud" -jobs when:36h']
    assert when(timedelta(days=7)) == "7d" and when(timedelta(minutes=90)) == "2h"


def test_recency_below_an_hour_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="less than the last hour"):
        parse_config(
            "brand: {name: A}\nwatchlists: [{name: b, query: a}]\n"
            "sources: [{type: google_news, recency: 30m}]\n",
            env={},
        )


@pytest.mark.parametrize(
    ("terms", "query"),
    [
        (["acme cloud", "acmecloud"], '"acme cloud" OR acmecloud'),
        (['say "hi"', "acme.io"], '"say hi" OR "acme.io"'),
        (["ভালো"], "ভালো"),
        (["एक्मे"], "एक्मे"),
        (["", "a", "a"], "a"),
    ],
)
def test_google_query(terms: list[str], query: str) -> None:
    assert google_query(terms) == query


def test_strip_publisher() -> None:
    assert (
        strip_publisher("Acme Cloud outage - The Register", "The Register") == "Acme Cloud outage"
    )
    assert strip_publisher("Pros - and cons", "Other") == "Pros - and cons"
    assert strip_publisher(" - X", "X") == " - X"


# ------------------------------------------------------------------ end to end


async def test_requests_carry_the_edition(
    local_server: LocalServer, make_daemon: Callable[..., Daemon]
) -> None:
    local_server.serve_bytes("/rss/search", search_feed([OUTAGE]))
    daemon = make_daemon(sources=[news_source(local_server, hl="hi", gl="in", watchlist="brand")])
    (outcome,) = await daemon.run_once()
    assert outcome.ok
    (request,) = local_server.requests
    assert request.query == {
        "q": '"acme cloud" OR acmecloud when:1d',
        "hl": "hi",
        "gl": "IN",
        "ceid": "IN:hi",
    }


async def test_opaque_links_are_stored_as_given_with_a_headline_identity(
    local_server: LocalServer, make_daemon: Callable[..., Daemon], sqlite_url: str
) -> None:
    local_server.serve_bytes("/rss/search", search_feed([OUTAGE]))
    daemon = make_daemon(sources=[news_source(local_server, watchlist="brand")])
    (outcome,) = await daemon.run_once()
    assert outcome.ok and outcome.stats is not None and outcome.stats.new == 1
    (mention,) = (await stored(sqlite_url)).mentions
    assert mention["url"] == f"https://news.google.com/rss/articles/{OPAQUE}?oc=5"
    assert mention["title"] == "Acme Cloud outage"
    assert mention["author"] == "The Register"
    assert mention["source_key"] == f"google_news:{OPAQUE}"
    assert mention["text"] == "Acme Cloud outage The Register"


async def test_the_real_2020_feed_and_its_decodable_token(
    local_server: LocalServer, make_daemon: Callable[..., Daemon], sqlite_url: str
) -> None:
    local_server.serve_bytes("/rss/search", TOP_STORIES)
    daemon = make_daemon(sources=[news_source(local_server, hl="fr", gl="BE", watchlist="brand")])
    (outcome,) = await daemon.run_once()
    assert outcome.ok and outcome.stats is not None and outcome.stats.new == 1
    (mention,) = (await stored(sqlite_url)).mentions
    assert mention["title"] == (
        "Coronavirus en Belgique: 200 cas détectés au total, un nombre limité de tests "
        "effectués par manque de réactifs"
    )
    assert mention["author"] == "RTBF" and mention["source_key"] == "google_news:52782335008021"
    assert mention["url"].startswith("https://news.google.com/__i/rss/rd/articles/CBMiiwFodHRw")
    assert mention["canonical_url"] == (
        "https://www.rtbf.be/info/societe/detail_coronavirus-en-belgique-200-cas-detectes-au-total"
        "-la-circulation-du-virus-reste-limitee?id=10450793"
    )


async def test_the_same_story_from_google_news_and_google_alerts_is_one_mention(
    local_server: LocalServer, make_daemon: Callable[..., Daemon], sqlite_url: str
) -> None:
    """Three words of title (too short for dedup's title key) and no shared URL: only the
    headline+publisher identity can tell these are one story."""
    local_server.serve_bytes("/rss/search", search_feed([OUTAGE]))
    alert = (
        '<?xml version="1.0" encoding="utf-8"?><feed xmlns="http://www.w3.org/2005/Atom">'
        "<title>Google Alert - acme cloud</title><entry>"
        "<id>tag:google.com,2013:googlealerts/feed:1</id>"
        '<title type="html">&lt;b&gt;Acme Cloud&lt;/b&gt; outage</title>'
        '<link href="https://www.google.com/url?rct=j&amp;sa=t&amp;url=https://www.theregister.com'
        '/2026/11/23/acme_cloud_outage/&amp;ct=ga&amp;cd=x&amp;usg=y"/>'
        "<published>2026-11-23T10:05:00Z</published><updated>2026-11-23T10:05:00Z</updated>"
        '<content type="html">Customers of &lt;b&gt;Acme Cloud&lt;/b&gt; lost access.</content>'
        "<author><name></name></author></entry></feed>"
    )
    local_server.serve_bytes("/alert", alert.encode(), content_type="application/atom+xml")
    daemon = make_daemon(
        sources=[
            news_source(local_server, watchlist="brand"),
            {"type": "google_alerts", "name": "alert", "url": local_server.url("/alert")},
        ],
        daemon={"max_concurrent_sources": 1},
    )
    outcomes = await daemon.run_once()
    assert all(o.ok for o in outcomes)
    found = await stored(sqlite_url)
    assert len(found.mentions) == 1 and found.sightings == 2


async def test_several_searches_are_merged_without_duplicates(
    local_server: LocalServer, make_daemon: Callable[..., Daemon], sqlite_url: str
) -> None:
    rival = {**OUTAGE, "title": "Globex buys a data centre", "token": "CBMiRival"}
    local_server.serve_bytes("/rss/search", search_feed([OUTAGE, rival]))
    daemon = make_daemon(sources=[news_source(local_server)])
    (outcome,) = await daemon.run_once()
    assert len(local_server.requests) == 2  # one per watchlist
    assert outcome.stats is not None and outcome.stats.fetched == 2  # not 4
    health = await health_of(sqlite_url, "news")
    assert health.stats == {"searches": 2, "entries": 2}


async def test_nothing_to_search_for_is_a_permanent_error(
    local_server: LocalServer, make_daemon: Callable[..., Daemon]
) -> None:
    daemon = make_daemon(
        watchlists=[{"name": "anywhere", "query": "site:acme.example"}],
        sources=[news_source(local_server)],
    )
    (outcome,) = await daemon.run_once()
    assert not outcome.ok and outcome.error.startswith("news: nothing to search for — set `query`")
    assert local_server.requests == []


async def test_a_consent_page_is_an_error_not_an_empty_result(
    local_server: LocalServer, make_daemon: Callable[..., Daemon]
) -> None:
    local_server.serve_bytes(
        "/rss/search",
        b"<html><head><title>Before you continue</title></head><body>consent</body></html>",
        content_type="text/html",
    )
    daemon = make_daemon(sources=[news_source(local_server, watchlist="brand")])
    (outcome,) = await daemon.run_once()
    assert not outcome.ok and "got an HTML page titled 'Before you continue'" in outcome.error
