"""Mastodon: recorded mastodon.social entities served by local stand-in instances."""

from __future__ import annotations

import copy
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from aiohttp import web

from monitor.config import Config
from monitor.daemon import Daemon
from sources.http import HttpClient
from tests.helpers.feeds import stored
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

SEARCH = load_cassette(FIXTURES / "mastodon" / "searchv2.cassette.yaml")[2]
REMOTE, LOCAL = (e.json() for e in load_cassette(FIXTURES / "mastodon" / "status.cassette.yaml"))
THREAD = load_cassette(FIXTURES / "mastodon" / "context.cassette.yaml")[0].json()
REMOTE_URI = "https://icosahedron.website/users/halcy/statuses/110446222386355655"
WATCHLISTS = [
    {"name": "brand", "query": 'thisisahashtag OR "stop and go traffic"', "owner": "priya"}
]
TAG_PATH = "/api/v1/timelines/tag/thisisahashtag"


def as_seen_on_home_instance(status: dict[str, Any]) -> dict[str, Any]:
    """The recorded remote status as icosahedron.website itself serves it: own id and url."""
    home = copy.deepcopy(status)
    home["id"] = "110446222386355655"
    home["url"] = "https://icosahedron.website/@halcy/110446222386355655"
    return home


def mastodon_section(*urls: str, **extra: Any) -> dict[str, Any]:
    return {
        "type": "mastodon",
        "name": "mastodon",
        "every": "1m",
        "instances": list(urls),
        "hashtags": ["ThisIsAHashtag"],
        **extra,
    }


def calls(server: LocalServer, path: str) -> list[Any]:
    return [r for r in server.requests if r.path == path]


async def test_first_poll_reads_hashtag_timelines_and_folds_one_status_seen_on_two_instances(
    local_server: LocalServer,
    make_daemon: Callable[..., Daemon],
    database_url: str,
) -> None:
    local_server.route("/a" + TAG_PATH, json_response([REMOTE, LOCAL]))
    local_server.route("/b" + TAG_PATH, json_response([as_seen_on_home_instance(REMOTE)]))
    section = mastodon_section(local_server.url("/a"), local_server.url("/b"))
    daemon = make_daemon(database=database_url, watchlists=WATCHLISTS, sources=[section])
    (outcome,) = await daemon.run_once()
    assert outcome.ok and outcome.stats
    assert (outcome.stats.fetched, outcome.stats.new) == (2, 1)  # "test?" matches nothing
    for request in calls(local_server, "/a" + TAG_PATH) + calls(local_server, "/b" + TAG_PATH):
        assert request.query == {"limit": "40"}
        assert "Authorization" not in request.headers

    seen = await recorded(make_daemon, daemon.config, "mastodon")
    (mention,) = seen.mentions
    assert mention["source_key"] == f"mastodon:{REMOTE_URI}"
    assert mention["thread_key"] == f"mastodon:{REMOTE_URI}"
    assert mention["url"] == "https://icosahedron.website/@halcy/110446222386355655"
    assert mention["author"] == "halcy@icosahedron.website"
    assert mention["text"].startswith("@halcy you're a doo-doo head\nedit: editing this")
    assert "#ThisIsAHashtag" in mention["text"]
    assert mention["published_at"].replace(tzinfo=UTC) == datetime(
        2023, 5, 28, 12, 6, 50, tzinfo=UTC
    )
    assert mention["extra"]["tags"] == ["thisisahashtag"]
    base_a, base_b = local_server.url("/a"), local_server.url("/b")
    assert seen.state.cursor["min_id"] == {
        f"{base_a}|tag:thisisahashtag": "110446223051565765",
        f"{base_b}|tag:thisisahashtag": "110446222386355655",
    }


class TagTimeline:
    """One instance's hashtag timeline, paged as Mastodon pages it: without `min_id` the
    newest `limit` statuses; with it, the `limit` statuses immediately newer than `min_id`
    (forward paging) — newest first either way, never one at or below `min_id`."""

    def __init__(self, statuses: list[dict[str, Any]]) -> None:
        self.statuses = list(statuses)

    async def __call__(self, request: web.Request) -> web.Response:
        limit = int(request.query.get("limit", "20"))
        ordered = sorted(self.statuses, key=lambda s: _id_order(s["id"]))
        if "min_id" in request.query:
            floor = _id_order(request.query["min_id"])
            page = [s for s in ordered if _id_order(s["id"]) > floor][:limit]
        else:
            page = ordered[-limit:]
        return web.json_response(page[::-1])


