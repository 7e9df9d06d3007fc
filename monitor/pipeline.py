"""source → mention → match → dedup → classify → store → decide alerts → outbox.

Each stage is a plain function; ``Pipeline.ingest`` strings them together and writes a
batch, its alerts and the source's new cursor in one transaction, so a crash at any
point either keeps all of it or none of it (and the source re-delivers what was lost).
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from alerts.grouping import NewMention, enqueue_new_mentions
from alerts.rules import RuleContext
from monitor.classify import Classifier, Judgement
from monitor.classify import signals as mention_signals
from monitor.config import Config, WatchlistConfig
from monitor.crashpoints import crash_point
from monitor.dedup import DEDUP_WINDOW, Candidate, DedupIndex, candidate_for, identify
from monitor.language import detect_language
from monitor.matching import Matcher, MatchInput, WatchlistMatch
from monitor.mention import Mention
from monitor.normalize import fold_case
from monitor.store import Store, alert_state, identities
from monitor.store import mentions as mention_store
from monitor.store import sources as source_store
from monitor.store.tables import events as events_table
from monitor.store.tables import mention_keys, mention_matches, sightings
from monitor.textclean import safe_markup
from sources.base import FetchResult

log = logging.getLogger(__name__)

# Rows per transaction: bounds how long one source holds SQLite's single writer slot.
BATCH_SIZE = 500
# Longest title, text and markup kept per mention (characters); the rest is cut, noted.
MAX_TITLE_CHARS = 1_000
MAX_TEXT_CHARS = 20_000
MAX_HTML_CHARS = 100_000
MAX_FIELD_CHARS = 1_000
# Matching yields to the event loop after this much work, so no poll stalls it for longer.
PREPARE_SLICE_S = 0.01


@dataclass(slots=True)
class Prepared:
    """A mention that matched at least one watchlist, ready for dedup."""

    mention: Mention
    language: str
    matches: list[WatchlistMatch]
    tagged: bool
    candidate: Candidate


@dataclass(slots=True)
class IngestStats:
    fetched: int = 0
    matched: int = 0
    new: int = 0
    duplicates: int = 0
    alerts: int = 0
    new_ids: list[int] = field(default_factory=list)

    def add(self, other: IngestStats) -> None:
        self.fetched += other.fetched
        self.matched += other.matched
        self.new += other.new
        self.duplicates += other.duplicates
        self.alerts += other.alerts
        self.new_ids += other.new_ids


# ----------------------------------------------------------------------------- stages


def brand_handles(config: Config) -> list[str]:
    """The brand's own handles as they appear after an @: `@acmecloud@mastodon.social` gives
    `acmecloud`, a Bluesky domain handle stays whole (`acmecloud.bsky.social`)."""
    handles = set()
    for names in config.brand.accounts.values():
        for name in names:
            name = name.strip().rstrip("/")
            if name.startswith(("http://", "https://")):
                name = name.rsplit("/", 1)[-1]
            handle = fold_case(name.lstrip("@").split("@")[0])
            if handle:
                handles.add(handle)
    return sorted(handles)


# An @handle that starts a word (not the middle of bob@acme.test), with an optional @instance.
_HANDLE = re.compile(r"(?<![\w@.])[@\uff20]([^\W_][\w.-]*(?:@[\w.-]+)?)")


def is_tagged(text: str, handles: Sequence[str]) -> bool:
    """Does the text @-mention one of the brand's own accounts?"""
    if not handles:
        return False
    wanted = set(handles)
    for match in _HANDLE.finditer(text):
        handle = fold_case(match.group(1)).rstrip(".-")
        if handle in wanted or handle.split("@")[0].rstrip(".-") in wanted:
            return True
    return False


_TEXT_FIELDS = ("title", "text", "html", "author", "url", "author_url", "thread_key")


