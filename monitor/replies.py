"""Answered and reopened, from the brand's own replies on social platforms.

Every ``alerts.replies_every`` each source that can list replies (``Source.replies``)
is asked for the brand accounts' replies on its platform. A reply in a mention's
thread (same ``thread_key``, or answering its ``source_key``) marks that mention
answered, with the reply's link, and its ``answered_at`` is the reply's time — the
time to first reply. A customer writing again in an answered thread reopens it
(``alerts.grouping.reopen_answered_threads``, at ingest).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import or_, select, true, update
from sqlalchemy.ext.asyncio import AsyncConnection

from monitor.mention import BrandReply
from monitor.store import alert_state
from monitor.store import mentions as mention_store
from monitor.store import sources as source_store
from monitor.store.tables import mentions, sightings
from sources.base import Source, SourceError
from sources.incremental import parse_time

if TYPE_CHECKING:
    from monitor.config import Config
    from monitor.store import Store

log = logging.getLogger(__name__)

# Replies are asked for again from this long before the last poll: platforms index late.
OVERLAP = timedelta(minutes=30)
# Where each source's reply polling keeps its state: `replies:<source>:<account>`.
CURSOR_PREFIX = "replies:"


def reply_capable(source: Source) -> bool:
    return type(source).replies is not Source.replies


def accounts_for(config: Config, source: Source) -> list[str]:
    return list(config.brand.accounts.get(source.kind, []))


def cursor_name(source: str, account: str) -> str:
    return f"{CURSOR_PREFIX}{source}:{account}"


async def poll_replies(
    store: Store, sources: dict[str, Source], config: Config, now: datetime | None = None
) -> int:
    """Ask every reply-capable source that may spend its budget now; return how many
    mentions became answered."""
    now = now or datetime.now(UTC)
    answered = 0
    async with store.read() as connection:
        health = {h.source: h for h in await source_store.health(connection, count_items=False)}
    for source in sources.values():
        accounts = accounts_for(config, source) if reply_capable(source) else []
        if not accounts:
            continue
        async with store.read() as connection:
            state = await source_store.load(connection, source.name)
        if reason := held_back(source, health.get(source.name), source.paused_until(state), now):
            log.debug("%s: not listing replies now: %s", source.name, reason)
            continue
        for account in accounts:
            answered += await _poll_account(store, source, account, config, now)
    return answered


def held_back(
    source: Source,
    health: source_store.SourceHealth | None,
    paused_until: datetime | None,
    now: datetime,
) -> str | None:
    """Why listing the source's replies must wait, or None. Replies spend the source's
    own budget, so whatever holds its polls back holds them back too."""
    if health is not None:
        if health.retry_after_until is not None and health.retry_after_until > now:
            return f"rate limited until {health.retry_after_until.isoformat()}"
        if health.error_streak and health.next_check_at > now:
            return f"backing off after {health.error_streak} failed polls"
    if paused_until is not None and paused_until > now:
        return f"the platform asked for a pause until {paused_until.isoformat()}"
    return None


async def _poll_account(
    store: Store, source: Source, account: str, config: Config, now: datetime
) -> int:
    name = cursor_name(source.name, account)
    async with store.read() as connection:
        cursor = await alert_state.get_cursor(connection, name) or {}
    checked = parse_time(cursor.get("checked_at"))
    if checked is not None and now - checked < timedelta(seconds=source.replies_min_interval_s):
        return 0
    blocked = parse_time(cursor.get("retry_after_until"))
    if blocked is not None and blocked > now:
        return 0
    since = parse_time(cursor.get("since")) or now - config.alerts.max_age
    try:
        replies = await source.replies(account, since)
    except asyncio.CancelledError:
        raise
    except Exception as exc:
        await _record_failure(store, source, account, name, cursor, exc, now)
        return 0
    async with store.begin() as connection:
        answered = await mark_answered(connection, replies, now)
        # A success clears the failure: only `since` and when it last ran are kept.
        await alert_state.set_cursor(
            connection,
            name,
            {"since": (now - OVERLAP).isoformat(), "checked_at": now.isoformat()},
            now,
        )
    return answered


async def _record_failure(
    store: Store,
    source: Source,
    account: str,
    name: str,
    cursor: Mapping[str, Any],
    exc: Exception,
    now: datetime,
) -> None:
    """Keep the failure in the reply cursor, where `monitor sources` shows it next to the
    source: a platform that refuses replies must not look like "the brand never answers"."""
    if isinstance(exc, SourceError):
        message = str(exc)
    else:
        log.exception("%s: unexpected error listing replies of %s", source.name, account)
        message = f"{source.name}: internal error in the {source.kind} adapter: {exc!r}"
    log.warning("%s: listing replies of %s failed: %s", source.name, account, message)
    value = {
        **cursor,
        "checked_at": now.isoformat(),
        "error": f"replies of {account}: {message}"[:1000],
        "error_at": now.isoformat(),
        "failures": int(cursor.get("failures") or 0) + 1,
    }
    retry_after = getattr(exc, "retry_after", None)
    if retry_after is not None:
        value["retry_after_until"] = (now + retry_after).isoformat()
    async with store.begin() as connection:
        await alert_state.set_cursor(connection, name, value, now)


async def reply_health(connection: AsyncConnection, source: str) -> dict[str, Any]:
    """What `monitor sources` shows about a source's reply polling: when it last ran and
    the failures it currently has (one per account)."""
    prefix = cursor_name(source, "")
    cursors = await alert_state.cursors_with_prefix(connection, prefix)
    found: dict[str, Any] = {}
    checked = [c["checked_at"] for c in cursors.values() if isinstance(c.get("checked_at"), str)]
    if checked:
        found["replies_checked_at"] = max(checked)
    errors = [c["error"] for c in cursors.values() if c.get("error")]
    if errors:
        found["replies_error"] = "; ".join(errors)
    return found


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
                _not_written_by(reply.author),
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


def _not_written_by(author: str) -> Any:
    """The brand's own post in the thread is not "answered" by its reply. NULL-safe: a
    plain ``author != x`` is NULL for a mention without an author, which would never be
    answered; and a reply whose author is unknown rules nothing out."""
    if not author:
        return true()
    return mentions.c.author.is_distinct_from(author)
