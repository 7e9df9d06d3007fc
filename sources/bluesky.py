"""Bluesky: the live Jetstream firehose (default, no account) or post search (app password).

docs: https://docs.bsky.app/docs/api/app-bsky-feed-search-posts

Modes (`mode:`):
- `jetstream` (default): a long-lived websocket to a public Jetstream instance receiving
  every new post on the network, matched locally (sources/bluesky_jetstream.py). No account,
  no rate limit, sees everything from the moment it connects; after a restart it replays
  from the stored cursor as far as the instance keeps history (about a day).
- `search`: `app.bsky.feed.searchPosts`, sort=latest, one query per search term, with an
  overlapping `since` cursor. Needs an account: `identifier` (handle or email) and
  `app_password` (bsky.app → Settings → Privacy and security → App passwords). The session
  is created once, cached and refreshed before it expires — Bluesky rate-limits logins
  (30 per 5 minutes, 300 per day), so a poll never logs in again.

Brand replies (either mode): `app.bsky.feed.getAuthorFeed` of the brand's handle or DID on
the public AppView (`appview_url`, no login); posts with `reply.parent` answer a thread.
Keys: `bluesky:<AT-URI>`; thread_key is the thread root's AT-URI.
Limits: the PDS allows 3,000 requests per 5 minutes per account; `RateLimit-*` headers are
honoured. Search cannot see posts older than the search index keeps, nor deleted ones.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar, Literal

from pydantic import Field, SecretStr, model_validator

from monitor.durations import Duration
from monitor.matching import parse_query, search_terms
from monitor.mention import BrandReply, Mention
from sources.base import FetchResult, Source, SourceConfig, SourceContext, SourceError, SourceState
from sources.bluesky_jetstream import (
    JetstreamConsumer,
    JetstreamSettings,
    Prefilter,
    at_uri,
    post_mention,
    post_url,
    reply_parent,
    rkey_of,
    thread_key,
)
from sources.http import HttpResponse, parse_retry_after
from sources.incremental import RateLimit, SeenWindow, iso, parse_time
from sources.items import (
    MalformedItem,
    SkippedItems,
    ident,
    nested,
    obj,
    page_token,
    text,
    timestamp,
)
from sources.searchkit import nothing_to_search

JETSTREAM_URL = "wss://jetstream2.us-east.bsky.network/subscribe"
XRPC_URL = "https://bsky.social/xrpc"
APPVIEW_URL = "https://public.api.bsky.app/xrpc"
# Refresh the access token when it has less than this left.
REFRESH_MARGIN = timedelta(minutes=5)
# When a token's expiry cannot be read, assume this (bsky.social issues ~2 h tokens).
ASSUMED_TOKEN_LIFETIME = timedelta(hours=1)
# XRPC errors that mean "the token is no good", not "the request is wrong".
TOKEN_ERRORS = ("ExpiredToken", "InvalidToken", "AuthenticationRequired")


class BlueskyConfig(SourceConfig):
    type: Literal["bluesky"] = "bluesky"
    # `jetstream`: live firehose, no account. `search`: searchPosts with an app password.
    mode: Literal["jetstream", "search"] = "jetstream"
    # Jetstream websocket URL (jetstream mode; default wss://jetstream2.us-east.bsky.network/subscribe)
    # or XRPC base URL of your PDS (search mode; default https://bsky.social/xrpc).
    api_url: str | None = None
    # Public AppView used to list the brand account's replies (no login needed).
    appview_url: str = APPVIEW_URL
    # Search mode: the account's handle or email address.
    identifier: str = ""
    # Search mode: an app password (not the account password), e.g. ${BLUESKY_APP_PASSWORD}.
    app_password: SecretStr | None = None
    # What to search for (search mode) or prefilter on (jetstream); default: every watchlist's terms.
    query: str | None = None
    # Jetstream: on reconnect, replay this far before the stored cursor (events arrive
    # slightly out of order; repeats are dropped by dedup).
    rewind: Duration = Field(default=timedelta(seconds=5))
    # Jetstream: how often matched posts and the cursor are stored.
    batch_every: Duration = Field(default=timedelta(seconds=1))
    # Jetstream: how long `monitor run --once` listens before it stops.
    run_once_for: Duration = Field(default=timedelta(seconds=10))
    # Search mode: each poll re-reads this far before the newest post seen (search indexing lag).
    overlap: Duration = Field(default=timedelta(minutes=10))
    # Search mode: at most this many search terms are queried per poll.
    max_queries: int = Field(default=10, ge=1, le=50)
    # Search mode: at most this many result pages (100 posts each) per term and poll.
    max_pages: int = Field(default=3, ge=1, le=20)

    @model_validator(mode="after")
    def _search_needs_login(self) -> BlueskyConfig:
        password = self.app_password.get_secret_value() if self.app_password else ""
        if self.enabled and self.mode == "search" and not (self.identifier and password):
            raise ValueError(
                "search mode needs `identifier` and `app_password` (create an app password "
                "in bsky.app → Settings → Privacy and security → App passwords), "
                "or use mode: jetstream, which needs no account"
            )
        return self


@dataclass(slots=True)
class _Session:
    did: str
    access: SecretStr
    refresh: SecretStr
    expires_at: datetime


class BlueskySource(Source):
    kind: ClassVar[str] = "bluesky"
    docs_url: ClassVar[str] = "https://docs.bsky.app/docs/api/app-bsky-feed-search-posts"
    # Search mode: one poll per minute at most is plenty and far inside 3,000 requests/5 min.
    min_interval_s: ClassVar[float] = 60.0
    # Search mode: posts per searchPosts page (the API's maximum).
    max_results_per_call: ClassVar[int] = 100
    Config = BlueskyConfig
    config: BlueskyConfig

    def __init__(self, name: str, config: SourceConfig, context: SourceContext) -> None:
        super().__init__(name, config, context)
        self.streaming = self.config.mode == "jetstream"
        self.once_timeout_s = self.config.run_once_for.total_seconds()
        self._session: _Session | None = None
        self.rate = RateLimit()

    def endpoint(self) -> str:
        if self.config.api_url:
            return self.config.api_url
        return JETSTREAM_URL if self.streaming else XRPC_URL

    def _queries(self) -> list[str]:
        if self.config.query:
            return [self.config.query]
        hinted = [w for w in self.context.watchlists if w.name == self.config.watchlist]
        return [w.query for w in hinted or self.context.watchlists]

    def limits(self) -> dict[str, Any]:
        if self.streaming:
            return {
                "mode": "jetstream",
                "rate_limit": "none (one websocket)",
                "batch_every_s": self.config.batch_every.total_seconds(),
                "rewind_s": self.config.rewind.total_seconds(),
            }
        return {
            "mode": "search",
            "min_interval_s": self.min_interval_s,
            "max_results_per_call": self.max_results_per_call,
            "max_queries_per_poll": self.config.max_queries,
            "requests_per_5_min": 3000,
            "logins_per_day": 300,
        }

    def describe(self) -> str:
        who = f", as {self.config.identifier}" if not self.streaming else ""
        return f"{self.name} ({self.kind} {self.config.mode}{who})"

    # ---------------------------------------------------------------- jetstream mode

    async def stream(
        self, state: SourceState, deliver: Callable[[FetchResult], Awaitable[None]]
    ) -> None:
        http = self.context.http
        settings = JetstreamSettings(
            url=self.endpoint(),
            rewind=self.config.rewind,
            batch_every=self.config.batch_every,
            user_agent=http.user_agent,
            connect_timeout_s=http.config.connect_timeout.total_seconds(),
            watchlist=self.watchlist_hint(),
        )
        consumer = JetstreamConsumer(self.name, settings, Prefilter(self._queries()))
        await consumer.consume(state, deliver)

    # ------------------------------------------------------------------- search mode

    async def fetch(self, state: SourceState) -> FetchResult:
        if not self._terms():
            return nothing_to_search(self.name, state)
        window = SeenWindow.load(state.cursor.get("window"), self.config.overlap)
        previous_newest = window.newest
        since = window.since()
        terms = self._terms()
        mentions = []
        skipped = SkippedItems("posts")
        done = 0
        while done < len(terms) and self.rate.wait(needed=1) is None:
            for post in await self._search(terms[done], since):
                with skipped.guard():
                    # Identity and time first (sources/items.py): only they move the cursor.
                    item = obj(post, "post")
                    did, rkey, indexed_at = _post_identity(item)
                    key = f"bluesky:{at_uri(did, rkey)}"
                    if window.is_new(key):
                        # The server's clock, not the author's `createdAt`, moves the cursor.
                        window.add(key, indexed_at)
                        mentions.append(self._post_to_mention(item, did, rkey, indexed_at))
            done += 1
        stats = {"mode": "search", "queries": done, **self.rate.stats()}
        result = FetchResult(mentions, stats=stats)
        skipped.report(result.warnings)
        if done < len(terms):
            # Some terms were not searched: keep the old starting point so they miss nothing.
            window.newest = previous_newest
            result.warnings.append(
                f"rate limit used up; {len(terms) - done} search terms wait for the reset"
            )
        if (wait := self.rate.wait(needed=len(terms))) is not None:
            result.next_check_in = max(wait, self.interval)
        result.cursor = {"window": window.dump()}
        return result

    def _terms(self) -> list[str]:
        found: list[str] = []
        for query in self._queries():
            found += search_terms(parse_query(query))
        return list(dict.fromkeys(found))[: self.config.max_queries]

    async def _search(self, term: str, since: datetime | None) -> list[Any]:
        """The posts of every page, as sent (each is read inside a SkippedItems guard)."""
        posts: list[Any] = []
        params: dict[str, Any] = {"q": _quoted(term), "sort": "latest", "limit": 100}
        if since is not None:
            params["since"] = iso(since)
        for _page in range(self.config.max_pages if since is not None else 1):
            data = await self._xrpc_get("app.bsky.feed.searchPosts", params)
            page = data.get("posts")
            if not isinstance(page, list):
                raise SourceError(
                    self.name,
                    "searchPosts answered without a `posts` list",
                    hint="check `api_url` points at an XRPC endpoint (https://bsky.social/xrpc)",
                )
            posts += page
            cursor = page_token(data.get("cursor"))
            if not cursor or len(page) < params["limit"]:
                break
            params["cursor"] = cursor
        return posts

    def _post_to_mention(
        self, post: Mapping[str, Any], did: str, rkey: str, indexed_at: datetime
    ) -> Mention:
        return post_mention(
            did,
            rkey,
            obj(post.get("record"), "record"),
            handle=text(nested(post, "author"), "handle"),
            cid=text(post, "cid"),
            seen_at=indexed_at,
            watchlist=self.watchlist_hint(),
        )

    # ----------------------------------------------------------------- XRPC plumbing

    async def _xrpc_get(self, method: str, params: dict[str, Any]) -> dict[str, Any]:
        """An authenticated query; refreshes the session once if the token was refused."""
        for attempt in (1, 2):
            session = await self._ensure_session()
            response = await self.context.http.get(
                self.name,
                f"{self.endpoint().rstrip('/')}/{method}",
                params=params,
                headers={"Authorization": f"Bearer {session.access.get_secret_value()}"},
                accept_status=(400, 401, 429),
            )
            self.rate = RateLimit.from_headers(response.headers)
            refused = response.status in (400, 401) and _xrpc_error(response)[0] in TOKEN_ERRORS
            if refused and attempt == 1:
                # Expired early or revoked: refresh (or log in again) and retry once.
                session.expires_at = datetime.now(UTC)
                continue
            return self._json(response, method)
        raise AssertionError("unreachable")  # pragma: no cover

    async def _ensure_session(self) -> _Session:
        now = datetime.now(UTC)
        if self._session is not None and self._session.expires_at - now > REFRESH_MARGIN:
            return self._session
        if self._session is not None:
            refreshed = await self._call_session(
                "com.atproto.server.refreshSession",
                headers={"Authorization": f"Bearer {self._session.refresh.get_secret_value()}"},
            )
            if refreshed is not None:
                self._session = refreshed
                return refreshed
        password = self.config.app_password
        created = await self._call_session(
            "com.atproto.server.createSession",
            body={
                "identifier": self.config.identifier,
                "password": password.get_secret_value() if password else "",
            },
        )
        assert created is not None
        self._session = created
        return created

    async def _call_session(
        self,
        method: str,
        *,
        headers: dict[str, str] | None = None,
        body: dict[str, str] | None = None,
    ) -> _Session | None:
        """createSession / refreshSession. A failed refresh returns None (log in again);
        a failed login raises, naming the keys to check."""
        response = await self.context.http.request(
            self.name,
            "POST",
            f"{self.endpoint().rstrip('/')}/{method}",
            headers=headers,
            json=body,
            accept_status=(400, 401, 429),
        )
        if response.status in (400, 401):
            if body is None:
                return None  # the refresh token is spent too: log in again
            error, message = _xrpc_error(response)
            raise SourceError(
                self.name,
                f"login failed (HTTP {response.status} {error}: {message})".replace(" : ", " "),
                hint="check `identifier` and `app_password` of this source "
                "(an app password from bsky.app → Settings → App passwords)",
                permanent=True,
            )
        if response.status == 429:
            self.rate = RateLimit.from_headers(response.headers)
        data = self._json(response, method)
        access, refresh = data.get("accessJwt"), data.get("refreshJwt")
        if not (isinstance(access, str) and isinstance(refresh, str)):
            raise SourceError(
                self.name,
                f"{method} answered without tokens",
                hint="check `api_url` points at your PDS's XRPC endpoint",
            )
        return _Session(
            did=str(data.get("did") or ""),
            access=SecretStr(access),
            refresh=SecretStr(refresh),
            expires_at=_token_expiry(access),
        )

    def _json(self, response: HttpResponse, method: str) -> dict[str, Any]:
        if response.status == 429:
            retry_after = parse_retry_after(response.headers.get("Retry-After"))
            raise SourceError(
                self.name,
                f"rate limited by Bluesky (HTTP 429 on {method})",
                hint="the account's request budget is used up; waiting for its reset",
                retry_after=retry_after or self.rate.wait(1) or timedelta(minutes=5),
            )
        if response.status >= 400:
            error, message = _xrpc_error(response)
            detail = f"HTTP {response.status} {error}: {message}".rstrip(": ")
            if response.status == 401 or error in TOKEN_ERRORS:
                raise SourceError(
                    self.name,
                    f"{method} refused our session ({detail})",
                    hint="check `identifier` and `app_password` of this source",
                    permanent=True,
                )
            raise SourceError(
                self.name,
                f"{method} failed ({detail})",
                hint="check `query` and the watchlist queries this source searches for",
            )
        try:
            data = json.loads(response.body)
        except (ValueError, RecursionError) as exc:
            raise SourceError(
                self.name,
                f"malformed JSON from {method} ({exc})",
                hint="the API or a proxy answered with something else; check `api_url`",
            ) from None
        if not isinstance(data, dict):
            raise SourceError(
                self.name,
                f"malformed answer from {method}: not a JSON object",
                hint="check `api_url`",
            )
        return data

    # ------------------------------------------------------------------ brand replies

    async def replies(self, account: str, since: datetime | None) -> list[BrandReply]:
        """The brand account's recent replies, from its public author feed (no login)."""
        actor = account.strip().lstrip("@")
        found: list[BrandReply] = []
        skipped = SkippedItems("feed items")
        params: dict[str, Any] = {"actor": actor, "filter": "posts_with_replies", "limit": 100}
        for _page in range(self.config.max_pages):
            response = await self.context.http.get(
                self.name,
                f"{self.config.appview_url.rstrip('/')}/app.bsky.feed.getAuthorFeed",
                params=params,
            )
            data = self._json(response, "getAuthorFeed")
            feed = data.get("feed") if isinstance(data.get("feed"), list) else []
            oldest: datetime | None = None
            for item in feed:
                with skipped.guard():
                    when = _item_time(item)
                    oldest = when if oldest is None or (when and when < oldest) else oldest
                    reply = _brand_reply(obj(item), actor)
                    if reply is not None and (since is None or reply.published_at >= since):
                        found.append(reply)
            cursor = page_token(data.get("cursor"))
            if not cursor or not feed or (since is not None and oldest and oldest < since):
                break
            params["cursor"] = cursor
        skipped.log(f"{self.name}: replies of {account}")
        return found


