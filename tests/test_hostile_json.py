"""Hostile JSON from the social APIs: nulls, wrong types, absurd numbers, huge strings.

Every JSON adapter is served a real recorded page, then the same page followed by variants
of one of its items with each field in turn replaced by something hostile. A bad item is
skipped with a warning in source health (sources/items.py); it never fails the poll, drops
the good items, moves the cursor past where the good items put it, or turns an object into
text that gets matched.
"""

from __future__ import annotations

import copy
import gzip
import json
import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from monitor.config import Config
from monitor.daemon import Daemon
from sources.http import HttpClient
from sources.incremental import from_epoch, parse_time
from tests.conftest import FIXTURES
from tests.helpers.servers import LocalServer
from tests.helpers.source_harness import build_source, http_client, recorded
from tests.test_hostile_input import no_adapter_bug
from tests.test_source_bluesky_jetstream import EVENTS as JETSTREAM_EVENTS
from tests.test_source_bluesky_jetstream import MATCHING_RKEYS, Jetstream
from tests.test_source_bluesky_jetstream import WATCHLISTS as BLUESKY_WATCHLISTS
from tests.test_source_bluesky_jetstream import serve as serve_jetstream
from tests.test_source_bluesky_jetstream import source as jetstream_section
from tests.test_source_bluesky_search import REAL_POSTS, Xrpc, search_source
from tests.test_source_github import ISSUES, RATE_HEADERS, github_source
from tests.test_source_github import WATCHLISTS as GITHUB_WATCHLISTS
from tests.test_source_hackernews import hn_section
from tests.test_source_mastodon import LOCAL, REMOTE, TAG_PATH, THREAD, mastodon_section
from tests.test_source_mastodon import WATCHLISTS as MASTODON_WATCHLISTS
from tests.test_source_reddit import (
    OAUTH_WATCHLIST,
    POSTS,
    USER_COMMENTS,
    listing,
    reddit_section,
    serve_token,
)
from tests.test_source_stackexchange import se_section
from tests.test_source_youtube import BRAND_CHANNEL, THREADS, VIDEOS, youtube_source

__all__ = ["http_client"]

# An object whose str() would read as text: it must never reach a title or a body.
AN_OBJECT = {"x": {"y": [1, None]}}
OBJECT_AS_TEXT = "'y': [1, None]"
REPLACEMENTS: list[Any] = [
    None,
    [],
    AN_OBJECT,
    10**40,
    -1,
    True,
    "x" * 10_000,
    math.inf,  # sent as 1e400, which every JSON decoder reads as inf
    -math.inf,
    math.nan,  # sent as NaN, which Python's decoder (and so the adapters') accepts
]


def hostile_variants(
    valid: Mapping[str, Any],
    unique: Callable[[dict[str, Any], int], None],
    inside: Sequence[tuple[str, ...]] = ((),),
) -> list[dict[str, Any]]:
    """Every field of ``valid``, and of the objects at the ``inside`` paths, replaced in
    turn by each of REPLACEMENTS. ``unique(variant, n)`` first gives each variant an
    identity of its own, so it is read as a new item, not dropped as a repeat; when the
    replaced field is part of that identity, the hostile value wins."""
    variants: list[dict[str, Any]] = []
    for path in inside:
        for key in _at(valid, path):
            for value in REPLACEMENTS:
                variant = copy.deepcopy(dict(valid))
                unique(variant, len(variants))
                _at(variant, path)[key] = value
                variants.append(variant)
    return variants


def _at(item: Mapping[str, Any], path: tuple[str, ...]) -> Any:
    for key in path:
        item = item[key]
    return item


def hostile_json(data: Any) -> str:
    """JSON as a hostile server writes it: ±inf as ±1e400, NaN as NaN."""
    raw = json.dumps(data)
    return re.sub(r'(?<=": )(-?)Infinity(?=[,}])', r"\g<1>1e400", raw)


def answer(raw: str, *, headers: dict[str, str] | None = None, gzipped: bool = False) -> Any:
    """A LocalServer handler answering ``raw`` as JSON (gzipped, as Stack Exchange does)."""
    body = gzip.compress(raw.encode()) if gzipped else raw.encode()
    extra = {"Content-Encoding": "gzip"} if gzipped else {}

    async def handler(_request: web.Request) -> web.Response:
        return web.Response(
            body=body,
            content_type="application/json",
            headers={**(headers or {}), **extra},
        )

    return handler


