"""Reddit: recorded OAuth exchanges and a real Atom feed, replayed from a local server."""

from __future__ import annotations

import base64
import copy
import json
import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from monitor.config import Config
from monitor.daemon import Daemon
from sources.base import SourceState
from sources.http import HttpClient
from tests.conftest import base_config_dict, deep_merge
from tests.helpers.feeds import stored
from tests.helpers.process import run_monitor, write_config
from tests.helpers.servers import LocalServer
from tests.helpers.source_harness import (
    FIXTURES,
    build_source,
    http_client,
    json_response,
    load_cassette,
    recorded,
)

__all__ = ["http_client"]

SEARCH = load_cassette(FIXTURES / "reddit" / "oauth_search_cassette.json")
TOKEN, LISTING = SEARCH
USER_COMMENTS = load_cassette(FIXTURES / "reddit" / "oauth_user_comments_new_cassette_first10.json")
ATOM = (FIXTURES / "reddit" / "r_minecraft_2025.atom.xml").read_bytes()
POSTS = [child["data"] for child in LISTING.json()["data"]["children"]]
OAUTH_WATCHLIST = [{"name": "brand", "query": "oauth*", "owner": "priya"}]


def reddit_section(server: LocalServer, **extra: Any) -> dict[str, Any]:
    return {
        "type": "reddit",
        "name": "reddit",
        "every": "1m",
        "client_id": "p-jcoLKBynTLew",
        "client_secret": "gko_LXELoV07ZBNUXrvWZfzE3aI",
        "username": "acme_social",
        "api_url": server.base_url,
        "token_url": server.url("/api/v1/access_token"),
        "public_url": server.base_url,
        **extra,
    }


def serve_token(server: LocalServer, *, expires_in: int | None = None) -> None:
    body = TOKEN.json()
    if expires_in is not None:
        body["expires_in"] = expires_in
    server.route("/api/v1/access_token", json_response(body))


def listing(posts: list[dict[str, Any]], after: str | None = None) -> dict[str, Any]:
    data = copy.deepcopy(LISTING.json())
    data["data"]["children"] = [{"kind": "t3", "data": post} for post in posts]
    data["data"]["after"] = after
    return data


def calls(server: LocalServer, path: str) -> list[Any]:
    return [r for r in server.requests if r.path == path]


async def test_first_poll_gets_a_token_searches_new_posts_and_stores_matches(
    local_server: LocalServer,
    make_daemon: Callable[..., Daemon],
    database_url: str,
) -> None:
    serve_token(local_server)
    local_server.route("/search", lambda _request: _replay(LISTING))
    daemon = make_daemon(
        database=database_url, watchlists=OAUTH_WATCHLIST, sources=[reddit_section(local_server)]
    )
    (outcome,) = await daemon.run_once()
    assert outcome.ok and outcome.stats
    # Words are letters and digits: `set_oauth_app_info` contains the word "oauth".
    expected = [
        p for p in POSTS if re.search(r"(?<![a-z0-9])oauth", f"{p['title']}\n{p['selftext']}", re.I)
    ]
    assert (outcome.stats.fetched, outcome.stats.new) == (31, len(expected)) == (31, 30)

    (token,) = calls(local_server, "/api/v1/access_token")
    assert token.method == "POST" and token.body == b"grant_type=client_credentials"
    basic = base64.b64encode(b"p-jcoLKBynTLew:gko_LXELoV07ZBNUXrvWZfzE3aI").decode()
    assert token.headers["Authorization"] == f"Basic {basic}"
    assert token.headers["User-Agent"] == "server:brand-monitor:0.1.0 (by /u/acme_social)"
    (search,) = calls(local_server, "/search")
    assert search.headers["Authorization"] == "bearer <ACCESS_TOKEN>"
    assert search.headers["User-Agent"] == "server:brand-monitor:0.1.0 (by /u/acme_social)"
    assert search.query == {
        "q": "oauth",
        "sort": "new",
        "type": "link",
        "raw_json": "1",
        "limit": "100",
    }

    seen = await recorded(make_daemon, daemon.config, "reddit")
    assert sorted(m["source_key"] for m in seen.mentions) == sorted(
        f"reddit:{p['name']}" for p in expected
    )
    post = next(m for m in seen.mentions if m["source_key"] == "reddit:t3_57fb27")
    assert post["url"] == (
        "https://www.reddit.com/r/redditdev/comments/57fb27/"
        "do_i_need_oauth2_authentication_to_use_reddit_api/"
    )
    assert post["title"] == "Do I need OAuth2 authentication to use Reddit API?"
    assert post["author"] == "davidkohcw"
    assert post["thread_key"] == "reddit:t3_57fb27"
    assert post["extra"]["subreddit"] == "r/redditdev"
    assert post["published_at"].replace(tzinfo=UTC) == datetime.fromtimestamp(1476432268, UTC)
    assert seen.health.degraded is None
    assert seen.health.stats["mode"] == "oauth"
    assert seen.health.stats["ratelimit_remaining"] == 151.0
    assert seen.state.cursor["watermark"]["newest"] == max(p["created_utc"] for p in POSTS)