def _post_identity(post: Mapping[str, Any]) -> tuple[str, str, datetime]:
    """(author DID, record key, indexedAt) of a postView: what its key and the cursor need."""
    uri = ident(post, "uri")
    if not uri.startswith("at://"):
        raise MalformedItem("uri", "is no AT-URI")
    did = text(nested(post, "author"), "did") or uri.removeprefix("at://").split("/", 1)[0]
    return did, rkey_of(uri), timestamp(post, "indexedAt")


def _quoted(term: str) -> str:
    return f'"{term}"' if " " in term else term


def _xrpc_error(response: HttpResponse) -> tuple[str, str]:
    try:
        data = json.loads(response.body)
    except (ValueError, RecursionError):
        return "", ""
    if not isinstance(data, dict):
        return "", ""
    return str(data.get("error") or ""), str(data.get("message") or "")[:200]


def _token_expiry(jwt: str) -> datetime:
    """The `exp` claim of an access token; we only read it to know when to refresh."""
    try:
        payload = jwt.split(".")[1]
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        return datetime.fromtimestamp(float(claims["exp"]), UTC)
    except (IndexError, ValueError, KeyError, TypeError):
        return datetime.now(UTC) + ASSUMED_TOKEN_LIFETIME


def _item_time(item: Any) -> datetime | None:
    post = item.get("post") if isinstance(item, Mapping) else None
    record = post.get("record") if isinstance(post, Mapping) else None
    if not isinstance(record, Mapping):
        return None
    return parse_time(record.get("createdAt")) or parse_time(post.get("indexedAt"))


def _brand_reply(item: Mapping[str, Any], actor: str) -> BrandReply | None:
    """A feed item that is the account's own reply (None for a repost or a top-level
    post); a malformed one raises (sources/items.py)."""
    if item.get("reason"):
        return None
    post = obj(item.get("post"), "post")
    author, record, uri = (
        obj(post.get("author"), "author"),
        obj(post.get("record"), "record"),
        ident(post, "uri"),
    )
    did, handle = text(author, "did"), text(author, "handle")
    if actor.lower() not in (did.lower(), handle.lower()):
        return None
    parent = reply_parent(record)
    when = _item_time(item)
    if not parent or when is None:
        return None
    return BrandReply(
        thread_key=thread_key(record, uri),
        url=post_url(did, rkey_of(uri)),
        published_at=when,
        in_reply_to_key=f"bluesky:{parent}",
        author=handle or did,
    )