def bounded(mention: Mention) -> Mention:
    """Cap what one post may carry: a 10 MB title from a hostile feed must not cost 10 MB
    of matching, classification and storage. Truncation is noted in ``extra``."""
    cut = {}
    for name in _TEXT_FIELDS:
        value = getattr(mention, name)
        if "\x00" in value:
            # Never meaningful, and PostgreSQL refuses the whole batch over one NUL in TEXT.
            setattr(mention, name, value.replace("\x00", ""))
    for name, limit in (
        ("title", MAX_TITLE_CHARS),
        ("text", MAX_TEXT_CHARS),
        ("html", MAX_HTML_CHARS),
    ):
        value = getattr(mention, name)
        if len(value) > limit:
            setattr(mention, name, value[:limit])
            cut[name] = len(value)
    for name in ("author", "url", "author_url", "thread_key"):
        value = getattr(mention, name)
        if len(value) > MAX_FIELD_CHARS:
            setattr(mention, name, value[:MAX_FIELD_CHARS])
            cut[name] = len(value)
    if cut:
        mention.extra = {**mention.extra, "truncated": cut}
    return mention


def prepare(
    mention: Mention, matcher: Matcher, handles: Sequence[str], watchlist_names: set[str]
) -> Prepared | None:
    """Language, watchlist matches and identity of one sighting; None if nothing matched."""
    mention = bounded(mention)
    text = mention.match_text()
    hint = mention.watchlist_hint if mention.watchlist_hint in watchlist_names else ""
    if matcher.needs_language:
        language = detect_language(text, mention.language_hint)
        matches = matcher.match(
            MatchInput(text=text, url=mention.url, author=mention.author, language=language)
        )
    else:
        # Most fetched items match nothing: match first, detect the language only for those
        # that do, then apply the `languages:` filters (an unknown language passes them).
        matches = matcher.match(
            MatchInput(text=text, url=mention.url, author=mention.author, language="")
        )
        if not matches and not hint:
            return None
        language = detect_language(text, mention.language_hint)
        matches = [m for m in matches if matcher.language_allowed(m.watchlist, language)]
    if hint and all(m.watchlist != hint for m in matches):
        matches.append(WatchlistMatch(hint, [], []))
    if not matches:
        return None
    return Prepared(mention, language, matches, is_tagged(text, handles), candidate_for(mention))


def is_backfill(
    mention: Mention,
    *,
    first_run: bool,
    backfill_first_poll: bool,
    max_age: timedelta,
    now: datetime,
) -> bool:
    """Old news is stored and shown in the digest, never alerted one by one."""
    if first_run and backfill_first_poll:
        return True
    return mention.published_at is not None and mention.published_at < now - max_age


def before_watchlists_existed(
    mention: Mention, watchlists: Sequence[str], first_seen: dict[str, datetime]
) -> bool:
    """Published before every watchlist it matched was added: backfill for a new watchlist."""
    published = mention.published_at
    if published is None or not watchlists:
        return False
    return all(name in first_seen and published < first_seen[name] for name in watchlists)


def mention_row(
    prepared: Prepared,
    judgement: Judgement,
    *,
    source: str,
    backfill: bool,
    now: datetime,
    signals: dict[str, Any] | None = None,
    text_hash: str | None = None,
) -> dict[str, Any]:
    mention = prepared.mention
    sentiment = judgement.sentiment
    return {
        "source": source,
        "platform": mention.platform,
        "source_key": mention.source_key,
        "url": mention.url,
        "canonical_url": prepared.candidate.canonical_url or None,
        "fingerprint": prepared.candidate.fingerprint,
        "title": mention.title,
        "text": mention.text,
        "html": safe_markup(mention.html),
        "author": mention.author[:300],
        "author_url": mention.author_url,
        "thread_key": mention.thread_key[:1000],
        "published_at": mention.published_at,
        "fetched_at": now,
        "language": judgement.language,
        "tagged": prepared.tagged,
        "sentiment": sentiment.label,
        "sentiment_score": round(sentiment.confidence, 4),
        "sentiment_scores": sentiment.as_dict(),
        "sentiment_backend": sentiment.backend,
        "needs_reply": judgement.needs_reply,
        "signals": signals or {},
        "text_hash": text_hash,
        "backfill": backfill,
        "state": "open",
        "state_by": "daemon",
        "state_at": now,
        "extra": mention.extra,
    }


