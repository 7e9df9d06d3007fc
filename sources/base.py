"""The interface every source implements, built-in or not.

A polled source answers ``fetch(state)`` with the mentions it found and the state to
persist (cursor, ETag, ...). The pipeline stores both in one transaction, so a cursor is
never saved ahead of the mentions it acknowledges. A streaming source (a websocket such
as Bluesky Jetstream) implements ``stream(state, deliver)`` instead and calls ``deliver``
with a FetchResult per batch; the daemon supervises it as a long-running task.
"""

from __future__ import annotations

import hashlib
import os
from abc import ABC
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, ClassVar
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, SecretStr

from monitor.durations import Duration
from monitor.mention import BrandReply, Mention

if TYPE_CHECKING:
    from monitor.config import BrandConfig, WatchlistConfig
    from sources.http import HttpClient


class SourceConfig(BaseModel):
    """Keys every source accepts. Adapters subclass it with ``type: Literal["..."]``."""

    model_config = ConfigDict(extra="forbid")

    type: str
    # Name shown in health and alerts; defaults to the type (numbered when repeated).
    name: str = ""
    # Whether the daemon polls this source.
    enabled: bool = True
    # Poll interval. The adapter's min_interval_s is a floor.
    every: Duration = Field(default=timedelta(minutes=5))
    # The one watchlist this source is for. Search sources search only its terms and
    # their results must still match it; feeds whose every item is a hit (a Google
    # Alert, a feed you chose for one topic) file everything under it.
    watchlist: str | None = None

    def secrets(self) -> list[SecretStr]:
        return [value for value in self.__dict__.values() if isinstance(value, SecretStr)]


@dataclass(slots=True)
class SourceState:
    """What the store remembers about a source between runs."""

    cursor: dict[str, Any] = field(default_factory=dict)
    etag: str | None = None
    last_modified: str | None = None
    first_run: bool = True


@dataclass(slots=True)
class FetchResult:
    mentions: list[Mention]
    cursor: dict[str, Any] = field(default_factory=dict)
    etag: str | None = None
    last_modified: str | None = None
    # Usable-but-imperfect conditions (bozo feed, fell back to a public feed, ...).
    warnings: list[str] = field(default_factory=list)
    # Set when the source works in a reduced mode, e.g. Reddit without credentials.
    degraded: str | None = None
    # The adapter's own idea of when to come back (feed TTL, quota budget).
    next_check_in: timedelta | None = None
    # Counters shown in `monitor sources` (posts seen per minute, quota left, ...).
    stats: dict[str, Any] = field(default_factory=dict)


@dataclass(slots=True)
class SourceContext:
    """What the daemon hands each source: shared HTTP client, watchlists, brand."""

    http: HttpClient
    watchlists: Sequence[WatchlistConfig]
    brand: BrandConfig


