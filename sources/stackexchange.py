"""Questions and answers on Stack Exchange sites (Stack Overflow, Super User, ...), newest first.

docs: https://api.stackexchange.com/docs/excerpt-search

Credentials: none needed. An app key (register at https://stackapps.com/apps/oauth/register;
it is not secret, but keep it in ${STACKEXCHANGE_KEY}) raises the daily quota from 300 to
10,000 requests per IP. Other keys: `query`, `sites`, `api_url`, `pagesize`, `max_pages`.

Limits: the daily quota (reported as `quota_remaining`, reset at midnight UTC); a `backoff`
field in an answer means "do not call this method again for N seconds"; at most 30
requests per second per IP. The poll interval is stretched so that a day of polls fits in
80 % of the quota. Responses are always gzipped (the HTTP layer decompresses them).
`/search/excerpts` finds questions and answers but does not name their authors.
Identity: `<site>:<post id>`; thread: the question.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from datetime import UTC, datetime, time, timedelta
from typing import Any, ClassVar, Literal
from urllib.parse import quote, urlsplit

from pydantic import Field, SecretStr

from monitor.mention import BrandReply, Mention
from monitor.textclean import html_to_text
from sources.base import (
    FetchResult,
    Source,
    SourceConfig,
    SourceError,
    SourceState,
    is_loopback,
    secret_tag,
)
from sources.http import MAX_RETRY_AFTER, HttpResponse
from sources.incremental import parse_time
from sources.items import (
    SkippedItems,
    count,
    epoch,
    epoch_time,
    flag,
    ident,
    nested,
    obj,
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

# Search results appear within minutes of posting; look back this far each poll.
INDEX_LAG_S = 15 * 60
# Share of the daily quota the regular polls may plan to use.
QUOTA_SHARE = 0.8
# "too many requests from this IP, more requests available in 84113 seconds"
_AVAILABLE_IN = re.compile(r"available in (\d+) seconds?")
# error_name values that mean "the app key is wrong or missing" (docs: /docs/error-handling).
_KEY_ERRORS = ("key_required", "access_denied", "invalid_access_token", "access_token_required")
_SITE_DOMAINS = {
    "stackoverflow": "stackoverflow.com",
    "serverfault": "serverfault.com",
    "superuser": "superuser.com",
    "askubuntu": "askubuntu.com",
    "mathoverflow": "mathoverflow.net",
    "stackapps": "stackapps.com",
}


class StackExchangeConfig(SourceConfig):
    type: Literal["stackexchange"] = "stackexchange"
    # Search terms in watchlist syntax; empty = the positive terms of every watchlist.
    query: SearchQuery = ""
    # Sites to search, by API name: stackoverflow, superuser, serverfault, askubuntu, ...
    sites: list[str] = Field(default_factory=lambda: ["stackoverflow"], min_length=1)
    # App key from stackapps.com: 10,000 instead of 300 requests a day. Empty = none.
    key: SecretStr | None = None
    # API base URL, version included.
    api_url: str = "https://api.stackexchange.com/2.3"
    # Results per request (up to 100).
    pagesize: int = Field(default=100, ge=1, le=100)
    # Most pages read per site, term and poll.
    max_pages: int = Field(default=2, ge=1, le=10)


class StackExchangeSource(Source):
    kind: ClassVar[str] = "stackexchange"
    docs_url: ClassVar[str] = "https://api.stackexchange.com/docs/excerpt-search"
    # Floor; the daily quota usually asks for more (see `interval`).
    min_interval_s: ClassVar[float] = 60.0
    # Daily requests per IP with and without an app key.
    quota_per_day_with_key: ClassVar[int] = 10_000
    quota_per_day_without_key: ClassVar[int] = 300
    # Listing the brand's replies costs up to 3 requests (answers, comments, and the
    # questions of commented answers); hourly, a keyless day of it is 72 of the 300.
    replies_min_interval_s: ClassVar[float] = 3600.0
    reply_requests_per_call: ClassVar[int] = 3
    Config = StackExchangeConfig
    config: StackExchangeConfig

    @property
    def app_key(self) -> str:
        return self.config.key.get_secret_value() if self.config.key else ""

    @property
    def quota_per_day(self) -> int:
        return self.quota_per_day_with_key if self.app_key else self.quota_per_day_without_key

    def terms(self) -> list[str]:
        return search_terms_for(self.config.query, self.config.watchlist, self.context.watchlists)

    @property
    def requests_per_poll(self) -> int:
        return max(len(self.config.sites) * len(self.terms()), 1)

    def budget_key(self) -> str:
        """The quota is per address (per app key and address with a key): every source on
        this machine with the same key, or none, spends the same one."""
        host = urlsplit(self.config.api_url).hostname or self.config.api_url
        who = f"app key {secret_tag(self.app_key)}" if self.app_key else "no app key"
        return f"Stack Exchange daily quota at {host}, {who}"

    @property
    def reply_requests_per_day(self) -> int:
        """What listing the brand's replies may spend a day, at most (monitor/replies.py)."""
        accounts = len(self.context.brand.accounts.get(self.kind, []))
        per_day = accounts * self.reply_requests_per_call * 86_400 / self.replies_min_interval_s
        return math.ceil(per_day)

    @property
    def poll_requests_per_day(self) -> float:
        """This source's even share of 80 % of the daily quota, less its replies' spend."""
        share = self.quota_per_day * QUOTA_SHARE / self.budget_sharers
        return max(share - self.reply_requests_per_day, 1.0)

    @property
    def interval(self) -> timedelta:
        """``every``, stretched so a day of polls and replies spends at most this source's
        share of 80 % of the daily quota."""
        if is_loopback(self.endpoint()):
            return self.config.every
        budget_s = 86_400 * self.requests_per_poll / self.poll_requests_per_day
        return max(super().interval, timedelta(seconds=budget_s))

    def limits(self) -> dict[str, Any]:
        return {
            "min_interval_s": self.min_interval_s,
            "quota_units_per_day": self.quota_per_day,
            "budget_shared_by": self.budget_sharers,
            "requests_per_poll": self.requests_per_poll,
            "reply_requests_per_day": self.reply_requests_per_day,
            "interval_from_quota_s": round(self.interval.total_seconds()),
            "max_results_per_call": self.config.pagesize,
            "max_requests_per_second": 30,
        }

    def paused_until(self, state: SourceState) -> datetime | None:
        found = [parse_time(state.cursor.get(k)) for k in ("backoff_until", "quota_spent_until")]
        return max((when for when in found if when is not None), default=None)

    def describe(self) -> str:
        key = "app key ****" if self.app_key else "no app key"
        return f"{self.name} ({self.kind}: {', '.join(self.config.sites)}; {key})"

    # ------------------------------------------------------------------------ polling

    async def fetch(self, state: SourceState) -> FetchResult:
        if not self.terms():
            return nothing_to_search(self.name, state)
        now = datetime.now(UTC)
        marks = dict(state.cursor.get("marks") or {})
        waiting = parse_time(state.cursor.get("backoff_until"))
        if waiting is not None and waiting > now:
            return FetchResult(
                [],
                cursor=state.cursor,
                next_check_in=max(waiting - now, self.interval),
                warnings=[f"the API asked for a pause until {waiting.isoformat()}"],
            )
        poll = _Poll()
        for site in self.config.sites:
            for term in self.terms():
                key = f"{site}|{term}"
                mark = Watermark.load(marks.get(key), INDEX_LAG_S)
                await self._search(site, term, mark, poll)
                marks[key] = mark.dump()
                if poll.stop:
                    break
            if poll.stop:
                break
        cursor: dict[str, Any] = {"marks": marks}
        next_check_in = None
        if poll.backoff_s:
            next_check_in = timedelta(seconds=poll.backoff_s + 1)
            cursor["backoff_until"] = (now + next_check_in).isoformat()
            poll.warnings.append(f"the API asked for a {poll.backoff_s}s pause (backoff)")
        if poll.quota_remaining is not None and poll.quota_remaining < self.requests_per_poll:
            next_check_in = max(next_check_in or timedelta(0), _until_utc_midnight(now))
            cursor["quota_spent_until"] = (now + _until_utc_midnight(now)).isoformat()
            poll.warnings.append(
                f"daily quota nearly spent ({poll.quota_remaining} requests left); "
                "waiting for it to reset at midnight UTC"
                + ("" if self.app_key else " — an app key raises it to 10,000")
            )
        poll.skipped.report(poll.warnings)
        return FetchResult(
            poll.mentions,
            cursor=cursor,
            warnings=poll.warnings,
            # A backoff or quota wait only ever postpones the regular poll.
            next_check_in=max(next_check_in, self.interval) if next_check_in else None,
            stats={
                "quota_remaining": poll.quota_remaining,
                "quota_max": poll.quota_max,
                "requests": poll.requests,
            },
        )

    async def _search(self, site: str, term: str, mark: Watermark, poll: _Poll) -> None:
        for page in range(1, self.config.max_pages + 1):
            params: dict[str, Any] = {
                "order": "desc",
                "sort": "creation",
                "q": term,
                "site": site,
                "pagesize": self.config.pagesize,
                "page": page,
            }
            if mark.cutoff is not None:
                params["fromdate"] = int(mark.cutoff)
            data = await self._get("/search/excerpts", params, poll)
            for raw in data["items"]:
                with poll.skipped.guard():
                    # Identity and time first (sources/items.py): only they move the cursor.
                    item = obj(raw)
                    post_id, _is_answer = _identity(item)
                    if mark.admit(post_id, epoch(item, "creation_date")):
                        poll.mentions.append(self.item_to_mention(item, site))
            if poll.stop or not data.get("has_more") or mark.first_poll:
                return
            if page == self.config.max_pages:
                poll.warnings.append(
                    f"{site}: more than {self.config.max_pages} pages of new posts for {term!r}; "
                    "older ones were skipped — poll more often or raise max_pages"
                )

    async def _get(self, path: str, params: dict[str, Any], poll: _Poll | None = None) -> Any:
        if self.app_key:
            params = {**params, "key": self.app_key}
        url = self.config.api_url.rstrip("/") + path
        try:
            # The API's errors come as HTTP 400 with an error object that says which one.
            response = await self.context.http.get(
                self.name, url, params=params, accept_status=(400,)
            )
        except SourceError as exc:
            raise self._explain(exc) from None
        if response.status == 400:
            raise self._explain(self._api_error(response))
        data = parse_json(self.name, response.body, f"Stack Exchange {path}")
        if not isinstance(data, dict) or not isinstance(data.get("items"), list):
            raise unexpected_shape(self.name, f"Stack Exchange {path}", "no `items` list")
        if poll is not None:
            poll.note(data)
        return data

    def _api_error(self, response: HttpResponse) -> SourceError:
        """An HTTP 400 answer, by its error object (`error_id`, `error_name`,
        `error_message`): a throttle waits until it clears, a key problem names `key`."""
        error_id, name, message = _error_object(response.body)
        detail = f"{name or 'error'} {error_id or ''}: {message}".replace(" :", ":")
        if name == "throttle_violation" or error_id == 502:
            now = datetime.now(UTC)
            found = _AVAILABLE_IN.search(message)
            # Without a number, assume the daily quota is what ran out: it resets at
            # midnight UTC, and asking sooner only prolongs the block.
            wait = timedelta(seconds=int(found.group(1))) if found else _until_utc_midnight(now)
            return SourceError(
                self.name,
                f"throttled by the API ({detail})",
                hint="this IP's requests are used up (other software behind the same address "
                "counts too); the source waits until the API says it clears"
                + ("" if self.app_key else f" — sources[{self.name!r}].key raises the quota"),
                retry_after=min(wait, MAX_RETRY_AFTER),
            )
        if name in _KEY_ERRORS or (name == "bad_parameter" and message.strip() == "key"):
            return SourceError(
                self.name,
                f"the API refused the app key ({detail})",
                hint=f"check sources[{self.name!r}].key (an app key from "
                "https://stackapps.com/apps/oauth/register) or remove it",
                permanent=True,
            )
        if name == "bad_parameter":
            return SourceError(
                self.name,
                f"the API rejected a parameter ({detail})",
                hint=f"check sources[{self.name!r}].sites (API site names such as "
                "stackoverflow or superuser) and the search terms",
                permanent=True,
            )
        return SourceError(
            self.name,
            f"the API refused the request (HTTP 400 {detail})",
            hint=f"check sources[{self.name!r}].sites and .key; will retry with backoff",
        )

    def _explain(self, error: SourceError) -> SourceError:
        """The API's own errors, in its terms; never with the app key in the text."""
        status = http_status(error)
        if status in (401, 402, 403):
            error = SourceError(
                self.name,
                f"access denied (HTTP {status})",
                hint=f"check sources[{self.name!r}].key (an app key from stackapps.com) or "
                "remove it",
                permanent=True,
            )
        if self.app_key and self.app_key in str(error):
            masked = str(error).removeprefix(f"{self.name}: ").replace(self.app_key, "****")
            error = SourceError(
                self.name, masked, retry_after=error.retry_after, permanent=error.permanent
            )
        return error

    def item_to_mention(self, item: Mapping[str, Any], site: str) -> Mention:
        domain = site_domain(site)
        post_id, is_answer = _identity(item)
        question_id = ident(item, "question_id", numeric=True)
        body = text(item, "body") or text(item, "excerpt")
        title = html_to_text(text(item, "title"))
        return Mention(
            source_key=f"stackexchange:{site}:{post_id}",
            url=f"https://{domain}/{'a' if is_answer else 'q'}/{post_id}",
            # An answer carries its question's title: context, not the answer's own words.
            title="" if is_answer else title,
            text=html_to_text(body),
            html=body,
            published_at=epoch_time(item, "creation_date"),
            thread_key=f"stackexchange:{site}:{question_id}",
            watchlist_hint=self.watchlist_hint(),
            extra={
                "site": site,
                "type": "answer" if is_answer else "question",
                "question_title": title,
                "tags": strings(item, "tags"),
                "score": count(item, "score"),
                "is_answered": flag(item, "is_answered"),
                "answer_count": count(item, "answer_count"),
            },
        )

    # ---------------------------------------------------------------------- replies

    async def replies(self, account: str, since: datetime | None) -> list[BrandReply]:
        """The brand user's answers and comments; `account` is `site:user_id` (or a bare id
        for the first configured site)."""
        site, _, user_id = account.strip().rpartition(":")
        site = site or self.config.sites[0]
        domain = site_domain(site)
        params: dict[str, Any] = {"site": site, "sort": "creation", "order": "desc"}
        params["pagesize"] = 100
        if since is not None:
            params["fromdate"] = int(since.timestamp())
        user = quote(user_id.strip())
        answers = (await self._get(f"/users/{user}/answers", params))["items"]
        comments = (await self._get(f"/users/{user}/comments", params))["items"]
        skipped = SkippedItems("answers and comments")
        found: list[BrandReply] = []
        for raw in answers:
            with skipped.guard():
                answer = obj(raw)
                question = ident(answer, "question_id", numeric=True)
                found.append(
                    BrandReply(
                        thread_key=f"stackexchange:{site}:{question}",
                        url=f"https://{domain}/a/{ident(answer, 'answer_id', numeric=True)}",
                        published_at=epoch_time(answer, "creation_date"),
                        in_reply_to_key=f"stackexchange:{site}:{question}",
                        author=text(nested(answer, "owner"), "display_name") or user_id,
                    )
                )
        # (comment id, commented post id, when, author) of each sound comment.
        commented: list[tuple[str, str, datetime, str]] = []
        for raw in comments:
            with skipped.guard():
                comment = obj(raw)
                commented.append(
                    (
                        ident(comment, "comment_id", numeric=True),
                        # Numeric: these ids go into the /answers/{ids} path.
                        ident(comment, "post_id", numeric=True),
                        epoch_time(comment, "creation_date"),
                        text(nested(comment, "owner"), "display_name") or user_id,
                    )
                )
        question_of = await self._questions_of_answers(site, {c[1] for c in commented}, skipped)
        for comment_id, post, published, author in commented:
            found.append(
                BrandReply(
                    thread_key=f"stackexchange:{site}:{question_of.get(post, post)}",
                    url=f"https://{domain}/posts/comments/{comment_id}",
                    published_at=published,
                    in_reply_to_key=f"stackexchange:{site}:{post}",
                    author=author,
                )
            )
        skipped.log(f"{self.name}: replies of {account}")
        return sorted(found, key=lambda reply: reply.published_at, reverse=True)

    async def _questions_of_answers(
        self, site: str, post_ids: set[str], skipped: SkippedItems
    ) -> dict[str, str]:
        """answer id → question id for those of ``post_ids`` (numeric) that are answers."""
        if not post_ids:
            return {}
        ids = ";".join(sorted(post_ids, key=int)[:100])
        data = await self._get(f"/answers/{ids}", {"site": site, "pagesize": 100})
        found: dict[str, str] = {}
        for raw in data["items"]:
            with skipped.guard():
                answer = obj(raw)
                found[ident(answer, "answer_id")] = ident(answer, "question_id", numeric=True)
        return found