# ------------------------------------------------------------------------ platforms


@dataclass(frozen=True)
class Platform:
    """One adapter: its config section, its pages (pristine or hostile), its cursor."""

    name: str  # the source's name in health
    section: Callable[[LocalServer], dict[str, Any]]
    serve: Callable[[LocalServer, bool], None]
    # Where the stored cursor stands (the part a hostile item could push ahead).
    position: Callable[[dict[str, Any]], Any]
    watchlists: list[dict[str, Any]] | None = None


def serve_hackernews(server: LocalServer, hostile: bool) -> None:
    hits = json.loads((FIXTURES / "hackernews" / "search_by_date_page1_of_2.json").read_text())
    hits = hits["hits"]
    if not hostile:
        server.route("/api/v1/search_by_date", answer(json.dumps({"hits": hits, "nbPages": 1})))
        return

    def unique(hit: dict[str, Any], n: int) -> None:
        hit["objectID"] = f"hostile-{n}"

    variants = [v for hit in hits for v in hostile_variants(hit, unique)]
    junk = [None, 7, "hit", [], {"objectID": "junk-1"}]
    body = {"hits": [*hits, *variants, *junk], "nbPages": "lots", "page": None}
    server.route("/api/v1/search_by_date", answer(hostile_json(body)))


def serve_reddit(server: LocalServer, hostile: bool) -> None:
    serve_token(server)
    page = listing(POSTS)
    if hostile:

        def unique(post: dict[str, Any], n: int) -> None:
            post["name"] = f"t3_hostile{n}"

        posts = hostile_variants(POSTS[0], unique)
        page["data"]["children"] += [{"kind": "t3", "data": post} for post in posts]
        page["data"]["children"] += [None, 7, {"kind": "t3"}, {"kind": "t3", "data": []}]
    server.route("/search", answer(hostile_json(page)))


def serve_mastodon(server: LocalServer, hostile: bool) -> None:
    statuses = [REMOTE, LOCAL]
    if hostile:

        def unique(status: dict[str, Any], n: int) -> None:
            # Shorter than the recorded snowflakes: a variant never moves min_id itself.
            status["id"] = str(n + 1)
            status["uri"] = status["url"] = f"{REMOTE['uri']}/hostile/{n}"

        statuses += hostile_variants(REMOTE, unique, inside=[(), ("account",)])
        statuses += [None, 7, {"id": "12"}, {"id": {"x": 1}, "uri": "https://a.test/1"}]
    server.route("/a" + TAG_PATH, answer(hostile_json(statuses)))


def serve_bluesky_search(server: LocalServer, hostile: bool) -> None:
    Xrpc(server, REAL_POSTS)  # sessions; the search answer is ours
    posts = list(REAL_POSTS)
    if hostile:
        matching = next(p for p in REAL_POSTS if p["uri"].endswith("3mptbyoeyc22k"))
        did = matching["author"]["did"]

        def unique(post: dict[str, Any], n: int) -> None:
            post["uri"] = f"at://{did}/app.bsky.feed.post/hostile{n}"

        posts += hostile_variants(matching, unique, inside=[(), ("record",), ("author",)])
        posts += [None, 7, {"uri": "at://x/y/z"}, {"uri": "https://not.an/at-uri"}]
    server.route("/xrpc/app.bsky.feed.searchPosts", answer(hostile_json({"posts": posts})))


def serve_stackexchange(server: LocalServer, hostile: bool) -> None:
    page = json.loads((FIXTURES / "stackexchange" / "search_excerpts_page1_of_2.json").read_text())
    page["has_more"] = False
    if hostile:

        def unique(item: dict[str, Any], n: int) -> None:
            item["answer_id"] = 90_000_000 + n

        page["items"] += hostile_variants(page["items"][0], unique)
        page["items"] += [None, 7, {"item_type": "answer"}, {"question_id": "1; DROP"}]
    server.route("/2.3/search/excerpts", answer(hostile_json(page), gzipped=True))


