"""YouTube videos that mention the brand, plus comments on the brand's own channel.

docs: https://developers.google.com/youtube/v3/docs/search/list

Credentials: `api_key` — Google Cloud console → APIs & Services → enable "YouTube Data API
v3" → Credentials → Create credentials → API key (restrict it to that API).
Quota: a project gets 10,000 units a day, reset at midnight Pacific time. search.list costs
100 units per page of up to 50 videos; commentThreads.list costs 1. The adapter spreads
what is left of the day evenly over the rest of it — interval = time left today ÷ (units
left ÷ units per poll), never shorter than `every` — so one search per poll means a poll
about every 15 minutes, which is also the expected detection delay (`expected_delay_s` in
`monitor sources`), on top of YouTube's own indexing lag. Set `quota_units_per_day` to this
source's share when the key also serves something else.
Queries: the watchlists' terms joined with `|` (YouTube's OR), up to ten per search,
type=video, order=date, `publishedAfter` = newest video seen − `overlap`.
Comments: with `channel_id` (the brand's channel) the newest comment threads on all its
videos are read each poll (1 unit per 100) and matched like everything else — `searchTerms`
is not used, because listing every new thread costs the same single unit and the shared
matcher then decides consistently. The brand channel's own uploads are skipped.
Brand replies: replies written by `channel_id` inside those threads (the API includes up to
five replies per thread).
Cannot see: comments on other channels' videos, captions, videos not yet in search.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from datetime import UTC, datetime, time, timedelta, timezone
from typing import Any, ClassVar, Literal
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, SecretStr, model_validator

from monitor.durations import Duration
from monitor.matching import parse_query, search_terms
from monitor.mention import BrandReply, Mention
from monitor.textclean import html_to_text
from sources.base import FetchResult, Source, SourceConfig, SourceError, SourceState, secret_tag
from sources.http import HttpResponse, parse_retry_after
from sources.incremental import SeenWindow, iso
from sources.items import (
    SkippedItems,
    count,
    ident,
    nested,
    obj,
    objects,
    optional_ident,
    page_token,
    text,
    timestamp,
)
from sources.searchkit import nothing_to_search

try:
    PACIFIC: Any = ZoneInfo("America/Los_Angeles")
except ZoneInfoNotFoundError:  # no tz database on this machine: standard time is close enough
    PACIFIC = timezone(timedelta(hours=-8), "PST")

SEARCH_COST_UNITS = 100
COMMENTS_COST_UNITS = 1
# YouTube's OR (`|`) queries get unreliable beyond about this many terms.
TERMS_PER_QUERY = 10
QUOTA_REASONS = ("quotaExceeded", "dailyLimitExceeded")
SLOW_DOWN_REASONS = ("rateLimitExceeded", "userRateLimitExceeded")
KEY_REASONS = (
    "keyInvalid",
    "API_KEY_INVALID",
    "keyExpired",
    "API_KEY_EXPIRED",
    "accessNotConfigured",
    "SERVICE_DISABLED",
    "ipRefererBlocked",
    "API_KEY_SERVICE_BLOCKED",
    "forbidden",
)


class YoutubeConfig(SourceConfig):
    type: Literal["youtube"] = "youtube"
    # Poll interval; the daily quota usually sets a longer one (see README).
    every: Duration = Field(default=timedelta(minutes=15))
    # Data API base URL.
    api_url: str = "https://www.googleapis.com/youtube/v3"
    # API key with "YouTube Data API v3" enabled, e.g. ${YOUTUBE_API_KEY}.
    api_key: SecretStr | None = None
    # What to search for, in watchlist syntax; default: every watchlist's search terms.
    query: str | None = None
    # The brand's own channel id (UC…): read comments on its videos, skip its own uploads.
    channel_id: str = ""
    # Quota units per day this source may spend (the project default is 10,000).
    quota_units_per_day: int = Field(default=10_000, ge=SEARCH_COST_UNITS)
    # Each poll re-reads this far before the newest video seen (YouTube indexes late).
    overlap: Duration = Field(default=timedelta(hours=6))
    # Result pages per search and poll; every page costs 100 units.
    max_pages: int = Field(default=1, ge=1, le=5)

    @model_validator(mode="after")
    def _needs_key(self) -> YoutubeConfig:
        if self.enabled and not (self.api_key and self.api_key.get_secret_value()):
            raise ValueError(
                "needs `api_key` (Google Cloud console → enable YouTube Data API v3 → "
                "Credentials → API key)"
            )
        return self


def next_pacific_midnight(now: datetime) -> datetime:
    tomorrow = (now.astimezone(PACIFIC) + timedelta(days=1)).date()
    return datetime.combine(tomorrow, time(0), tzinfo=PACIFIC).astimezone(UTC)


def pacific_day(now: datetime) -> str:
    return now.astimezone(PACIFIC).date().isoformat()


class YoutubeSource(Source):
    kind: ClassVar[str] = "youtube"
    docs_url: ClassVar[str] = "https://developers.google.com/youtube/v3/docs/search/list"
    # The quota, not this, sets the pace; this only stops a config from hammering.
    min_interval_s: ClassVar[float] = 300.0
    # Videos per search page, and comment threads per commentThreads page (API maximums).
    max_results_per_call: ClassVar[int] = 50
    max_comment_threads_per_call: ClassVar[int] = 100
    # Listing the brand channel's replies costs one unit a call; every 15 minutes that is
    # 96 units a day per channel, set aside from the quota before polls are planned.
    replies_min_interval_s: ClassVar[float] = 900.0
    Config = YoutubeConfig
    config: YoutubeConfig

    # ------------------------------------------------------------------- the budget

    def _queries(self) -> list[str]:
        sources = [self.config.query] if self.config.query else None
        if sources is None:
            hinted = [w for w in self.context.watchlists if w.name == self.config.watchlist]
            sources = [w.query for w in hinted or self.context.watchlists]
        terms = list(dict.fromkeys(t for q in sources for t in search_terms(parse_query(q))))
        quoted = [f'"{t}"' if " " in t else t for t in (t.replace('"', "") for t in terms)]
        return [
            "|".join(quoted[i : i + TERMS_PER_QUERY])
            for i in range(0, len(quoted), TERMS_PER_QUERY)
        ]

    def units_per_poll(self) -> int:
        comments = COMMENTS_COST_UNITS if self.config.channel_id else 0
        return len(self._queries()) * SEARCH_COST_UNITS + comments

    def budget_key(self) -> str:
        """The quota belongs to the Google Cloud project of the API key."""
        key = self.config.api_key.get_secret_value() if self.config.api_key else ""
        host = urlsplit(self.config.api_url).hostname or self.config.api_url
        return f"YouTube quota of API key {secret_tag(key)} at {host}"

    def reply_units_per_day(self) -> int:
        """What listing the brand channel's replies may spend a day, at most: one call per
        `brand.accounts.youtube` entry that names a channel (or falls back to channel_id)."""
        accounts = self.context.brand.accounts.get(self.kind, [])
        calling = [a for a in accounts if a.startswith("UC") or self.config.channel_id]
        return math.ceil(len(calling) * COMMENTS_COST_UNITS * 86_400 / self.replies_min_interval_s)

    def daily_units(self) -> int:
        """Units polls may spend today: this source's even share of `quota_units_per_day`
        (sources on the same key split it), less what replies may spend."""
        share = self.config.quota_units_per_day // self.budget_sharers
        return max(share - self.reply_units_per_day(), 0)

    def budget_interval(self, used: int = 0, now: datetime | None = None) -> timedelta:
        """Spread what is left of today's quota evenly over what is left of the day."""
        now = now or datetime.now(UTC)
        midnight = next_pacific_midnight(now)
        polls_left = (self.daily_units() - used) // max(self.units_per_poll(), 1)
        if polls_left <= 0:
            return midnight - now
        return max((midnight - now) / polls_left, self.interval)

    def limits(self) -> dict[str, Any]:
        full_day = timedelta(days=1) / max(self.daily_units() // max(self.units_per_poll(), 1), 1)
        delay = max(full_day, self.interval)
        return {
            "expected_delay_s": round(delay.total_seconds()),
            "quota_units_per_day": self.config.quota_units_per_day,
            "budget_shared_by": self.budget_sharers,
            "reply_units_per_day": self.reply_units_per_day(),
            "units_per_poll": self.units_per_poll(),
            "search_cost_units": SEARCH_COST_UNITS,
            "comment_threads_cost_units": COMMENTS_COST_UNITS,
            "min_interval_s": self.min_interval_s,
            "max_results_per_call": self.max_results_per_call,
        }

    def describe(self) -> str:
        return f"{self.name} ({self.kind}, {self.units_per_poll()} quota units a poll)"

    # ----------------------------------------------------------------------- polling

    async def fetch(self, state: SourceState) -> FetchResult:
        if not self._queries() and not self.config.channel_id:
            return nothing_to_search(self.name, state)
        now = datetime.now(UTC)
        quota = state.cursor.get("quota")
        today = isinstance(quota, dict) and quota.get("day") == pacific_day(now)
        used = int(quota.get("used", 0)) if today else 0  # type: ignore[union-attr]
        videos = SeenWindow.load(state.cursor.get("videos"), self.config.overlap)
        comments = SeenWindow.load(state.cursor.get("comments"), timedelta(minutes=10))
        if used + self.units_per_poll() > self.daily_units():
            result = FetchResult([], cursor=dict(state.cursor))
            result.next_check_in = next_pacific_midnight(now) - now
            result.warnings.append(
                "today's quota is used up; searching again after midnight Pacific"
            )
            result.stats = self._stats(used, result.next_check_in)
            return result

        mentions: list[Mention] = []
        skipped = SkippedItems()
        for query in self._queries():
            used += await self._search_videos(query, videos, mentions, skipped)
        warnings = []
        if self.config.channel_id:
            spent, warning = await self._read_comments(comments, mentions, skipped)
            used += spent
            warnings += [warning] if warning else []
        skipped.report(warnings)
        wait = self.budget_interval(used, now)
        return FetchResult(
            mentions,
            cursor={
                "videos": videos.dump(),
                "comments": comments.dump(),
                "quota": {"day": pacific_day(now), "used": used},
            },
            next_check_in=wait,
            warnings=warnings,
            stats=self._stats(used, wait),
        )

    def _stats(self, used: int, wait: timedelta) -> dict[str, Any]:
        return {
            "quota_units_for_polls": self.daily_units(),
            "quota_used_today": used,
            "quota_left_today": max(self.daily_units() - used, 0),
            "units_per_poll": self.units_per_poll(),
            "poll_interval_s": round(wait.total_seconds()),
            "expected_delay_s": round(wait.total_seconds()),
        }

    async def _search_videos(
        self, query: str, window: SeenWindow, found: list[Mention], skipped: SkippedItems
    ) -> int:
        """One search (paged while every result is new); returns the units spent."""
        params: dict[str, Any] = {
            "part": "snippet",
            "type": "video",
            "order": "date",
            "q": query,
            "maxResults": self.max_results_per_call,
        }
        since = window.since()
        if since is not None:
            params["publishedAfter"] = iso(since)
        spent = 0
        for _page in range(self.config.max_pages if since is not None else 1):
            data = await self._get("search", params, what="search.list")
            spent += SEARCH_COST_UNITS
            items = _items(data)
            new = 0
            for raw in items:
                with skipped.guard():
                    # Identity and time first (sources/items.py): only they move the cursor.
                    item = obj(raw)
                    identity = _video_identity(item)
                    if identity is None:
                        continue
                    key, published = identity
                    if window.is_new(key):
                        window.add(key, published)
                        new += 1
                        if (mention := self._video(item)) is not None:
                            found.append(mention)
            token = page_token(data.get("nextPageToken"))
            if not token or new < len(items):
                break
            params["pageToken"] = token
        return spent

    async def _read_comments(
        self, window: SeenWindow, found: list[Mention], skipped: SkippedItems
    ) -> tuple[int, str | None]:
        params: dict[str, Any] = {
            "part": "snippet",
            "allThreadsRelatedToChannelId": self.config.channel_id,
            "order": "time",
            "textFormat": "plainText",
            "maxResults": self.max_comment_threads_per_call,
        }
        since = window.since()
        spent = 0
        for _page in range(self.config.max_pages if since is not None else 1):
            try:
                data = await self._get("commentThreads", params, what="commentThreads.list")
            except _CommentsDisabled:
                return spent, "comments are disabled on channel_id's videos; nothing to read"
            spent += COMMENTS_COST_UNITS
            older = False
            for raw in _items(data):
                with skipped.guard():
                    # Identity and time first (sources/items.py): only they move the cursor.
                    thread = obj(raw)
                    identity = _comment_identity(thread)
                    if identity is None:
                        continue
                    key, published = identity
                    if since is not None and published < since:
                        older = True
                    elif window.is_new(key):
                        window.add(key, published)
                        if (mention := self._comment(thread)) is not None:
                            found.append(mention)
            token = page_token(data.get("nextPageToken"))
            if not token or older:
                break
            params["pageToken"] = token
        return spent, None

    def _video(self, item: Mapping[str, Any]) -> Mention | None:
        """A search result as a mention; None for the brand's own upload or no video."""
        identity = _video_identity(item)
        if identity is None:
            return None
        key, published = identity
        snippet = obj(item.get("snippet"), "snippet")
        channel = text(snippet, "channelId")
        if self.config.channel_id and channel == self.config.channel_id:
            return None  # the brand's own upload is not a mention
        url = f"https://www.youtube.com/watch?v={key.removeprefix('youtube:')}"
        return Mention(
            source_key=key,
            url=url,
            title=html_to_text(text(snippet, "title")),
            text=html_to_text(text(snippet, "description")),
            author=html_to_text(text(snippet, "channelTitle")),
            author_url=f"https://www.youtube.com/channel/{channel}" if channel else "",
            published_at=published,
            thread_key=url,
            watchlist_hint=self.watchlist_hint(),
            extra={"channel_id": channel, "live": text(snippet, "liveBroadcastContent") or "none"},
        )

    def _comment(self, thread: Mapping[str, Any]) -> Mention | None:
        """A comment thread's top comment as a mention; None when it is on no video."""
        identity = _comment_identity(thread)
        if identity is None:
            return None
        key, published = identity
        snippet, _top, details = _top_comment(thread)
        video = text(details, "videoId") or text(snippet, "videoId")
        comment = key.removeprefix("youtube:comment:")
        words = text(details, "textOriginal") or html_to_text(text(details, "textDisplay"))
        return Mention(
            source_key=key,
            url=f"https://www.youtube.com/watch?v={video}&lc={comment}",
            text=words,
            author=text(details, "authorDisplayName"),
            author_url=text(details, "authorChannelUrl"),
            published_at=published,
            thread_key=_thread_url(video, optional_ident(thread, "id") or comment),
            watchlist_hint=self.watchlist_hint(),
            extra={"video_id": video, "likes": count(details, "likeCount")},
        )

    # ------------------------------------------------------------------ brand replies

    async def replies(self, account: str, since: datetime | None) -> list[BrandReply]:
        """Replies the brand channel wrote in the newest comment threads on its videos."""
        channel = account if account.startswith("UC") else self.config.channel_id
        if not channel:
            return []
        try:
            data = await self._get(
                "commentThreads",
                {
                    "part": "snippet,replies",
                    "allThreadsRelatedToChannelId": channel,
                    "order": "time",
                    "textFormat": "plainText",
                    "maxResults": self.max_comment_threads_per_call,
                },
                what="commentThreads.list",
            )
        except _CommentsDisabled:
            return []
        found: list[BrandReply] = []
        skipped = SkippedItems("comments")
        for raw in _items(data):
            with skipped.guard():
                thread = obj(raw)
                for reply in objects(nested(thread, "replies"), "comments"):
                    with skipped.guard():
                        found += _brand_reply(thread, reply, channel, since)
        skipped.log(f"{self.name}: replies of {account}")
        return found

    # ---------------------------------------------------------------------- plumbing

    async def _get(self, method: str, params: dict[str, Any], *, what: str) -> dict[str, Any]:
        key = self.config.api_key.get_secret_value() if self.config.api_key else ""
        response = await self.context.http.get(
            self.name,
            f"{self.config.api_url.rstrip('/')}/{method}",
            params={**params, "key": key},
            # Every error is handled here: the shared layer would quote the URL, key and all.
            accept_status=range(400, 600),
        )
        if response.status >= 400:
            raise self._error(response, what)
        try:
            data = json.loads(response.body)
        except (ValueError, RecursionError) as exc:
            raise SourceError(
                self.name,
                f"malformed JSON from {what} ({exc})",
                hint="the API or a proxy answered with something else; check `api_url`",
            ) from None
        if not isinstance(data, dict):
            raise SourceError(self.name, f"malformed answer from {what}", hint="check `api_url`")
        return data

    def _error(self, response: HttpResponse, what: str) -> Exception:
        reason, message = _google_error(response)
        detail = f"HTTP {response.status} {reason}: {message}".replace(" : ", ": ")
        if reason in QUOTA_REASONS:
            now = datetime.now(UTC)
            return SourceError(
                self.name,
                f"YouTube quota exceeded ({detail})",
                hint="the daily quota resets at midnight Pacific time; lower "
                "`quota_units_per_day` if the key is shared, or ask Google for more",
                retry_after=next_pacific_midnight(now) - now,
            )
        if reason in SLOW_DOWN_REASONS or response.status == 429:
            return SourceError(
                self.name,
                f"rate limited by YouTube ({detail})",
                hint="too many requests in a short time; waiting",
                retry_after=parse_retry_after(response.headers.get("Retry-After"))
                or timedelta(minutes=5),
            )
        if response.status >= 500:
            return SourceError(
                self.name,
                f"YouTube server error ({detail})",
                hint="the platform is having trouble; the source will back off and retry",
                retry_after=parse_retry_after(response.headers.get("Retry-After")),
            )
        if reason == "commentsDisabled":
            return _CommentsDisabled()
        if reason in KEY_REASONS or response.status == 401:
            return SourceError(
                self.name,
                f"{what} refused the API key ({detail})",
                hint="check `api_key` of this source: valid, with YouTube Data API v3 enabled "
                "for its project, and not restricted to other APIs or addresses",
                permanent=True,
            )
        key = "`channel_id`" if what.startswith("comment") else "`query` and the watchlist queries"
        return SourceError(
            self.name,
            f"{what} failed ({detail})",
            hint=f"check {key} of this source",
            permanent=response.status in (400, 404),
        )


class _CommentsDisabled(Exception):
    """The channel has comments turned off: not an error, just nothing to read."""


def _items(data: Mapping[str, Any]) -> list[Any]:
    """The `items` of an answer, as sent (each is read inside a SkippedItems guard)."""
    items = data.get("items")
    return items if isinstance(items, list) else []


def _video_identity(item: Mapping[str, Any]) -> tuple[str, datetime] | None:
    """(source key, publishedAt) of a search result: what the cursor is made of. None for
    a channel or playlist result (`type=video` should exclude them; not malformed)."""
    found = obj(item.get("id"), "id")
    if found.get("kind") not in (None, "youtube#video"):
        return None
    video = ident(found, "videoId")
    return f"youtube:{video}", timestamp(obj(item.get("snippet"), "snippet"), "publishedAt")


def _top_comment(
    thread: Mapping[str, Any],
) -> tuple[Mapping[str, Any], Mapping[str, Any], Mapping[str, Any]]:
    """(thread snippet, top-level comment, its snippet) of a commentThread."""
    snippet = obj(thread.get("snippet"), "snippet")
    top = obj(snippet.get("topLevelComment"), "topLevelComment")
    return snippet, top, obj(top.get("snippet"), "topLevelComment.snippet")


def _comment_identity(thread: Mapping[str, Any]) -> tuple[str, datetime] | None:
    """(source key, publishedAt) of a thread's top comment; None for a comment on the
    channel rather than on a video (not malformed: there is just no video to link)."""
    snippet, top, details = _top_comment(thread)
    if not (text(details, "videoId") or text(snippet, "videoId")):
        return None
    return f"youtube:comment:{ident(top, 'id')}", timestamp(details, "publishedAt")


def _thread_url(video: str, thread: str) -> str:
    return f"https://www.youtube.com/watch?v={video}&lc={thread}"


def _google_error(response: HttpResponse) -> tuple[str, str]:
    """(reason, message) of a Google API error body, e.g. ("quotaExceeded", "...")."""
    try:
        error = json.loads(response.body).get("error", {})
    except (ValueError, AttributeError, RecursionError):
        return "", response.body[:200].decode("utf-8", "replace")
    if not isinstance(error, dict):
        return "", ""
    reasons = [e.get("reason") for e in error.get("errors") or [] if isinstance(e, dict)]
    reasons += [d.get("reason") for d in error.get("details") or [] if isinstance(d, dict)]
    reason = next((r for r in reasons if r in (*QUOTA_REASONS, *KEY_REASONS)), None)
    reason = reason or next((r for r in reasons if r), "") or str(error.get("status") or "")
    return str(reason), html_to_text(str(error.get("message") or ""))[:200]


def _brand_reply(
    thread: Mapping[str, Any], reply: Mapping[str, Any], channel: str, since: datetime | None
) -> list[BrandReply]:
    """The reply as a BrandReply when the brand channel wrote it (and not before since)."""
    details = obj(reply.get("snippet"), "snippet")
    if text(nested(details, "authorChannelId"), "value") != channel:
        return []
    when, video = timestamp(details, "publishedAt"), text(details, "videoId")
    if not video or (since and when < since):
        return []
    thread_id = optional_ident(thread, "id")
    parent = optional_ident(details, "parentId") or thread_id
    return [
        BrandReply(
            thread_key=_thread_url(video, thread_id or parent),
            url=f"https://www.youtube.com/watch?v={video}&lc={ident(reply, 'id')}",
            published_at=when,
            in_reply_to_key=f"youtube:comment:{parent}" if parent else "",
            author=text(details, "authorDisplayName"),
        )
    ]
