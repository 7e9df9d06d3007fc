"""`monitor healthcheck` (for Docker/systemd) and `monitor sources` (health table)."""

from __future__ import annotations

import argparse
import sys
import textwrap
from datetime import UTC, datetime, timedelta
from typing import Any

from monitor.cli.common import Command, load, run_async, to_json, with_store
from monitor.config import Config
from monitor.durations import format_duration
from monitor.replies import reply_health
from monitor.store import Store
from monitor.store import heartbeat as heartbeat_store
from monitor.store import sources as source_store
from sources import SOURCES
from sources.base import Source, SourceConfig, SourceContext, share_budgets
from sources.http import HttpClient


def _no_arguments(parser: argparse.ArgumentParser) -> None:
    return None


def _healthcheck(args: argparse.Namespace) -> int:
    config = load(args)

    async def action(store: Store) -> dict[str, Any] | None:
        async with store.read() as connection:
            return await heartbeat_store.read(connection)

    beat = run_async(with_store(config, action))
    if beat is None:
        print("unhealthy: no heartbeat yet — is `monitor run` running against this database?")
        return 1
    age = datetime.now(UTC) - beat["beat_at"]
    if age > config.daemon.stale_after:
        print(
            f"unhealthy: last heartbeat {format_duration(age)} ago (pid {beat['pid']} on {beat['host']})"
        )
        return 1
    print(f"healthy: heartbeat {format_duration(age)} ago; {beat['summary']}")
    return 0


def _ago(when: datetime | None, now: datetime) -> str:
    if when is None:
        return "never"
    delta = now - when
    return (
        f"{format_duration(delta)} ago"
        if delta.total_seconds() >= 0
        else f"in {format_duration(-delta)}"
    )


def _sources_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="JSON Lines, one object per source")


# Columns of `monitor sources`; a longer note or counter line wraps, it is never cut.
_WIDTH = 100
_NOTE_CHARS = 90
_INDENT = " " * 19


def _sources(args: argparse.Namespace) -> int:
    config = load(args)
    now = datetime.now(UTC)

    async def action(
        store: Store,
    ) -> tuple[list[source_store.SourceHealth], dict[str, dict[str, Any]]]:
        async with store.read() as connection:
            rows = await source_store.health(connection, now)
            replies = {s.name: await reply_health(connection, s.name) for s in config.sources}
            return rows, replies

    health, replies = run_async(with_store(config, action))
    rows = {row.source: row for row in health}
    adapters = _adapters(config)
    out = sys.stdout
    if not args.json:
        out.write(
            f"{'SOURCE':<18} {'TYPE':<13} {'STATUS':<8} {'LAST OK':<10} {'24H':>5} {'ERR':>4}  "
            f"{'NEXT':<10} {'EVERY':<8} LAST ERROR / NOTE\n"
        )
    for section in config.sources:
        row = rows.get(section.name)
        adapter = adapters.get(section.name)
        status = _status(section.enabled, row)
        interval = adapter.interval if adapter else section.every
        streaming = bool(adapter and adapter.streaming)
        limits = _limits(adapter)
        # Limits are a line of their own; older rows may still carry a copy in stats.
        stats = {k: v for k, v in (row.stats if row else {}).items() if k != "limits"}
        reply = replies.get(section.name, {})
        if args.json:
            out.write(
                to_json(_as_json(section, status, row, interval, limits, streaming, reply)) + "\n"
            )
            continue
        note = " ".join(_note(row).split())
        out.write(
            f"{section.name[:18]:<18} {section.type[:13]:<13} {status:<8} "
            f"{_ago(row.last_success_at, now) if row else 'never':<10} "
            f"{row.items_24h if row else 0:>5} {row.error_streak if row else 0:>4}  "
            f"{_next(row, now, streaming):<10} "
            f"{'stream' if streaming else format_duration(interval):<8} "
            f"{note if len(note) <= _NOTE_CHARS else ''}\n"
        )
        # A long note (a hint naming the config keys to fix) gets lines of its own.
        lines = [("note", note)] if len(note) > _NOTE_CHARS else []
        # Limits as data, and what the last run reported (quota left, posts/min, ...).
        lines += [("limits", _compact(limits)), ("now", _compact(stats))]
        lines.append(("replies", reply.get("replies_error", "")))
        for label, text in lines:
            if text:
                out.write(_wrapped(f"{label}: {text}"))
    return 0