def _id_order(status_id: str) -> tuple[int, str]:
    return len(status_id), status_id


def traffic(n: int, status_id: str) -> dict[str, Any]:
    """The recorded "stop and go traffic" status as a new post number ``n``."""
    status = copy.deepcopy(SEARCH.json()["statuses"][1])
    status["id"] = status_id
    status["uri"] = f"https://social.sublingual.xyz/users/Jo/statuses/20000000000000000{n}"
    status["url"] = f"https://social.sublingual.xyz/@Jo/20000000000000000{n}"
    status["content"] = f"<p>day {n}: stop and go traffic again, #ThisIsAHashtag</p>"
    return status


async def test_incremental_poll_pages_from_min_id_without_duplicates(
    local_server: LocalServer, make_daemon: Callable[..., Daemon], sqlite_url: str
) -> None:
    timeline = TagTimeline([REMOTE])
    local_server.route("/a" + TAG_PATH, timeline)
    section = mastodon_section(local_server.url("/a"), limit=2)
    daemon = make_daemon(watchlists=WATCHLISTS, sources=[section])

    async def poll() -> tuple[int, int]:
        (outcome,) = await make_daemon(config=daemon.config).run_once()
        assert outcome.ok and outcome.stats, outcome.error
        return outcome.stats.fetched, outcome.stats.new

    assert await poll() == (1, 1)
    # Three new posts, more than one page (limit 2): paged forward from the cursor.
    timeline.statuses += [
        traffic(1, "110446300000000001"),
        traffic(2, "110446300000000002"),
        traffic(3, "110446300000000003"),
    ]
    assert await poll() == (3, 3)
    assert await poll() == (0, 0)  # nothing new: nothing fetched, nothing stored
    asked = [r.query.get("min_id") for r in calls(local_server, "/a" + TAG_PATH)]
    assert asked == [
        None,
        "110446223051565765",  # REMOTE, the newest of the first poll
        "110446300000000002",  # after the first full page
        "110446300000000003",
    ]
    found = await stored(sqlite_url)
    keys = [m["source_key"] for m in found.mentions]
    assert len(keys) == len(set(keys)) == 4 and found.sightings == 4


async def test_a_status_federating_late_to_a_second_instance_is_not_stored_twice(
    local_server: LocalServer, make_daemon: Callable[..., Daemon], sqlite_url: str
) -> None:
    """Instance b learns of the post later and lists it under its own, newer id: its
    timeline brings it after the cursor, and the uri folds it onto the stored mention."""
    instance_a = TagTimeline([REMOTE])
    instance_b = TagTimeline([{**LOCAL, "id": "110446200000000000"}])  # "test?": no match
    local_server.route("/a" + TAG_PATH, instance_a)
    local_server.route("/b" + TAG_PATH, instance_b)
    section = mastodon_section(local_server.url("/a"), local_server.url("/b"))
    daemon = make_daemon(watchlists=WATCHLISTS, sources=[section])
    (outcome,) = await daemon.run_once()
    assert outcome.stats and (outcome.stats.fetched, outcome.stats.new) == (2, 1)

    late = as_seen_on_home_instance(REMOTE)
    late["id"] = "110446400000000000"  # b's own id, from when it arrived there
    instance_b.statuses.append(late)
    (outcome,) = await make_daemon(config=daemon.config).run_once()
    assert outcome.stats
    assert (outcome.stats.fetched, outcome.stats.new, outcome.stats.duplicates) == (1, 0, 1)
    b_asked = [r.query.get("min_id") for r in calls(local_server, "/b" + TAG_PATH)]
    assert b_asked == [None, "110446200000000000"]
    found = await stored(sqlite_url)
    assert [m["source_key"] for m in found.mentions] == [f"mastodon:{REMOTE_URI}"]
    assert found.sightings == 1


