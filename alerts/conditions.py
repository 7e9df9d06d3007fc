"""Source conditions worth a person's attention: a source gone dark or working degraded.

The sources set ``source_state.dark_since`` (no results for too long, with the last
error and its hint) and ``degraded`` (working in a reduced mode). Each episode is
alerted once, and a "recovered" note follows in its thread when it clears. What was
already reported is remembered in ``alert_cursors`` so a restart repeats nothing.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from alerts.rules import quiet_until
from monitor.store import alert_state, outbox
from monitor.store.outbox import OutboxItem
from monitor.store.tables import source_state

if TYPE_CHECKING:
    from monitor.config import Config


async def enqueue_source_conditions(
    connection: AsyncConnection,
    config: Config,
    sinks: list[str],
    sources: Iterable[str],
    now: datetime,
) -> int:
    names = list(sources)
    if not names:
        return 0
    rows = await connection.execute(select(source_state).where(source_state.c.source.in_(names)))
    items: list[OutboxItem] = []
    for row in rows:
        name = f"source:{row.source}"
        seen = await alert_state.get_cursor(connection, name) or {}
        state = dict(seen)
        items += _dark(row, state, sinks, config, now)
        items += _degraded(row, state, sinks, config, now)
        if state != seen:
            await alert_state.set_cursor(connection, name, state, now)
    return len(await outbox.enqueue(connection, items, now))


def _notice(
    key: str,
    kind: str,
    sink: str,
    payload: dict[str, Any],
    config: Config,
    now: datetime,
    thread_of_key: str | None = None,
) -> OutboxItem:
    return OutboxItem(
        dedup_key=f"{key}:{sink}",
        kind=kind,
        sink=sink,
        payload=payload,
        thread_of_key=f"{thread_of_key}:{sink}" if thread_of_key else None,
        not_before=quiet_until(config.alerts, sink, now, critical=False),
    )


def _dark(
    row: Any, state: dict[str, Any], sinks: list[str], config: Config, now: datetime
) -> list[OutboxItem]:
    reported = state.get("dark_since")
    if row.dark_since is not None:
        since = row.dark_since.astimezone(UTC)
        if reported == since.isoformat():
            return []
        state["dark_since"] = since.isoformat()
        key = f"source_dark:{row.source}:{since:%Y%m%dT%H%M%S}"
        state["dark_key"] = key
        reasons = [f"no results since {since:%Y-%m-%d %H:%M} UTC"]
        if row.last_error:
            reasons.append(str(row.last_error))
        payload = {
            "title": f"Source {row.source} has gone dark",
            "reasons": reasons,
            "source": row.source,
        }
        return [_notice(key, "source_dark", sink, payload, config, now) for sink in sinks]
    if reported:
        key = state.pop("dark_key", "")
        state["dark_since"] = None
        payload = {
            "title": f"Source {row.source} has recovered",
            "reasons": [],
            "source": row.source,
        }
        return [
            _notice(f"{key}:recovered", "source_recovered", sink, payload, config, now, key)
            for sink in sinks
        ]
    return []


def _degraded(
    row: Any, state: dict[str, Any], sinks: list[str], config: Config, now: datetime
) -> list[OutboxItem]:
    reported = state.get("degraded")
    if row.degraded and row.degraded != reported:
        state["degraded"] = row.degraded
        key = f"source_degraded:{row.source}:{now:%Y%m%dT%H%M%S}"
        state["degraded_key"] = key
        payload = {
            "title": f"Source {row.source} works in a reduced mode",
            "reasons": [str(row.degraded)],
            "source": row.source,
        }
        return [_notice(key, "source_dark", sink, payload, config, now) for sink in sinks]
    if not row.degraded and reported:
        key = state.pop("degraded_key", "")
        state["degraded"] = None
        payload = {
            "title": f"Source {row.source} works fully again",
            "reasons": [],
            "source": row.source,
        }
        return [
            _notice(f"{key}:recovered", "source_recovered", sink, payload, config, now, key)
            for sink in sinks
        ]
    return []
