"""GitHub issues and pull requests that mention the brand, from the issue search API.

docs: https://docs.github.com/en/rest/search/search#search-issues-and-pull-requests

Credentials: optional `token` — any personal access token (a fine-grained token with
read-only access to public repositories, or a classic token with no scopes). Without one
the search API allows 10 requests a minute per IP address; with one, 30 a minute.
Queries: GitHub wants `is:issue` and `is:pr` as separate searches, so each poll runs two per
group of up to six terms (GitHub allows five OR operators per query), `in:title,body`,
`sort=created`, newest first, with a `created:>=` cursor that overlaps by `overlap` because
new issues reach the search index with a delay; ids already returned are dropped.
Limits: `x-ratelimit-remaining/-reset` are read on every answer; when the budget is gone the
rest waits for the reset. Secondary rate limits (403/429 with Retry-After) are honoured.
Cannot see: comments (only the issue or pull request text), private repositories the
token cannot read, anything past the first 1,000 results of a search.
Brand replies: the account's public events (`IssueCommentEvent`), i.e. comments it wrote on
issues and pull requests; GitHub publishes them with a delay of 30 seconds to a few hours.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any, ClassVar, Literal

from pydantic import Field, SecretStr

from monitor.durations import Duration
from monitor.matching import parse_query, search_terms
from monitor.mention import BrandReply, Mention
from monitor.textclean import html_to_text
from sources.base import FetchResult, Source, SourceConfig, SourceError, SourceState
from sources.http import HttpResponse, parse_retry_after
from sources.incremental import RateLimit, SeenWindow, iso, parse_time
from sources.items import (
    MalformedItem,
    SkippedItems,
    count,
    nested,
    obj,
    objects,
    optional_ident,
    text,
    timestamp,
)
from sources.searchkit import nothing_to_search

# GitHub allows at most five AND/OR/NOT operators in one search.
TERMS_PER_QUERY = 6
# And at most 256 characters of query text (qualifiers aside).
MAX_QUERY_CHARS = 256


class GithubConfig(SourceConfig):
    type: Literal["github"] = "github"
    # Poll interval (each poll costs two searches per six terms).
    every: Duration = Field(default=timedelta(minutes=5))
    # REST API base URL (GitHub Enterprise: https://HOST/api/v3).
    api_url: str = "https://api.github.com"
    # Optional personal access token, e.g. ${GITHUB_TOKEN}: 30 instead of 10 searches a minute.
    token: SecretStr | None = None
    # What to search for, in watchlist syntax; default: every watchlist's search terms.
    query: str | None = None
    # GitHub qualifiers added to every search, e.g. "-org:acme" to skip your own repositories.
    qualifiers: str = ""
    # Each poll re-reads this far before the newest item seen (the search index lags).
    overlap: Duration = Field(default=timedelta(minutes=10))
    # At most this many pages of 100 results per search and poll.
    max_pages: int = Field(default=3, ge=1, le=10)


class GithubSource(Source):
    kind: ClassVar[str] = "github"
    docs_url: ClassVar[str] = (
        "https://docs.github.com/en/rest/search/search#search-issues-and-pull-requests"
    )
    # Two searches a poll against 10 a minute without a token: once a minute is the floor.
    min_interval_s: ClassVar[float] = 60.0
    # Results per search page (GitHub's maximum).
    max_results_per_call: ClassVar[int] = 100
    # Search requests per minute, without and with a token.
    searches_per_minute_anonymous: ClassVar[int] = 10
    searches_per_minute_with_token: ClassVar[int] = 30
    Config = GithubConfig
    config: GithubConfig

    def limits(self) -> dict[str, Any]:
        return {
            "min_interval_s": self.min_interval_s,
            "max_results_per_call": self.max_results_per_call,
            "searches_per_minute": self.searches_per_minute_with_token
            if self._token()
            else self.searches_per_minute_anonymous,
            "searches_per_poll": 2 * len(self._queries()),
        }

    def describe(self) -> str:
        return f"{self.name} ({self.kind}{', with token' if self._token() else ''})"

    def _token(self) -> str:
        return self.config.token.get_secret_value() if self.config.token else ""

    def _headers(self) -> dict[str, str]:
        headers = {
            "Accept": "application/vnd.github+json",
            "X-GitHub-Api-Version": "2022-11-28",
        }
        if token := self._token():
            headers["Authorization"] = f"Bearer {token}"
        return headers

    def _queries(self) -> list[str]:
        """Watchlist terms as GitHub OR-groups within GitHub's operator and length limits."""
        sources = [self.config.query] if self.config.query else None
        if sources is None:
            hinted = [w for w in self.context.watchlists if w.name == self.config.watchlist]
            sources = [w.query for w in hinted or self.context.watchlists]
        terms = [t.replace('"', "") for q in sources for t in search_terms(parse_query(q))]
        groups: list[list[str]] = []
        for term in dict.fromkeys(t for t in terms if t.strip()):
            quoted = f'"{term}"' if " " in term else term
            current = groups[-1] if groups else None
            if (
                current is None
                or len(current) >= TERMS_PER_QUERY
                or len(" OR ".join([*current, quoted])) > MAX_QUERY_CHARS
            ):
                groups.append([quoted])
            else:
                current.append(quoted)
        return [" OR ".join(group) for group in groups]

    # ----------------------------------------------------------------------- polling

    async def fetch(self, state: SourceState) -> FetchResult:
        if not self._queries():
            return nothing_to_search(self.name, state)
        window = SeenWindow.load(state.cursor.get("window"), self.config.overlap)
        previous_newest = window.newest
        since = window.since()
        searches = [(q, kind) for q in self._queries() for kind in ("issue", "pr")]
        mentions: list[Mention] = []
        skipped = SkippedItems()
        rate = RateLimit()
        done = 0
        while done < len(searches) and rate.wait(needed=1) is None:
            terms, kind = searches[done]
            rate = await self._search(terms, kind, since, window, mentions, skipped)
            done += 1
        result = FetchResult(mentions, stats={"searches": done, **rate.stats()})
        skipped.report(result.warnings)
        if done < len(searches):
            # Some searches did not run: keep the old starting point so they miss nothing.
            window.newest = previous_newest
            result.warnings.append(
                f"search rate limit used up; {len(searches) - done} searches wait for the reset"
                + ("" if self._token() else " (a `token` raises the limit from 10 to 30 a minute)")
            )
        if (wait := rate.wait(needed=len(searches))) is not None:
            result.next_check_in = max(wait, self.interval)
        result.cursor = {"window": window.dump()}
        return result

    async def _search(
        self,
        terms: str,
        kind: str,
        since: datetime | None,
        window: SeenWindow,
        found: list[Mention],
        skipped: SkippedItems,
    ) -> RateLimit:
        query = f"{terms} is:{kind} in:title,body"
        if since is not None:
            query += f" created:>={iso(since)}"
        if self.config.qualifiers.strip():
            query += f" {self.config.qualifiers.strip()}"
        rate = RateLimit()
        for page in range(1, (self.config.max_pages if since is not None else 1) + 1):
            response = await self.context.http.get(
                self.name,
                f"{self.config.api_url.rstrip('/')}/search/issues",
                params={
                    "q": query,
                    "sort": "created",
                    "order": "desc",
                    "per_page": self.max_results_per_call,
                    "page": page,
                },
                headers=self._headers(),
                accept_status=(401, 403, 422, 429),
            )
            rate = RateLimit.from_headers(response.headers)
            items = self._items(response)
            new = 0
            for raw in items:
                with skipped.guard():
                    # Identity and time first (sources/items.py): only they move the cursor.
                    item = obj(raw)
                    key, created = _identity(item)
                    if window.is_new(key):
                        window.add(key, created)
                        new += 1
                        found.append(self._to_mention(item, kind))
            if len(items) < self.max_results_per_call or not new or rate.wait(needed=2):
                break
        return rate

    def _items(self, response: HttpResponse) -> list[Any]:
        """The `items` of a search answer, as sent (each is read inside a SkippedItems guard)."""
        if response.status >= 400:
            raise self._error(response)
        try:
            data = json.loads(response.body)
        except (ValueError, RecursionError) as exc:
            raise SourceError(
                self.name,
                f"malformed JSON from the search API ({exc})",
                hint="the API or a proxy answered with something else; check `api_url`",
            ) from None
        items = data.get("items") if isinstance(data, dict) else None
        if not isinstance(items, list):
            raise SourceError(
                self.name,
                "the search API answered without an `items` list",
                hint="check `api_url` points at the GitHub REST API (https://api.github.com)",
            )
        return items

    def _error(self, response: HttpResponse) -> SourceError:
        message = _message(response)
        rate = RateLimit.from_headers(response.headers)
        retry_after = parse_retry_after(response.headers.get("Retry-After"))
        if response.status in (403, 429) and (retry_after is not None or rate.remaining == 0):
            more = "" if self._token() else "; a `token` raises the limit from 10 to 30 a minute"
            return SourceError(
                self.name,
                f"rate limited by GitHub (HTTP {response.status}: {message})",
                hint=f"waiting for the limit to reset{more}",
                retry_after=retry_after or rate.wait(needed=1) or timedelta(minutes=1),
            )
        if response.status in (401, 403):
            return SourceError(
                self.name,
                f"access denied (HTTP {response.status}: {message})",
                hint="check `token` of this source: it may be expired, revoked or lack access"
                if self._token()
                else "GitHub refused an anonymous search; set `token` of this source",
                permanent=True,
            )
        return SourceError(
            self.name,
            f"GitHub rejected the search (HTTP {response.status}: {message})",
            hint="check `query`/`qualifiers` of this source and the watchlist queries",
            permanent=True,
        )

    def _to_mention(self, item: Mapping[str, Any], kind: str) -> Mention:
        key, created = _identity(item)
        url = text(item, "html_url")
        user = nested(item, "user")
        repository = text(item, "repository_url").split("/repos/", 1)[-1]
        labels = [label["name"] for label in objects(item, "labels") if _named(label)]
        return Mention(
            source_key=key,
            url=url,
            title=html_to_text(text(item, "title")),
            text=html_to_text(text(item, "body")),
            author=text(user, "login"),
            author_url=text(user, "html_url"),
            published_at=created,
            thread_key=url,
            watchlist_hint=self.watchlist_hint(),
            extra={
                "kind": kind,
                "repository": repository,
                "number": count(item, "number"),
                "state": text(item, "state"),
                "comments": count(item, "comments"),
                "labels": labels[:10],
            },
        )

    # ------------------------------------------------------------------ brand replies

    async def replies(self, account: str, since: datetime | None) -> list[BrandReply]:
        """Comments the brand's account wrote on issues and pull requests (public events)."""
        login = account.strip().lstrip("@")
        response = await self.context.http.get(
            self.name,
            f"{self.config.api_url.rstrip('/')}/users/{login}/events/public",
            params={"per_page": 100},
            headers=self._headers(),
            accept_status=(401, 403, 422, 429),
        )
        if response.status >= 400:
            raise self._error(response)
        try:
            events = json.loads(response.body)
        except (ValueError, RecursionError) as exc:
            raise SourceError(
                self.name, f"malformed JSON from the events API ({exc})", hint="check `api_url`"
            ) from None
        found = []
        skipped = SkippedItems("events")
        for event in events if isinstance(events, list) else []:
            with skipped.guard():
                reply = _comment_reply(obj(event, "event"), login)
                if reply is not None and (since is None or reply.published_at >= since):
                    found.append(reply)
        skipped.log(f"{self.name}: replies of {account}")
        return found