def serve_youtube(server: LocalServer, hostile: bool) -> None:
    videos, threads = copy.deepcopy(VIDEOS), copy.deepcopy(THREADS)
    if hostile:

        def unique_video(item: dict[str, Any], n: int) -> None:
            item["id"]["videoId"] = f"hostile{n}"

        def unique_thread(item: dict[str, Any], n: int) -> None:
            item["id"] = item["snippet"]["topLevelComment"]["id"] = f"hostile{n}"

        top = ("snippet", "topLevelComment")
        videos["items"] += hostile_variants(
            VIDEOS["items"][0], unique_video, inside=[(), ("id",), ("snippet",)]
        )
        threads["items"] += hostile_variants(
            THREADS["items"][0], unique_thread, inside=[(), ("snippet",), top, (*top, "snippet")]
        )
        videos["items"] += [None, 7, {"id": "not an object"}]
        threads["items"] += [None, 7, {"snippet": []}]
    server.route("/youtube/v3/search", answer(hostile_json(videos)))
    server.route("/youtube/v3/commentThreads", answer(hostile_json(threads)))


def serve_github(server: LocalServer, hostile: bool) -> None:
    items = list(ISSUES)
    if hostile:

        def unique(item: dict[str, Any], n: int) -> None:
            item["node_id"] = f"I_hostile{n}"
            item["html_url"] = f"{ISSUES[0]['html_url']}{n}"

        items += hostile_variants(ISSUES[0], unique, inside=[(), ("user",)])
        items += [None, 7, {"html_url": "javascript:alert(1)", "created_at": "2022-07-19"}]
    body = {"total_count": len(items), "incomplete_results": False, "items": items}
    server.route("/search/issues", answer(hostile_json(body), headers=RATE_HEADERS))


PLATFORMS = [
    Platform("hn", hn_section, serve_hackernews, lambda c: c["watermark"]["newest"]),
    Platform(
        "reddit",
        reddit_section,
        serve_reddit,
        lambda c: c["watermark"]["newest"],
        watchlists=OAUTH_WATCHLIST,
    ),
    Platform(
        "mastodon",
        lambda server: mastodon_section(server.url("/a")),
        serve_mastodon,
        lambda c: c["min_id"],
        watchlists=MASTODON_WATCHLISTS,
    ),
    Platform(
        "bsky-search",
        search_source,
        serve_bluesky_search,
        lambda c: c["window"]["newest"],
        watchlists=BLUESKY_WATCHLISTS,
    ),
    Platform(
        "stackexchange",
        se_section,
        serve_stackexchange,
        lambda c: {key: mark["newest"] for key, mark in c["marks"].items()},
    ),
    Platform(
        "youtube",
        youtube_source,
        serve_youtube,
        lambda c: (c["videos"]["newest"], c["comments"]["newest"]),
    ),
    Platform(
        "github",
        github_source,
        serve_github,
        lambda c: c["window"]["newest"],
        watchlists=GITHUB_WATCHLISTS,
    ),
]


def database(tmp_path: Path, name: str) -> str:
    return f"sqlite+aiosqlite:///{tmp_path / name}"


@pytest.mark.parametrize("platform", PLATFORMS, ids=[p.name for p in PLATFORMS])
async def test_malformed_items_are_skipped_with_a_warning_and_the_good_ones_kept(
    platform: Platform,
    local_server: LocalServer,
    make_daemon: Callable[..., Daemon],
    caplog: pytest.LogCaptureFixture,
    tmp_path: Path,
) -> None:
    overrides: dict[str, Any] = {"sources": [platform.section(local_server)]}
    if platform.watchlists is not None:
        overrides["watchlists"] = platform.watchlists
    platform.serve(local_server, False)
    pristine = make_daemon(database=database(tmp_path, "pristine.db"), **overrides)
    (outcome,) = await pristine.run_once()
    assert outcome.ok, outcome.error
    clean = await recorded(make_daemon, pristine.config, platform.name)
    expected = {m["source_key"] for m in clean.mentions}
    assert expected, "the recorded page should match the watchlists"
    assert clean.health.warning is None

    platform.serve(local_server, True)
    daemon = make_daemon(database=database(tmp_path, "hostile.db"), **overrides)
    (outcome,) = await daemon.run_once()
    no_adapter_bug(caplog)
    assert outcome.ok, outcome.error
    seen = await recorded(make_daemon, daemon.config, platform.name)
    assert expected <= {m["source_key"] for m in seen.mentions}, "good items were dropped"
    assert re.search(r"skipped \d+ malformed \w+ \(first: .+\)", seen.health.warning or "")
    # Hostile items never move the cursor beyond where the good ones put it.
    assert platform.position(seen.state.cursor) == platform.position(clean.state.cursor)
    assert OBJECT_AS_TEXT not in json.dumps(seen.mentions, default=str)


