"""Bluesky search mode and brand replies against a local XRPC server holding real posts."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from aiohttp import web
from sqlalchemy import select

from monitor.config import ConfigError, parse_config
from monitor.daemon import Daemon
from monitor.store import sources as source_store
from monitor.store.tables import mentions
from sources.bluesky import BlueskySource
from tests.conftest import FIXTURES
from tests.helpers.servers import LocalServer

EVENTS = [
    json.loads(line)
    for line in (FIXTURES / "bluesky" / "jetstream_v1_events.jsonl").read_text().splitlines()
    if line.strip()
]
WATCHLISTS = [
    {"name": "brand", "query": 'government OR "tic tac" OR boring', "owner": "priya"},
    {"name": "competitors", "query": "america OR аватаром", "kind": "competitor"},
]
SECRET = "app-pass-word-1234"


def post_view(event: dict[str, Any], handle: str = "") -> dict[str, Any]:
    """A real Jetstream post record wrapped as the AppView's postView."""
    commit = event["commit"]
    did = event["did"]
    return {
        "uri": f"at://{did}/app.bsky.feed.post/{commit['rkey']}",
        "cid": commit["cid"],
        "author": {"did": did, "handle": handle or f"user-{did[-6:]}.bsky.social"},
        "record": commit["record"],
        "replyCount": 0,
        "indexedAt": commit["record"]["createdAt"],
    }


REAL_POSTS = [
    post_view(e)
    for e in EVENTS
    if e.get("commit", {}).get("collection") == "app.bsky.feed.post"
    and e["commit"]["operation"] == "create"
]