class _Poll:
    def __init__(self) -> None:
        self.mentions: list[Mention] = []
        self.warnings: list[str] = []
        self.requests = 0
        self.quota_remaining: int | None = None
        self.quota_max: int | None = None
        self.backoff_s = 0
        self.skipped = SkippedItems()

    @property
    def stop(self) -> bool:
        """After a `backoff` the method must rest; with no quota left nothing can run."""
        return bool(self.backoff_s) or self.quota_remaining == 0

    def note(self, data: dict[str, Any]) -> None:
        self.requests += 1
        if isinstance(data.get("quota_remaining"), int):
            self.quota_remaining = data["quota_remaining"]
        if isinstance(data.get("quota_max"), int):
            self.quota_max = data["quota_max"]
        backoff = count(data, "backoff")
        if backoff is not None and backoff > 0:
            # Capped: `backoff: 10**15` must not become a pause no timedelta can hold.
            self.backoff_s = max(self.backoff_s, min(backoff, int(MAX_RETRY_AFTER.total_seconds())))


def site_domain(site: str) -> str:
    """API site name → web domain: stackoverflow → stackoverflow.com, ru.stackoverflow →
    ru.stackoverflow.com, unix → unix.stackexchange.com."""
    site = site.strip().lower()
    if site.endswith((".com", ".net", ".org")):
        return site
    if site in _SITE_DOMAINS:
        return _SITE_DOMAINS[site]
    if "." in site:
        return f"{site}.com"
    return f"{site}.stackexchange.com"


def _identity(item: Mapping[str, Any]) -> tuple[str, bool]:
    """(post id, is an answer) of a search result: the answer's id for an answer."""
    if item.get("item_type") == "answer" and item.get("answer_id") is not None:
        return ident(item, "answer_id", numeric=True), True
    return ident(item, "question_id", numeric=True), False


def _error_object(body: bytes) -> tuple[int | None, str, str]:
    """(error_id, error_name, error_message) of an error answer; blanks if it is none."""
    try:
        data = json.loads(body)
    except (UnicodeDecodeError, ValueError, RecursionError):
        return None, "", body[:120].decode("utf-8", "replace").strip()
    if not isinstance(data, dict):
        return None, "", ""
    error_id = data.get("error_id")
    return (
        error_id if isinstance(error_id, int) else None,
        str(data.get("error_name") or ""),
        str(data.get("error_message") or "")[:300],
    )


def _until_utc_midnight(now: datetime) -> timedelta:
    midnight = datetime.combine(now.date() + timedelta(days=1), time(0), tzinfo=UTC)
    return midnight - now + timedelta(minutes=1)