async def test_hostile_jetstream_events_are_skipped_and_the_stream_carries_on(
    local_server: LocalServer,
    make_daemon: Callable[..., Daemon],
    caplog: pytest.LogCaptureFixture,
    tmp_path: Path,
) -> None:
    matching = next(
        json.loads(e) for e in JETSTREAM_EVENTS if '"rkey":"3mptbyoeyc22k"' in e.replace(" ", "")
    )

    def unique(event: dict[str, Any], n: int) -> None:
        event["commit"]["rkey"] = f"hostile{n}"

    variants = hostile_variants(matching, unique, inside=[(), ("commit",), ("commit", "record")])
    garbage = ["{not json", "null", "[]", "[" * 100_000, '{"time_us": 1e400}']
    # Last: the final batch then holds a skipped event, so its warning is what health shows
    # (each stream batch reports its own skips; the stats keep the running total).
    events = [*JETSTREAM_EVENTS, *map(hostile_json, variants), *garbage]
    url = serve_jetstream(local_server, Jetstream(events))
    section = jetstream_section(url, run_once_for="0.5s")
    daemon = make_daemon(
        database=database(tmp_path, "hostile.db"), watchlists=BLUESKY_WATCHLISTS, sources=[section]
    )
    (outcome,) = await daemon.run_once()
    no_adapter_bug(caplog)
    assert outcome.ok, outcome.error
    seen = await recorded(make_daemon, daemon.config, "bluesky")
    stored = {m["source_key"].rsplit("/", 1)[-1] for m in seen.mentions}
    assert stored >= MATCHING_RKEYS, "good posts were dropped"
    assert re.search(r"skipped \d+ malformed \w+ \(first: .+\)", seen.health.warning or "")
    assert seen.health.stats["malformed_events"] >= len(garbage)
    newest = max(json.loads(e)["time_us"] for e in JETSTREAM_EVENTS)
    assert seen.state.cursor["time_us"] == newest, "a hostile time_us moved the cursor"
    assert OBJECT_AS_TEXT not in json.dumps(seen.mentions, default=str)


# --------------------------------------------------------------------- brand replies


@dataclass(frozen=True)
class Replies:
    """One adapter's listing of the brand's own replies, pristine or hostile."""

    name: str
    section: Callable[[LocalServer], dict[str, Any]]
    serve: Callable[[LocalServer, bool], None]
    account: str


def replies_hackernews(server: LocalServer, hostile: bool) -> None:
    page = json.loads((FIXTURES / "hackernews" / "comments_by_brand_author.json").read_text())
    if hostile:

        def unique(hit: dict[str, Any], n: int) -> None:
            hit["objectID"] = f"hostile-{n}"

        page["hits"] += [*hostile_variants(page["hits"][0], unique), None, 7]
    server.route("/api/v1/search_by_date", answer(hostile_json(page)))


def replies_reddit(server: LocalServer, hostile: bool) -> None:
    serve_token(server)
    page = USER_COMMENTS[1].json()
    if hostile:

        def unique(comment: dict[str, Any], n: int) -> None:
            comment["permalink"] += f"hostile{n}/"

        # Its 20 KB award list emptied: 720 copies of it would pass the 10 MB body cap.
        base = {**page["data"]["children"][0]["data"], "all_awardings": []}
        comments = hostile_variants(base, unique)
        page["data"]["children"] += [{"kind": "t1", "data": c} for c in comments]
        page["data"]["children"] += [None, {"kind": "t1", "data": "x"}]
    server.route("/user/spez/comments", answer(hostile_json(page)))


