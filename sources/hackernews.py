"""Hacker News stories and comments through Algolia's HN Search API, newest first.

docs: https://hn.algolia.com/api

Credentials: none. Config keys: `query` (optional; default: the watchlists' terms),
`search` (story and/or comment), `api_url`, `hits_per_page`, `max_pages`.
Limits: 10,000 requests per hour per IP; `hitsPerPage` up to 1000; Algolia serves at
most 1000 hits per query however it is paged.

One `search_by_date` query per search term with `numericFilters=created_at_i>X`, X a few
minutes before the newest hit already returned (the index lags), paging with
`page`/`nbPages`. Identity: the item id (`objectID`); thread: the story id.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any, ClassVar, Literal

from pydantic import Field

from monitor.mention import BrandReply, Mention
from monitor.textclean import html_to_text
from sources.base import FetchResult, Source, SourceConfig, SourceError, SourceState
from sources.items import (
    SkippedItems,
    count,
    epoch,
    epoch_time,
    ident,
    obj,
    optional_ident,
    strings,
    text,
)
from sources.searchkit import (
    SearchQuery,
    Watermark,
    http_status,
    nothing_to_search,
    parse_json,
    search_terms_for,
    unexpected_shape,
)

ITEM_URL = "https://news.ycombinator.com/item?id={}"
USER_URL = "https://news.ycombinator.com/user?id={}"
# Algolia indexes new items within seconds to minutes; look back this far each poll.
INDEX_LAG_S = 15 * 60


class HackerNewsConfig(SourceConfig):
    type: Literal["hackernews"] = "hackernews"
    # Search terms in watchlist syntax; empty = the terms of the watchlists.
    query: SearchQuery = ""
    # What to search: stories, comments, or both.
    search: list[Literal["story", "comment"]] = Field(
        default_factory=lambda: ["story", "comment"], min_length=1
    )
    # Algolia HN Search API base URL.
    api_url: str = "https://hn.algolia.com/api/v1"
    # Hits per request (Algolia allows up to 1000).
    hits_per_page: int = Field(default=100, ge=1, le=1000)
    # Most pages read per term and poll; anything beyond is skipped with a warning.
    max_pages: int = Field(default=5, ge=1, le=50)


class HackerNewsSource(Source):
    kind: ClassVar[str] = "hackernews"
    docs_url: ClassVar[str] = "https://hn.algolia.com/api"
    # New HN items per term arrive slowly; faster polls only spend the shared IP budget.
    min_interval_s: ClassVar[float] = 60.0
    # Algolia's published budget for the public HN index.
    requests_per_hour: ClassVar[int] = 10_000
    Config = HackerNewsConfig
    config: HackerNewsConfig

    def terms(self) -> list[str]:
        return search_terms_for(self.config.query, self.config.watchlist, self.context.watchlists)

    def limits(self) -> dict[str, Any]:
        return {
            "min_interval_s": self.min_interval_s,
            "requests_per_hour": self.requests_per_hour,
            "max_results_per_call": self.config.hits_per_page,
            "max_pages_per_term": self.config.max_pages,
            "max_requests_per_poll": len(self.terms()) * self.config.max_pages,
        }

    async def fetch(self, state: SourceState) -> FetchResult:
        if not self.terms():
            return nothing_to_search(self.name, state)
        mark = Watermark.load(state.cursor.get("watermark"), INDEX_LAG_S)
        tags = ",".join(self.config.search)
        tags = f"({tags})" if len(self.config.search) > 1 else tags
        mentions: list[Mention] = []
        warnings: list[str] = []
        skipped = SkippedItems()
        requests = 0
        for term in self.terms():
            numeric = f"created_at_i>{int(mark.cutoff)}" if mark.cutoff is not None else None
            hits, calls, truncated = await self._search(
                {"query": term, "tags": tags}, numeric, first_page_only=mark.first_poll
            )
            requests += calls
            if truncated:
                warnings.append(
                    f"more than {self.config.max_pages} pages of new hits for {term!r}; older "
                    "ones were skipped — poll more often or raise max_pages"
                )
            for hit in hits:
                with skipped.guard():
                    # Identity and time first (sources/items.py): only they move the cursor.
                    item = obj(hit)
                    if mark.admit(ident(item, "objectID"), epoch(item, "created_at_i")):
                        mentions.append(self.hit_to_mention(item))
        skipped.report(warnings)
        return FetchResult(
            mentions,
            cursor={"watermark": mark.dump()},
            warnings=warnings,
            stats={"requests": requests},
        )

    async def _search(
        self, params: dict[str, Any], numeric: str | None, *, first_page_only: bool = False
    ) -> tuple[list[Any], int, bool]:
        """All pages of one search_by_date query: (hits as sent, requests made, truncated)."""
        query = {**params, "hitsPerPage": self.config.hits_per_page}
        if numeric:
            query["numericFilters"] = numeric
        hits: list[Any] = []
        page = 0
        while True:
            data = await self._get("search_by_date", {**query, "page": page})
            hits += data["hits"]
            page += 1
            pages = data.get("nbPages")
            if first_page_only or not isinstance(pages, int) or page >= pages:
                return hits, page, False
            if page >= self.config.max_pages:
                return hits, page, True

    async def _get(self, path: str, params: dict[str, Any]) -> dict[str, Any]:
        url = f"{self.config.api_url.rstrip('/')}/{path}"
        try:
            response = await self.context.http.get(self.name, url, params=params)
        except SourceError as exc:
            status = http_status(exc)
            if status in (401, 403):
                raise SourceError(
                    self.name,
                    f"access denied (HTTP {status}) by {url}",
                    hint=f"the HN Search API needs no key, so a proxy or block list refuses this "
                    f"machine — check sources[{self.name!r}].api_url and outbound access",
                    permanent=True,
                ) from None
            raise
        data = parse_json(self.name, response.body, f"HN Search {path}")
        if not isinstance(data, dict) or not isinstance(data.get("hits"), list):
            raise unexpected_shape(self.name, f"HN Search {path}", "no `hits` list")
        return data

    def hit_to_mention(self, hit: Mapping[str, Any]) -> Mention:
        item_id = ident(hit, "objectID")
        comment_html = text(hit, "comment_text")
        is_comment = "comment" in strings(hit, "_tags") or bool(comment_html)
        body_html = comment_html or text(hit, "story_text")
        author = text(hit, "author")
        story_id = optional_ident(hit, "story_id") or item_id
        title = text(hit, "title")
        return Mention(
            source_key=f"hackernews:{item_id}",
            url=ITEM_URL.format(item_id),
            # A comment's story title is context, not the comment's words: keep it out of matching.
            title="" if is_comment else html_to_text(title),
            text=html_to_text(body_html),
            html=body_html,
            author=author,
            author_url=USER_URL.format(author) if author else "",
            published_at=epoch_time(hit, "created_at_i"),
            thread_key=f"hackernews:{story_id}",
            watchlist_hint=self.watchlist_hint(),
            extra={
                "type": "comment" if is_comment else "story",
                "story_title": text(hit, "story_title") or title,
                "link": text(hit, "url") or text(hit, "story_url"),
                "points": count(hit, "points"),
                "num_comments": count(hit, "num_comments"),
            },
        )

    async def replies(self, account: str, since: datetime | None) -> list[BrandReply]:
        """Comments written by the brand's HN account (``tags=comment,author_<name>``)."""
        name = account.strip().lstrip("@")
        numeric = f"created_at_i>{int(since.timestamp()) - 1}" if since else None
        hits, _calls, _truncated = await self._search(
            {"tags": f"comment,author_{name}"}, numeric, first_page_only=since is None
        )
        found: list[BrandReply] = []
        skipped = SkippedItems("comments")
        for hit in hits:
            with skipped.guard():
                item = obj(hit)
                item_id, parent = ident(item, "objectID"), optional_ident(item, "parent_id")
                found.append(
                    BrandReply(
                        thread_key=f"hackernews:{optional_ident(item, 'story_id') or item_id}",
                        url=ITEM_URL.format(item_id),
                        published_at=epoch_time(item, "created_at_i"),
                        in_reply_to_key=f"hackernews:{parent}" if parent else "",
                        author=text(item, "author") or name,
                    )
                )
        skipped.log(f"{self.name}: replies of {account}")
        return found
