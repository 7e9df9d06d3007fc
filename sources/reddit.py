"""Reddit posts via the OAuth API (app-only), or the public search feed without credentials.

docs: https://www.reddit.com/dev/api/#GET_search

Credentials: create an app at https://www.reddit.com/prefs/apps (type "script" or "web");
its id goes in `client_id`, its secret in `client_secret` (use ${REDDIT_CLIENT_SECRET}), and
the Reddit account that owns it in `username` — Reddit requires a User-Agent of the form
`<platform>:<app id>:<version> (by /u/<username>)`, built from `app_id` and `username`.
Other keys: `query`, `subreddits`, `api_url`, `token_url`, `public_url`, `limit`, `max_pages`.

Limits: 100 requests per minute per OAuth client (averaged over 10 minutes), announced in
`X-Ratelimit-Remaining/Used/Reset`; tokens last an hour. Without credentials — or when the
API answers 403 — the source reads `search.rss` instead and reports itself *degraded*: that
feed is capped at 100 items and rate-limited harder. Comments are not searchable through
the API; only posts (`type=link`). Identity: the fullname (`t3_...`).
"""

from __future__ import annotations

import asyncio
import base64
import re
import time
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar, Literal

from pydantic import Field, SecretStr

from monitor import __version__
from monitor.mention import BrandReply, Mention
from monitor.textclean import html_to_text
from sources.base import FetchResult, Source, SourceConfig, SourceError, SourceState
from sources.items import (
    SkippedItems,
    count,
    epoch,
    epoch_time,
    flag,
    ident,
    obj,
    optional_ident,
    page_token,
    text,
)
from sources.rss import parse_feed
from sources.searchkit import (
    SearchQuery,
    Watermark,
    http_status,
    nothing_to_search,
    parse_json,
    search_terms_for,
    unexpected_shape,
)

SITE = "https://www.reddit.com"
# Reddit's search lags new posts by a few minutes; look back this far each poll.
INDEX_LAG_S = 15 * 60
# Longest `q` Reddit accepts; more terms are split over several searches.
MAX_QUERY_CHARS = 512
# Refresh the bearer token this long before it expires.
TOKEN_MARGIN_S = 60
# Stop paging and wait for the window to reset when fewer requests than this are left.
RATE_RESERVE = 5
_FULLNAME = re.compile(r"^t[1-6]_[a-z0-9]+$")
_POST_LINK = re.compile(r"/comments/([a-z0-9]+)(?:/[^/?#]*(?:/([a-z0-9]+))?)?/?(?:[?#]|$)")
_FEED_FOOTER = re.compile(r"\s*submitted by\s+/u/\S+.*$", re.DOTALL)


class RedditConfig(SourceConfig):
    type: Literal["reddit"] = "reddit"
    # Search terms in watchlist syntax; empty = the positive terms of every watchlist.
    query: SearchQuery = ""
    # Only search these subreddits (names without r/); empty = all of Reddit.
    subreddits: list[str] = Field(default_factory=list)
    # OAuth app id; empty = read the public search feed instead (degraded).
    client_id: str = ""
    # OAuth app secret.
    client_secret: SecretStr | None = None
    # The Reddit account that owns the app, for the User-Agent Reddit requires.
    username: str = ""
    # App name in the User-Agent.
    app_id: str = "brand-monitor"
    # OAuth API base URL.
    api_url: str = "https://oauth.reddit.com"
    # Token endpoint (client-credentials grant).
    token_url: str = "https://www.reddit.com/api/v1/access_token"
    # Public site base URL for search.rss and comments.rss when OAuth is not available.
    public_url: str = SITE
    # Posts per request (Reddit allows up to 100).
    limit: int = Field(default=100, ge=1, le=100)
    # Most pages read per search and poll.
    max_pages: int = Field(default=3, ge=1, le=10)


