"""Is a source dark? A blocked source must never look like "no mentions".

A source is *dark* when either

1. it keeps failing: ``FAILING_STREAK`` errors in a row, or no success for longer than
   max(``FAILING_FOR``, 2 × its interval) since its current error streak began — which also
   catches a source sitting out a long Retry-After; or
2. it answers but has gone quiet: no items for far longer than its usual rate. The usual
   gap between runs that had items is (last_item_at − created_at) / item_runs, all kept in
   ``source_state``. Silence is measured up to the last *successful* run, so a daemon that
   was stopped for a day does not make its sources look dark; with fewer than
   ``MIN_ITEM_RUNS`` runs of history we wait ``NEW_SOURCE_SILENCE``. A 304 counts as a run
   with items (``stats["unchanged_items"]``): the unchanged document still holds them.

The daemon's heartbeat calls ``update_dark``. ``dark_since`` is when the episode began —
the first error of the streak, or the last run that had items — so "no results since
dark_since" reads true; it stays put while the source is dark and is cleared, with
``dark_reason``, when it recovers. Alerting on it is the alert rules' business.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta

from monitor.durations import format_duration
from monitor.store import Store
from monitor.store import sources as source_store
from sources.base import Source

log = logging.getLogger(__name__)

FAILING_STREAK = 5
FAILING_FOR = timedelta(hours=1)
# If items arrived at random at the usual rate, ten usual gaps without one has a chance of
# about e^-10 (1 in 22,000): worth telling someone.
SILENCE_FACTOR = 10
MIN_SILENCE = timedelta(hours=6)
MIN_ITEM_RUNS = 5
NEW_SOURCE_SILENCE = timedelta(days=7)


def dark_condition(
    row: source_store.SourceHealth, interval: timedelta, now: datetime
) -> tuple[datetime, str] | None:
    """(since when, why) the source is dark, in words for the operator; None if it is not."""
    return _failing(row, interval, now) or _silent(row, interval)


def _failing(
    row: source_store.SourceHealth, interval: timedelta, now: datetime
) -> tuple[datetime, str] | None:
    if not row.error_streak:
        return None
    since = row.failing_since or row.last_success_at or row.created_at or now
    if row.error_streak < FAILING_STREAK and now - since < max(FAILING_FOR, 2 * interval):
        return None
    blocked = ""
    if row.retry_after_until and row.retry_after_until > now:
        blocked = f"; the server asked us to wait until {_at(row.retry_after_until)}"
    return since, (
        f"failing since {_at(since)} ({row.error_streak} errors in a row{blocked}): "
        f"{row.last_error or 'no error recorded'}"
    )


def _silent(row: source_store.SourceHealth, interval: timedelta) -> tuple[datetime, str] | None:
    if row.last_success_at is None or row.created_at is None:
        return None
    quiet_since = row.last_item_at or row.created_at
    quiet_for = row.last_success_at - quiet_since
    check = "check that its URL or query still works and that the site is not blocking us"
    if row.item_runs >= MIN_ITEM_RUNS and row.last_item_at is not None:
        usual = (row.last_item_at - row.created_at) / row.item_runs
        if quiet_for > max(SILENCE_FACTOR * usual, MIN_SILENCE, 3 * interval):
            return quiet_since, (
                f"no items since {_at(quiet_since)} although it usually has some every "
                f"{format_duration(max(usual, interval))} — {check}"
            )
        return None
    if quiet_for > max(NEW_SOURCE_SILENCE, 3 * interval):
        what = "no items since" if row.last_item_at else "not one item since it was added on"
        return quiet_since, f"{what} {_at(quiet_since)} — {check}"
    return None


def _at(when: datetime) -> str:
    return when.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


async def update_dark(
    store: Store, sources: Mapping[str, Source], now: datetime | None = None
) -> list[str]:
    """Bring ``dark_since``/``dark_reason`` up to date for every source; return what changed.

    Sources no longer configured (removed or disabled) cannot be dark.
    """
    now = now or datetime.now(UTC)
    changes = []
    async with store.begin() as connection:
        for row in await source_store.health(connection, now, count_items=False):
            source = sources.get(row.source)
            found = dark_condition(row, source.interval, now) if source else None
            reason = found[1] if found else None
            if reason == row.dark_reason and (reason is None) == (row.dark_since is None):
                continue
            since = (row.dark_since or found[0]) if found else None
            await source_store.set_dark(connection, row.source, since, reason)
            if reason and row.dark_since is None:
                changes.append(f"{row.source}: source dark — {reason}")
            elif reason is None:
                changes.append(f"{row.source}: no longer dark")
    for change in changes:
        (log.warning if "source dark" in change else log.info)("%s", change)
    return changes
