"""Bluesky Jetstream: 152 real firehose events replayed by a local websocket server."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from sqlalchemy import func, select

from monitor.daemon import Daemon
from monitor.matching import Matcher, MatchInput
from monitor.store import sources as source_store
from monitor.store.tables import mentions, sightings, source_state
from sources.bluesky_jetstream import POST_COLLECTION, Prefilter, post_text
from tests.conftest import FIXTURES
from tests.helpers.servers import LocalServer

EVENTS = [
    line
    for line in (FIXTURES / "bluesky" / "jetstream_v1_events.jsonl").read_text().splitlines()
    if line.strip()
]
# Real posts in the recording that these watchlists match (checked by hand, see SOURCES.md).
WATCHLISTS = [
    {"name": "brand", "query": 'government OR "tic tac" OR boring', "owner": "priya"},
    {"name": "competitors", "query": "america OR аватаром", "kind": "competitor"},
]
MATCHING_RKEYS = {
    "3mptbyoeyc22k",  # link card "What does America's 250th anniversary mean…"
    "3mptbyo7dms2m",  # "…for a new government…" (a reply)
    "3mptbyou7ls2i",  # "The government you're trying to get back at…" (a reply)
    "3mptbyoumc22i",  # "…based on its current government…" (a reply)
    "3mptbypky4c27",  # "My show is super boring" (a reply)
    "3mptbyoigog2b",  # "Has anyone properly debunked Tic Tac video?"
    "3mptbypjm6224",  # "…America has forgotten how it was built…"
    "3mptbxs3hq22j",  # "Вечерок с Аватаром…" (Russian)
}


def time_us(raw: str) -> int:
    return int(json.loads(raw)["time_us"])


@dataclass
class Jetstream:
    """Replays recorded events like a Jetstream instance: live (file order) without a
    cursor, from its store (sorted by time_us, >= cursor) with one. Sends every event,
    wanted collection or not, so the consumer's own filtering is what is tested."""

    events: list[str]
    # On the first connection send only this many events, then ...
    first_limit: int | None = None
    # ... drop the connection without a close frame (else keep it open and quiet).
    drop: bool = False
    refuse: web.Response | None = None
    connections: list[dict[str, str]] = field(default_factory=list)
    sent: list[int] = field(default_factory=list)

    async def handle(self, request: web.Request) -> web.StreamResponse:
        if self.refuse is not None:
            return self.refuse
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        self.connections.append(dict(request.query))
        first = len(self.connections) == 1
        if "cursor" in request.query:
            cursor = int(request.query["cursor"])
            chosen = sorted((e for e in self.events if time_us(e) >= cursor), key=time_us)
        else:
            chosen = list(self.events)
        if first and self.first_limit is not None:
            chosen = chosen[: self.first_limit]
        for raw in chosen:
            await ws.send_str(raw)
        self.sent.append(len(chosen))
        if first and self.drop:
            assert request.transport is not None
            request.transport.close()
            return ws
        async for _message in ws:  # the live tail: nothing new until the client leaves
            pass
        return ws


def serve(local_server: LocalServer, jetstream: Jetstream) -> str:
    local_server.route("/subscribe", jetstream.handle)
    return local_server.url("/subscribe").replace("http://", "ws://")


def source(url: str, **extra: Any) -> dict[str, Any]:
    return {
        "type": "bluesky",
        "name": "bluesky",
        "api_url": url,
        "rewind": "0.1s",
        "batch_every": "0.1s",
        "run_once_for": "1s",
        **extra,
    }


async def stored_posts(daemon: Daemon) -> dict[str, int]:
    """source_key → number of sightings, for every stored Bluesky mention."""
    async with daemon.store.read() as connection:
        rows = await connection.execute(
            select(mentions.c.source_key, func.count(sightings.c.id))
            .join(sightings, sightings.c.mention_id == mentions.c.id)
            .where(mentions.c.platform == "bluesky")
            .group_by(mentions.c.source_key)
        )
        return {row[0]: row[1] for row in rows}


async def state_row(daemon: Daemon) -> Any:
    async with daemon.store.read() as connection:
        return (
            await connection.execute(select(source_state).where(source_state.c.source == "bluesky"))
        ).one()


def rkeys(keys: dict[str, int]) -> set[str]:
    return {key.rsplit("/", 1)[-1] for key in keys}


async def reopened(make_daemon: Callable[..., Daemon], daemon: Daemon) -> Daemon:
    again = make_daemon(config=daemon.config)
    await again.open()
    return again


