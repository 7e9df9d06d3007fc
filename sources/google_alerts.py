"""Google Alerts delivered as an Atom feed ("Deliver to: RSS feed"). Credentials: none.

docs: https://support.google.com/websearch/answer/4815696

The tool the playbook names for mentions that do not tag the brand: Google watches the
web and news for a query and lists new hits in a per-alert feed at
``https://www.google.com/alerts/feeds/<user id>/<alert id>``. Each entry links through a
Google redirect (``https://www.google.com/url?rct=j&sa=t&url=<article>&ct=ga&...``),
which we unwrap to the article; titles and snippets carry ``<b>`` around the keyword,
which become plain text. An alert is usually one topic: ``watchlist:`` routes every
hit to that watchlist even when the text does not match its query.
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from monitor.mention import Mention
from monitor.textclean import html_to_line, html_to_text
from monitor.urls import publisher_domain, unwrap_redirect
from sources.rss import (
    FeedDocument,
    RssConfig,
    RssSource,
    bounded_key,
    entry_html,
    entry_language,
    entry_time,
    headline_hint,
)


class GoogleAlertsConfig(RssConfig):
    type: Literal["google_alerts"] = "google_alerts"  # type: ignore[assignment]
    # The alert's feed URL, https://www.google.com/alerts/feeds/<user id>/<alert id>
    # (google.com/alerts → the alert's ✎ → Deliver to: RSS feed → the feed icon's link).
    url: str


class GoogleAlertsSource(RssSource):
    kind: ClassVar[str] = "google_alerts"
    docs_url: ClassVar[str] = "https://support.google.com/websearch/answer/4815696"
    # Google adds hits to a feed at most "as-it-happens"; faster polling only adds load.
    min_interval_s: ClassVar[float] = 300.0
    Config = GoogleAlertsConfig
    config: GoogleAlertsConfig

    def entry_to_mention(self, entry: Any, identity: str, document: FeedDocument) -> Mention:
        """Key: the entry id plus the article URL — stable across polls, and two hits for
        the same article under one id (Google does re-list) stay distinct sightings."""
        article = unwrap_redirect(str(entry.get("link", "")))
        title = html_to_line(entry.get("title", ""))
        content = entry_html(entry)
        return Mention(
            source_key=bounded_key(f"google_alerts:{identity}#{article}"),
            url=article,
            title=title,
            text=html_to_text(content),
            html=content,
            author=html_to_line(entry.get("author", "")),
            published_at=entry_time(entry),
            watchlist_hint=self.watchlist_hint(),
            language_hint=entry_language(entry, document.language),
            dedup_hints=headline_hint(title, publisher_domain(article)),
            extra={"alert": document.title} if document.title else {},
        )