async def test_incremental_poll_pages_back_to_the_cursor_without_duplicates(
    local_server: LocalServer, make_config: Callable[..., Config], http_client: HttpClient
) -> None:
    serve_token(local_server)
    newest = sorted(POSTS, key=lambda p: -p["created_utc"])
    pages = {
        None: listing(newest[:15], after=newest[14]["name"]),
        newest[14]["name"]: listing(newest[15:]),
    }

    async def search(request: web.Request) -> web.Response:
        return web.json_response(pages[request.query.get("after")])

    local_server.route("/search", search)
    config = make_config(watchlists=OAUTH_WATCHLIST, sources=[reddit_section(local_server)])
    source = build_source(config, http_client)
    # A cursor older than every post: both pages are read, each post once.
    state = SourceState(cursor={"watermark": {"newest": 1300000000, "seen": {}}}, first_run=False)
    result = await source.fetch(state)
    assert len(result.mentions) == 31
    assert [r.query.get("after") for r in calls(local_server, "/search")] == [
        None,
        newest[14]["name"],
    ]

    # The next poll sees the same newest page again plus one new post: only that one is new.
    fresh = dict(
        newest[0], name="t3_zzz999", id="zzz999", created_utc=newest[0]["created_utc"] + 60
    )
    pages[None] = listing([fresh, *newest[:14]], after=newest[14]["name"])
    local_server.requests.clear()
    again = await source.fetch(SourceState(cursor=result.cursor, first_run=False))
    assert [m.source_key for m in again.mentions] == ["reddit:t3_zzz999"]
    # It stopped paging once it passed the cursor, and reused the cached token.
    assert len(calls(local_server, "/search")) == 1
    assert calls(local_server, "/api/v1/access_token") == []


async def test_the_token_is_cached_refreshed_near_expiry_and_after_a_401(
    local_server: LocalServer, make_config: Callable[..., Config], http_client: HttpClient
) -> None:
    serve_token(local_server)
    answers = [web.json_response({"message": "Unauthorized", "error": 401}, status=401)]

    async def search(_request: web.Request) -> web.Response:
        return answers.pop() if answers else web.json_response(listing([]))

    local_server.route("/search", search)
    source = build_source(make_config(sources=[reddit_section(local_server)]), http_client)
    await source.fetch(SourceState())  # 401 → new token → retried once and succeeds
    assert len(calls(local_server, "/api/v1/access_token")) == 2
    await source.fetch(SourceState())
    assert len(calls(local_server, "/api/v1/access_token")) == 2  # cached for its hour

    serve_token(local_server, expires_in=30)  # shorter than the refresh margin
    short = build_source(make_config(sources=[reddit_section(local_server)]), http_client)
    await short.fetch(SourceState())
    await short.fetch(SourceState())
    assert len(calls(local_server, "/api/v1/access_token")) == 4


@pytest.mark.parametrize(
    "answer",
    [
        web.json_response({"message": "Unauthorized", "error": 401}, status=401),
        web.json_response({"error": "invalid_grant"}),
    ],
    ids=["http-401", "error-body"],
)
async def test_bad_credentials_name_the_config_keys_and_never_the_secret(
    local_server: LocalServer, make_daemon: Callable[..., Daemon], answer: web.Response
) -> None:
    local_server.route("/api/v1/access_token", lambda _request: _ready(answer))
    daemon = make_daemon(sources=[reddit_section(local_server)])
    before = datetime.now(UTC)
    (outcome,) = await daemon.run_once()
    assert outcome.error.startswith("reddit: access denied (HTTP 401) by the token endpoint")
    assert "check sources['reddit'].client_id / client_secret" in outcome.error
    assert "gko_LXELoV07ZBNUXrvWZfzE3aI" not in outcome.error
    seen = await recorded(make_daemon, daemon.config, "reddit")
    assert seen.health.error_streak == 1
    assert seen.health.next_check_at >= before + timedelta(minutes=25)
    assert calls(local_server, "/search") == []


