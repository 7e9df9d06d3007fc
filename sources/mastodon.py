"""Mastodon statuses from several instances: hashtag timelines, and full-text search with a token.

docs: https://docs.joinmastodon.org/methods/timelines/#tag and
https://docs.joinmastodon.org/methods/search/#v2

Credentials: none for public hashtag timelines. For full-text search, create an application
on each instance (Preferences → Development → New application, scope `read:search`) and
put its access token in `instances[N].access_token` (use ${MASTODON_TOKEN}). Other keys:
`query`, `hashtags` (default: the search terms squeezed into hashtags), `limit`, `max_pages`.

Limits: 300 requests per 5 minutes per IP or account on most instances, announced in
`X-RateLimit-Limit/Remaining/Reset`; 40 statuses per request. An instance only searches the
text of posts whose authors opted in (Mastodon 4.2+), and some instances hide hashtag
timelines from visitors. Identity: the status `uri`, the same on every instance, so a post
read through two instances is one mention.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar, Literal
from urllib.parse import quote, urlsplit

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

from monitor.mention import BrandReply, Mention
from monitor.textclean import html_to_text
from sources.base import FetchResult, Source, SourceConfig, SourceError, SourceState
from sources.items import (
    MalformedItem,
    SkippedItems,
    count,
    flag,
    ident,
    nested,
    obj,
    objects,
    optional_ident,
    optional_timestamp,
    text,
)
from sources.searchkit import (
    SearchQuery,
    http_status,
    nothing_to_search,
    parse_json,
    search_terms_for,
    unexpected_shape,
)

# Leave this many requests of an instance's window for other clients on the same IP.
RATE_RESERVE = 10
# A status id as it may become `min_id`: Mastodon's are decimal snowflakes, Pleroma's and
# Akkoma's base62 flakes. Anything else (10**40, a 10,000-character string) would put the
# cursor past every future status, or make the instance refuse it for ever.
_STATUS_ID = re.compile(r"^[0-9A-Za-z]{1,32}$")


class MastodonInstance(BaseModel):
    model_config = ConfigDict(extra="forbid")

    # Base URL of the instance, e.g. https://mastodon.social.
    url: str
    # Access token of an app on this instance with the read:search scope; enables
    # full-text search. Empty = public hashtag timelines only.
    access_token: SecretStr | None = None

    @property
    def token(self) -> str:
        return self.access_token.get_secret_value() if self.access_token else ""


class MastodonConfig(SourceConfig):
    type: Literal["mastodon"] = "mastodon"
    # Instances to read; a plain URL string works too.
    instances: list[MastodonInstance] = Field(
        default_factory=lambda: [MastodonInstance(url="https://mastodon.social")], min_length=1
    )
    # Search terms in watchlist syntax; empty = the positive terms of every watchlist.
    query: SearchQuery = ""
    # Hashtags (without #) whose timelines are read; empty = the search terms as hashtags.
    hashtags: list[str] = Field(default_factory=list)
    # Statuses per request (Mastodon allows up to 40).
    limit: int = Field(default=40, ge=1, le=40)
    # Most pages read per timeline or search and poll.
    max_pages: int = Field(default=3, ge=1, le=20)

    @field_validator("instances", mode="before")
    @classmethod
    def _plain_urls(cls, value: Any) -> Any:
        if isinstance(value, list):
            return [{"url": item} if isinstance(item, str) else item for item in value]
        return value

    def secrets(self) -> list[SecretStr]:
        return [i.access_token for i in self.instances if i.access_token is not None]


class MastodonSource(Source):
    kind: ClassVar[str] = "mastodon"
    docs_url: ClassVar[str] = "https://docs.joinmastodon.org/methods/timelines/#tag"
    # Hashtag timelines move slowly for a brand; faster polls spend the shared IP window.
    min_interval_s: ClassVar[float] = 60.0
    # Default per-IP (or per-account) window of a Mastodon instance.
    requests_per_5_minutes: ClassVar[int] = 300
    Config = MastodonConfig
    config: MastodonConfig

    def endpoint(self) -> str:
        return self.config.instances[0].url

    def describe(self) -> str:
        hosts = ", ".join(
            _host(i.url) + (" (token ****)" if i.token else "") for i in self.config.instances
        )
        return f"{self.name} ({self.kind}: {hosts})"

    def terms(self) -> list[str]:
        return search_terms_for(self.config.query, self.config.watchlist, self.context.watchlists)

    def hashtags(self) -> list[str]:
        wanted = self.config.hashtags or self.terms()
        tags = (_as_hashtag(tag) for tag in wanted)
        return list(dict.fromkeys(tag for tag in tags if tag))

    def limits(self) -> dict[str, Any]:
        searching = sum(1 for i in self.config.instances if i.token)
        per_page = len(self.hashtags()) * len(self.config.instances) + len(self.terms()) * searching
        return {
            "min_interval_s": self.min_interval_s,
            "requests_per_5_minutes_per_instance": self.requests_per_5_minutes,
            "max_results_per_call": self.config.limit,
            "max_requests_per_poll": per_page * self.config.max_pages,
            "full_text_search_instances": searching,
        }

    # ------------------------------------------------------------------------ polling

    async def fetch(self, state: SourceState) -> FetchResult:
        searching = any(instance.token for instance in self.config.instances)
        if not self.hashtags() and not (searching and self.terms()):
            return nothing_to_search(self.name, state)
        now = datetime.now(UTC)
        bases = {_base(i.url) for i in self.config.instances}
        poll = _Poll(  # what belongs to instances no longer configured is forgotten
            min_ids={
                key: value
                for key, value in (state.cursor.get("min_id") or {}).items()
                if key.split("|", 1)[0] in bases
            },
            paused={
                key: value
                for key, value in (state.cursor.get("paused_until") or {}).items()
                if key in bases
            },
        )
        attempted = 0
        errors: list[SourceError] = []
        for index, instance in enumerate(self.config.instances):
            base = _base(instance.url)
            until = _parse_time(poll.paused.get(base))
            if until is not None and until > now:
                poll.warnings.append(f"{_host(base)} paused until {until.isoformat()} (rate limit)")
                poll.wait(until - now)
                continue
            attempted += 1
            try:
                await self._poll_instance(index, instance, poll)
                poll.paused.pop(base, None)
            except SourceError as exc:
                errors.append(exc)
                if exc.retry_after is not None:
                    poll.paused[base] = (now + exc.retry_after).isoformat()
                poll.warnings.append(str(exc))
        if attempted and len(errors) == attempted:
            raise _combined(self.name, errors)
        poll.skipped.report(poll.warnings)
        return FetchResult(
            list(poll.found.values()),
            cursor={"min_id": poll.min_ids, "paused_until": poll.paused},
            warnings=poll.warnings,
            # A rate-limit wait only ever postpones the regular poll.
            next_check_in=max(poll.next_check_in, self.interval) if poll.next_check_in else None,
            stats={"instances": poll.budgets},
        )

    async def _poll_instance(self, index: int, instance: MastodonInstance, poll: _Poll) -> None:
        base = _base(instance.url)
        for tag in self.hashtags():
            path = f"/api/v1/timelines/tag/{quote(tag)}"
            if not await self._read(index, instance, path, {}, f"{base}|tag:{tag}", poll):
                return
        if instance.token:
            for term in self.terms():
                params = {"q": term, "type": "statuses", "resolve": "false"}
                key = f"{base}|search:{term}"
                if not await self._read(index, instance, "/api/v2/search", params, key, poll):
                    return

    async def _read(
        self,
        index: int,
        instance: MastodonInstance,
        path: str,
        params: dict[str, str],
        key: str,
        poll: _Poll,
    ) -> bool:
        """Pages of one timeline or search newer than its `min_id`; False when the
        instance's rate window is nearly spent and the rest of it should wait."""
        first_poll = key not in poll.min_ids
        min_id = poll.min_ids.get(key)
        for page in range(self.config.max_pages):
            query = {**params, "limit": str(self.config.limit)}
            if min_id:
                query["min_id"] = min_id
            data = await self._get(index, instance, path, query, poll)
            statuses = data.get("statuses") if isinstance(data, dict) else data
            if not isinstance(statuses, list):
                raise unexpected_shape(self.name, f"{_host(instance.url)}{path}", "no status list")
            host = _host(instance.url)
            ids: list[str] = []
            for status in statuses:
                with poll.skipped.guard():
                    # The id first (sources/items.py): min_id moves past a status whose id
                    # is sound even when the rest of it is not, so it is skipped only once.
                    item = obj(status)
                    ids.append(_status_id(item, "id"))
                    mention = self.status_to_mention(item, host)
                    poll.found.setdefault(mention.source_key, mention)
            if ids:
                min_id = max(ids, key=_id_order)
                poll.min_ids[key] = min_id
            if poll.spent(instance.url):
                return False
            if first_poll or len(statuses) < self.config.limit:
                return True
            if page == self.config.max_pages - 1:
                poll.warnings.append(
                    f"{host}: more than {self.config.max_pages} pages of new statuses for "
                    f"{params.get('q') or path}; the rest waits for the next poll"
                )
        return True

    async def _get(
        self,
        index: int,
        instance: MastodonInstance,
        path: str,
        params: dict[str, str],
        poll: _Poll | None = None,
    ) -> Any:
        url = _base(instance.url) + path
        headers = {"Authorization": f"Bearer {instance.token}"} if instance.token else {}
        try:
            response = await self.context.http.get(self.name, url, params=params, headers=headers)
        except SourceError as exc:
            status = http_status(exc)
            if status in (401, 403, 422):
                raise self._access_error(index, instance, path, status) from None
            raise
        if poll is not None:
            poll.note_rate_limit(instance.url, response.header_dict())
        return parse_json(self.name, response.body, f"{_host(instance.url)}{path.split('?')[0]}")

    def _access_error(
        self, index: int, instance: MastodonInstance, path: str, status: int | None
    ) -> SourceError:
        key = f"sources[{self.name!r}].instances[{index}].access_token"
        host = _host(instance.url)
        if instance.token:
            hint = (
                f"check {key}: an app token from {host} (Preferences → Development) with "
                "the read:search scope"
            )
        else:
            hint = f"{host} does not show this to visitors — add {key}, or drop the instance"
        return SourceError(
            self.name, f"access denied (HTTP {status}) by {host}{path}", hint=hint, permanent=True
        )

    def status_to_mention(self, status: Mapping[str, Any], host: str) -> Mention:
        status = nested(status, "reblog") or status
        uri = ident(status, "uri")
        ident(status, "id")  # a status without an id is no status, whatever else it holds
        account = nested(status, "account")
        acct = text(account, "acct")
        if acct and "@" not in acct:
            acct = f"{acct}@{host}"  # a local account of the instance we asked
        content = text(status, "content")
        return Mention(
            source_key=f"mastodon:{uri}",
            url=text(status, "url") or uri,
            title=html_to_text(text(status, "spoiler_text")),
            text=html_to_text(content),
            html=content,
            author=acct,
            author_url=text(account, "url"),
            published_at=optional_timestamp(status, "created_at"),
            thread_key=f"mastodon:{uri}",
            language_hint=text(status, "language")[:16],
            watchlist_hint=self.watchlist_hint(),
            extra={
                "instance": host,
                "tags": [
                    t["name"] for t in objects(status, "tags") if isinstance(t.get("name"), str)
                ],
                "is_reply": bool(optional_ident(status, "in_reply_to_id")),
                "replies_count": count(status, "replies_count"),
                "reblogs_count": count(status, "reblogs_count"),
                "favourites_count": count(status, "favourites_count"),
                "sensitive": flag(status, "sensitive"),
            },
        )

    # ---------------------------------------------------------------------- replies

    async def replies(self, account: str, since: datetime | None) -> list[BrandReply]:
        """The brand account's replies; thread = the `uri` of the status each one answers."""
        user, _, domain = account.strip().lstrip("@").partition("@")
        index, instance = next(
            (
                (i, inst)
                for i, inst in enumerate(self.config.instances)
                if _host(inst.url) == domain
            ),
            (0, self.config.instances[0]),
        )
        acct = user if not domain or _host(instance.url) == domain else f"{user}@{domain}"
        found = await self._get(index, instance, "/api/v1/accounts/lookup", {"acct": acct})
        if not isinstance(found, dict) or not found.get("id"):
            raise unexpected_shape(self.name, "/api/v1/accounts/lookup", "no account id")
        path = f"/api/v1/accounts/{quote(str(found['id']))}/statuses"
        replies: list[BrandReply] = []
        parents: dict[str, str | None] = {}
        skipped = SkippedItems("statuses")
        max_id = ""
        older = False
        for _page in range(self.config.max_pages):
            params = {"limit": str(self.config.limit), "exclude_reblogs": "true"}
            if max_id:
                params["max_id"] = max_id
            statuses = await self._get(index, instance, path, params)
            if not isinstance(statuses, list) or not statuses:
                break
            own: list[tuple[datetime, str, str]] = []  # (published, parent id, url)
            for status in statuses:
                with skipped.guard():
                    item = obj(status)
                    max_id = _status_id(item, "id")  # the oldest sound id pages on
                    published = optional_timestamp(item, "created_at")
                    older = since is not None and published is not None and published < since
                    if older:
                        break
                    # Checked like min_id: the parent id goes into a request path.
                    has_parent = item.get("in_reply_to_id") is not None
                    parent = _status_id(item, "in_reply_to_id") if has_parent else ""
                    if parent and published is not None:
                        own.append((published, parent, text(item, "url") or text(item, "uri")))
            for published, parent, url in own:  # outside the guard: these are requests
                if parent not in parents:
                    parents[parent] = await self._status_uri(index, instance, parent)
                if parents[parent]:
                    key = f"mastodon:{parents[parent]}"
                    replies.append(BrandReply(key, url, published, key, account))
            if older or since is None or not max_id:
                break
        skipped.log(f"{self.name}: replies of {account}")
        return replies

    async def _status_uri(
        self, index: int, instance: MastodonInstance, status_id: str
    ) -> str | None:
        try:
            parent = await self._get(index, instance, f"/api/v1/statuses/{quote(status_id)}", {})
        except SourceError as exc:
            if http_status(exc) in (404, 410):
                return None  # the answered post was deleted; nothing to mark
            raise
        uri = parent.get("uri") if isinstance(parent, dict) else None
        return uri if isinstance(uri, str) and uri else None


