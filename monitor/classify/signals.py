"""Troll/spam context for a new mention, computed at ingest and stored in ``mentions.signals``.

Signals are shown beside an alert so the person answering knows who they are dealing
with; they never hide, drop or delete anything. Keys:

- ``author_mentions``: this author's mentions on this platform, this one included;
- ``author_negative_share``: the share of those that are negative;
- ``author_answered``: whether the brand ever answered this author (a mention of theirs
  reached state ``answered``);
- ``same_text_count`` / ``same_text_authors``: earlier mentions with the same normalised
  text (copy-paste campaigns), and how many distinct authors posted it;
- ``link_only``: little more than links;
- ``hints``: short words for the alert (``repeat-text``, ``link-only``, ``frequent-author``,
  ``mostly-negative-author``, ``never-answered``).
"""

from __future__ import annotations

import hashlib
import re
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import case, func, or_, select, tuple_
from sqlalchemy.ext.asyncio import AsyncConnection

from monitor.normalize import WORD, ZWJ, ZWNJ, normalize_text, token_texts
from monitor.store.tables import mentions

_URL = re.compile(r"https?://\S+|www\.\S+", re.IGNORECASE)
# `\w` stops at Devanagari/Bengali vowel signs and viramas (#एक्मे would leave "्मे" behind as
# a word), so a handle or hashtag is a run of the normaliser's own word characters; ZWNJ/ZWJ
# stay inside it as they do inside Persian and Bengali words.
_MENTION_OR_TAG = re.compile(f"[@#\uff20\uff03](?:{WORD.pattern}|[{ZWNJ}{ZWJ}])+")
# An author with this many mentions is "frequent"; with this negative share "mostly negative".
FREQUENT_AUTHOR = 5
MOSTLY_NEGATIVE = 0.7
# Link-only: at most this many words besides links, handles and hashtags.
LINK_ONLY_MAX_WORDS = 3
# Below this many words, identical text is common by chance ("down again?").
MIN_WORDS_FOR_REPEAT = 4


def text_hash(text: str) -> str | None:
    """Digest of the text without links, handles and case; None when too short to mean much."""
    words = token_texts(normalize_text(_URL.sub(" ", text)))
    if len(words) < MIN_WORDS_FOR_REPEAT:
        return None
    return hashlib.blake2b(" ".join(words).encode(), digest_size=16).hexdigest()


def link_only(text: str) -> bool:
    links = _URL.findall(text)
    if not links:
        return False
    rest = _MENTION_OR_TAG.sub(" ", _URL.sub(" ", text))
    return len(token_texts(rest)) <= LINK_ONLY_MAX_WORDS


@dataclass(frozen=True, slots=True)
class SignalInput:
    platform: str
    author: str
    text: str
    digest: str | None
    negative: bool


async def compute(
    connection: AsyncConnection,
    *,
    platform: str,
    author: str,
    text: str,
    digest: str | None,
    negative: bool,
) -> dict[str, Any]:
    (signals,) = await compute_batch(
        connection, [SignalInput(platform, author, text, digest, negative)]
    )
    return signals


async def compute_batch(
    connection: AsyncConnection, items: Sequence[SignalInput]
) -> list[dict[str, Any]]:
    """Signals for a batch of new mentions, in order, as if stored one after another: an
    author's second post in the batch counts the first. Two queries for the whole batch."""
    authors = await _author_history(
        connection, {(i.platform, i.author[:300]) for i in items if i.author}
    )
    repeats = await _text_history(connection, {i.digest for i in items if i.digest is not None})
    results = []
    for item in items:
        signals: dict[str, Any] = {"link_only": link_only(item.text)}
        hints = ["link-only"] if signals["link_only"] else []
        if item.author:
            history = authors[(item.platform, item.author[:300])]
            total = history.total + 1
            negatives = history.negative + (1 if item.negative else 0)
            signals["author_mentions"] = total
            signals["author_negative_share"] = round(negatives / total, 3)
            signals["author_answered"] = history.answered > 0
            if total >= FREQUENT_AUTHOR:
                hints.append("frequent-author")
                if negatives / total >= MOSTLY_NEGATIVE:
                    hints.append("mostly-negative-author")
            if total > 1 and not signals["author_answered"]:
                hints.append("never-answered")
            history.total, history.negative = total, negatives
        if item.digest is not None:
            seen = repeats[item.digest]
            signals["same_text_count"] = seen.total
            signals["same_text_authors"] = len(seen.authors)
            if seen.total:
                hints.append("repeat-text")
            seen.total += 1
            seen.authors.add(item.author[:300])
        signals["hints"] = hints
        results.append(signals)
    return results


@dataclass(slots=True)
class _AuthorHistory:
    total: int = 0
    negative: int = 0
    answered: int = 0


@dataclass(slots=True)
class _TextHistory:
    total: int = 0
    authors: set[str] = field(default_factory=set)


_CHUNK = 400


async def _author_history(
    connection: AsyncConnection, keys: set[tuple[str, str]]
) -> defaultdict[tuple[str, str], _AuthorHistory]:
    found: defaultdict[tuple[str, str], _AuthorHistory] = defaultdict(_AuthorHistory)
    pairs = sorted(keys)
    answered = or_(mentions.c.state == "answered", mentions.c.answered_at.is_not(None))
    for start in range(0, len(pairs), _CHUNK):
        rows = await connection.execute(
            select(
                mentions.c.platform,
                mentions.c.author,
                func.count().label("total"),
                func.coalesce(
                    func.sum(case((mentions.c.sentiment == "negative", 1), else_=0)), 0
                ).label("negative"),
                func.coalesce(func.sum(case((answered, 1), else_=0)), 0).label("answered"),
            )
            .where(
                tuple_(mentions.c.platform, mentions.c.author).in_(pairs[start : start + _CHUNK])
            )
            .group_by(mentions.c.platform, mentions.c.author)
        )
        for row in rows:
            found[(row.platform, row.author)] = _AuthorHistory(
                int(row.total), int(row.negative), int(row.answered)
            )
    return found


async def _text_history(
    connection: AsyncConnection, digests: set[str]
) -> defaultdict[str, _TextHistory]:
    found: defaultdict[str, _TextHistory] = defaultdict(_TextHistory)
    values = sorted(digests)
    for start in range(0, len(values), _CHUNK):
        rows = await connection.execute(
            select(mentions.c.text_hash, mentions.c.author, func.count().label("n"))
            .where(mentions.c.text_hash.in_(values[start : start + _CHUNK]))
            .group_by(mentions.c.text_hash, mentions.c.author)
        )
        for row in rows:
            history = found[row.text_hash]
            history.total += int(row.n)
            history.authors.add(row.author)
    return found