class Source(ABC):
    # Registry key and the `type:` users write in config.
    kind: ClassVar[str]
    # The API or format documentation this adapter follows.
    docs_url: ClassVar[str]
    # Floor on the poll interval, whatever `every` says.
    min_interval_s: ClassVar[float] = 60.0
    # Floor on how often the brand's replies are listed (monitor/replies.py), whatever
    # alerts.replies_every says: reply calls spend the same budget as polls.
    replies_min_interval_s: ClassVar[float] = 300.0
    # True when every item is a hit by construction (a Google Alert is a query Google
    # already ran): with `watchlist:` set, items are filed under it even when the shared
    # matcher finds nothing in their text. Search adapters keep False: whatever their
    # platform's search returns must still pass the matcher (see watchlist_hint).
    routes_to_watchlist: ClassVar[bool] = False
    # Long-running websocket-style sources set this and implement stream(). An adapter
    # with a streaming and a polled mode (Bluesky) sets it per instance from its config.
    streaming: bool = False
    Config: ClassVar[type[SourceConfig]] = SourceConfig
    # `monitor run --once` lets a streaming source run this long before stopping it
    # (per instance too, so a config key can set it).
    once_timeout_s: float = 10.0

    def __init__(self, name: str, config: SourceConfig, context: SourceContext) -> None:
        self.name = name
        self.config = config
        self.context = context
        # How many enabled sources spend this one's budget_key (set by share_budgets).
        self.budget_sharers = 1

    @property
    def interval(self) -> timedelta:
        """``every``, floored at ``min_interval_s`` — except against a server on this
        machine (tests, the demo, a local proxy), where polling fast harms nobody."""
        if is_loopback(self.endpoint()):
            return self.config.every
        return max(self.config.every, timedelta(seconds=self.min_interval_s))

    def watchlist_hint(self) -> str:
        """``Mention.watchlist_hint`` for this source's items: its ``watchlist:``, but only
        when ``routes_to_watchlist`` — the pipeline files a hinted item under that
        watchlist whether or not it matches."""
        return (self.config.watchlist or "") if self.routes_to_watchlist else ""

    def endpoint(self) -> str:
        """The base URL this source talks to (``api_url`` or ``url``)."""
        return str(getattr(self.config, "api_url", None) or getattr(self.config, "url", "") or "")

    async def fetch(self, state: SourceState) -> FetchResult:
        raise NotImplementedError(f"{self.kind} is a streaming source; use stream()")

    async def stream(
        self, state: SourceState, deliver: Callable[[FetchResult], Awaitable[None]]
    ) -> None:
        raise NotImplementedError(f"{self.kind} is a polled source; use fetch()")

    async def replies(self, account: str, since: datetime | None) -> list[BrandReply]:
        """Recent replies by the brand's own account on this platform (empty if unsupported)."""
        return []

    def limits(self) -> dict[str, Any]:
        """Rate limits and budgets, as data, for `monitor sources`."""
        return {"min_interval_s": self.min_interval_s}

    def budget_key(self) -> str | None:
        """The planned budget this source spends, when other sources can spend it too (one
        API key's daily quota, one address's quota), as a label without secrets. Sources
        with the same key split the budget evenly (``budget_sharers``). None when the
        limits are read live from the platform's rate-limit headers, which already count
        every client."""
        return None

    def paused_until(self, state: SourceState) -> datetime | None:
        """When the platform asked this source to pause although its last poll succeeded
        (a `backoff` field, a spent daily quota), read from its stored cursor. Failures are
        in the store's retry_after_until; monitor/replies.py respects both."""
        return None

    def describe(self) -> str:
        """One line for logs with every secret masked."""
        return f"{self.name} ({self.kind})"

    async def close(self) -> None:
        return None


def share_budgets(sources: Iterable[Source]) -> list[str]:
    """Tell each enabled source how many share its ``budget_key``; one note per shared
    budget for the log. The split is even: each plans on 1/n of the budget."""
    groups: dict[str, list[Source]] = {}
    for source in sources:
        if (key := source.budget_key()) is not None:
            groups.setdefault(key, []).append(source)
    notes = []
    for key, members in groups.items():
        for source in members:
            source.budget_sharers = len(members)
        if len(members) > 1:
            names = ", ".join(source.name for source in members)
            notes.append(
                f"sources {names} share one budget ({key}); each plans on 1/{len(members)} "
                "of it — merge them into one source, or give each its own key, to poll more often"
            )
    return notes


# Salt of secret_tag, new every run: a tag tells two keys apart in this process's messages
# and is worthless for guessing a key anywhere else.
_TAG_SALT = os.urandom(16)


def secret_tag(secret: str) -> str:
    """A short, one-way tag telling two secrets apart in messages (``#3f2a1c``)."""
    return "#" + hashlib.blake2b(secret.encode(), key=_TAG_SALT, digest_size=3).hexdigest()


def is_loopback(url: str) -> bool:
    host = (urlsplit(url).hostname or "").lower() if url else ""
    return host in ("localhost", "::1") or host.startswith("127.")


class SourceError(Exception):
    """A run failed in a way the operator can act on. Always prefixed with the source name."""

    def __init__(
        self,
        source: str,
        message: str,
        *,
        hint: str = "",
        retry_after: timedelta | None = None,
        permanent: bool = False,
    ) -> None:
        text = f"{source}: {message}"
        if hint:
            text += f" — {hint}"
        super().__init__(text)
        self.source = source
        self.hint = hint
        self.retry_after = retry_after
        self.permanent = permanent