class _Poll:
    """What one fetch collects across instances: statuses by uri, cursors, budgets."""

    def __init__(self, min_ids: dict[str, str], paused: dict[str, str]) -> None:
        self.min_ids = min_ids
        self.paused = paused
        self.found: dict[str, Mention] = {}
        self.warnings: list[str] = []
        self.budgets: dict[str, dict[str, Any]] = {}
        self.next_check_in: timedelta | None = None
        self.skipped = SkippedItems("statuses")

    def wait(self, delay: timedelta) -> None:
        self.next_check_in = max(delay, self.next_check_in or delay)

    def note_rate_limit(self, url: str, headers: dict[str, str]) -> None:
        remaining = headers.get("x-ratelimit-remaining", "")
        if not remaining.isdigit():
            return
        budget = {"ratelimit_remaining": int(remaining)}
        reset = _parse_time(headers.get("x-ratelimit-reset"))
        if reset is not None:
            budget["ratelimit_reset_at"] = reset.isoformat()  # type: ignore[assignment]
        self.budgets[_host(url)] = budget

    def spent(self, url: str) -> bool:
        budget = self.budgets.get(_host(url), {})
        if budget.get("ratelimit_remaining", RATE_RESERVE + 1) > RATE_RESERVE:
            return False
        reset = _parse_time(budget.get("ratelimit_reset_at"))
        delay = max((reset - datetime.now(UTC)) if reset else timedelta(minutes=5), timedelta(0))
        self.wait(delay + timedelta(seconds=1))
        self.warnings.append(
            f"{_host(url)}: rate window nearly spent ({budget['ratelimit_remaining']} left); "
            f"waiting until it resets"
        )
        return True


