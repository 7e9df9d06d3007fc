"""Answered and reopened, from the brand's own replies on social platforms.

Every ``alerts.replies_every`` each source that can list replies (``Source.replies``)
is asked for the brand accounts' replies on its platform. A reply in a mention's
thread (same ``thread_key``, or answering its ``source_key``) marks that mention
answered, with the reply's link, and its ``answered_at`` is the reply's time — the
time to first reply. A customer writing again in an answered thread reopens it
(``alerts.grouping.reopen_answered_threads``, at ingest).
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from sqlalchemy import or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from monitor.mention import BrandReply
from monitor.store import alert_state
from monitor.store import mentions as mention_store
from monitor.store.tables import mentions, sightings
from sources.base import Source

if TYPE_CHECKING:
    from monitor.config import Config
    from monitor.store import Store

log = logging.getLogger(__name__)

# Replies are asked for again from this long before the last poll: platforms index late.
OVERLAP = timedelta(minutes=30)


def reply_capable(source: Source) -> bool:
    return type(source).replies is not Source.replies


def accounts_for(config: Config, source: Source) -> list[str]:
    return list(config.brand.accounts.get(source.kind, []))


async def poll_replies(
    store: Store, sources: dict[str, Source], config: Config, now: datetime | None = None
) -> int:
    """Ask every reply-capable source; return how many mentions became answered."""
    now = now or datetime.now(UTC)
    answered = 0
    for source in sources.values():
        if not reply_capable(source):
            continue
        for account in accounts_for(config, source):
            cursor_name = f"replies:{source.name}:{account}"
            async with store.read() as connection:
                cursor = await alert_state.get_cursor(connection, cursor_name)
            since = (
                datetime.fromisoformat(cursor["since"]) if cursor else now - config.alerts.max_age
            )
            try:
                replies = await source.replies(account, since)
            except Exception as exc:
                log.warning("%s: listing replies of %s failed: %s", source.name, account, exc)
                continue
            async with store.begin() as connection:
                answered += await mark_answered(connection, replies, now)
                await alert_state.set_cursor(
                    connection, cursor_name, {"since": (now - OVERLAP).isoformat()}, now
                )
    return answered


async def mark_answered(
    connection: AsyncConnection, replies: list[BrandReply], now: datetime
) -> int:
    """Mark the open mentions each reply answers; idempotent."""
    count = 0
    for reply in replies:
        conditions = []
        if reply.thread_key:
            conditions.append(mentions.c.thread_key == reply.thread_key)
        if reply.in_reply_to_key:
            conditions.append(mentions.c.source_key == reply.in_reply_to_key)
            conditions.append(
                mentions.c.id.in_(
                    select(sightings.c.mention_id).where(
                        sightings.c.source_key == reply.in_reply_to_key
                    )
                )
            )
        if not conditions:
            continue
        rows = await connection.execute(
            select(
                mentions.c.id,
                mentions.c.answered_at,
                mentions.c.published_at,
                mentions.c.fetched_at,
            ).where(
                or_(*conditions),
                mentions.c.state.in_(("open", "acknowledged")),
                or_(
                    mentions.c.published_at.is_(None), mentions.c.published_at <= reply.published_at
                ),
                mentions.c.author != reply.author,
            )
        )
        for row in rows:
            await mention_store.set_state(
                connection,
                row.id,
                "answered",
                actor=f"reply:{reply.author or 'brand'}",
                now=now,
                reason="the brand replied in the thread",
                answer_url=reply.url,
            )
            if row.answered_at is None:
                start = row.published_at or row.fetched_at
                await connection.execute(
                    update(mentions)
                    .where(mentions.c.id == row.id)
                    .values(answered_at=max(reply.published_at, start))
                )
            count += 1
    return count