def jwt(expires_in: timedelta, name: str) -> str:
    def part(data: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")

    exp = (datetime.now(UTC) + expires_in).timestamp()
    return f"{part({'alg': 'ES256K'})}.{part({'exp': exp, 'sub': name})}.c2ln"


class Xrpc:
    """A small AppView + PDS: sessions, a substring search over its posts, author feeds."""

    def __init__(self, server: LocalServer, posts: list[dict[str, Any]]) -> None:
        self.server = server
        self.posts = list(posts)
        # Lifetimes of the access tokens handed out, in order; then two hours each.
        self.lifetimes: list[timedelta] = []
        self.valid: set[str] = set()
        self.access: dict[int, str] = {}
        self.issued = 0
        self.search_answer: web.Response | None = None
        self.author_feed: list[dict[str, Any]] = []
        for method, handler in {
            "com.atproto.server.createSession": self.create_session,
            "com.atproto.server.refreshSession": self.refresh_session,
            "app.bsky.feed.searchPosts": self.search,
            "app.bsky.feed.getAuthorFeed": self.get_author_feed,
        }.items():
            server.route(f"/xrpc/{method}", handler)

    def calls(self, method: str) -> list[Any]:
        return [r for r in self.server.requests if r.path == f"/xrpc/{method}"]

    def tokens(self) -> dict[str, str]:
        self.issued += 1
        lifetime = self.lifetimes.pop(0) if self.lifetimes else timedelta(hours=2)
        access = self.access[self.issued] = jwt(lifetime, f"access-{self.issued}")
        self.valid = {access, f"refresh-{self.issued}"}
        return {
            "did": "did:plc:brand",
            "handle": "acmecloud.bsky.social",
            "accessJwt": access,
            "refreshJwt": f"refresh-{self.issued}",
        }

    async def create_session(self, request: web.Request) -> web.Response:
        body = await request.json()
        if body != {"identifier": "acmecloud.bsky.social", "password": SECRET}:
            return web.json_response(
                {"error": "AuthenticationRequired", "message": "Invalid identifier or password"},
                status=401,
            )
        return web.json_response(self.tokens())

    async def refresh_session(self, request: web.Request) -> web.Response:
        token = request.headers.get("Authorization", "").removeprefix("Bearer ")
        if not token.startswith("refresh-") or token not in self.valid:
            return web.json_response({"error": "ExpiredToken"}, status=400)
        return web.json_response(self.tokens())

    async def search(self, request: web.Request) -> web.Response:
        if self.search_answer is not None:
            return self.search_answer
        token = request.headers.get("Authorization", "").removeprefix("Bearer ")
        if token not in self.valid or token.startswith("refresh-"):
            return web.json_response({"error": "ExpiredToken", "message": "expired"}, status=400)
        q = request.query["q"].strip('"').casefold()
        since = request.query.get("since")
        found = [
            p
            for p in self.posts
            if q in json.dumps(p["record"], ensure_ascii=False).casefold()
            and (since is None or p["indexedAt"] >= since)
        ]
        found.sort(key=lambda p: p["indexedAt"], reverse=True)
        offset = int(request.query.get("cursor", "0"))
        limit = int(request.query.get("limit", "25"))
        page = found[offset : offset + limit]
        answer: dict[str, Any] = {"posts": page, "hitsTotal": len(found)}
        if offset + limit < len(found):
            answer["cursor"] = str(offset + limit)
        return web.json_response(
            answer, headers={"RateLimit-Limit": "3000", "RateLimit-Remaining": "2990"}
        )

    async def get_author_feed(self, request: web.Request) -> web.Response:
        assert "Authorization" not in request.headers  # the public AppView needs no login
        return web.json_response({"feed": self.author_feed})


def search_source(server: LocalServer, **extra: Any) -> dict[str, Any]:
    return {
        "type": "bluesky",
        "name": "bsky-search",
        "mode": "search",
        "every": "1m",
        "api_url": server.url("/xrpc"),
        "appview_url": server.url("/xrpc"),
        "identifier": "acmecloud.bsky.social",
        "app_password": SECRET,
        **extra,
    }


MATCHING = {
    "3mptbyoeyc22k",
    "3mptbyo7dms2m",
    "3mptbyou7ls2i",
    "3mptbyoumc22i",
    "3mptbypky4c27",
    "3mptbyoigog2b",
    "3mptbypjm6224",
    "3mptbxs3hq22j",
}


async def stored_keys(daemon: Daemon) -> list[str]:
    async with daemon.store.read() as connection:
        return list((await connection.scalars(select(mentions.c.source_key))).all())


async def health(daemon: Daemon) -> source_store.SourceHealth:
    async with daemon.store.read() as connection:
        (row,) = await source_store.health(connection)
        return row


async def opened(daemon: Daemon) -> Daemon:
    """An open daemon whose sources have their source_state rows, for runner.run()."""
    await daemon.open()
    async with daemon.store.begin() as connection:
        for source in daemon.sources.values():
            await source_store.ensure(connection, source.name, source.kind, datetime.now(UTC))
    return daemon


@pytest.fixture
def xrpc(local_server: LocalServer) -> Xrpc:
    return Xrpc(local_server, REAL_POSTS)


async def test_first_poll_logs_in_once_and_searches_every_term(
    local_server: LocalServer, xrpc: Xrpc, make_daemon: Callable[..., Daemon], database_url: str
) -> None:
    daemon = make_daemon(
        database=database_url, watchlists=WATCHLISTS, sources=[search_source(local_server)]
    )
    (outcome,) = await daemon.run_once()
    assert outcome.ok, outcome.error
    assert len(xrpc.calls("com.atproto.server.createSession")) == 1
    searches = xrpc.calls("app.bsky.feed.searchPosts")
    assert [s.query["q"] for s in searches] == [
        "government",
        '"tic tac"',
        "boring",
        "america",
        "аватаром",
    ]
    assert all(s.query["sort"] == "latest" and "since" not in s.query for s in searches)
    assert all(s.headers["Authorization"].startswith("Bearer ") for s in searches)

    again = make_daemon(config=daemon.config)
    await again.open()
    try:
        keys = await stored_keys(again)
        assert {k.rsplit("/", 1)[-1] for k in keys} == MATCHING and len(keys) == len(MATCHING)
        row = await health(again)
        assert row.stats["rate_limit_remaining"] == 2990
        async with again.store.read() as connection:
            boring = (
                await connection.execute(
                    select(mentions).where(mentions.c.source_key.endswith("3mptbypky4c27"))
                )
            ).one()
        assert boring.author.endswith(".bsky.social")  # search knows handles, not just DIDs
        assert (
            boring.thread_key
            == "at://did:plc:e2mt5exdcni67eeoj32hqxc4/app.bsky.feed.post/3mpt2odmuns24"
        )
    finally:
        await again.close()


async def test_incremental_poll_reuses_the_session_and_returns_only_new_posts(
    local_server: LocalServer, xrpc: Xrpc, make_daemon: Callable[..., Daemon]
) -> None:
    daemon = await opened(make_daemon(watchlists=WATCHLISTS, sources=[search_source(local_server)]))
    try:
        source = daemon.sources["bsky-search"]
        first = await daemon.runner.run(source)
        assert first.ok and first.stats is not None and first.stats.fetched >= len(MATCHING)

        newer = json.loads(json.dumps(REAL_POSTS[0]))
        newer["uri"] = newer["uri"].rsplit("/", 1)[0] + "/3mptcnewpost1"
        newer["record"] = {
            "$type": "app.bsky.feed.post",
            "text": "Still boring, and the government agrees",
            "createdAt": "2026-07-04T14:45:00.000Z",
        }
        newer["indexedAt"] = newer["record"]["createdAt"]
        xrpc.posts.append(newer)
        second = await daemon.runner.run(source)
        assert second.ok and second.stats is not None
        assert (second.stats.fetched, second.stats.new) == (1, 1)  # the overlap is not repeated

        assert len(xrpc.calls("com.atproto.server.createSession")) == 1  # no login per poll
        last = xrpc.calls("app.bsky.feed.searchPosts")[-1]
        newest_seen = datetime(2026, 7, 4, 14, 38, 7, tzinfo=UTC)  # 3mptbypky4c27, 14:38:07.486
        assert last.query["since"] == (newest_seen - timedelta(minutes=10)).strftime(
            "%Y-%m-%dT%H:%M:%SZ"
        )
    finally:
        await daemon.close()


async def test_sessions_are_refreshed_before_expiry_and_after_expired_token(
    local_server: LocalServer, xrpc: Xrpc, make_daemon: Callable[..., Daemon]
) -> None:
    xrpc.lifetimes = [timedelta(minutes=2)]  # the first token is inside the 5-minute margin
    daemon = await opened(make_daemon(watchlists=WATCHLISTS, sources=[search_source(local_server)]))
    try:
        source = daemon.sources["bsky-search"]
        assert (await daemon.runner.run(source)).ok
        assert (await daemon.runner.run(source)).ok
        assert len(xrpc.calls("com.atproto.server.createSession")) == 1
        refreshes = xrpc.calls("com.atproto.server.refreshSession")
        assert len(refreshes) == 1 and refreshes[0].headers["Authorization"] == "Bearer refresh-1"
        searches = xrpc.calls("app.bsky.feed.searchPosts")
        assert searches[0].headers["Authorization"] == f"Bearer {xrpc.access[1]}"
        assert {s.headers["Authorization"] for s in searches[1:]} == {f"Bearer {xrpc.access[2]}"}

        xrpc.valid.discard(xrpc.access[2])  # revoked early: ExpiredToken → refresh → retry
        assert (await daemon.runner.run(source)).ok
        assert len(xrpc.calls("com.atproto.server.refreshSession")) == 2
        assert len(xrpc.calls("com.atproto.server.createSession")) == 1

        xrpc.valid = set()  # the server forgot every token: the refresh fails, log in again
        assert (await daemon.runner.run(source)).ok
        assert len(xrpc.calls("com.atproto.server.createSession")) == 2
    finally:
        await daemon.close()


async def test_rate_limit_answer_is_recorded_until_the_reset(
    local_server: LocalServer, xrpc: Xrpc, make_daemon: Callable[..., Daemon]
) -> None:
    reset = int((datetime.now(UTC) + timedelta(minutes=4)).timestamp())
    xrpc.search_answer = web.json_response(
        {"error": "RateLimitExceeded", "message": "Rate Limit Exceeded"},
        status=429,
        headers={"RateLimit-Remaining": "0", "RateLimit-Reset": str(reset)},
    )
    daemon = make_daemon(watchlists=WATCHLISTS, sources=[search_source(local_server)])
    (outcome,) = await daemon.run_once()
    assert not outcome.ok and "rate limited by Bluesky (HTTP 429" in outcome.error
    await daemon.open()
    try:
        row = await health(daemon)
        assert row.error_streak == 1 and row.retry_after_until is not None
        assert row.retry_after_until >= datetime.fromtimestamp(reset, UTC) - timedelta(seconds=5)
        assert row.next_check_at >= row.retry_after_until
    finally:
        await daemon.close()


async def test_a_wrong_app_password_names_the_keys_and_is_never_echoed(
    local_server: LocalServer, xrpc: Xrpc, make_daemon: Callable[..., Daemon]
) -> None:
    wrong = search_source(local_server, app_password="not-the-password")
    daemon = make_daemon(watchlists=WATCHLISTS, sources=[wrong])
    (outcome,) = await daemon.run_once()
    assert not outcome.ok
    assert outcome.error.startswith(
        "bsky-search: login failed (HTTP 401 AuthenticationRequired: Invalid identifier or password)"
    )
    assert "check `identifier` and `app_password`" in outcome.error
    assert "not-the-password" not in outcome.error
    assert "not-the-password" not in daemon.sources["bsky-search"].describe()
    assert xrpc.calls("app.bsky.feed.searchPosts") == []


def test_search_mode_without_credentials_is_a_config_error() -> None:
    text = (
        "brand: {name: Acme}\nwatchlists: [{name: brand, query: acme}]\n"
        "sources:\n  - type: bluesky\n    mode: search\n"
    )
    with pytest.raises(ConfigError) as info:
        parse_config(text, "config.yaml", {})
    assert "needs `identifier` and `app_password`" in str(info.value)
    assert "config.yaml:4 sources[0]: search mode needs" in str(info.value)


async def test_malformed_json_is_a_clear_error(
    local_server: LocalServer, xrpc: Xrpc, make_daemon: Callable[..., Daemon]
) -> None:
    xrpc.search_answer = web.Response(text='{"posts": [', content_type="application/json")
    daemon = make_daemon(watchlists=WATCHLISTS, sources=[search_source(local_server)])
    (outcome,) = await daemon.run_once()
    assert not outcome.ok
    assert outcome.error.startswith("bsky-search: malformed JSON from app.bsky.feed.searchPosts")
    assert "check `api_url`" in outcome.error


async def test_an_empty_result_is_fine(
    local_server: LocalServer, make_daemon: Callable[..., Daemon]
) -> None:
    Xrpc(local_server, [])
    daemon = make_daemon(watchlists=WATCHLISTS, sources=[search_source(local_server)])
    (outcome,) = await daemon.run_once()
    assert outcome.ok and outcome.stats is not None and outcome.stats.fetched == 0


async def test_replies_lists_the_brand_accounts_replies_with_matching_thread_keys(
    local_server: LocalServer, xrpc: Xrpc, make_daemon: Callable[..., Daemon]
) -> None:
    """The brand answers the real "My show is super boring" reply; its thread_key must be
    the one stored on that mention, so the thread can be marked answered."""
    customer = next(p for p in REAL_POSTS if p["uri"].endswith("3mptbypky4c27"))
    brand = {"did": "did:plc:brand", "handle": "acmecloud.bsky.social"}

    def item(rkey: str, record: dict[str, Any], **extra: Any) -> dict[str, Any]:
        post = {
            "uri": f"at://did:plc:brand/app.bsky.feed.post/{rkey}",
            "cid": "bafy",
            "author": brand,
            "record": {"$type": "app.bsky.feed.post", **record},
            "indexedAt": record["createdAt"],
        }
        return {"post": post, **extra}

    answer = item(
        "3mptcreply001",
        {
            "text": "Sorry to hear that! DM us?",
            "createdAt": "2026-07-04T15:00:00.000Z",
            "reply": {
                "root": customer["record"]["reply"]["root"],
                "parent": {"uri": customer["uri"], "cid": customer["cid"]},
            },
        },
    )
    xrpc.author_feed = [
        answer,
        item("3mptctoplevel", {"text": "New release!", "createdAt": "2026-07-04T14:59:00Z"}),
        {"post": customer, "reason": {"$type": "app.bsky.feed.defs#reasonRepost"}},
        item("3mptcold00001", {**answer["post"]["record"], "createdAt": "2026-06-01T00:00:00Z"}),
    ]
    daemon = make_daemon(watchlists=WATCHLISTS, sources=[search_source(local_server)])
    (outcome,) = await daemon.run_once()
    assert outcome.ok
    await daemon.open()
    try:
        source = daemon.sources["bsky-search"]
        assert isinstance(source, BlueskySource)
        replies = await source.replies(
            "@acmecloud.bsky.social", since=datetime(2026, 7, 1, tzinfo=UTC)
        )
        assert len(replies) == 1
        (reply,) = replies
        async with daemon.store.read() as connection:
            stored = (
                await connection.execute(
                    select(mentions.c.thread_key).where(
                        mentions.c.source_key == f"bluesky:{customer['uri']}"
                    )
                )
            ).scalar_one()
        assert reply.thread_key == stored
        assert reply.in_reply_to_key == f"bluesky:{customer['uri']}"
        assert reply.url == "https://bsky.app/profile/did:plc:brand/post/3mptcreply001"
        assert reply.author == "acmecloud.bsky.social"
        assert reply.published_at == datetime(2026, 7, 4, 15, 0, tzinfo=UTC)
        feed_call = xrpc.calls("app.bsky.feed.getAuthorFeed")[-1]
        assert feed_call.query["actor"] == "acmecloud.bsky.social"
        assert feed_call.query["filter"] == "posts_with_replies"
    finally:
        await daemon.close()