class RedditSource(Source):
    kind: ClassVar[str] = "reddit"
    docs_url: ClassVar[str] = "https://www.reddit.com/dev/api/#GET_search"
    # New posts per search are few; polling faster mostly spends the rate window.
    min_interval_s: ClassVar[float] = 60.0
    # OAuth budget per client, averaged over 10 minutes.
    requests_per_minute: ClassVar[int] = 100
    Config = RedditConfig
    config: RedditConfig

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._token = ""
        self._token_expires = 0.0  # time.monotonic()
        self._rate_remaining: float | None = None
        self._rate_reset_s: float | None = None

    # ------------------------------------------------------------------- description

    @property
    def has_credentials(self) -> bool:
        secret = self.config.client_secret
        return bool(self.config.client_id and secret and secret.get_secret_value())

    @property
    def user_agent(self) -> str:
        by = f" (by /u/{self.config.username.removeprefix('u/')})" if self.config.username else ""
        return f"server:{self.config.app_id}:{__version__}{by}"

    def limits(self) -> dict[str, Any]:
        return {
            "min_interval_s": self.min_interval_s,
            "requests_per_minute": self.requests_per_minute if self.has_credentials else 10,
            "max_results_per_call": self.config.limit,
            "max_pages_per_search": self.config.max_pages,
            "token_lifetime_s": 3600,
        }

    def describe(self) -> str:
        mode = f"OAuth app {self.config.client_id}" if self.has_credentials else "public feed"
        return f"{self.name} ({self.kind}, {mode})"

    def queries(self) -> list[str]:
        """The watchlist terms as Reddit searches: `"a b" OR c`, split to fit 512 chars."""
        parts = [
            f'"{t}"' if " " in t else t
            for t in (term.replace('"', " ").strip() for term in self._terms())
            if t
        ]
        queries: list[str] = []
        for part in parts:
            if queries and len(queries[-1]) + len(part) + 4 <= MAX_QUERY_CHARS:
                queries[-1] += f" OR {part}"
            else:
                queries.append(part[:MAX_QUERY_CHARS])
        return queries

    def _terms(self) -> list[str]:
        return search_terms_for(self.config.query, self.config.watchlist, self.context.watchlists)

    def _search_path(self) -> tuple[str, dict[str, str]]:
        if self.config.subreddits:
            names = "+".join(s.removeprefix("r/").strip("/") for s in self.config.subreddits)
            return f"/r/{names}/search", {"restrict_sr": "on"}
        return "/search", {}

    # ------------------------------------------------------------------------ polling

    async def fetch(self, state: SourceState) -> FetchResult:
        if not self.queries():
            return nothing_to_search(self.name, state)
        mark = Watermark.load(state.cursor.get("watermark"), INDEX_LAG_S)
        degraded = None
        warnings: list[str] = []
        self._rate_remaining = None
        if self.has_credentials:
            try:
                mentions, warnings = await self._fetch_api(mark)
            except SourceError as exc:
                if http_status(exc) != 403:
                    raise
                # Start over from the saved cursor: what the API pages admitted is lost.
                mark = Watermark.load(state.cursor.get("watermark"), INDEX_LAG_S)
                degraded = (
                    "the OAuth API refused this app (HTTP 403); reading the public search feed "
                    f"instead — check the app at reddit.com/prefs/apps and sources[{self.name!r}]"
                    ".client_id"
                )
                mentions = await self._fetch_public(mark, warnings)
        else:
            degraded = (
                "no OAuth credentials: reading the public search feed (at most 100 posts, "
                f"stricter limits) — set {self._credential_keys}"
            )
            mentions = await self._fetch_public(mark, warnings)
        next_check_in = None
        if self._rate_remaining is not None and self._rate_remaining < RATE_RESERVE:
            wait = timedelta(seconds=(self._rate_reset_s or 60) + 1)
            warnings.append(
                f"rate window nearly spent ({self._rate_remaining:g} requests left); "
                f"waiting {int(wait.total_seconds())}s for it to reset"
            )
            next_check_in = max(wait, self.interval)  # never sooner than a normal poll
        return FetchResult(
            mentions,
            cursor={"watermark": mark.dump()},
            warnings=warnings,
            degraded=degraded,
            next_check_in=next_check_in,
            stats=self._stats("public-feed" if degraded else "oauth"),
        )

    def _stats(self, mode: str) -> dict[str, Any]:
        stats: dict[str, Any] = {"mode": mode}
        if mode == "oauth" and self._rate_remaining is not None:
            stats["ratelimit_remaining"] = self._rate_remaining
            reset = datetime.now(UTC) + timedelta(seconds=self._rate_reset_s or 0)
            stats["ratelimit_reset_at"] = reset.isoformat(timespec="seconds")
        return stats

    async def _fetch_api(self, mark: Watermark) -> tuple[list[Mention], list[str]]:
        path, restrict = self._search_path()
        mentions: list[Mention] = []
        warnings: list[str] = []
        skipped = SkippedItems("posts")
        for query in self.queries():
            after = None
            for page in range(self.config.max_pages):
                params = {"q": query, "sort": "new", "type": "link", "raw_json": "1", **restrict}
                params["limit"] = str(self.config.limit)
                if after:
                    params["after"] = after
                children, after = await self._listing(path, params)
                oldest: float | None = None
                for child in children:
                    with skipped.guard():
                        # Identity and time first (sources/items.py): only they move the cursor.
                        post = _child_data(child)
                        created = epoch(post, "created_utc")
                        oldest = created if oldest is None else min(oldest, created)
                        if mark.admit(ident(post, "name"), created):
                            mentions.append(self.post_to_mention(post))
                cutoff = mark.cutoff
                reached = cutoff is not None and (oldest is None or oldest < cutoff)
                if mark.first_poll or not after or reached:
                    break
                if self._rate_remaining is not None and self._rate_remaining < RATE_RESERVE:
                    break
                if page == self.config.max_pages - 1:
                    warnings.append(
                        f"more than {self.config.max_pages} pages of new posts for {query!r}; "
                        "older ones were skipped — poll more often or raise max_pages"
                    )
        skipped.report(warnings)
        return mentions, warnings

    async def _listing(self, path: str, params: dict[str, str]) -> tuple[list[Any], str | None]:
        """One OAuth listing page: (its children as sent, `after`). Each child is read
        with _child_data, inside a SkippedItems guard."""
        data = await self._api_get(path, params)
        listing = data.get("data") if isinstance(data, dict) else None
        if not isinstance(listing, dict) or not isinstance(listing.get("children"), list):
            raise unexpected_shape(self.name, f"Reddit {path}", "not a Listing")
        return listing["children"], page_token(listing.get("after"))

    async def _api_get(self, path: str, params: dict[str, str]) -> Any:
        url = self.config.api_url.rstrip("/") + path
        for attempt in (1, 2):
            headers = {
                "Authorization": f"bearer {await self._bearer()}",
                "User-Agent": self.user_agent,
            }
            try:
                response = await self.context.http.get(
                    self.name, url, params=params, headers=headers
                )
            except SourceError as exc:
                if http_status(exc) == 401 and attempt == 1:
                    self._token = ""  # revoked or expired early: get a new one, once
                    continue
                if http_status(exc) == 401:
                    raise self._auth_error("the API") from None
                if http_status(exc) == 404 and self.config.subreddits:
                    raise SourceError(
                        self.name,
                        f"not found (HTTP 404): {path}",
                        hint=f"a subreddit in sources[{self.name!r}].subreddits does not exist "
                        "or was banned",
                        permanent=True,
                    ) from None
                raise
            self._note_rate_limit(response.header_dict())
            return parse_json(self.name, response.body, f"Reddit {path}")
        raise AssertionError("unreachable")

    async def _bearer(self) -> str:
        """The app-only token, cached until a minute before it expires."""
        if self._token and time.monotonic() < self._token_expires - TOKEN_MARGIN_S:
            return self._token
        secret = self.config.client_secret.get_secret_value() if self.config.client_secret else ""
        basic = base64.b64encode(f"{self.config.client_id}:{secret}".encode()).decode()
        try:
            response = await self.context.http.request(
                self.name,
                "POST",
                self.config.token_url,
                data={"grant_type": "client_credentials"},
                headers={"Authorization": f"Basic {basic}", "User-Agent": self.user_agent},
            )
        except SourceError as exc:
            if http_status(exc) == 401:
                raise self._auth_error("the token endpoint") from None
            raise
        data = parse_json(self.name, response.body, "Reddit token endpoint")
        token = data.get("access_token") if isinstance(data, dict) else None
        if not isinstance(token, str) or not token:
            error = data.get("error") if isinstance(data, dict) else None
            raise self._auth_error(f"the token endpoint (error={error!r})")
        expires_in = data.get("expires_in")
        self._token = token
        self._token_expires = time.monotonic() + (
            float(expires_in) if isinstance(expires_in, int | float) else 3600.0
        )
        return token

    @property
    def _credential_keys(self) -> str:
        return f"sources[{self.name!r}].client_id / client_secret"

    def _auth_error(self, where: str) -> SourceError:
        return SourceError(
            self.name,
            f"access denied (HTTP 401) by {where}",
            hint=f"check {self._credential_keys} (an app of type "
            "'script' or 'web' at https://www.reddit.com/prefs/apps)",
            permanent=True,
        )

    def _note_rate_limit(self, headers: dict[str, str]) -> None:
        remaining = _number(headers.get("x-ratelimit-remaining"))
        if remaining is not None:
            self._rate_remaining = remaining
            self._rate_reset_s = _number(headers.get("x-ratelimit-reset"))

    def post_to_mention(self, post: Mapping[str, Any]) -> Mention:
        name = ident(post, "name")
        author = text(post, "author")
        permalink = text(post, "permalink")
        link = "" if flag(post, "is_self") else text(post, "url")
        return Mention(
            source_key=f"reddit:{name}",
            url=SITE + permalink if permalink.startswith("/") else permalink or link,
            title=text(post, "title"),
            text=text(post, "selftext"),
            html=text(post, "selftext_html"),
            author=author,
            author_url=f"{SITE}/user/{author}" if author and author != "[deleted]" else "",
            published_at=epoch_time(post, "created_utc"),
            thread_key=f"reddit:{name}",
            watchlist_hint=self.watchlist_hint(),
            extra={
                "subreddit": text(post, "subreddit_name_prefixed") or text(post, "subreddit"),
                "score": count(post, "score"),
                "num_comments": count(post, "num_comments"),
                "link": link,
                "over_18": flag(post, "over_18"),
            },
        )

    # ------------------------------------------------------------ public-feed fallback

    async def _fetch_public(self, mark: Watermark, warnings: list[str]) -> list[Mention]:
        path, restrict = self._search_path()
        mentions = []
        for query in self.queries():
            params = {"q": query, "sort": "new", "limit": "100", **restrict}
            for entry in await self._feed(f"{path}.rss", params, warnings):
                identity = _entry_identity(entry)
                if identity and mark.admit(identity[0], identity[2]):
                    mentions.append(self.entry_to_mention(entry, identity))
        return mentions

    async def _feed(
        self, path: str, params: dict[str, str], warnings: list[str] | None = None
    ) -> list[Any]:
        """Entries of a public feed, parsed like every other feed (sources.rss.parse_feed:
        never bare bytes to feedparser, HTML block pages recognised). A refusal or a page
        that is no feed names the credentials that avoid the public feed altogether."""
        url = self.config.public_url.rstrip("/") + path
        try:
            response = await self.context.http.get(
                self.name, url, params=params, headers={"User-Agent": self.user_agent}
            )
        except SourceError as exc:
            status = http_status(exc)
            if status not in (401, 403):
                raise
            raise SourceError(
                self.name,
                f"the public feed {path} refused this machine (HTTP {status})",
                hint=f"Reddit blocks unauthenticated reads from many addresses; set "
                f"{self._credential_keys} (an app at https://www.reddit.com/prefs/apps) "
                "to use the API",
                retry_after=exc.retry_after,
                permanent=True,
            ) from None
        try:
            document = await asyncio.to_thread(parse_feed, self.name, response)
        except SourceError as exc:
            problem = str(exc).removeprefix(f"{self.name}: ").removesuffix(f" — {exc.hint}")
            raise SourceError(
                self.name,
                f"the public feed {path} is not a usable feed: {problem}",
                hint=f"Reddit may have answered with a block page; set {self._credential_keys} "
                "to use the API",
            ) from None
        if warnings is not None:
            warnings += document.warnings
        return document.entries

    def entry_to_mention(self, entry: Any, identity: tuple[str, str, float]) -> Mention:
        fullname, thread, created = identity
        html = str((entry.get("content") or [{}])[0].get("value") or entry.get("summary") or "")
        author = str(entry.get("author") or "").removeprefix("/u/")
        return Mention(
            source_key=f"reddit:{fullname}",
            url=str(entry.get("link") or ""),
            title=html_to_text(str(entry.get("title") or "")),
            text=_FEED_FOOTER.sub("", html_to_text(html)),
            html=html,
            author=author,
            author_url=f"{SITE}/user/{author}" if author else "",
            published_at=datetime.fromtimestamp(created, UTC),
            thread_key=f"reddit:{thread}",
            watchlist_hint=self.watchlist_hint(),
            extra={"subreddit": (entry.get("tags") or [{}])[0].get("label") or "", "via": "rss"},
        )

    # ---------------------------------------------------------------------- replies

    async def replies(self, account: str, since: datetime | None) -> list[BrandReply]:
        """The brand account's newest comments: thread = the post, parent = what it answered."""
        name = account.strip().removeprefix("/").removeprefix("u/").removeprefix("@")
        if not self.has_credentials:
            return [
                reply
                for entry in await self._feed(f"/user/{name}/comments.rss", {"limit": "100"})
                if (reply := _feed_reply(entry, name, since)) is not None
            ]
        found: list[BrandReply] = []
        skipped = SkippedItems("comments")
        after = None
        older = False
        for _page in range(self.config.max_pages):
            params = {"sort": "new", "limit": "100", "raw_json": "1"}
            if after:
                params["after"] = after
            children, after = await self._listing(f"/user/{name}/comments", params)
            for child in children:
                with skipped.guard():
                    reply = _comment_reply(_child_data(child), name)
                    older = since is not None and reply.published_at < since
                    if older:
                        break
                    if reply.thread_key:
                        found.append(reply)
            if older or not after or since is None:
                break
        skipped.log(f"{self.name}: replies of {account}")
        return found


