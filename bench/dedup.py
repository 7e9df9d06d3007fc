"""Dedup lookup cost with a large store (default 1,000,000 mentions).

    .venv/bin/python bench/dedup.py [--mentions 1000000] [--database URL] [--keep]

Fills a fresh database (SQLite in a temporary folder by default; a PostgreSQL URL works too,
it must be empty) with N mentions, one sighting each and the identity keys dedup
stores for each (URL, title for half of them, post, 8 MinHash bands: about 11 rows per
mention in ``mention_keys``), spread over 60 days. Keys are random digests of the same shape
the real ones have (they are uniformly distributed hashes either way), plus 200 mentions
built from real text with ``candidate_for``. Then times the pipeline's lookup
(``monitor.store.identities.load_index``) and ``identify`` for batches of 1 and 100 sightings,
half of which are duplicates of stored mentions. Prints a Markdown table, after a quality
check of the near-duplicate rules on the dev sets in --corpus (if present).
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import json
import random
import sqlite3
import statistics
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy.engine import make_url

from monitor.dedup import BANDS, DEDUP_WINDOW, Candidate, DedupIndex, candidate_for, identify
from monitor.mention import Mention
from monitor.store import Store, identities

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
REAL = 200
CHUNK = 20_000
WORDS = [
    "acme",
    "cloud",
    "outage",
    "support",
    "refund",
    "billing",
    "invoice",
    "dashboard",
    "login",
    "region",
    "latency",
    "storage",
    "team",
    "customer",
    "ticket",
    "waiting",
    "hours",
    "days",
    "again",
    "broken",
    "slow",
    "error",
    "failed",
    "deploy",
    "backup",
    "service",
    "price",
    "plan",
    "upgrade",
    "cancel",
    "account",
    "email",
    "phone",
    "answer",
    "nobody",
    "still",
    "today",
]


def real_mentions(rng: random.Random, count: int) -> list[Mention]:
    mentions = []
    for i in range(count):
        text = " ".join(rng.choices(WORDS, k=rng.randint(10, 60)))
        title = " ".join(rng.choices(WORDS, k=8)) if i % 2 else ""
        mentions.append(
            Mention(f"real:{i}", f"https://real.test/{i}", title=title, text=text, author=f"p{i}")
        )
    return mentions


def rows(total: int, real: list[Candidate], rng: random.Random) -> Iterator[tuple[str, Any]]:
    """("mention" | "sighting" | "key", row) for every generated row, in id order."""
    for mention_id in range(1, total + 1):
        fetched = NOW - timedelta(seconds=rng.randrange(60 * 86400))
        index = mention_id - (total - len(real)) - 1
        if index >= 0:
            candidate = real[index]
            key, url, author = (
                candidate.mention.source_key,
                candidate.canonical_url,
                candidate.author,
            )
            fingerprint, keys = candidate.fingerprint, candidate.keys
            fetched = NOW - timedelta(hours=1)
        else:
            key, url, author = (
                f"rss:{mention_id}",
                f"https://s{mention_id % 5000}.test/{mention_id}",
                f"u{mention_id % 50000}",
            )
            fingerprint = rng.getrandbits(64) - (1 << 63)
            keys = [f"url:{rng.getrandbits(96):024x}", f"post:{rng.getrandbits(96):024x}"]
            keys += [f"mh:{band}:{rng.getrandbits(64):016x}" for band in range(BANDS)]
            if mention_id % 2:
                keys.append(f"title:{rng.getrandbits(96):024x}")
        yield "mention", (mention_id, key, url, fingerprint, author, fetched)
        yield "sighting", (mention_id, key, url, fetched)
        for k in keys:
            yield "key", (mention_id, k, fetched)


def sqlite_time(value: datetime) -> str:
    return value.replace(tzinfo=None).strftime("%Y-%m-%d %H:%M:%S.%f")


def fill_sqlite(path: str, total: int, real: list[Candidate], rng: random.Random) -> None:
    db = sqlite3.connect(path)
    db.execute("PRAGMA synchronous=OFF")
    batches: dict[str, list[tuple[Any, ...]]] = {"mention": [], "sighting": [], "key": []}
    sql = {
        "mention": "INSERT INTO mentions (id, source, platform, source_key, url, canonical_url, "
        "fingerprint, title, text, html, author, author_url, thread_key, fetched_at, language, "
        "tagged, sentiment, sentiment_score, sentiment_scores, sentiment_backend, needs_reply, "
        "signals, backfill, state, state_by, state_at, extra) VALUES (?, 'bench', 'rss', ?, ?, ?, "
        "?, '', '', '', ?, '', '', ?, 'en', 0, 'neutral', 0.5, '{}', '', 0, '{}', 0, 'open', "
        "'daemon', ?, '{}')",
        "sighting": "INSERT INTO sightings (mention_id, source, source_key, url, matched_by, "
        "seen_at) VALUES (?, 'bench', ?, ?, 'new', ?)",
        "key": "INSERT INTO mention_keys (mention_id, key, created_at) VALUES (?, ?, ?)",
    }

    def flush() -> None:
        for kind, batch in batches.items():
            if batch:
                db.executemany(sql[kind], batch)
                batch.clear()
        db.commit()

    for kind, row in rows(total, real, rng):
        if kind == "mention":
            i, key, url, fingerprint, author, fetched = row
            when = sqlite_time(fetched)
            batches[kind].append((i, key, url, url or None, fingerprint, author, when, when))
            if i % CHUNK == 0:
                flush()
        elif kind == "sighting":
            i, key, url, fetched = row
            batches[kind].append((i, key, url, sqlite_time(fetched)))
        else:
            i, key, fetched = row
            batches[kind].append((i, key, sqlite_time(fetched)))
    flush()
    db.execute("ANALYZE")
    db.close()


async def fill_postgres(url: str, total: int, real: list[Candidate], rng: random.Random) -> None:
    import asyncpg

    dsn = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    connection = await asyncpg.connect(dsn)
    try:
        batches: dict[str, list[tuple[Any, ...]]] = {"mention": [], "sighting": [], "key": []}
        columns = {
            "mention": ("mentions", ["id", "source", "platform", "source_key", "url", "canonical_url",
                                     "fingerprint", "title", "text", "html", "author", "author_url",
                                     "thread_key", "fetched_at", "language", "tagged", "sentiment",
                                     "sentiment_score", "sentiment_scores", "sentiment_backend",
                                     "needs_reply", "signals", "backfill", "state", "state_by",
                                     "state_at", "extra"]),
            "sighting": ("sightings", ["id", "mention_id", "source", "source_key", "url",
                                       "matched_by", "seen_at"]),
            "key": ("mention_keys", ["id", "mention_id", "key", "created_at"]),
        }  # fmt: skip
        counters = {"sighting": 0, "key": 0}

        async def flush() -> None:
            for kind, batch in batches.items():
                if batch:
                    table, names = columns[kind]
                    await connection.copy_records_to_table(table, records=batch, columns=names)
                    batch.clear()

        for kind, row in rows(total, real, rng):
            if kind == "mention":
                i, key, url, fingerprint, author, fetched = row
                batches[kind].append(
                    (i, "bench", "rss", key, url, url or None, fingerprint, "", "", "", author,
                     "", "", fetched, "en", False, "neutral", 0.5, "{}", "", False, "{}", False,
                     "open", "daemon", fetched, "{}")
                )  # fmt: skip
                if i % CHUNK == 0:
                    await flush()
            elif kind == "sighting":
                counters[kind] += 1
                i, key, url, fetched = row
                batches[kind].append((counters[kind], i, "bench", key, url, "new", fetched))
            else:
                counters[kind] += 1
                i, key, fetched = row
                batches[kind].append((counters[kind], i, key, fetched))
        await flush()
        for table in ("mentions", "sightings", "mention_keys"):
            await connection.execute(
                f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT max(id) FROM {table}))"
            )
            await connection.execute(f"ANALYZE {table}")
    finally:
        await connection.close()


async def time_lookups(
    url: str, batches: dict[str, list[Candidate]], repeats: int, now: datetime = NOW
) -> list[str]:
    store = await Store.open(url)
    lines = []
    try:
        for name, batch in batches.items():
            timings = []
            found = 0
            for attempt in range(repeats + 1):
                started = time.perf_counter()
                async with store.read() as connection:
                    index = await identities.load_index(
                        connection, batch, window_start=now - DEDUP_WINDOW
                    )
                verdicts = [identify(candidate, index) for candidate in batch]
                elapsed = (time.perf_counter() - started) * 1000
                if attempt == 0:
                    cold = elapsed
                else:
                    timings.append(elapsed)
                found = sum(v.mention_id is not None for v in verdicts)
            timings.sort()
            lines.append(
                f"| {name} | {len(batch)} | {sum(len(c.keys) for c in batch)} | {found} "
                f"| {cold:.1f} | {statistics.median(timings):.1f} "
                f"| {timings[int(len(timings) * 0.95) - 1]:.1f} |"
            )
    finally:
        await store.dispose()
    return lines


def quality(corpus: Path, rng: random.Random) -> None:
    """How often the near-duplicate rules merge what they should and what they should not."""
    texts: list[str] = []
    for path in sorted(corpus.glob("*.tsv")):
        with path.open(encoding="utf-8") as handle:
            reader = csv.DictReader(handle, delimiter="\t", quoting=csv.QUOTE_NONE)
            texts += [row["text"] for row in reader]
    texts = list(dict.fromkeys(texts))
    if not texts:
        return
    index = DedupIndex()
    merged: Counter[str] = Counter()
    for i, text in enumerate(texts):
        candidate = candidate_for(Mention(f"t:{i}", "", text=text, author="same"))
        merged[identify(candidate, index).rule] += 1
        index.add(i, candidate)
    print(
        f"{len(texts):,} distinct dev-set texts, all attributed to one author (the worst case): "
        f"{merged['cross_post']} folded as cross-posts, {merged['near_duplicate']} as near "
        "duplicates (mostly the same post re-punctuated or re-posted)"
    )
    found: Counter[str] = Counter()
    sample = rng.sample([t for t in texts if len(t.split()) >= 12], 1000)
    for text in sample:
        words = text.split()
        changed = [*words[:-3], "zzz", *words[-2:]]
        variants = {
            "hashtags and a link added": text + " #acme #fail https://t.co/abc",
            "retweeted": "RT @same: " + text,
            "one word dropped": " ".join(words[:3] + words[4:]),
            "one word changed": " ".join(changed),
        }
        index = DedupIndex()
        index.add(1, candidate_for(Mention("o", "", text=text, author="same")))
        for name, variant in variants.items():
            candidate = candidate_for(Mention("v", "", text=variant, author="same"))
            found[name] += identify(candidate, index).mention_id == 1
    print(
        "recall on 1,000 posts of 12+ words, same author: "
        + ", ".join(f"{name} {count / len(sample):.1%}" for name, count in found.items())
    )
    print()


async def main_async(args: argparse.Namespace) -> None:
    rng = random.Random(11)
    quality(args.corpus, rng)
    real_items = real_mentions(rng, REAL)
    real = [candidate_for(m) for m in real_items]
    folder = Path(tempfile.mkdtemp(prefix="dedup-bench-"))
    url = args.database or f"sqlite+aiosqlite:///{folder / 'bench.db'}"
    store = await Store.open(url)
    await store.dispose()
    started = time.perf_counter()
    if url.startswith("sqlite"):
        fill_sqlite(str(folder / "bench.db"), args.mentions, real, rng)
    else:
        await fill_postgres(url, args.mentions, real, rng)
    fill_s = time.perf_counter() - started
    fresh = [
        candidate_for(Mention(f"new:{i}", f"https://new.test/{i}", text=" ".join(rng.choices(WORDS, k=30)), author=f"n{i}"))
        for i in range(100)
    ]  # fmt: skip
    again = []
    for i, m in enumerate(real_items[:50]):
        copy = Mention(
            f"copy:{i}", "", title=m.title, text=m.text + " #acme https://t.co/x", author=m.author
        )
        again.append(candidate_for(copy))
    batches = {
        "1 new sighting": fresh[:1],
        "1 duplicate": again[:1],
        "100 (half duplicates)": fresh[:50] + again[:50],
    }
    lines = await time_lookups(url, batches, args.repeats)
    size = ""
    if url.startswith("sqlite"):
        size = f", {(folder / 'bench.db').stat().st_size / 1e9:.2f} GB on disk"
    print(
        f"{args.mentions:,} stored mentions ({make_url(url).get_backend_name()}{size}), filled in {fill_s:.0f} s"
    )
    print()
    print(
        "| batch | sightings | keys looked up | found as duplicates | first (ms) | median (ms) | p95 (ms) |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|")
    print("\n".join(lines))
    print(json.dumps({"database": str(folder) if args.keep else "deleted"}))
    if not args.keep and url.startswith("sqlite"):
        for path in folder.iterdir():
            path.unlink()
        folder.rmdir()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mentions", type=int, default=1_000_000)
    parser.add_argument("--database", help="SQLAlchemy URL of an empty database (default: SQLite)")
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--keep", action="store_true", help="keep the SQLite file")
    parser.add_argument("--corpus", type=Path, default=Path("../shared/sentiment-eval"))
    asyncio.run(main_async(parser.parse_args()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