def _message(response: HttpResponse) -> str:
    try:
        data = json.loads(response.body)
    except (ValueError, RecursionError):
        return response.body[:200].decode("utf-8", "replace").strip() or "no details"
    message = data.get("message") if isinstance(data, dict) else None
    return str(message)[:200] if message else "no details"


def _identity(item: Mapping[str, Any]) -> tuple[str, datetime]:
    """(source key, created_at) of a search result: what the cursor is made of."""
    url = text(item, "html_url")
    if not url.startswith(("https://", "http://")):
        raise MalformedItem("html_url", "is no web address")
    return f"github:{optional_ident(item, 'node_id') or url}", timestamp(item, "created_at")


def _named(label: Mapping[str, Any]) -> bool:
    return isinstance(label.get("name"), str)


def _comment_reply(event: Mapping[str, Any], login: str) -> BrandReply | None:
    """The account's comment on an issue or pull request (None for any other event); a
    malformed one raises (sources/items.py)."""
    if event.get("type") != "IssueCommentEvent":
        return None
    payload = obj(event.get("payload"), "payload")
    if payload.get("action") not in ("created", None):
        return None
    comment, issue = obj(payload.get("comment"), "comment"), obj(payload.get("issue"), "issue")
    author = text(nested(comment, "user"), "login")
    when = parse_time(comment.get("created_at")) or parse_time(event.get("created_at"))
    thread = text(issue, "html_url")
    if author.lower() != login.lower() or when is None or not thread:
        return None
    node_id = optional_ident(issue, "node_id")
    return BrandReply(
        thread_key=thread,
        url=text(comment, "html_url") or thread,
        published_at=when,
        in_reply_to_key=f"github:{node_id}" if node_id else "",
        author=author,
    )