async def test_without_credentials_the_public_feed_is_read_and_health_says_degraded(
    local_server: LocalServer, make_daemon: Callable[..., Daemon], tmp_path: Path, sqlite_url: str
) -> None:
    local_server.serve_bytes("/search.rss", ATOM, content_type="application/atom+xml")
    section = reddit_section(local_server, client_id="", client_secret="")
    watchlists = [{"name": "brand", "query": '"vibrant visuals"', "owner": "priya"}]
    daemon = make_daemon(watchlists=watchlists, sources=[section])
    (outcome,) = await daemon.run_once()
    assert outcome.ok and outcome.stats and outcome.stats.new == 1
    (feed,) = calls(local_server, "/search.rss")
    assert feed.query == {"q": '"vibrant visuals"', "sort": "new", "limit": "100"}
    assert feed.headers["User-Agent"] == "server:brand-monitor:0.1.0 (by /u/acme_social)"
    assert calls(local_server, "/api/v1/access_token") == []

    seen = await recorded(make_daemon, daemon.config, "reddit")
    (post,) = seen.mentions
    # The same identity the API would give, so switching modes never duplicates a post.
    assert post["source_key"] == "reddit:t3_1ldu6hr" and post["thread_key"] == "reddit:t3_1ldu6hr"
    assert post["author"] == "Mlakuss"
    assert post["text"].startswith("Hello,\nAs we are seeing a huge number of identical threads")
    assert "submitted by" not in post["text"]
    assert "no OAuth credentials" in (seen.health.degraded or "")
    assert seen.health.stats["mode"] == "public-feed"

    # `monitor sources` shows it as degraded, with the reason and the limits.
    path = write_config(
        tmp_path / "config.yaml",
        deep_merge(base_config_dict(sqlite_url), {"watchlists": watchlists, "sources": [section]}),
    )
    code, out, err = await run_monitor(tmp_path, "sources", "--json", "-c", str(path))
    assert code == 0, err
    row = json.loads(out.splitlines()[0])
    assert row["status"] == "degraded"
    assert "set sources['reddit'].client_id / client_secret" in row["degraded"]
    assert row["limits"]["requests_per_minute"] == 10 and "limits" not in row["stats"]


VIBRANT = [{"name": "brand", "query": '"vibrant visuals"', "owner": "priya"}]


def public_section(server: LocalServer) -> dict[str, Any]:
    return reddit_section(server, client_id="", client_secret="")


async def test_a_public_feed_body_naming_a_local_file_is_not_opened(
    local_server: LocalServer, make_daemon: Callable[..., Daemon], tmp_path: Path, sqlite_url: str
) -> None:
    """feedparser opens a path given as bare bytes; the feed goes through parse_feed."""
    secret = tmp_path / "secret.atom.xml"
    secret.write_bytes(ATOM)  # would match the watchlist, if it were ever read
    local_server.serve_bytes("/search.rss", str(secret).encode(), content_type="text/plain")
    daemon = make_daemon(watchlists=VIBRANT, sources=[public_section(local_server)])
    (outcome,) = await daemon.run_once()
    assert outcome.error.startswith(
        "reddit: the public feed /search.rss is not a usable feed: "
        "the response is not an RSS or Atom feed"
    )
    assert "set sources['reddit'].client_id / client_secret" in outcome.error
    assert (await stored(sqlite_url)).mentions == []


async def test_a_block_page_served_as_200_is_an_error_not_zero_posts(
    local_server: LocalServer, make_daemon: Callable[..., Daemon]
) -> None:
    page = b"<!doctype html><html><head><title>Blocked</title></head><body>whoa</body></html>"
    local_server.serve_bytes("/search.rss", page, content_type="text/html")
    daemon = make_daemon(watchlists=VIBRANT, sources=[public_section(local_server)])
    (outcome,) = await daemon.run_once()
    assert outcome.error.startswith(
        "reddit: the public feed /search.rss is not a usable feed: "
        "got an HTML page titled 'Blocked' instead of a feed — Reddit may have answered with "
        "a block page; set sources['reddit'].client_id / client_secret"
    )


