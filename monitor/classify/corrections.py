"""People correcting a judgement: stored, logged, applied, and later learnt from.

``record_correction`` is the one entry point (CLI `monitor correct`, Slack's "Wrong
sentiment" button): it appends a row to ``corrections`` and an event with who and when,
and updates the mention. Nothing is overwritten without a trace.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from monitor.classify.base import LABELS
from monitor.store import events
from monitor.store.tables import corrections, mentions

FIELDS = ("sentiment", "needs_reply")
_TRUE = ("true", "yes", "1")
_FALSE = ("false", "no", "0")


class CorrectionError(ValueError):
    pass


@dataclass(frozen=True, slots=True)
class Example:
    text: str
    language: str
    label: str


def _normalise(field: str, value: Any) -> tuple[str, Any]:
    """(value as stored in corrections, value for the mentions column)."""
    if field == "sentiment":
        label = str(value).strip().lower()
        if label not in LABELS:
            raise CorrectionError(f"sentiment must be one of {', '.join(LABELS)}, not {value!r}")
        return label, label
    if field == "needs_reply":
        if isinstance(value, bool):
            return ("true" if value else "false"), value
        text = str(value).strip().lower()
        if text in _TRUE:
            return "true", True
        if text in _FALSE:
            return "false", False
        raise CorrectionError(f"needs_reply must be true or false, not {value!r}")
    raise CorrectionError(f"cannot correct {field!r}; correctable: {', '.join(FIELDS)}")


async def record_correction(
    connection: AsyncConnection,
    mention_id: int,
    field: str,
    new_value: Any,
    actor: str,
    now: datetime,
) -> dict[str, Any]:
    """Correct one field of a mention; returns ``{"field", "from", "to"}``.

    Raises ``CorrectionError`` for an unknown mention, field or value.
    """
    stored, column_value = _normalise(field, new_value)
    row = (await connection.execute(select(mentions).where(mentions.c.id == mention_id))).first()
    if row is None:
        raise CorrectionError(f"no mention with id {mention_id}")
    old = getattr(row, field)
    old_stored = ("true" if old else "false") if field == "needs_reply" else str(old)
    text = "\n".join(part for part in (row.title, row.text) if part)
    await connection.execute(
        insert(corrections).values(
            mention_id=mention_id,
            field=field,
            old_value=old_stored,
            new_value=stored,
            text=text,
            language=row.language or "",
            actor=actor,
            at=now,
        )
    )
    values: dict[str, Any] = {field: column_value}
    if field == "sentiment":
        scores = dict.fromkeys(LABELS, 0.0)
        scores[stored] = 1.0
        values |= {
            "sentiment_score": 1.0,
            "sentiment_scores": scores,
            "sentiment_backend": f"corrected:{actor}"[:80],
        }
    await connection.execute(update(mentions).where(mentions.c.id == mention_id).values(**values))
    data = {"field": field, "from": old_stored, "to": stored}
    await events.record(connection, "corrected", actor, mention_id=mention_id, data=data, at=now)
    return data


async def sentiment_examples(connection: AsyncConnection) -> list[Example]:
    """The latest sentiment correction of every mention, oldest first."""
    latest = (
        select(func.max(corrections.c.id))
        .where(corrections.c.field == "sentiment")
        .group_by(corrections.c.mention_id)
    )
    rows = await connection.execute(
        select(corrections.c.text, corrections.c.language, corrections.c.new_value)
        .where(corrections.c.id.in_(latest))
        .order_by(corrections.c.id)
    )
    return [Example(row.text, row.language, row.new_value) for row in rows]
