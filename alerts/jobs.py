"""The periodic alert checks the daemon runs every ``alerts.check_every``.

Each check runs in its own transaction, so one failing (say, a bug in the digest)
never holds back escalations; every check is idempotent through the outbox's
dedup keys and the cursors in ``alert_cursors``.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Iterable
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from sqlalchemy.ext.asyncio import AsyncConnection

from alerts.conditions import enqueue_source_conditions
from alerts.digest import enqueue_digest
from alerts.escalation import enqueue_escalations, enqueue_message_updates

if TYPE_CHECKING:
    from monitor.config import Config
    from monitor.store import Store

log = logging.getLogger(__name__)


async def run_checks(
    store: Store,
    config: Config,
    sinks: list[str],
    sources: Iterable[str],
    now: datetime | None = None,
) -> dict[str, int]:
    """Enqueue whatever is due: message updates, escalations, source notices, the digest."""
    now = now or datetime.now(UTC)
    names = list(sources)
    checks: dict[str, Callable[[AsyncConnection], Awaitable[int]]] = {
        "updates": lambda c: enqueue_message_updates(c, now),
        "escalations": lambda c: enqueue_escalations(c, config, sinks, now),
        "sources": lambda c: enqueue_source_conditions(c, config, sinks, names, now),
        "digest": lambda c: enqueue_digest(c, config, sinks, now),
    }
    done: dict[str, int] = {}
    for name, check in checks.items():
        try:
            async with store.begin() as connection:
                done[name] = await check(connection)
        except Exception:
            log.exception("alerts: the %s check failed; it runs again on schedule", name)
    return done