def _child_data(child: Any) -> Mapping[str, Any]:
    """The `data` object of a Listing child (a post or a comment)."""
    return obj(obj(child, "child").get("data"), "data")


def _comment_reply(comment: Mapping[str, Any], name: str) -> BrandReply:
    """One of the account's comments; thread_key is "" for one outside any post."""
    link_id, parent_id = optional_ident(comment, "link_id"), optional_ident(comment, "parent_id")
    return BrandReply(
        thread_key=f"reddit:{link_id}" if link_id else "",
        url=SITE + text(comment, "permalink"),
        published_at=epoch_time(comment, "created_utc"),
        in_reply_to_key=f"reddit:{parent_id}" if parent_id else "",
        author=text(comment, "author") or name,
    )


def _number(value: str | None) -> float | None:
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


def _entry_identity(entry: Any) -> tuple[str, str, float] | None:
    """(fullname, thread fullname, created epoch) of a feed entry, from its id or link."""
    link = str(entry.get("link") or "")
    found = _POST_LINK.search(link)
    entry_id = str(entry.get("id") or "")
    if _FULLNAME.match(entry_id):
        fullname = entry_id
    elif found:
        fullname = f"t1_{found.group(2)}" if found.group(2) else f"t3_{found.group(1)}"
    else:
        return None
    thread = f"t3_{found.group(1)}" if found else fullname
    stamp = entry.get("published_parsed") or entry.get("updated_parsed")
    if not stamp:
        return None
    return fullname, thread, datetime(*stamp[:6], tzinfo=UTC).timestamp()


def _feed_reply(entry: Any, name: str, since: datetime | None) -> BrandReply | None:
    identity = _entry_identity(entry)
    if identity is None:
        return None
    _fullname, thread, created = identity
    published = datetime.fromtimestamp(created, UTC)
    if since is not None and published < since:
        return None
    return BrandReply(
        thread_key=f"reddit:{thread}",
        url=str(entry.get("link") or ""),
        published_at=published,
        author=name,
    )
