"""Database schema (SQLAlchemy Core). Alembic migrations in ``migrations/`` create it.

Dialect-neutral on purpose: the same tables work on SQLite and PostgreSQL. Nothing here
is ever deleted by the daemon; state changes are appended to ``events``.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)
from sqlalchemy.types import TypeDecorator

# Named constraints let Alembic's batch mode rebuild SQLite tables predictably.
metadata = MetaData(
    naming_convention={
        "ix": "ix_%(column_0_label)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

# BIGINT primary keys on PostgreSQL; SQLite only autoincrements a plain INTEGER PRIMARY KEY.
Id = BigInteger().with_variant(Integer(), "sqlite")


class UTCDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes in Python; naive UTC in SQLite, timestamptz in PostgreSQL."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the store; use datetime.now(UTC)")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


MENTION_STATES = ("open", "acknowledged", "answered", "resolved", "ignored")

mentions = Table(
    "mentions",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("source", String(100), nullable=False),  # config name of the first sighting
    Column("platform", String(40), nullable=False),
    Column("source_key", String(1000), nullable=False, unique=True),  # first sighting's native key
    Column("url", Text, nullable=False, default=""),
    Column("canonical_url", String(2000), nullable=True, index=True),
    Column("fingerprint", BigInteger, nullable=True, index=True),  # 64-bit simhash, signed
    Column("title", Text, nullable=False, default=""),
    Column("text", Text, nullable=False, default=""),
    Column("html", Text, nullable=False, default=""),
    Column("author", String(300), nullable=False, default=""),
    Column("author_url", Text, nullable=False, default=""),
    Column("thread_key", String(1000), nullable=False, default="", index=True),
    Column("published_at", UTCDateTime, nullable=True),
    Column("fetched_at", UTCDateTime, nullable=False, index=True),
    Column("language", String(16), nullable=False, default=""),
    Column("tagged", Boolean, nullable=False, default=False),
    Column("sentiment", String(10), nullable=False, default="neutral"),
    Column("sentiment_score", Float, nullable=False, default=0.0),
    Column("sentiment_scores", JSON, nullable=False, default=dict),
    Column("sentiment_backend", String(80), nullable=False, default=""),
    Column("needs_reply", Boolean, nullable=False, default=False),
    Column("signals", JSON, nullable=False, default=dict),  # troll/spam context, never used to hide
    # Digest of the normalised text (classify.signals.text_hash): finds copy-pasted posts.
    Column("text_hash", String(40), nullable=True, index=True),
    Column("backfill", Boolean, nullable=False, default=False),  # stored, not alerted one by one
    Column("state", String(16), nullable=False, default="open", index=True),
    Column("state_by", String(200), nullable=False, default="daemon"),
    Column("state_at", UTCDateTime, nullable=False),
    Column("assignee", String(200), nullable=True),
    Column("answered_at", UTCDateTime, nullable=True),
    Column("answer_url", Text, nullable=True),
    Column("extra", JSON, nullable=False, default=dict),
    Index("ix_mentions_platform_author", "platform", "author"),
    Index("ix_mentions_published_at", "published_at"),
)

# Every time a source reports a mention under a key of its own. One mention, many sightings.
sightings = Table(
    "sightings",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("mention_id", Id, ForeignKey("mentions.id"), nullable=False, index=True),
    Column("source", String(100), nullable=False),
    Column("source_key", String(1000), nullable=False, unique=True),
    Column("url", Text, nullable=False, default=""),
    Column("matched_by", String(40), nullable=False),  # which dedup rule linked it
    Column("seen_at", UTCDateTime, nullable=False, index=True),
    Index("ix_sightings_source_seen", "source", "seen_at"),
)

# Other identities of a mention (title+publisher, simhash bands, ...), looked up by dedup.
mention_keys = Table(
    "mention_keys",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("mention_id", Id, ForeignKey("mentions.id"), nullable=False, index=True),
    # Looked up through the unique (key, mention_id) index below.
    Column("key", String(400), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    UniqueConstraint("key", "mention_id", name="uq_mention_keys_key_mention"),
)

mention_matches = Table(
    "mention_matches",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("mention_id", Id, ForeignKey("mentions.id"), nullable=False, index=True),
    Column("watchlist", String(100), nullable=False, index=True),
    Column("terms", JSON, nullable=False, default=list),
    Column("spans", JSON, nullable=False, default=list),
    Column("matched_at", UTCDateTime, nullable=False),
    UniqueConstraint("mention_id", "watchlist", name="uq_mention_matches_mention_watchlist"),
)

source_state = Table(
    "source_state",
    metadata,
    Column("source", String(100), primary_key=True),
    Column("kind", String(40), nullable=False),
    Column("cursor", JSON, nullable=False, default=dict),
    Column("etag", Text, nullable=True),
    Column("last_modified", Text, nullable=True),
    Column("next_check_at", UTCDateTime, nullable=False, index=True),
    Column("error_streak", Integer, nullable=False, default=0),
    Column("last_error", Text, nullable=True),
    Column("last_error_at", UTCDateTime, nullable=True),
    Column("last_attempt_at", UTCDateTime, nullable=True),
    Column("last_success_at", UTCDateTime, nullable=True),
    Column("last_item_at", UTCDateTime, nullable=True),  # last run that returned any entry
    Column("retry_after_until", UTCDateTime, nullable=True),
    Column("runs", Integer, nullable=False, default=0),
    Column("items_total", BigInteger, nullable=False, default=0),
    Column("warning", Text, nullable=True),
    Column("degraded", Text, nullable=True),
    Column("dark_since", UTCDateTime, nullable=True),
    Column("dark_reason", Text, nullable=True),  # why monitor.health thinks it is dark
    Column("failing_since", UTCDateTime, nullable=True),  # first error of the current streak
    Column("item_runs", Integer, nullable=False, default=0, server_default="0"),  # runs with items
    Column("stats", JSON, nullable=False, default=dict),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
)

# held: recorded for a mention that was delivered as part of a storm or batch alert
# (thread_of points at that alert); skipped: an escalation whose mention was handled first.
OUTBOX_STATUSES = ("pending", "sending", "sent", "failed", "held", "skipped")

alert_outbox = Table(
    "alert_outbox",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    # Unique per intended delivery (e.g. "mention:42:slack"): a decision replayed after a
    # crash cannot enqueue the same alert twice.
    Column("dedup_key", String(300), nullable=False, unique=True),
    Column("mention_id", Id, ForeignKey("mentions.id"), nullable=True, index=True),
    Column("kind", String(30), nullable=False),
    Column("sink", String(40), nullable=False),
    Column("target", String(300), nullable=False, default=""),
    Column("payload", JSON, nullable=False, default=dict),
    Column("status", String(10), nullable=False, default="pending"),
    Column("attempts", Integer, nullable=False, default=0),
    Column("next_attempt_at", UTCDateTime, nullable=False),
    Column("last_error", Text, nullable=True),
    Column("provider_id", String(300), nullable=True),
    Column("thread_of", Id, ForeignKey("alert_outbox.id"), nullable=True),
    Column("created_at", UTCDateTime, nullable=False),
    Column("sent_at", UTCDateTime, nullable=True),
    Index("ix_alert_outbox_status_next", "status", "next_attempt_at"),
)

# Append-only history: every state change of a mention or of the daemon, with who and when.
events = Table(
    "events",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("mention_id", Id, ForeignKey("mentions.id"), nullable=True, index=True),
    Column("kind", String(40), nullable=False, index=True),
    Column("actor", String(200), nullable=False),
    Column("at", UTCDateTime, nullable=False, index=True),
    Column("data", JSON, nullable=False, default=dict),
)

# A person's correction of a judgement; `monitor train` learns from these.
corrections = Table(
    "corrections",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("mention_id", Id, ForeignKey("mentions.id"), nullable=False, index=True),
    Column("field", String(30), nullable=False),  # sentiment | needs_reply | relevant
    Column("old_value", String(40), nullable=False),
    Column("new_value", String(40), nullable=False),
    Column("text", Text, nullable=False),
    Column("language", String(16), nullable=False, default=""),
    Column("actor", String(200), nullable=False),
    Column("at", UTCDateTime, nullable=False),
)

# When each watchlist first appeared in the config: what was published before that is
# backfill for it, never alerted one by one (no flood when a watchlist is added).
watchlists_seen = Table(
    "watchlists_seen",
    metadata,
    Column("name", String(100), primary_key=True),
    Column("first_seen_at", UTCDateTime, nullable=False),
)

# Small durable positions of the alert jobs: reply polling per source, the last event
# turned into message updates, conditions already reported (source dark, sink down), digest.
alert_cursors = Table(
    "alert_cursors",
    metadata,
    Column("name", String(200), primary_key=True),
    Column("value", JSON, nullable=False, default=dict),
    Column("updated_at", UTCDateTime, nullable=False),
)

heartbeat = Table(
    "heartbeat",
    metadata,
    Column("name", String(40), primary_key=True),
    Column("pid", Integer, nullable=False),
    Column("host", String(200), nullable=False),
    Column("version", String(40), nullable=False),
    Column("started_at", UTCDateTime, nullable=False),
    Column("beat_at", UTCDateTime, nullable=False),
    Column("summary", Text, nullable=False, default=""),
)
