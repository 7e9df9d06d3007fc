"""Hacker News (Algolia HN Search) against a local stand-in serving documented-shape payloads."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from aiohttp import web

from monitor.daemon import Daemon
from sources.base import SourceState
from sources.http import HttpClient
from tests.helpers.servers import LocalServer
from tests.helpers.source_harness import FIXTURES, build_source, http_client, recorded

__all__ = ["http_client"]

EMPTY = "search_by_date_empty.json"


def fixture(name: str) -> dict[str, Any]:
    return json.loads((FIXTURES / "hackernews" / name).read_text(encoding="utf-8"))


def serve_algolia(server: LocalServer, pages_by_query: dict[str, list[str]]) -> None:
    """search_by_date answers with the requested page of the fixtures listed for the query."""

    async def handler(request: web.Request) -> web.Response:
        pages = pages_by_query.get(request.query.get("query", ""), [])
        page = int(request.query.get("page", "0"))
        return web.json_response(fixture(pages[page] if page < len(pages) else EMPTY))

    server.route("/api/v1/search_by_date", handler)


def hn_section(server: LocalServer, **extra: Any) -> dict[str, Any]:
    return {
        "type": "hackernews",
        "name": "hn",
        "api_url": server.url("/api/v1"),
        "every": "1m",
        **extra,
    }


def searches(server: LocalServer) -> list[dict[str, str]]:
    return [r.query for r in server.requests if r.path == "/api/v1/search_by_date"]


async def test_first_poll_reads_the_newest_page_per_term_and_stores_matches(
    local_server: LocalServer, make_daemon: Callable[..., Daemon]
) -> None:
    pages = ["search_by_date_page1_of_2.json", "search_by_date_page2_of_2.json"]
    serve_algolia(local_server, {"acme cloud": pages, "acmecloud": pages[:1]})
    daemon = make_daemon(sources=[hn_section(local_server)])
    (outcome,) = await daemon.run_once()
    assert outcome.ok and outcome.stats
    # The same two hits came back for both terms: fetched once each.
    assert (outcome.stats.fetched, outcome.stats.new) == (2, 2)
    asked = searches(local_server)
    # Every watchlist's positive terms, the competitors' included.
    assert [q["query"] for q in asked] == ["acme cloud", "acmecloud", "globex"]
    for query in asked:
        assert query["tags"] == "(story,comment)"
        assert query["page"] == "0" and query["hitsPerPage"] == "100"
        assert "numericFilters" not in query
    seen = await recorded(make_daemon, daemon.config, "hn")
    by_key = {m["source_key"]: m for m in seen.mentions}
    comment = by_key["hackernews:41000003"]
    assert comment["url"] == "https://news.ycombinator.com/item?id=41000003"
    assert comment["title"] == ""  # the story's title is context, not the comment's words
    assert comment["text"] == (
        "We moved off Acme Cloud last month / support never answered our tickets.\nAvoid."
    )
    assert comment["thread_key"] == "hackernews:41000001"
    assert comment["author"] == "jdoe"
    assert comment["author_url"] == "https://news.ycombinator.com/user?id=jdoe"
    assert comment["extra"]["story_title"].startswith("Acme Cloud raises prices")
    assert comment["published_at"].replace(tzinfo=UTC) == datetime.fromtimestamp(1718000300, UTC)
    story = by_key["hackernews:41000001"]
    assert story["title"] == "Acme Cloud raises prices by 40% for small teams"
    assert story["extra"]["link"] == "https://techblog.example/2024/06/acme-cloud-pricing"
    assert story["thread_key"] == "hackernews:41000001"
    assert seen.state.cursor["watermark"]["newest"] == 1718000300
    assert seen.health.stats["requests"] == 3
    assert "limits" not in seen.health.stats  # limits are data of the adapter, not of a run


async def test_incremental_poll_asks_from_the_cursor_and_returns_no_duplicates(
    local_server: LocalServer,
    make_daemon: Callable[..., Daemon],
    database_url: str,
) -> None:
    first = {"acme cloud": ["search_by_date_page1_of_2.json"], "acmecloud": []}
    serve_algolia(local_server, first)
    daemon = make_daemon(database=database_url, sources=[hn_section(local_server)])
    await daemon.run_once()
    local_server.requests.clear()
    # The next answer repeats 41000003 (inside the look-back overlap) and adds 41000010.
    serve_algolia(
        local_server,
        {"acme cloud": ["search_by_date_new_hit_and_overlap.json"], "acmecloud": []},
    )
    again = make_daemon(config=daemon.config)
    (outcome,) = await again.run_once()
    assert outcome.stats and (outcome.stats.fetched, outcome.stats.new) == (1, 1)
    # 15 minutes of overlap before the newest hit already seen (1718000300).
    assert {q["numericFilters"] for q in searches(local_server)} == {"created_at_i>1717999400"}
    seen = await recorded(make_daemon, daemon.config, "hn")
    assert sorted(m["source_key"] for m in seen.mentions) == [
        "hackernews:41000001",
        "hackernews:41000003",
        "hackernews:41000010",
    ]
    assert seen.state.cursor["watermark"]["newest"] == 1718000900


async def test_later_polls_follow_pages_up_to_max_pages(
    local_server: LocalServer, make_config: Callable[..., Any], http_client: HttpClient
) -> None:
    pages = ["search_by_date_page1_of_2.json", "search_by_date_page2_of_2.json"]
    serve_algolia(local_server, {"acme cloud": pages})
    state = SourceState(cursor={"watermark": {"newest": 1717990000, "seen": {}}}, first_run=False)
    source = build_source(
        make_config(sources=[hn_section(local_server, query='"acme cloud"')]), http_client
    )
    result = await source.fetch(state)
    assert [m.source_key.split(":")[1] for m in result.mentions] == [
        "41000003",
        "41000001",
        "40999990",
        "40999980",
    ]
    assert [q["page"] for q in searches(local_server)] == ["0", "1"]
    assert not result.warnings

    limited = build_source(
        make_config(sources=[hn_section(local_server, query='"acme cloud"', max_pages=1)]),
        http_client,
    )
    result = await limited.fetch(state)
    assert len(result.mentions) == 2
    assert result.warnings and "more than 1 pages of new hits" in result.warnings[0]


async def test_watchlist_narrows_the_search_but_results_must_still_match(
    local_server: LocalServer, make_daemon: Callable[..., Daemon]
) -> None:
    """Algolia matches "ACME protocol: … in the cloud" for `acme cloud`; the brand's query
    does not. `watchlist: brand` must not turn the shared matcher off."""
    serve_algolia(local_server, {"acme cloud": ["search_by_date_page2_of_2.json"]})
    section = hn_section(local_server, watchlist="brand", query='"acme cloud"')
    daemon = make_daemon(sources=[section])
    (outcome,) = await daemon.run_once()
    assert outcome.ok and outcome.stats
    assert (outcome.stats.fetched, outcome.stats.matched, outcome.stats.new) == (2, 1, 1)
    seen = await recorded(make_daemon, daemon.config, "hn")
    (stored,) = seen.mentions
    assert stored["source_key"] == "hackernews:40999990"  # "The acmecloud CLI is …"
    assert stored["watchlists"] == ["brand"]


async def test_query_and_search_keys_shape_the_request(
    local_server: LocalServer, make_config: Callable[..., Any], http_client: HttpClient
) -> None:
    serve_algolia(local_server, {})
    config = make_config(
        sources=[hn_section(local_server, query='"acme cloud" -jobs', search=["story"])]
    )
    result = await build_source(config, http_client).fetch(SourceState())
    assert result.mentions == []
    (query,) = searches(local_server)
    assert (query["query"], query["tags"]) == ("acme cloud", "story")


async def test_rate_limit_is_recorded_with_the_time_it_clears(
    local_server: LocalServer, make_daemon: Callable[..., Daemon]
) -> None:
    local_server.serve_bytes(
        "/api/v1/search_by_date",
        b'{"message":"Too many requests","status":429}',
        status=429,
        content_type="application/json",
        headers={"Retry-After": "600"},
    )
    daemon = make_daemon(sources=[hn_section(local_server)])
    before = datetime.now(UTC)
    (outcome,) = await daemon.run_once()
    assert not outcome.ok and outcome.error.startswith("hn: rate limited (HTTP 429)")
    seen = await recorded(make_daemon, daemon.config, "hn")
    assert seen.health.error_streak == 1
    assert seen.health.retry_after_until is not None
    assert seen.health.retry_after_until >= before + timedelta(seconds=599)
    assert seen.health.next_check_at >= before + timedelta(seconds=599)


async def test_access_denied_names_the_config_key(
    local_server: LocalServer, make_daemon: Callable[..., Daemon]
) -> None:
    local_server.serve_bytes("/api/v1/search_by_date", b"blocked", status=403)
    daemon = make_daemon(sources=[hn_section(local_server)])
    before = datetime.now(UTC)
    (outcome,) = await daemon.run_once()
    assert "hn: access denied (HTTP 403)" in outcome.error
    assert "sources['hn'].api_url" in outcome.error
    seen = await recorded(make_daemon, daemon.config, "hn")
    # Permanent errors wait at least half an hour instead of hammering.
    assert seen.health.next_check_at >= before + timedelta(minutes=25)


async def test_malformed_json_is_a_clear_error_and_the_daemon_carries_on(
    local_server: LocalServer, make_daemon: Callable[..., Daemon]
) -> None:
    local_server.serve_bytes(
        "/api/v1/search_by_date", b'{"hits": [', content_type="application/json"
    )
    local_server.serve_bytes(
        "/other/search_by_date", b'{"results": []}', content_type="application/json"
    )
    daemon = make_daemon(
        sources=[
            hn_section(local_server),
            {**hn_section(local_server), "name": "hn2", "api_url": local_server.url("/other")},
        ]
    )
    outcomes = {o.source: o for o in await daemon.run_once()}
    assert outcomes["hn"].error.startswith("hn: malformed JSON from HN Search search_by_date")
    assert "check api_url" in outcomes["hn"].error
    assert "unexpected response from HN Search search_by_date: no `hits` list" in (
        outcomes["hn2"].error
    )
    seen = await recorded(make_daemon, daemon.config, "hn")
    assert seen.health.error_streak == 1 and seen.mentions == []


async def test_empty_result_is_a_successful_poll(
    local_server: LocalServer, make_daemon: Callable[..., Daemon]
) -> None:
    serve_algolia(local_server, {})
    daemon = make_daemon(sources=[hn_section(local_server)])
    (outcome,) = await daemon.run_once()
    assert outcome.ok and outcome.stats and outcome.stats.fetched == 0
    seen = await recorded(make_daemon, daemon.config, "hn")
    assert seen.health.error_streak == 0 and seen.health.last_success_at is not None
    assert seen.state.cursor == {"watermark": {}}


async def test_replies_lists_the_brand_accounts_comments_by_thread(
    local_server: LocalServer, make_config: Callable[..., Any], http_client: HttpClient
) -> None:
    local_server.route(
        "/api/v1/search_by_date",
        lambda _request: _json(fixture("comments_by_brand_author.json")),
    )
    source = build_source(make_config(sources=[hn_section(local_server)]), http_client)
    since = datetime.fromtimestamp(1718001000, UTC)
    replies = await source.replies("acmecloud", since)
    (query,) = searches(local_server)
    assert query["tags"] == "comment,author_acmecloud"
    assert query["numericFilters"] == "created_at_i>1718000999"
    assert [(r.thread_key, r.in_reply_to_key) for r in replies] == [
        ("hackernews:41000001", "hackernews:41000010"),
        ("hackernews:41000001", "hackernews:41000003"),
    ]
    assert replies[1].url == "https://news.ycombinator.com/item?id=41000020"
    assert replies[1].published_at == datetime.fromtimestamp(1718001500, UTC)
    assert replies[1].author == "acmecloud"
    # The thread key is the one the mention of the customer's comment carries.
    hit = fixture("search_by_date_page1_of_2.json")["hits"][0]
    mention = source.hit_to_mention(hit)  # type: ignore[attr-defined]
    assert mention.thread_key == replies[1].thread_key


async def _json(data: Any) -> web.Response:
    return web.json_response(data)