def _next(row: source_store.SourceHealth | None, now: datetime, streaming: bool) -> str:
    """When the source runs next; a stream is always on, or reconnecting after a failure."""
    if row is None:
        return "-"
    if streaming:
        return "reconnect" if row.error_streak else "live"
    return _ago(row.next_check_at, now)


def _wrapped(text: str) -> str:
    return "".join(
        f"{line}\n"
        for line in textwrap.wrap(
            text,
            _WIDTH,
            initial_indent=_INDENT,
            subsequent_indent=_INDENT + "  ",
            break_long_words=False,
            break_on_hyphens=False,
        )
    )


def _adapters(config: Config) -> dict[str, Source]:
    """The configured adapters, built offline, for their limits() and real interval."""
    context = SourceContext(
        http=HttpClient(config.http), watchlists=config.watchlists, brand=config.brand
    )
    built = {}
    for section in config.sources:
        try:
            built[section.name] = SOURCES[section.type](section.name, section, context)
        except Exception:  # an adapter that cannot even be built still gets its row
            continue
    # As the daemon plans them: sources that spend one budget split it.
    share_budgets(source for source in built.values() if source.config.enabled)
    return built


def _limits(adapter: Source | None) -> dict[str, Any]:
    if adapter is None:
        return {}
    try:
        return dict(adapter.limits())
    except Exception as exc:
        return {"limits_error": str(exc)[:60]}


def _note(row: source_store.SourceHealth | None) -> str:
    if row is None:
        return ""
    if row.dark_since:
        return row.dark_reason or "dark"
    if row.error_streak:
        return row.last_error or ""
    return row.degraded or row.warning or ""


def _compact(values: dict[str, Any]) -> str:
    """``{"every_s": 900.0, "quota_left": 812}`` → ``every=15m quota_left=812``: one short
    line for whatever an adapter reports; keys ending in _s are seconds."""
    parts = []
    for key, value in values.items():
        if key.endswith("_s") and isinstance(value, int | float) and not isinstance(value, bool):
            key, value = key[:-2], format_duration(timedelta(seconds=value))
        elif isinstance(value, float):
            value = f"{value:g}"
        elif isinstance(value, dict | list):
            value = to_json(value)
        parts.append(f"{key}={value}")
    return " ".join(parts)


def _as_json(
    section: SourceConfig,
    status: str,
    row: source_store.SourceHealth | None,
    interval: timedelta,
    limits: dict[str, Any],
    streaming: bool,
    replies: dict[str, Any],
) -> dict[str, Any]:
    return {
        "source": section.name,
        "type": section.type,
        "enabled": section.enabled,
        "status": status,
        "streaming": streaming,
        # A stream has no poll interval.
        "interval_s": None if streaming else interval.total_seconds(),
        "last_success_at": row.last_success_at if row else None,
        "last_attempt_at": row.last_attempt_at if row else None,
        "last_item_at": row.last_item_at if row else None,
        "items_24h": row.items_24h if row else 0,
        "error_streak": row.error_streak if row else 0,
        "failing_since": row.failing_since if row else None,
        "next_check_at": row.next_check_at if row else None,
        "retry_after_until": row.retry_after_until if row else None,
        "last_error": row.last_error if row else None,
        "warning": row.warning if row else None,
        "degraded": row.degraded if row else None,
        "dark_since": row.dark_since if row else None,
        "dark_reason": row.dark_reason if row else None,
        "limits": limits,
        "stats": {k: v for k, v in (row.stats if row else {}).items() if k != "limits"},
        "replies_checked_at": replies.get("replies_checked_at"),
        "replies_error": replies.get("replies_error"),
    }


def _status(enabled: bool, row: source_store.SourceHealth | None) -> str:
    if not enabled:
        return "disabled"
    if row is None or row.last_attempt_at is None:
        return "new"
    if row.dark_since:
        return "DARK"
    if row.error_streak:
        return "failing"
    if row.degraded:
        return "degraded"
    return "ok"


COMMANDS = {
    "healthcheck": Command(
        "exit 0 if the daemon's heartbeat is fresh, 1 if stale (for Docker)",
        _no_arguments,
        _healthcheck,
    ),
    "sources": Command(
        "show each source's health: status (ok/degraded/failing/DARK), last success, "
        "items in 24 h, error streak, next check, limits and the last error",
        _sources_arguments,
        _sources,
    ),
}