def replies_mastodon(server: LocalServer, hostile: bool) -> None:
    first, final = THREAD["ancestors"][0], THREAD["descendants"][0]
    answered = {**first, "id": final["in_reply_to_id"], "uri": "https://a.test/answered"}
    statuses = [final]
    if hostile:

        def unique(status: dict[str, Any], n: int) -> None:
            status["id"] = str(n + 1)
            status["url"] = f"{final['url']}/hostile/{n}"

        statuses += [*hostile_variants(final, unique), None, {"id": "../../admin"}]
    server.route("/a/api/v1/accounts/lookup", answer(json.dumps(first["account"])))
    statuses_path = f"/a/api/v1/accounts/{first['account']['id']}/statuses"
    server.route(statuses_path, answer(hostile_json(statuses)))
    server.route(f"/a/api/v1/statuses/{answered['id']}", answer(json.dumps(answered)))


def replies_bluesky(server: LocalServer, hostile: bool) -> None:
    customer = next(p for p in REAL_POSTS if p["uri"].endswith("3mptbypky4c27"))
    reply = {
        "post": {
            "uri": "at://did:plc:brand/app.bsky.feed.post/3mptcreply001",
            "cid": "bafy",
            "author": {"did": "did:plc:brand", "handle": "acmecloud.bsky.social"},
            "record": {
                "text": "Sorry to hear that! DM us?",
                "createdAt": "2026-07-04T15:00:00.000Z",
                "reply": {"root": {"uri": customer["uri"]}, "parent": {"uri": customer["uri"]}},
            },
            "indexedAt": "2026-07-04T15:00:01.000Z",
        }
    }
    feed = [reply]
    if hostile:

        def unique(item: dict[str, Any], n: int) -> None:
            item["post"]["uri"] = f"at://did:plc:brand/app.bsky.feed.post/hostile{n}"

        inside = [(), ("post",), ("post", "record"), ("post", "author")]
        feed += [*hostile_variants(reply, unique, inside), None, {"post": 7}]
    server.route("/xrpc/app.bsky.feed.getAuthorFeed", answer(hostile_json({"feed": feed})))


def replies_stackexchange(server: LocalServer, hostile: bool) -> None:
    pages = {
        name: json.loads((FIXTURES / "stackexchange" / f"{name}.json").read_text())
        for name in ("user_answers", "user_comments", "answers_by_ids")
    }
    if hostile:

        def unique_answer(item: dict[str, Any], n: int) -> None:
            item["answer_id"] = 90_000_000 + n

        def unique_comment(item: dict[str, Any], n: int) -> None:
            item["comment_id"] = 90_000_000 + n

        answers, comments = pages["user_answers"]["items"], pages["user_comments"]["items"]
        answers += [*hostile_variants(answers[0], unique_answer), None, {"answer_id": []}]
        comments += [*hostile_variants(comments[0], unique_comment), None, {"post_id": "1/.."}]
        pages["answers_by_ids"]["items"] += [None, {"answer_id": 78601234, "question_id": "x"}]
    for path, name in (
        ("/2.3/users/9990001/answers", "user_answers"),
        ("/2.3/users/9990001/comments", "user_comments"),
        ("/2.3/answers/78590002;78601234", "answers_by_ids"),
    ):
        server.route(path, answer(hostile_json(pages[name]), gzipped=True))


def replies_youtube(server: LocalServer, hostile: bool) -> None:
    threads = copy.deepcopy(THREADS)
    if hostile:
        thread = threads["items"][0]
        reply = thread["replies"]["comments"][0]

        def unique_reply(item: dict[str, Any], n: int) -> None:
            item["id"] = f"{reply['id']}.hostile{n}"

        def unique_thread(item: dict[str, Any], n: int) -> None:
            item["id"] = f"hostile{n}"

        threads["items"] += [*hostile_variants(thread, unique_thread), None, {"replies": 7}]
        thread["replies"]["comments"] += [
            *hostile_variants(reply, unique_reply, inside=[(), ("snippet",)]),
            None,
        ]
    server.route("/youtube/v3/commentThreads", answer(hostile_json(threads)))


