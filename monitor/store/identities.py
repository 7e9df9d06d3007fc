"""The stored identities dedup compares a batch of sightings against (see monitor/dedup.py).

Three indexed lookups per batch, whatever the number of stored mentions: sightings by
source key, mentions by canonical URL, and ``mention_keys`` by key (URL keys at any age,
the others only within the dedup window).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy.ext.asyncio import AsyncConnection

from monitor.dedup import Candidate, DedupIndex, KeyHit, author_key, title_words
from monitor.store.tables import mention_keys, mentions, sightings

# SQLite caps bound parameters per statement; PostgreSQL plans long IN lists poorly.
_CHUNK = 500


def _chunks(values: Sequence[Any]) -> Iterable[Sequence[Any]]:
    for start in range(0, len(values), _CHUNK):
        yield values[start : start + _CHUNK]


async def load_index(
    connection: AsyncConnection, candidates: Sequence[Candidate], *, window_start: datetime
) -> DedupIndex:
    index = DedupIndex()
    source_keys = list(dict.fromkeys(c.mention.source_key for c in candidates))
    for chunk in _chunks(source_keys):
        rows = await connection.execute(
            select(sightings.c.source_key, sightings.c.mention_id).where(
                sightings.c.source_key.in_(chunk)
            )
        )
        index.by_source_key.update({row.source_key: row.mention_id for row in rows})

    urls = list(dict.fromkeys(c.canonical_url for c in candidates if c.canonical_url))
    for chunk in _chunks(urls):
        rows = await connection.execute(
            select(mentions.c.canonical_url, func.min(mentions.c.id).label("id"))
            .where(mentions.c.canonical_url.in_(chunk))
            .group_by(mentions.c.canonical_url)
        )
        index.by_canonical_url.update({row.canonical_url: row.id for row in rows})

    url_key_of = {k: c.canonical_url for c in candidates for k in c.keys if k.startswith("url:")}
    keys = list(dict.fromkeys(key for c in candidates for key in c.keys))
    for chunk in _chunks(keys):
        rows = await connection.execute(
            select(
                mention_keys.c.key,
                mention_keys.c.mention_id,
                mentions.c.fingerprint,
                mentions.c.author,
                mentions.c.title,
            )
            .join(mentions, mentions.c.id == mention_keys.c.mention_id)
            .where(
                mention_keys.c.key.in_(chunk),
                or_(mention_keys.c.key.like("url:%"), mention_keys.c.created_at >= window_start),
            )
            .order_by(mention_keys.c.mention_id)
        )
        for row in rows:
            if row.key in url_key_of:
                index.by_canonical_url.setdefault(url_key_of[row.key], row.mention_id)
            else:
                index.by_key.setdefault(row.key, []).append(
                    KeyHit(
                        row.mention_id,
                        row.fingerprint,
                        author_key(row.author),
                        title_words(row.title),
                    )
                )
    return index