async def test_a_403_from_the_public_feed_names_the_credential_keys(
    local_server: LocalServer, make_daemon: Callable[..., Daemon]
) -> None:
    local_server.serve_bytes("/search.rss", b"<html>blocked</html>", status=403)
    daemon = make_daemon(watchlists=VIBRANT, sources=[public_section(local_server)])
    before = datetime.now(UTC)
    (outcome,) = await daemon.run_once()
    assert outcome.error.startswith(
        "reddit: the public feed /search.rss refused this machine (HTTP 403) — "
    )
    assert "set sources['reddit'].client_id / client_secret" in outcome.error
    seen = await recorded(make_daemon, daemon.config, "reddit")
    # Retrying soon cannot help; only the operator can: the permanent-error backoff.
    assert seen.health.next_check_at >= before + timedelta(minutes=25)


async def test_a_429_from_the_public_feed_is_recorded_with_the_time_it_clears(
    local_server: LocalServer, make_daemon: Callable[..., Daemon]
) -> None:
    local_server.serve_bytes(
        "/search.rss", b"Too Many Requests", status=429, headers={"Retry-After": "600"}
    )
    daemon = make_daemon(watchlists=VIBRANT, sources=[public_section(local_server)])
    before = datetime.now(UTC)
    (outcome,) = await daemon.run_once()
    assert outcome.error.startswith("reddit: rate limited (HTTP 429)")
    seen = await recorded(make_daemon, daemon.config, "reddit")
    assert seen.health.error_streak == 1
    assert seen.health.retry_after_until is not None
    assert seen.health.retry_after_until >= before + timedelta(seconds=599)
    assert seen.health.next_check_at >= seen.health.retry_after_until


async def test_a_403_from_the_api_falls_back_to_the_public_feed(
    local_server: LocalServer, make_config: Callable[..., Config], http_client: HttpClient
) -> None:
    serve_token(local_server)
    local_server.serve_bytes("/search", b'{"message": "Forbidden", "error": 403}', status=403)
    local_server.serve_bytes("/search.rss", ATOM, content_type="application/atom+xml")
    source = build_source(make_config(sources=[reddit_section(local_server)]), http_client)
    result = await source.fetch(SourceState())
    assert [m.source_key for m in result.mentions] == ["reddit:t3_1ldu6hr"]
    assert result.degraded and "OAuth API refused this app (HTTP 403)" in result.degraded
    assert result.stats["mode"] == "public-feed"


async def test_a_403_half_way_through_paging_loses_nothing(
    local_server: LocalServer, make_config: Callable[..., Config], http_client: HttpClient
) -> None:
    serve_token(local_server)
    in_feed_too = dict(POSTS[0], name="t3_1ldu6hr", id="1ldu6hr", created_utc=1750183353)

    async def search(request: web.Request) -> web.Response:
        if "after" in request.query:
            return web.json_response({"message": "Forbidden", "error": 403}, status=403)
        return web.json_response(listing([in_feed_too], after="t3_1ldu6hr"))

    local_server.route("/search", search)
    local_server.serve_bytes("/search.rss", ATOM, content_type="application/atom+xml")
    source = build_source(make_config(sources=[reddit_section(local_server)]), http_client)
    state = SourceState(cursor={"watermark": {"newest": 1700000000, "seen": {}}}, first_run=False)
    result = await source.fetch(state)
    # The post the API showed before refusing is delivered through the feed, not dropped.
    assert [m.source_key for m in result.mentions] == ["reddit:t3_1ldu6hr"]
    assert result.degraded


async def test_a_429_is_recorded_with_the_time_it_clears(
    local_server: LocalServer, make_daemon: Callable[..., Daemon]
) -> None:
    serve_token(local_server)
    local_server.serve_bytes(
        "/search", b"Too Many Requests", status=429, headers={"Retry-After": "90"}
    )
    daemon = make_daemon(sources=[reddit_section(local_server)])
    before = datetime.now(UTC)
    (outcome,) = await daemon.run_once()
    assert outcome.error.startswith("reddit: rate limited (HTTP 429)")
    seen = await recorded(make_daemon, daemon.config, "reddit")
    assert seen.health.error_streak == 1
    assert seen.health.retry_after_until and seen.health.retry_after_until >= before + timedelta(
        seconds=89
    )
    assert seen.health.next_check_at >= before + timedelta(seconds=89)