async def test_an_access_token_adds_full_text_search(
    local_server: LocalServer, make_daemon: Callable[..., Daemon]
) -> None:
    local_server.route("/a" + TAG_PATH, json_response([]))
    local_server.route("/a/api/v2/search", lambda _request: _replay(SEARCH))
    section = mastodon_section(
        {"url": local_server.url("/a"), "access_token": "tok-123"}, query='"stop and go traffic"'
    )
    daemon = make_daemon(watchlists=WATCHLISTS, sources=[section])
    (outcome,) = await daemon.run_once()
    assert outcome.ok and outcome.stats and (outcome.stats.fetched, outcome.stats.new) == (2, 1)
    (search,) = calls(local_server, "/a/api/v2/search")
    assert search.query == {
        "q": "stop and go traffic",
        "type": "statuses",
        "resolve": "false",
        "limit": "40",
    }
    assert search.headers["Authorization"] == "Bearer tok-123"
    seen = await recorded(make_daemon, daemon.config, "mastodon")
    (mention,) = seen.mentions
    assert mention["author"] == "Jo@social.sublingual.xyz"
    assert mention["text"] == "@halcy me when im riding my horse in stop and go traffic"
    host = local_server.base_url.removeprefix("http://")
    assert seen.health.stats["instances"][host]["ratelimit_remaining"] == 257
    assert "tok-123" not in repr(daemon.config.sources[0])
    assert daemon.config.secret_values() == ["tok-123"]


async def test_a_nearly_spent_rate_window_waits_for_its_reset(
    local_server: LocalServer, make_daemon: Callable[..., Daemon]
) -> None:
    reset = datetime.now(UTC) + timedelta(minutes=4)
    headers = {
        "X-RateLimit-Limit": "300",
        "X-RateLimit-Remaining": "3",
        "X-RateLimit-Reset": reset.isoformat().replace("+00:00", "Z"),
    }
    local_server.route("/a" + TAG_PATH, json_response([REMOTE], headers=headers))
    section = mastodon_section(local_server.url("/a"), hashtags=["ThisIsAHashtag", "acme"])
    daemon = make_daemon(watchlists=WATCHLISTS, sources=[section])
    (outcome,) = await daemon.run_once()
    assert outcome.ok
    # The second hashtag was not asked for: the window is kept for other clients.
    assert calls(local_server, "/a/api/v1/timelines/tag/acme") == []
    seen = await recorded(make_daemon, daemon.config, "mastodon")
    assert seen.health.next_check_at >= reset
    assert "rate window nearly spent (3 left)" in (seen.health.warning or "")


async def test_a_429_is_recorded_and_only_pauses_that_instance(
    local_server: LocalServer, make_daemon: Callable[..., Daemon]
) -> None:
    local_server.serve_bytes("/a" + TAG_PATH, b"{}", status=429, headers={"Retry-After": "300"})
    local_server.route("/b" + TAG_PATH, json_response([as_seen_on_home_instance(REMOTE)]))
    alone = make_daemon(watchlists=WATCHLISTS, sources=[mastodon_section(local_server.url("/a"))])
    before = datetime.now(UTC)
    (outcome,) = await alone.run_once()
    assert outcome.error.startswith("mastodon: rate limited (HTTP 429)")
    seen = await recorded(make_daemon, alone.config, "mastodon")
    assert seen.health.retry_after_until and seen.health.retry_after_until >= before + timedelta(
        seconds=299
    )

    both = mastodon_section(local_server.url("/a"), local_server.url("/b"), name="two")
    daemon = make_daemon(watchlists=WATCHLISTS, sources=[both])
    (outcome,) = await daemon.run_once()
    assert outcome.ok and outcome.stats and outcome.stats.new == 1
    seen = await recorded(make_daemon, daemon.config, "two")
    assert "rate limited (HTTP 429)" in (seen.health.warning or "")
    paused = seen.state.cursor["paused_until"][local_server.url("/a")]
    assert datetime.fromisoformat(paused) >= before + timedelta(seconds=299)
    # The next poll leaves the paused instance alone.
    local_server.requests.clear()
    again = make_daemon(config=daemon.config)
    (outcome,) = await again.run_once()
    assert outcome.ok and calls(local_server, "/a" + TAG_PATH) == []
    assert len(calls(local_server, "/b" + TAG_PATH)) == 1


