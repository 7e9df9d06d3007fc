"""Source adapters, one per file, registered explicitly by their `type:` key."""

from __future__ import annotations

from sources.base import Source
from sources.bluesky import BlueskySource
from sources.github import GithubSource
from sources.google_alerts import GoogleAlertsSource
from sources.google_news import GoogleNewsSource
from sources.hackernews import HackerNewsSource
from sources.mastodon import MastodonSource
from sources.reddit import RedditSource
from sources.rss import RssSource
from sources.stackexchange import StackExchangeSource
from sources.youtube import YoutubeSource

SOURCES: dict[str, type[Source]] = {
    RssSource.kind: RssSource,
    GoogleAlertsSource.kind: GoogleAlertsSource,
    GoogleNewsSource.kind: GoogleNewsSource,
    HackerNewsSource.kind: HackerNewsSource,
    RedditSource.kind: RedditSource,
    MastodonSource.kind: MastodonSource,
    StackExchangeSource.kind: StackExchangeSource,
    BlueskySource.kind: BlueskySource,
    GithubSource.kind: GithubSource,
    YoutubeSource.kind: YoutubeSource,
}