def _combined(name: str, errors: list[SourceError]) -> SourceError:
    if len(errors) == 1:
        return errors[0]
    prefix = f"{name}: "
    retry = [e.retry_after for e in errors if e.retry_after is not None]
    return SourceError(
        name,
        "every instance failed: " + " | ".join(str(e).removeprefix(prefix) for e in errors),
        retry_after=max(retry) if retry else None,
        permanent=all(e.permanent for e in errors),
    )


def _base(url: str) -> str:
    return url.rstrip("/")


def _host(url: str) -> str:
    parts = urlsplit(url)
    return parts.netloc or url


def _status_id(status: Mapping[str, Any], key: str) -> str:
    found = ident(status, key)
    if not _STATUS_ID.match(found):
        raise MalformedItem(key, "is no status id (1 to 32 letters and digits)")
    return found


def _id_order(status_id: str) -> tuple[int, str]:
    """Mastodon ids are numeric strings of growing length; compare them as numbers."""
    return len(status_id), status_id


def _as_hashtag(term: str) -> str:
    """`acme cloud` → `acmecloud`: letters, marks, digits and _ only, as Mastodon allows."""
    kept = "".join(
        ch for ch in term.lstrip("#") if ch == "_" or unicodedata.category(ch)[0] in "LMN"
    )
    return kept.casefold()


def _parse_time(value: Any) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
