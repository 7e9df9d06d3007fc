"""Shared pieces of the sources that poll a platform's search API (not an adapter).

- ``search_terms_for``: the terms a source sends to its platform's search.
- ``Watermark``: an incremental-poll cursor that survives search-index lag.
- ``parse_json`` / ``http_status``: JSON bodies and HTTP errors, explained per source.
- ``nothing_to_search``: the honest result of a source with no words to search for.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Annotated, Any

from pydantic import AfterValidator

from monitor.matching import QueryError, parse_query, search_terms
from sources.base import FetchResult, SourceError, SourceState

if TYPE_CHECKING:
    from monitor.config import WatchlistConfig

# Ids remembered inside the look-back window; bounds the cursor's size on busy terms.
MAX_SEEN_IDS = 3000
_HTTP_STATUS = re.compile(r"\bHTTP (\d{3})\b")


def _valid_query(value: str) -> str:
    if value.strip():
        try:
            parse_query(value)
        except QueryError as exc:
            raise ValueError(str(exc)) from None
    return value


# A source's own `query:` key: watchlist syntax, checked when the config loads; "" = unset.
SearchQuery = Annotated[str, AfterValidator(_valid_query)]


def search_terms_for(
    query: str | None, watchlist: str | None, watchlists: Sequence[WatchlistConfig]
) -> list[str]:
    """Positive terms and phrases to search for, in order, without repeats.

    The source's own ``query`` wins; else the watchlist the source feeds; else every
    watchlist (competitors included). The pipeline post-filters each result with the
    full boolean query, so a superset here is fine.
    """
    if query and query.strip():
        queries = [query]
    else:
        queries = [w.query for w in watchlists if watchlist is None or w.name == watchlist]
    terms: list[str] = []
    for text in queries:
        terms += search_terms(parse_query(text))
    return list(dict.fromkeys(term.strip() for term in terms if term.strip()))


def nothing_to_search(source: str, state: SourceState) -> FetchResult:
    """What a search source returns when its queries hold no words to search for (only
    `author:`, `site:` or `lang:` filters): no request, but *degraded* in health with the
    fix, so it never passes for "no mentions". The stored cursor is kept as it was."""
    return FetchResult(
        [],
        cursor=state.cursor,
        degraded=(
            "nothing to search for: the watchlist queries it uses have no words, only "
            f"author:/site:/lang: filters, so no request was made — set sources[{source!r}]"
            ".query, or add words to a watchlist query"
        ),
    )


@dataclass(slots=True)
class Watermark:
    """Newest creation time returned so far, plus the ids returned shortly before it.

    Search indexes publish items late and out of order, so each poll asks again from
    ``newest - overlap_s`` and drops the ids it has already returned: no gap for an item
    indexed a few minutes late, and no duplicate for one seen twice. Times are epoch seconds.
    """

    overlap_s: float
    newest: float | None = None
    seen: dict[str, float] = field(default_factory=dict)

    @classmethod
    def load(cls, data: Any, overlap_s: float) -> Watermark:
        if not isinstance(data, dict) or not isinstance(data.get("newest"), int | float):
            return cls(overlap_s)
        seen = data.get("seen") if isinstance(data.get("seen"), dict) else {}
        return cls(
            overlap_s,
            float(data["newest"]),
            {str(k): float(v) for k, v in seen.items() if isinstance(v, int | float)},
        )

    @property
    def first_poll(self) -> bool:
        return self.newest is None

    @property
    def cutoff(self) -> float | None:
        """Ask the platform for items created after this (None: nothing seen yet)."""
        return None if self.newest is None else self.newest - self.overlap_s

    def admit(self, item_id: str, created: float) -> bool:
        """True the first time an item inside the window is offered; records it."""
        cutoff = self.cutoff
        if item_id in self.seen or (cutoff is not None and created < cutoff):
            return False
        self.seen[item_id] = created
        return True

    def dump(self, now: float | None = None) -> dict[str, Any]:
        """JSON-ready cursor; forgets ids that fell out of the look-back window.

        ``newest`` never runs ahead of the clock: one post with a bogus future date must
        not make the next polls skip everything before it.
        """
        if self.seen:
            clock = time.time() if now is None else now
            newest = min(max(self.seen.values()), clock)
            self.newest = max(newest, self.newest or newest)
        if self.newest is None:
            return {}
        horizon = self.newest - self.overlap_s
        recent = sorted(
            ((k, v) for k, v in self.seen.items() if v >= horizon), key=lambda kv: -kv[1]
        )[:MAX_SEEN_IDS]
        self.seen = dict(recent)
        return {"newest": self.newest, "seen": self.seen}


def parse_json(source: str, body: bytes, what: str) -> Any:
    """Decode a JSON body or raise a SourceError saying which endpoint sent what."""
    try:
        return json.loads(body)
    # RecursionError: a deeply nested body ("[[[[…") exhausts the decoder's stack.
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        start = body[:60].decode("utf-8", "replace").strip()
        raise SourceError(
            source,
            f"malformed JSON from {what} ({exc.__class__.__name__}: {exc}; body starts {start!r})",
            hint="the server answered something that is not JSON — check api_url points at the "
            "API itself, not a web page or a proxy's error page; will retry",
        ) from None


def unexpected_shape(source: str, what: str, detail: str) -> SourceError:
    return SourceError(
        source,
        f"unexpected response from {what}: {detail}",
        hint="check api_url points at the right API and version; will retry",
    )


def http_status(error: SourceError) -> int | None:
    """The HTTP status behind a SourceError from sources/http.py, when it had one."""
    status = getattr(error, "status", None)
    if isinstance(status, int):
        return status
    found = _HTTP_STATUS.search(str(error))
    return int(found.group(1)) if found else None
