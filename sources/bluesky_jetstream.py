"""Bluesky's live firehose through Jetstream: one websocket, every new post, matched locally.

docs: https://github.com/bluesky-social/jetstream#consuming-jetstream

Used by the `bluesky` source in its default `jetstream` mode (sources/bluesky.py). Also
home of the helpers that turn an `app.bsky.feed.post` record into a Mention, shared with
the search mode.

- `wantedCollections=app.bsky.feed.post` asks only for posts; identity and account
  events still arrive (Jetstream always sends them) and are ignored, as are deletes — a
  deleted post is not a mention, and nothing stored is ever deleted.
- Most of the firehose matches nothing, so a cheap prefilter (the watchlists' search
  terms as substrings of the case-folded text) runs before a Mention is built. It only
  needs to be a superset; the pipeline applies the real matcher afterwards.
- Mentions are delivered in batches every `batch_every` (or at `MAX_BATCH`), each with the
  newest `time_us` seen as the cursor, stored in the same transaction. After a disconnect
  or restart the consumer resumes from that cursor minus `rewind` (events arrive slightly
  out of order); dedup by AT-URI absorbs the overlap.
- One call to `consume()` is one connection. It returns only by raising (the server closed,
  the network failed, the stream went silent); the daemon's supervisor reconnects with
  backoff, reloading the stored cursor.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections import deque
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp

from monitor.matching import parse_query, search_terms
from monitor.mention import Mention
from monitor.normalize import normalize_text, token_texts
from sources.base import FetchResult, SourceError, SourceState
from sources.http import parse_retry_after
from sources.incremental import from_epoch, iso, parse_time
from sources.items import (
    ITEM_ERRORS,
    MalformedItem,
    SkippedItems,
    ident,
    obj,
    objects,
    strings,
    text,
)

POST_COLLECTION = "app.bsky.feed.post"
# Deliver as soon as this many candidates wait, even before `batch_every` has passed.
MAX_BATCH = 200
# Jetstream always has traffic; this long without a single event means a dead connection.
IDLE_TIMEOUT_S = 90.0
# Websocket ping interval; aiohttp closes the connection when a pong does not come back.
HEARTBEAT_S = 30.0
# Jetstream messages are small; a 1 MiB cap protects memory against a broken upstream.
MAX_MESSAGE_BYTES = 1024 * 1024
# Posts-per-minute is measured over this sliding window.
RATE_WINDOW_S = 60.0

Deliver = Callable[[FetchResult], Awaitable[None]]


# ------------------------------------------------------------------- post records


def at_uri(did: str, rkey: str) -> str:
    return f"at://{did}/{POST_COLLECTION}/{rkey}"


def post_url(actor: str, rkey: str) -> str:
    return f"https://bsky.app/profile/{actor}/post/{rkey}"


def rkey_of(uri: str) -> str:
    return uri.rstrip("/").rsplit("/", 1)[-1]


_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def _clean(value: str) -> str:
    """Post text is plain text, not HTML: only control characters are removed."""
    return _CONTROL.sub("", value).strip()


def _external(embed: Any) -> Mapping[str, Any]:
    """The link card of a post (also inside a record-with-media embed), if any."""
    if not isinstance(embed, Mapping):
        return {}
    if isinstance(embed.get("external"), Mapping):
        return embed["external"]
    return _external(embed.get("media"))


def post_text(record: Mapping[str, Any]) -> str:
    """The post's words plus its link card's title and description, where brand names
    often are when the post itself is just a link."""
    card = _external(record.get("embed"))
    parts = [text(record, "text"), text(card, "title"), text(card, "description")]
    return "\n\n".join(part for part in map(_clean, parts) if part)


def _reply_uri(record: Mapping[str, Any], which: str) -> str:
    reply = record.get("reply")
    target = reply.get(which) if isinstance(reply, Mapping) else None
    uri = target.get("uri") if isinstance(target, Mapping) else None
    return uri if isinstance(uri, str) and uri.startswith("at://") else ""


def thread_key(record: Mapping[str, Any], own_uri: str) -> str:
    """The conversation a post belongs to: its thread root, or itself when it starts one."""
    return _reply_uri(record, "root") or own_uri


def reply_parent(record: Mapping[str, Any]) -> str:
    return _reply_uri(record, "parent")


def _links(record: Mapping[str, Any]) -> list[str]:
    found: list[str] = []
    for facet in objects(record, "facets"):
        for feature in objects(facet, "features"):
            uri = feature.get("uri")
            if isinstance(uri, str) and uri not in found:
                found.append(uri)
    card = _external(record.get("embed")).get("uri")
    if isinstance(card, str) and card not in found:
        found.append(card)
    return found[:10]


def post_mention(
    did: str,
    rkey: str,
    record: Mapping[str, Any],
    *,
    handle: str = "",
    cid: str = "",
    seen_at: datetime | None = None,
    watchlist: str = "",
) -> Mention:
    """One `app.bsky.feed.post` record → Mention, keyed by its AT-URI. A malformed record
    raises one of sources.items.ITEM_ERRORS (the caller skips the post)."""
    uri = at_uri(did, rkey)
    langs = strings(record, "langs")
    extra: dict[str, Any] = {"did": did}
    if handle:
        extra["handle"] = handle
    if cid:
        extra["cid"] = cid
    if langs:
        extra["langs"] = langs[:3]
    if parent := reply_parent(record):
        extra["reply_to"] = parent
    if links := _links(record):
        extra["links"] = links
    return Mention(
        source_key=f"bluesky:{uri}",
        url=post_url(did, rkey),
        text=post_text(record),
        author=handle or did,
        author_url=f"https://bsky.app/profile/{did}",
        published_at=parse_time(record.get("createdAt")) or seen_at,
        thread_key=thread_key(record, uri),
        language_hint=langs[0][:8] if langs else "",
        watchlist_hint=watchlist,
        extra=extra,
    )


# ---------------------------------------------------------------------- prefilter


class Prefilter:
    """A cheap superset of the watchlists: does the text contain any term's longest word?

    Uses the matcher's own normalisation, so whatever the matcher folds, this folds too.
    A query without any text term (only `author:` or `lang:`) cannot be prefiltered;
    then every post passes and the matcher alone decides.
    """

    def __init__(self, queries: Iterable[str]) -> None:
        needles: set[str] = set()
        self.passes_everything = False
        for query in queries:
            terms = search_terms(parse_query(query))
            if not terms:
                self.passes_everything = True
            for term in terms:
                words = token_texts(normalize_text(term))
                if words:
                    needles.add(max(words, key=len))
        self.needles = sorted(needles)
        self._pattern = (
            re.compile("|".join(re.escape(n) for n in self.needles)) if needles else None
        )

    def __call__(self, text: str) -> bool:
        if self.passes_everything:
            return True
        return self._pattern is not None and self._pattern.search(normalize_text(text)) is not None


# ---------------------------------------------------------------------- consumer


@dataclass(slots=True)
class JetstreamSettings:
    url: str
    rewind: timedelta
    batch_every: timedelta
    user_agent: str
    connect_timeout_s: float
    watchlist: str = ""


@dataclass(slots=True)
class _Counters:
    """What one connection has seen, for source health."""

    connected_at: float = field(default_factory=time.monotonic)
    connected_since: str = field(default_factory=lambda: iso(datetime.now(UTC)))
    events: int = 0
    posts: int = 0
    candidates: int = 0
    deletes: int = 0
    other_events: int = 0
    malformed: int = 0
    # (monotonic time, posts so far) samples for the posts-per-minute rate.
    samples: deque[tuple[float, int]] = field(default_factory=deque)

    def posts_per_minute(self, now: float) -> float:
        self.samples.append((now, self.posts))
        while len(self.samples) > 2 and now - self.samples[1][0] >= RATE_WINDOW_S:
            self.samples.popleft()
        since, posts = self.samples[0] if len(self.samples) > 1 else (self.connected_at, 0)
        return round((self.posts - posts) * 60.0 / max(now - since, 1.0), 1)


class JetstreamConsumer:
    def __init__(self, source: str, settings: JetstreamSettings, prefilter: Prefilter) -> None:
        self.source = source
        self.settings = settings
        self.prefilter = prefilter
        # Malformed events since the last batch was delivered: each batch that had some
        # carries the warning (a stream has no poll, and a warning on every batch for the
        # connection's life would be logged every second); stats keep the running total.
        self.skipped = SkippedItems("events")

    async def consume(self, state: SourceState, deliver: Deliver) -> None:
        stored = state.cursor.get("time_us")
        cursor = stored if isinstance(stored, int) and stored > 0 else None
        params = {"wantedCollections": POST_COLLECTION}
        if cursor is not None:
            params["cursor"] = str(cursor - int(self.settings.rewind.total_seconds() * 1e6))
        timeout = aiohttp.ClientTimeout(total=None, sock_connect=self.settings.connect_timeout_s)
        async with aiohttp.ClientSession(
            timeout=timeout, headers={"User-Agent": self.settings.user_agent}
        ) as session:
            ws = await self._connect(session, params)
            async with ws:
                await self._read(ws, cursor, _Counters(), deliver)

    async def _connect(
        self, session: aiohttp.ClientSession, params: dict[str, str]
    ) -> aiohttp.ClientWebSocketResponse:
        try:
            return await session.ws_connect(
                self.settings.url,
                params=params,
                heartbeat=HEARTBEAT_S,
                max_msg_size=MAX_MESSAGE_BYTES,
            )
        except aiohttp.WSServerHandshakeError as exc:
            raise self._handshake_error(exc) from None
        except aiohttp.ClientConnectorError as exc:
            raise SourceError(
                self.source,
                f"cannot connect to {exc.host}:{exc.port} ({exc.os_error or exc})",
                hint="check `api_url` of this source, DNS and outbound network access",
            ) from None
        except TimeoutError:
            raise SourceError(
                self.source,
                "timed out connecting to Jetstream",
                hint="the server is slow or unreachable; reconnecting with backoff",
            ) from None
        except aiohttp.InvalidURL as exc:
            raise SourceError(
                self.source, f"invalid Jetstream URL {exc}", hint="fix `api_url`", permanent=True
            ) from None
        except aiohttp.ClientError as exc:
            raise SourceError(
                self.source,
                f"websocket error: {exc.__class__.__name__}: {exc}",
                hint="reconnecting with backoff",
            ) from None

    def _handshake_error(self, exc: aiohttp.WSServerHandshakeError) -> SourceError:
        retry_after = parse_retry_after((exc.headers or {}).get("Retry-After"))
        if exc.status == 429:
            return SourceError(
                self.source,
                "Jetstream refused the connection: rate limited (HTTP 429)",
                hint="too many connections from this address; waiting before reconnecting",
                retry_after=retry_after or timedelta(minutes=1),
            )
        if exc.status >= 500:
            return SourceError(
                self.source,
                f"Jetstream server error (HTTP {exc.status})",
                hint="the instance is having trouble; reconnecting with backoff, or set "
                "`api_url` to another Jetstream instance",
                retry_after=retry_after,
            )
        return SourceError(
            self.source,
            f"not a Jetstream websocket (HTTP {exc.status} {exc.message})",
            hint="check `api_url` of this source, e.g. wss://jetstream2.us-east.bsky.network/subscribe",
            permanent=True,
        )

    async def _read(
        self,
        ws: aiohttp.ClientWebSocketResponse,
        cursor: int | None,
        counters: _Counters,
        deliver: Deliver,
    ) -> None:
        batch_s = max(self.settings.batch_every.total_seconds(), 0.01)
        pending: list[Mention] = []
        newest = delivered = cursor or 0
        last_flush = last_event = time.monotonic()
        while True:
            wait = max(batch_s - (time.monotonic() - last_flush), 0.01)
            try:
                message = await ws.receive(timeout=wait)
            except TimeoutError:
                message = None
            now = time.monotonic()
            if message is not None and message.type == aiohttp.WSMsgType.TEXT:
                last_event = now
                time_us = self._handle(message.data, pending, counters)
                if time_us is not None and not delivered:
                    # First start: store where listening began before anything else, so
                    # a crash in the first second resumes from here, and the source's
                    # first run (stored as backfill, not alerted) holds no live posts.
                    delivered = time_us - 1
                    await _deliver_whole(deliver, self._result([], delivered, counters))
                if time_us is not None and time_us > newest:
                    newest = time_us
            elif message is not None and message.type != aiohttp.WSMsgType.BINARY:
                if pending or newest > delivered:
                    await _deliver_whole(deliver, self._result(pending, newest, counters))
                raise self._closed_error(ws, message, counters)
            elif message is not None:
                counters.malformed += 1  # compressed frames: we never ask for them
            if now - last_event > IDLE_TIMEOUT_S:
                raise SourceError(
                    self.source,
                    f"no events for {int(IDLE_TIMEOUT_S)}s; the connection is stale",
                    hint="reconnecting; if it repeats, try another Jetstream instance in `api_url`",
                )
            if (len(pending) >= MAX_BATCH or now - last_flush >= batch_s) and (
                pending or newest > delivered
            ):
                await _deliver_whole(deliver, self._result(pending, newest, counters))
                pending = []
                delivered = newest
                last_flush = time.monotonic()
            elif now - last_flush >= batch_s:
                last_flush = now

    def _handle(self, data: str, pending: list[Mention], counters: _Counters) -> int | None:
        """Parse one event; keep it when it is a new post that passes the prefilter.
        Returns its time_us: every event with a sound time_us moves the cursor, malformed
        or not, so a bad post is skipped once and never holds the cursor back."""
        counters.events += 1
        try:
            event = obj(json.loads(data), "event")
            time_us = _event_time(event)
        # RecursionError: json.loads on a deeply nested message (up to MAX_MESSAGE_BYTES).
        except (*ITEM_ERRORS, RecursionError) as exc:
            self._skip(counters, exc)
            return None
        try:
            self._post(event, time_us, pending, counters)
        except ITEM_ERRORS as exc:
            self._skip(counters, exc)
        return time_us

    def _post(
        self, event: Mapping[str, Any], time_us: int, pending: list[Mention], counters: _Counters
    ) -> None:
        commit = event.get("commit")
        if (
            event.get("kind") != "commit"
            or not isinstance(commit, Mapping)
            or commit.get("collection") != POST_COLLECTION
        ):
            counters.other_events += 1
            return
        operation = commit.get("operation")
        if operation == "delete":
            counters.deletes += 1
            return
        if operation not in ("create", "update"):
            raise MalformedItem("operation", "is none of create, update, delete")
        record = obj(commit.get("record"), "record")
        did, rkey = ident(event, "did"), ident(commit, "rkey")
        counters.posts += 1
        words = post_text(record)
        if words and self.prefilter(words):
            counters.candidates += 1
            pending.append(
                post_mention(
                    did,
                    rkey,
                    record,
                    cid=text(commit, "cid"),
                    seen_at=datetime.fromtimestamp(time_us / 1e6, UTC),
                    watchlist=self.settings.watchlist,
                )
            )

    def _skip(self, counters: _Counters, reason: Exception) -> None:
        counters.malformed += 1
        self.skipped.skip(reason)

    def _result(self, mentions: list[Mention], cursor: int, counters: _Counters) -> FetchResult:
        lag = max(time.time() - cursor / 1e6, 0.0)
        warnings: list[str] = []
        self.skipped.report(warnings)
        self.skipped = SkippedItems("events")
        return FetchResult(
            list(mentions),
            cursor={"time_us": cursor},
            warnings=warnings,
            stats={
                "mode": "jetstream",
                "posts_per_min": counters.posts_per_minute(time.monotonic()),
                "events_seen": counters.events,
                "posts_seen": counters.posts,
                "candidates": counters.candidates,
                "deletes_ignored": counters.deletes,
                "other_events_ignored": counters.other_events,
                "malformed_events": counters.malformed,
                "connected_since": counters.connected_since,
                "cursor_at": iso(datetime.fromtimestamp(cursor / 1e6, UTC)),
                "lag_s": round(lag, 1),
            },
        )

    def _closed_error(
        self, ws: aiohttp.ClientWebSocketResponse, message: aiohttp.WSMessage, counters: _Counters
    ) -> SourceError:
        reason = f"close code {ws.close_code}" if ws.close_code is not None else "no close code"
        if message.type == aiohttp.WSMsgType.ERROR:
            reason = f"{message.data!r}"
        return SourceError(
            self.source,
            f"Jetstream closed the connection after {counters.events} events ({reason})",
            hint="reconnecting from the stored cursor",
        )


def _event_time(event: Mapping[str, Any]) -> int:
    """An event's time_us, checked: a plausible time (sources/incremental.py), and never
    ahead of our clock — the cursor is made of it, and one event from year 8000 would
    otherwise hold the cursor there, and a reconnect would skip everything until then."""
    time_us = event.get("time_us")
    if isinstance(time_us, bool) or not isinstance(time_us, int):
        raise MalformedItem("time_us", "is not an integer")
    if from_epoch(time_us // 1_000_000) is None:
        raise MalformedItem("time_us", "is no time in microseconds since the epoch")
    return min(time_us, int(time.time() * 1_000_000))


async def _deliver_whole(deliver: Deliver, result: FetchResult) -> None:
    """Store a batch even when asked to stop half-way (the `run --once` deadline, shutdown):
    it is one transaction, and abandoning it would only mean replaying it next time.
    A second cancellation stops at once."""
    task = asyncio.ensure_future(deliver(result))
    try:
        await asyncio.shield(task)
    except asyncio.CancelledError:
        if not task.done():
            await task
        raise