async def load_dedup_index(
    connection: AsyncConnection, batch: Sequence[Prepared], now: datetime
) -> DedupIndex:
    """What the store knows about this batch's identities (source keys, URLs, dedup keys)."""
    return await identities.load_index(
        connection, [p.candidate for p in batch], window_start=now - DEDUP_WINDOW
    )


# --------------------------------------------------------------------------- pipeline


class Pipeline:
    def __init__(self, store: Store, config: Config, classifier: Classifier | None = None) -> None:
        self.store = store
        self.classifier = classifier or Classifier()
        # One writer at a time: concurrent batches must see each other's new mentions
        # or the same article from two sources would be stored twice.
        self.write_lock = asyncio.Lock()
        self.reconfigure(config)

    # One short text per script the detector and the classifier handle.
    WARM_UP_TEXTS = (
        "Support never answered my refund request, this is really disappointing.",
        "सेवा बहुत खराब है, कोई जवाब नहीं मिला।",
        "সেবা খুবই খারাপ, কেউ উত্তর দেয়নি।",
        "پشتیبانی خیلی بد است و جوابی ندادند.",
    )

    def warm_up(self) -> None:
        """Load the language model and lexicons now, at start-up, rather than during the
        first poll: loading them holds the GIL for a few hundred ms and would stall the
        event loop mid-run."""
        for text in self.WARM_UP_TEXTS:
            self.classifier.judge(text, detect_language(text))

    def reconfigure(self, config: Config) -> None:
        self.config = config
        self.matcher = Matcher.from_config(config.watchlists)
        self.handles = brand_handles(config)
        self.watchlists: dict[str, WatchlistConfig] = {w.name: w for w in config.watchlists}
        self.sinks = list(config.alerts.active_sinks())

    async def ingest(
        self,
        source: str,
        result: FetchResult,
        *,
        first_run: bool,
        next_check_at: datetime,
        alerts_enabled: bool = True,
        now: datetime | None = None,
    ) -> IngestStats:
        """Store one fetch result and the source's new state; return what happened."""
        now = now or datetime.now(UTC)
        stats = IngestStats(fetched=len(result.mentions))
        prepared = await self._prepare_all(result.mentions)
        stats.matched = len(prepared)
        chunks = [prepared[i : i + BATCH_SIZE] for i in range(0, len(prepared), BATCH_SIZE)] or [[]]
        for index, chunk in enumerate(chunks):
            last = index == len(chunks) - 1
            async with self.write_lock, self.store.begin() as connection:
                chunk_stats = await self._store_chunk(
                    connection,
                    source,
                    chunk,
                    first_run=first_run,
                    alerts_enabled=alerts_enabled,
                    now=now,
                )
                if last:
                    await source_store.record_success(
                        connection,
                        source,
                        result,
                        now=now,
                        next_check_at=next_check_at,
                        stats=result.stats or None,
                    )
                crash_point("mid_ingest")  # written, not committed: tests/test_crash.py
            stats.add(chunk_stats)
            await asyncio.sleep(0)  # let other sources and the alert worker in between chunks
        return stats

    async def _prepare_all(self, items: list[Mention]) -> list[Prepared]:
        """Match a fetch result on the event loop, yielding every ``PREPARE_SLICE_S``.

        Cooperative slices rather than a worker thread: a CPU-bound thread starves the loop
        of the GIL (stalls of 100+ ms measured), while a slice bounds every stall.
        """
        names = set(self.watchlists)
        prepared: list[Prepared] = []
        deadline = time.perf_counter() + PREPARE_SLICE_S
        for mention in items:
            if found := prepare(mention, self.matcher, self.handles, names):
                prepared.append(found)
            if time.perf_counter() >= deadline:
                await asyncio.sleep(0)
                deadline = time.perf_counter() + PREPARE_SLICE_S
        return prepared

    async def _store_chunk(
        self,
        connection: AsyncConnection,
        source: str,
        batch: list[Prepared],
        *,
        first_run: bool,
        alerts_enabled: bool,
        now: datetime,
    ) -> IngestStats:
        """Dedup, judge and store one batch with a few bulk statements per table."""
        stats = IngestStats()
        if not batch:
            return stats
        index = await load_dedup_index(connection, batch, now)
        first_seen = await alert_state.watchlists_first_seen(
            connection, {m.watchlist for item in batch for m in item.matches}
        )
        # 1. Identity of every sighting. A new mention gets a provisional negative id so
        #    later sightings in the same batch fold into it before anything is written.
        new: list[tuple[Prepared, int]] = []
        seen: list[tuple[Prepared, int, str]] = []
        for item in batch:
            identity = identify(item.candidate, index)
            if identity.mention_id is None:
                provisional = -(len(new) + 1)
                index.add(provisional, item.candidate)
                new.append((item, provisional))
            else:
                if identity.rule != "source_key":
                    index.add(identity.mention_id, item.candidate)
                seen.append((item, identity.mention_id, identity.rule))
        # 2. Judge and store the new mentions.
        rows = await self._judge(
            connection,
            [item for item, _ in new],
            source,
            first_run,
            first_seen,
            now,
            alerts_enabled=alerts_enabled,
        )
        ids = await mention_store.insert_mentions(connection, rows)
        real = {
            provisional: mention_id for (_, provisional), mention_id in zip(new, ids, strict=True)
        }
        for row, mention_id in zip(rows, ids, strict=True):
            row["id"] = mention_id
        # 3. Sightings, identity keys, watchlist matches and events, new and repeated.
        sighting_rows: list[dict[str, Any]] = []
        key_rows: list[dict[str, Any]] = []
        match_rows: list[dict[str, Any]] = []
        event_rows: list[dict[str, Any]] = []
        for (item, _), row in zip(new, rows, strict=True):
            mention_id = row["id"]
            sighting_rows.append(_sighting(mention_id, source, item, "new", now))
            key_rows += [_key(mention_id, key, now) for key in dict.fromkeys(item.candidate.keys)]
            match_rows += [_match(mention_id, match, now) for match in item.matches]
            event_rows.append(
                _event(
                    "mention_stored",
                    mention_id,
                    now,
                    {
                        "source": source,
                        "sentiment": row["sentiment"],
                        "backfill": row["backfill"],
                        "watchlists": [m.watchlist for m in item.matches],
                    },
                )
            )
        existing = [real.get(target, target) for _, target, _ in seen if target > 0]
        known_keys = await mention_store.existing_keys(connection, existing)
        known_keys |= {(r["mention_id"], r["key"]) for r in key_rows}
        known_lists = await mention_store.existing_watchlists(connection, existing)
        known_lists |= {(r["mention_id"], r["watchlist"]) for r in match_rows}
        for item, target, rule in seen:
            mention_id = real.get(target, target)
            if rule != "source_key":
                sighting_rows.append(_sighting(mention_id, source, item, rule, now))
                for key in dict.fromkeys(item.candidate.keys):
                    if (mention_id, key[:400]) not in known_keys:
                        known_keys.add((mention_id, key[:400]))
                        key_rows.append(_key(mention_id, key, now))
                event_rows.append(
                    _event(
                        "sighting_added",
                        mention_id,
                        now,
                        {"source": source, "rule": rule, "url": item.mention.url},
                    )
                )
            added = []
            for match in item.matches:
                if (mention_id, match.watchlist) not in known_lists:
                    known_lists.add((mention_id, match.watchlist))
                    match_rows.append(_match(mention_id, match, now))
                    added.append(match.watchlist)
            if added:
                event_rows.append(
                    _event("watchlists_added", mention_id, now, {"watchlists": added})
                )
        await mention_store.insert_rows(connection, sightings, sighting_rows)
        await mention_store.insert_rows(connection, mention_keys, key_rows)
        await mention_store.insert_rows(connection, mention_matches, match_rows)
        await mention_store.insert_rows(connection, events_table, event_rows)
        stats.new = len(new)
        stats.duplicates = len(seen)
        stats.new_ids = list(ids)
        # 4. Alerts, decided in this same transaction.
        if alerts_enabled and rows:
            new_mentions = [
                NewMention(
                    row,
                    [
                        self.watchlists[m.watchlist]
                        for m in item.matches
                        if m.watchlist in self.watchlists
                    ],
                )
                for (item, _), row in zip(new, rows, strict=True)
            ]
            rule_context = RuleContext(self.config, self.sinks, now)
            stats.alerts += await enqueue_new_mentions(connection, new_mentions, rule_context)
        return stats

    async def _judge(
        self,
        connection: AsyncConnection,
        items: list[Prepared],
        source: str,
        first_run: bool,
        first_seen: dict[str, datetime],
        now: datetime,
        *,
        alerts_enabled: bool = True,
    ) -> list[dict[str, Any]]:
        """Sentiment, needs-reply, backfill and troll/spam signals → mention rows.

        A mention stored with alerts off (``run --once --no-alerts``) is backfill: nobody was
        told about it, so it must not count as overdue or against the reply SLA."""
        alerts = self.config.alerts
        judgements = []
        inputs = []
        deadline = time.perf_counter() + PREPARE_SLICE_S
        for item in items:
            if time.perf_counter() >= deadline:
                await asyncio.sleep(0)  # classification is CPU-bound: let the loop breathe
                deadline = time.perf_counter() + PREPARE_SLICE_S
            text = item.mention.match_text()
            judgement = self.classifier.judge(text, item.language, tagged=item.tagged)
            judgements.append((judgement, mention_signals.text_hash(text)))
            inputs.append(
                mention_signals.SignalInput(
                    item.mention.platform,
                    item.mention.author,
                    text,
                    judgements[-1][1],
                    judgement.sentiment.label == "negative",
                )
            )
        signals = await mention_signals.compute_batch(connection, inputs)
        rows = []
        for item, (judgement, digest), item_signals in zip(items, judgements, signals, strict=True):
            backfill = is_backfill(
                item.mention,
                first_run=first_run,
                backfill_first_poll=alerts.backfill_first_poll,
                max_age=alerts.max_age,
                now=now,
            ) or (
                alerts.backfill_first_poll
                and before_watchlists_existed(
                    item.mention, [m.watchlist for m in item.matches], first_seen
                )
            )
            if not alerts_enabled:
                backfill = True
            rows.append(
                mention_row(
                    item,
                    judgement,
                    source=source,
                    backfill=backfill,
                    now=now,
                    signals=item_signals,
                    text_hash=digest,
                )
            )
        return rows


def _sighting(
    mention_id: int, source: str, item: Prepared, rule: str, now: datetime
) -> dict[str, Any]:
    return {
        "mention_id": mention_id,
        "source": source,
        "source_key": item.mention.source_key,
        "url": item.mention.url,
        "matched_by": rule,
        "seen_at": now,
    }


def _key(mention_id: int, key: str, now: datetime) -> dict[str, Any]:
    return {"mention_id": mention_id, "key": key[:400], "created_at": now}


def _match(mention_id: int, match: WatchlistMatch, now: datetime) -> dict[str, Any]:
    return {
        "mention_id": mention_id,
        "watchlist": match.watchlist,
        "terms": list(match.terms),
        "spans": [list(span) for span in match.spans],
        "matched_at": now,
    }


def _event(kind: str, mention_id: int, now: datetime, data: dict[str, Any]) -> dict[str, Any]:
    return {"kind": kind, "actor": "daemon", "mention_id": mention_id, "at": now, "data": data}
