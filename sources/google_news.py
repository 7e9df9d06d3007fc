"""Google News search as RSS. Credentials: none.

docs: https://news.google.com/rss/search?q=QUERY&hl=en-US&gl=US&ceid=US:en (no published API)

Terms of use: Google offers these feeds for feed readers and publishes no API, quota or
support for them; Google's Terms of Service apply and the articles belong to their
publishers. Use it for your own monitoring, do not republish what it returns, and keep
polling gentle (never more often than every 10 minutes here). Google may change the
format or refuse automated requests at any time; that shows up in `monitor sources` as an
error or a dark source, never as "no mentions".

Article links are opaque redirect tokens (``news.google.com/rss/articles/CBMi...``): we
store them as given (old tokens that still carry the URL are decoded by canonical_url),
and give each mention a headline+publisher identity so the same story seen through
another source is stored once.
"""

from __future__ import annotations

import asyncio
import math
import unicodedata
from datetime import timedelta
from typing import Any, ClassVar, Literal

from pydantic import Field, field_validator

from monitor.durations import Duration
from monitor.matching import parse_query, search_terms
from monitor.mention import Mention
from monitor.textclean import html_to_line, html_to_text
from monitor.urls import publisher_domain
from sources.base import FetchResult, Source, SourceConfig, SourceError, SourceState
from sources.http import HttpResponse
from sources.rss import (
    bounded_key,
    entry_html,
    entry_identities,
    entry_time,
    headline_hint,
    parse_feed,
)


class GoogleNewsConfig(SourceConfig):
    type: Literal["google_news"] = "google_news"
    # Search in Google News syntax ("acme cloud" OR acmecloud); empty = one search per
    # watchlist, built from its query's terms (only `watchlist`'s when that is set).
    query: str = ""
    # Interface language of the edition, e.g. en-US, en-IN, hi, bn, fa.
    hl: str = "en-US"
    # Country of the edition, e.g. US, IN, BD.
    gl: str = "US"
    # Edition id COUNTRY:language, e.g. US:en or IN:hi; empty = made from gl and hl.
    ceid: str = ""
    # Only articles from this recent window (Google's `when:` operator): whole hours or days.
    recency: Duration = Field(default=timedelta(days=1))
    # Google News RSS search endpoint (change it for a proxy or a test server).
    api_url: str = "https://news.google.com/rss/search"

    @field_validator("recency")
    @classmethod
    def _at_least_an_hour(cls, value: timedelta) -> timedelta:
        if value < timedelta(hours=1):
            raise ValueError("Google News cannot search less than the last hour; use 1h or more")
        return value


class GoogleNewsSource(Source):
    kind: ClassVar[str] = "google_news"
    docs_url: ClassVar[str] = "https://news.google.com/rss"
    # No published limit: stay well clear of looking like a scraper.
    min_interval_s: ClassVar[float] = 600.0
    # Google ran the watchlist's query on the whole article, but an item carries only its
    # headline: the local matcher would drop most true hits, so `watchlist:` files them.
    routes_to_watchlist: ClassVar[bool] = True
    Config = GoogleNewsConfig
    config: GoogleNewsConfig

    def searches(self) -> list[str]:
        """The `q` of each request: the configured query, or one per watchlist."""
        if self.config.query.strip():
            queries = [self.config.query.strip()]
        else:
            queries = [
                query
                for watchlist in self.context.watchlists
                if self.config.watchlist in (None, watchlist.name)
                if (query := google_query(search_terms(parse_query(watchlist.query))))
            ]
        return [f"{query} when:{when(self.config.recency)}" for query in queries]

    def edition(self) -> dict[str, str]:
        hl, gl = self.config.hl, self.config.gl.upper()
        return {"hl": hl, "gl": gl, "ceid": self.config.ceid or f"{gl}:{hl.split('-')[0]}"}

    def limits(self) -> dict[str, Any]:
        return {**super().limits(), "searches": len(self.searches())}

    async def fetch(self, state: SourceState) -> FetchResult:
        searches = self.searches()
        if not searches:
            raise SourceError(
                self.name,
                "nothing to search for",
                hint="set `query` on this source, or give a watchlist a query with words in it",
                permanent=True,
            )
        mentions: dict[str, Mention] = {}
        warnings: list[str] = []
        for query in searches:
            response = await self.context.http.get(
                self.name, self.config.api_url, params={"q": query, **self.edition()}
            )
            found, notes = await asyncio.to_thread(self.read, response)
            mentions.update((m.source_key, m) for m in found)
            warnings += notes
        return FetchResult(
            list(mentions.values()),
            cursor=state.cursor,
            warnings=list(dict.fromkeys(warnings)),
            stats={"searches": len(searches), "entries": len(mentions)},
        )

    def read(self, response: HttpResponse) -> tuple[list[Mention], list[str]]:
        """One search result page → mentions. Runs in a worker thread: no I/O here."""
        document = parse_feed(self.name, response)
        identities = entry_identities(document.entries)
        mentions = [
            self.entry_to_mention(entry, identity)
            for entry, identity in zip(document.entries, identities, strict=True)
        ]
        return mentions, document.warnings

    def entry_to_mention(self, entry: Any, identity: str) -> Mention:
        source = entry.get("source") or {}
        publisher = html_to_line(source.get("title", ""))
        publisher_url = str(source.get("href", ""))
        headline = strip_publisher(html_to_line(entry.get("title", "")), publisher)
        content = entry_html(entry)
        return Mention(
            source_key=bounded_key(f"google_news:{identity}"),
            url=str(entry.get("link", "")),  # an opaque token: stored as given
            title=headline,
            text=html_to_text(content),
            html=content,
            author=publisher,
            author_url=publisher_url,
            published_at=entry_time(entry),
            watchlist_hint=self.watchlist_hint(),
            language_hint=self.config.hl.split("-")[0].lower(),
            dedup_hints=headline_hint(headline, publisher_domain(publisher_url) or publisher),
            extra={"publisher": publisher} if publisher else {},
        )


def google_query(terms: list[str]) -> str:
    """Terms ORed, phrases quoted: ``["acme cloud", "acmecloud"]`` → ``"acme cloud" OR acmecloud``."""
    quoted = []
    for term in terms:
        term = term.replace('"', "").strip()
        if term:
            quoted.append(term if _is_one_word(term) else f'"{term}"')
    return " OR ".join(dict.fromkeys(quoted))


def _is_one_word(term: str) -> bool:
    # Letters, digits and combining marks (Hindi, Bengali vowel signs) only.
    return all(ch.isalnum() or unicodedata.category(ch).startswith("M") for ch in term)


def when(recency: timedelta) -> str:
    """Google's ``when:`` takes hours or days: 1d, 36h."""
    hours = math.ceil(recency.total_seconds() / 3600)
    return f"{hours // 24}d" if hours % 24 == 0 else f"{hours}h"


def strip_publisher(title: str, publisher: str) -> str:
    """Google News titles end in " - Publisher"; the headline is what other sources show."""
    suffix = f" - {publisher}"
    if publisher and title.endswith(suffix) and len(title) > len(suffix):
        return title[: -len(suffix)].rstrip()
    return title