# ------------------------------------------------------------------------ the tests


def test_prefilter_never_drops_a_post_the_matcher_would_keep() -> None:
    queries = [
        'government OR "tic tac" OR boring',
        "america OR аватаром",
        '"super boring" near/2 show',
        "case:Tic -video",
        "insur*",
    ]
    matcher = Matcher((f"w{i}", q, []) for i, q in enumerate(queries))
    prefilter = Prefilter(queries)
    texts = []
    for raw in EVENTS:
        commit = json.loads(raw).get("commit") or {}
        if commit.get("collection") == POST_COLLECTION and commit.get("record"):
            texts.append(post_text(commit["record"]))
    kept = [t for t in texts if prefilter(t)]
    matched = [t for t in texts if matcher.match(MatchInput(text=t))]
    assert matched and set(matched) <= set(kept) and len(kept) < len(texts)
    # And it is selective: on this recording the watchlists' prefilter keeps nothing extra.
    watchlists = [w["query"] for w in WATCHLISTS]
    only = Matcher((q, q, []) for q in watchlists)
    assert {t for t in texts if Prefilter(watchlists)(t)} == {
        t for t in texts if only.match(MatchInput(text=t))
    }
    assert Prefilter(["author:alice"]).passes_everything  # no text term: cannot prefilter


async def test_run_once_stores_exactly_the_matching_posts(
    local_server: LocalServer, make_daemon: Callable[..., Daemon], database_url: str
) -> None:
    jetstream = Jetstream(EVENTS)
    url = serve(local_server, jetstream)
    daemon = make_daemon(database=database_url, watchlists=WATCHLISTS, sources=[source(url)])
    started = time.monotonic()
    (outcome,) = await daemon.run_once()
    assert outcome.ok, outcome.error
    assert time.monotonic() - started < 5  # run --once ends on its own (run_once_for: 1s)
    assert jetstream.connections == [{"wantedCollections": POST_COLLECTION}]

    daemon = await reopened(make_daemon, daemon)
    try:
        stored = await stored_posts(daemon)
        assert rkeys(stored) == MATCHING_RKEYS
        assert set(stored.values()) == {1}
        state = await state_row(daemon)
        assert state.cursor == {"time_us": max(time_us(e) for e in EVENTS)}
        assert state.error_streak == 0
        stats = state.stats
        # The recording holds 17 new posts and 1 delete of a post.
        assert (stats["posts_seen"], stats["deletes_ignored"]) == (17, 1)
        assert stats["other_events_ignored"] == len(EVENTS) - 18
        assert stats["events_seen"] == len(EVENTS) and stats["malformed_events"] == 0
        assert stats["posts_per_min"] > 0 and "lag_s" in stats
        reply = next(k for k in stored if k.endswith("3mptbypky4c27"))
        async with daemon.store.read() as connection:
            row = (
                await connection.execute(select(mentions).where(mentions.c.source_key == reply))
            ).one()
        assert row.thread_key.startswith("at://") and row.thread_key != reply.removeprefix(
            "bluesky:"
        )
        assert (
            row.url
            == "https://bsky.app/profile/did:plc:t2yw5frug3pu4nmygjiq7vln/post/3mptbypky4c27"
        )
        assert row.author == "did:plc:t2yw5frug3pu4nmygjiq7vln"
    finally:
        await daemon.close()


async def test_watchlist_narrows_the_prefilter_but_posts_must_still_match(
    local_server: LocalServer, make_daemon: Callable[..., Daemon]
) -> None:
    """With `watchlist:`, only that watchlist's terms pass the prefilter — a loose
    superset (`"tic tac"` lets every post with "tic" through). What passes must still
    match a watchlist query, or "soundcloud" posts would fill a `cloud` watchlist."""
    brand = {"name": "brand", "query": '"government you" OR "tic tac"', "owner": "priya"}
    watchlists = [brand, WATCHLISTS[1]]
    prefilter = Prefilter([brand["query"]])
    matcher = Matcher((w["name"], w["query"], []) for w in watchlists)
    passed, matching = set(), set()
    for raw in EVENTS:
        commit = json.loads(raw).get("commit") or {}
        if commit.get("collection") == POST_COLLECTION and commit.get("operation") == "create":
            text = post_text(commit["record"])
            if prefilter(text):
                passed.add(commit["rkey"])
                if matcher.match(MatchInput(text=text)):
                    matching.add(commit["rkey"])
    assert matching and passed - matching  # the prefilter lets some non-matches through

    url = serve(local_server, Jetstream(EVENTS))
    daemon = make_daemon(watchlists=watchlists, sources=[source(url, watchlist="brand")])
    (outcome,) = await daemon.run_once()
    assert outcome.ok, outcome.error
    daemon = await reopened(make_daemon, daemon)
    try:
        assert rkeys(await stored_posts(daemon)) == matching
    finally:
        await daemon.close()