def replies_github(server: LocalServer, hostile: bool) -> None:
    issue = ISSUES[1]
    comment = {
        "html_url": issue["html_url"] + "#issuecomment-1",
        "user": {"login": "acme-support"},
        "created_at": "2022-07-19T05:00:00Z",
    }
    event = {
        "type": "IssueCommentEvent",
        "payload": {"action": "created", "issue": issue, "comment": comment},
        "created_at": "2022-07-19T05:00:00Z",
    }
    events = [event]
    if hostile:

        def unique(item: dict[str, Any], n: int) -> None:
            item["payload"]["comment"]["html_url"] += f"-hostile{n}"

        inside = [(), ("payload",), ("payload", "comment"), ("payload", "issue")]
        events += [*hostile_variants(event, unique, inside), None, {"type": [1]}]
    server.route("/users/acme-support/events/public", answer(hostile_json(events)))


REPLIES = [
    Replies("hn", hn_section, replies_hackernews, "acmecloud"),
    Replies("reddit", reddit_section, replies_reddit, "u/spez"),
    Replies(
        "mastodon",
        lambda server: mastodon_section(server.url("/a")),
        replies_mastodon,
        "@halcy@mastodon.social",
    ),
    Replies("bluesky", search_source, replies_bluesky, "acmecloud.bsky.social"),
    Replies("stackexchange", se_section, replies_stackexchange, "stackoverflow:9990001"),
    Replies("youtube", youtube_source, replies_youtube, BRAND_CHANNEL),
    Replies("github", github_source, replies_github, "acme-support"),
]


@pytest.mark.parametrize("platform", REPLIES, ids=[p.name for p in REPLIES])
async def test_malformed_brand_replies_are_skipped_and_logged_once(
    platform: Replies,
    local_server: LocalServer,
    make_config: Callable[..., Config],
    http_client: HttpClient,
    caplog: pytest.LogCaptureFixture,
) -> None:
    source = build_source(make_config(sources=[platform.section(local_server)]), http_client)
    platform.serve(local_server, False)
    pristine = await source.replies(platform.account, None)
    assert pristine, "the recorded listing should hold a reply of the brand"
    platform.serve(local_server, True)
    found = await source.replies(platform.account, None)
    key = lambda reply: (reply.thread_key, reply.in_reply_to_key, reply.url)  # noqa: E731
    assert {key(r) for r in pristine} <= {key(r) for r in found}, "good replies were dropped"
    assert OBJECT_AS_TEXT not in repr(found)
    (line,) = [r.getMessage() for r in caplog.records if "malformed" in r.getMessage()]
    assert line.startswith(f"{source.name}: replies of {platform.account}: skipped ")


# ----------------------------------------------------------------------- the readers


def test_times_no_clock_can_hold_are_refused_before_they_reach_a_cursor() -> None:
    for seconds in (True, 10**40, -(10**40), -1, math.inf, -math.inf, math.nan, 1e18, "1718000000"):
        assert from_epoch(seconds) is None, seconds
    assert from_epoch(1718000300) == datetime(2024, 6, 10, 6, 18, 20, tzinfo=UTC)
    for text in (
        "9999-12-31T23:59:59-01:00",  # leaves datetime's range once converted to UTC
        "0001-01-01T00:00:00+01:00",
        "1969-12-31T23:59:59Z",
        "9500-01-01T00:00:00Z",
        "2024-06-10T06:18:20Z" + " " * 10_000,
        "x" * 10_000,
    ):
        assert parse_time(text) is None, text[:40]
    assert parse_time("2024-06-10T08:18:20+02:00") == datetime(2024, 6, 10, 6, 18, 20, tzinfo=UTC)


async def test_a_deeply_nested_body_is_a_clear_error_not_an_adapter_bug(
    local_server: LocalServer,
    make_daemon: Callable[..., Daemon],
    caplog: pytest.LogCaptureFixture,
) -> None:
    local_server.route("/api/v1/search_by_date", answer("[" * 100_000))
    daemon = make_daemon(sources=[hn_section(local_server)])
    (outcome,) = await daemon.run_once()
    no_adapter_bug(caplog)
    assert outcome.error.startswith("hn: malformed JSON from HN Search search_by_date")