async def test_a_nearly_spent_rate_window_postpones_the_next_poll_until_it_resets(
    local_server: LocalServer, make_daemon: Callable[..., Daemon]
) -> None:
    serve_token(local_server)
    headers = {
        "x-ratelimit-remaining": "2.0",
        "x-ratelimit-used": "598",
        "x-ratelimit-reset": "420",
    }
    local_server.route("/search", json_response(listing(POSTS[:2]), headers=headers))
    daemon = make_daemon(sources=[reddit_section(local_server)])
    before = datetime.now(UTC)
    (outcome,) = await daemon.run_once()
    assert outcome.ok
    seen = await recorded(make_daemon, daemon.config, "reddit")
    assert seen.health.next_check_at >= before + timedelta(seconds=420)
    assert "rate window nearly spent (2 requests left); waiting 421s" in (seen.health.warning or "")
    assert seen.health.stats["ratelimit_remaining"] == 2.0


async def test_a_rate_window_resetting_soon_never_shortens_the_poll_interval(
    local_server: LocalServer, make_config: Callable[..., Config], http_client: HttpClient
) -> None:
    serve_token(local_server)
    headers = {"x-ratelimit-remaining": "1.0", "x-ratelimit-reset": "5"}
    local_server.route("/search", json_response(listing([]), headers=headers))
    config = make_config(sources=[reddit_section(local_server, every="10m")])
    result = await build_source(config, http_client).fetch(SourceState())
    assert result.next_check_in == timedelta(minutes=10)


async def test_malformed_json_is_a_clear_error(
    local_server: LocalServer, make_daemon: Callable[..., Daemon]
) -> None:
    serve_token(local_server)
    local_server.serve_bytes(
        "/search", b"<html>upstream connect error</html>", content_type="text/html"
    )
    daemon = make_daemon(sources=[reddit_section(local_server)])
    (outcome,) = await daemon.run_once()
    assert outcome.error.startswith("reddit: malformed JSON from Reddit /search")
    seen = await recorded(make_daemon, daemon.config, "reddit")
    assert seen.health.error_streak == 1


async def test_an_empty_listing_is_a_successful_poll(
    local_server: LocalServer, make_daemon: Callable[..., Daemon]
) -> None:
    serve_token(local_server)
    local_server.route("/r/acme+devops/search", json_response(listing([])))
    daemon = make_daemon(sources=[reddit_section(local_server, subreddits=["r/acme", "devops"])])
    (outcome,) = await daemon.run_once()
    assert outcome.ok and outcome.stats and outcome.stats.fetched == 0
    # With subreddits the search is restricted to them.
    (search,) = calls(local_server, "/r/acme+devops/search")
    assert search.query["restrict_sr"] == "on"


async def test_replies_list_the_brand_accounts_comments_with_thread_and_parent(
    local_server: LocalServer, make_config: Callable[..., Config], http_client: HttpClient
) -> None:
    token, comments = USER_COMMENTS
    local_server.route("/api/v1/access_token", lambda _request: _replay(token))
    local_server.route("/user/spez/comments", lambda _request: _replay(comments))
    source = build_source(make_config(sources=[reddit_section(local_server)]), http_client)
    since = datetime.fromtimestamp(1591389000, UTC)
    replies = await source.replies("u/spez", since)
    assert len(replies) == 8  # the ninth is older than `since`: no further pages
    first = replies[0]
    assert first.thread_key == "reddit:t3_hi3oht"
    assert first.in_reply_to_key == "reddit:t1_fwdy6wf"
    assert first.url == (
        "https://www.reddit.com/r/announcements/comments/hi3oht/update_to_our_content_policy/fwe9te8/"
    )
    assert first.published_at == datetime.fromtimestamp(1593457651, UTC)
    assert first.author == "spez"
    # A top-level comment answers the post itself.
    assert ("reddit:t3_gyyqem", "reddit:t3_gyyqem") in [
        (r.thread_key, r.in_reply_to_key) for r in replies
    ]
    (request,) = calls(local_server, "/user/spez/comments")
    assert request.query["sort"] == "new"


async def test_replies_without_credentials_read_the_public_comments_feed(
    local_server: LocalServer, make_config: Callable[..., Config], http_client: HttpClient
) -> None:
    local_server.serve_bytes("/user/acme/comments.rss", ATOM, content_type="application/atom+xml")
    section = reddit_section(local_server, client_id="")
    source = build_source(make_config(sources=[section]), http_client)
    (reply,) = await source.replies("acme", None)
    assert reply.thread_key == "reddit:t3_1ldu6hr"
    assert await source.replies("acme", datetime(2026, 1, 1, tzinfo=UTC)) == []


async def _replay(exchange: Any) -> web.Response:
    return exchange.response()


async def _ready(response: web.Response) -> web.Response:
    return response