async def wait_for(predicate: Callable[[], Any], timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not await predicate():
        assert time.monotonic() < deadline, "timed out waiting"
        await asyncio.sleep(0.1)


async def test_forced_disconnect_resumes_from_the_stored_cursor_without_loss(
    local_server: LocalServer, make_daemon: Callable[..., Daemon], database_url: str
) -> None:
    """The network drops after 80 events (4 of the 8 matches sent); the supervisor
    reconnects with the stored cursor minus `rewind` and gets exactly the rest."""
    jetstream = Jetstream(EVENTS, first_limit=80, drop=True)
    url = serve(local_server, jetstream)
    daemon = make_daemon(database=database_url, watchlists=WATCHLISTS, sources=[source(url)])
    await daemon.start()
    try:

        async def caught_up() -> bool:
            return len(await stored_posts(daemon)) == len(MATCHING_RKEYS)

        await wait_for(caught_up)
        stored = await stored_posts(daemon)
        assert rkeys(stored) == MATCHING_RKEYS and set(stored.values()) == {1}
        assert len(jetstream.connections) == 2
        resumed = jetstream.connections[1]
        newest_before_drop = max(time_us(e) for e in EVENTS[:80])
        assert int(resumed["cursor"]) == newest_before_drop - 100_000  # rewind: 0.1s
        assert resumed["wantedCollections"] == POST_COLLECTION
        # Only the tail from the cursor was replayed, not the whole history.
        tail = [e for e in EVENTS if time_us(e) >= int(resumed["cursor"])]
        assert jetstream.sent[1] == len(tail) < len(EVENTS)

        async def healthy_again() -> bool:
            row = await state_row(daemon)
            return row.error_streak == 0 and row.cursor == {
                "time_us": max(time_us(e) for e in EVENTS)
            }

        await wait_for(healthy_again)
        row = await state_row(daemon)
        assert "closed the connection after 80 events" in row.last_error
    finally:
        await daemon.shutdown()


async def test_a_flapping_server_is_reconnected_with_growing_backoff(
    local_server: LocalServer, make_daemon: Callable[..., Daemon]
) -> None:
    """Every connection delivers a few events and then drops. Delivering is not being
    healthy: the backoff must grow (2 s, 4 s, ...), not restart at 2 s each time."""
    connected: list[float] = []

    async def flapping(request: web.Request) -> web.StreamResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        connected.append(time.monotonic())
        for raw in EVENTS[:30]:
            await ws.send_str(raw)
        await asyncio.sleep(0.3)  # long enough for the batch to be stored
        assert request.transport is not None
        request.transport.close()
        return ws

    local_server.route("/subscribe", flapping)
    url = local_server.url("/subscribe").replace("http://", "ws://")
    daemon = make_daemon(watchlists=WATCHLISTS, sources=[source(url)])
    await daemon.start()
    try:

        async def three_connections() -> bool:
            return len(connected) >= 3

        await wait_for(three_connections, timeout=20)
        row = await state_row(daemon)
        assert row.cursor["time_us"] > 0  # each connection did deliver
    finally:
        await daemon.shutdown()
    first_gap, second_gap = connected[1] - connected[0], connected[2] - connected[1]
    # backoff_delay(1, 2 s) then (2, 2 s): 2 s and 4 s, ±10 % jitter, plus the 0.3 s visit
    # (restarting at 2 s each time would make the second gap as short as the first).
    assert first_gap >= 1.8 + 0.3
    assert second_gap >= 3.6 + 0.3 and second_gap > first_gap + 1


async def test_restart_resumes_from_the_persisted_cursor(
    local_server: LocalServer, make_daemon: Callable[..., Daemon], sqlite_url: str
) -> None:
    """`run --once` twice: the first run hears 60 events, the second replays from its cursor."""
    jetstream = Jetstream(EVENTS, first_limit=60)
    url = serve(local_server, jetstream)
    config = {"database": sqlite_url, "watchlists": WATCHLISTS, "sources": [source(url)]}
    first = make_daemon(**config)
    (outcome,) = await first.run_once()
    assert outcome.ok and outcome.stats is not None and outcome.stats.new == 4

    second = make_daemon(config=first.config)
    (outcome,) = await second.run_once()
    assert outcome.ok and outcome.stats is not None and outcome.stats.new == 4
    assert int(jetstream.connections[1]["cursor"]) == max(map(time_us, EVENTS[:60])) - 100_000

    second = await reopened(make_daemon, second)
    try:
        stored = await stored_posts(second)
        assert rkeys(stored) == MATCHING_RKEYS and set(stored.values()) == {1}
    finally:
        await second.close()


async def test_deletes_other_events_and_garbage_are_ignored_and_nothing_is_deleted(
    local_server: LocalServer, make_daemon: Callable[..., Daemon], sqlite_url: str
) -> None:
    """A constructed delete of a stored post, a broken line and an event without time_us
    are mixed into the real recording; the stream carries on and keeps everything."""
    boring = next(e for e in EVENTS if "3mptbypky4c27" in e)
    parsed = json.loads(boring)
    delete = {
        "did": parsed["did"],
        "time_us": time_us(EVENTS[-1]) + 10,
        "kind": "commit",
        "commit": {
            "rev": "3mptbz0000000",
            "operation": "delete",
            "collection": POST_COLLECTION,
            "rkey": "3mptbypky4c27",
        },
    }
    events = [*EVENTS[:100], "{not json", '{"kind": "commit"}', *EVENTS[100:], json.dumps(delete)]
    url = serve(local_server, Jetstream(events))
    daemon = make_daemon(database=sqlite_url, watchlists=WATCHLISTS, sources=[source(url)])
    (outcome,) = await daemon.run_once()
    assert outcome.ok, outcome.error

    daemon = await reopened(make_daemon, daemon)
    try:
        assert rkeys(await stored_posts(daemon)) == MATCHING_RKEYS  # the deleted one stays
        stats = (await state_row(daemon)).stats
        assert (stats["malformed_events"], stats["deletes_ignored"]) == (2, 2)
        assert stats["posts_seen"] == 17
    finally:
        await daemon.close()


async def test_an_empty_stream_stores_nothing_and_succeeds(
    local_server: LocalServer, make_daemon: Callable[..., Daemon], sqlite_url: str
) -> None:
    url = serve(local_server, Jetstream([]))
    daemon = make_daemon(database=sqlite_url, watchlists=WATCHLISTS, sources=[source(url)])
    (outcome,) = await daemon.run_once()
    assert outcome.ok and outcome.stats is not None and outcome.stats.fetched == 0

    daemon = await reopened(make_daemon, daemon)
    try:
        assert await stored_posts(daemon) == {}
        row = await state_row(daemon)
        assert row.cursor == {} and row.error_streak == 0
    finally:
        await daemon.close()


async def test_a_429_on_connect_is_recorded_with_its_retry_after(
    local_server: LocalServer, make_daemon: Callable[..., Daemon], sqlite_url: str
) -> None:
    refuse = web.Response(status=429, text="slow down", headers={"Retry-After": "120"})
    url = serve(local_server, Jetstream(EVENTS, refuse=refuse))
    daemon = make_daemon(database=sqlite_url, watchlists=WATCHLISTS, sources=[source(url)])
    (outcome,) = await daemon.run_once()
    assert not outcome.ok and "rate limited (HTTP 429)" in outcome.error

    daemon = await reopened(make_daemon, daemon)
    try:
        async with daemon.store.read() as connection:
            (health,) = await source_store.health(connection)
        assert health.error_streak == 1
        assert health.retry_after_until is not None
        assert health.next_check_at >= health.retry_after_until
    finally:
        await daemon.close()


async def test_a_url_that_is_not_jetstream_names_the_key_to_fix(
    local_server: LocalServer, make_daemon: Callable[..., Daemon], sqlite_url: str
) -> None:
    local_server.serve_bytes("/subscribe", b"<html>hello</html>", content_type="text/html")
    url = local_server.url("/subscribe").replace("http://", "ws://")
    daemon = make_daemon(database=sqlite_url, watchlists=WATCHLISTS, sources=[source(url)])
    (outcome,) = await daemon.run_once()
    assert not outcome.ok
    assert outcome.error.startswith("bluesky: not a Jetstream websocket (HTTP 200")
    assert "check `api_url`" in outcome.error