async def test_access_denied_names_the_token_key(
    local_server: LocalServer, make_daemon: Callable[..., Daemon]
) -> None:
    local_server.serve_bytes(
        "/a" + TAG_PATH, b'{"error":"This API requires an authenticated user"}', status=401
    )
    local_server.route("/b" + TAG_PATH, json_response([]))
    local_server.serve_bytes(
        "/b/api/v2/search", b'{"error":"The access token is invalid"}', status=401
    )
    section = mastodon_section(
        local_server.url("/a"), {"url": local_server.url("/b"), "access_token": "expired"}
    )
    daemon = make_daemon(watchlists=WATCHLISTS, sources=[section])
    (outcome,) = await daemon.run_once()
    assert outcome.error.startswith("mastodon: every instance failed: access denied (HTTP 401)")
    assert (
        "add sources['mastodon'].instances[0].access_token, or drop the instance" in outcome.error
    )
    assert "check sources['mastodon'].instances[1].access_token" in outcome.error
    assert "read:search" in outcome.error and "expired" not in outcome.error


async def test_malformed_json_is_a_clear_error(
    local_server: LocalServer, make_daemon: Callable[..., Daemon]
) -> None:
    local_server.serve_bytes("/a" + TAG_PATH, b"[{", content_type="application/json")
    daemon = make_daemon(watchlists=WATCHLISTS, sources=[mastodon_section(local_server.url("/a"))])
    (outcome,) = await daemon.run_once()
    host = local_server.base_url.removeprefix("http://")
    assert outcome.error.startswith(f"mastodon: malformed JSON from {host}{TAG_PATH}")
    seen = await recorded(make_daemon, daemon.config, "mastodon")
    assert seen.health.error_streak == 1


async def test_an_empty_timeline_is_a_successful_poll(
    local_server: LocalServer, make_daemon: Callable[..., Daemon]
) -> None:
    local_server.route("/a/api/v1/timelines/tag/acmecloud", json_response([]))
    local_server.route("/a/api/v1/timelines/tag/globex", json_response([]))
    section = mastodon_section(local_server.url("/a"), hashtags=[])
    daemon = make_daemon(sources=[section])
    (outcome,) = await daemon.run_once()
    assert outcome.ok and outcome.stats and outcome.stats.fetched == 0
    # Hashtags default to the watchlists' terms: "acme cloud" and acmecloud are one tag.
    # (run --once also lists the brand's replies, through accounts/lookup.)
    asked = sorted(r.path for r in local_server.requests if "/timelines/" in r.path)
    assert asked == [
        "/a/api/v1/timelines/tag/acmecloud",
        "/a/api/v1/timelines/tag/globex",
    ]


async def test_replies_list_the_brand_accounts_replies_keyed_by_the_answered_status(
    local_server: LocalServer, make_config: Callable[..., Config], http_client: HttpClient
) -> None:
    first, final = THREAD["ancestors"][0], THREAD["descendants"][0]
    answered = copy.deepcopy(first)  # the status `final` answers, by the id it names
    answered.update(
        id=final["in_reply_to_id"],
        uri=f"https://mastodon.social/users/halcy/statuses/{final['in_reply_to_id']}",
        url=f"https://mastodon.social/@halcy/{final['in_reply_to_id']}",
        in_reply_to_id=first["id"],
    )
    account = first["account"]
    local_server.route("/a/api/v1/accounts/lookup", json_response(account))

    async def statuses(request: web.Request) -> web.Response:
        return web.json_response([] if "max_id" in request.query else [final, first])

    local_server.route(f"/a/api/v1/accounts/{account['id']}/statuses", statuses)
    local_server.route(f"/a/api/v1/statuses/{answered['id']}", json_response(answered))
    source = build_source(
        make_config(sources=[mastodon_section(local_server.url("/a"))]), http_client
    )
    (reply,) = await source.replies("@halcy@mastodon.social", datetime(2023, 5, 1, tzinfo=UTC))
    assert reply.thread_key == reply.in_reply_to_key == f"mastodon:{answered['uri']}"
    assert reply.url == "https://mastodon.social/@halcy/110446984249325790"
    assert reply.published_at == datetime(2023, 5, 28, 15, 20, 35, 248000, tzinfo=UTC)
    (lookup,) = calls(local_server, "/a/api/v1/accounts/lookup")
    assert lookup.query == {"acct": "halcy@mastodon.social"}
    pages = calls(local_server, f"/a/api/v1/accounts/{account['id']}/statuses")
    assert [p.query.get("max_id") for p in pages] == [None, first["id"]]
    assert pages[0].query["exclude_reblogs"] == "true"
    # The thread key is the one a mention of the answered status carries.
    mention = source.status_to_mention(answered, "mastodon.social")  # type: ignore[attr-defined]
    assert mention.thread_key == reply.thread_key


async def _replay(exchange: Any) -> web.Response:
    return exchange.response()
