"""Which stored mentions become alerts, to which sinks and people, with which reasons.

``decide_new_mention`` is the pure per-mention rule (also used by `monitor backtest`):
brand watchlists alert at once on a negative mention or a non-positive one that needs a
reply; positive (the digest says "thank them"), neutral and competitor mentions wait for
the digest. Quiet hours delay an
alert per sink unless the watchlist is critical. ``alerts.grouping`` then applies the
rules that need the database (storm, thread cooldown, batching) in the same transaction
that stores the mention, so a crash can never store a mention and forget its alert.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from monitor.durations import format_duration
from monitor.store.outbox import OutboxItem

if TYPE_CHECKING:
    from monitor.config import AlertsBase, Config, QuietHoursConfig, WatchlistConfig


@dataclass(slots=True)
class RuleContext:
    config: Config
    sinks: list[str]  # enabled sink kinds
    now: datetime


def mention_reasons(mention: dict[str, Any]) -> list[str]:
    """Why a mention deserves a person's attention now; empty when it does not."""
    reasons = []
    if mention["sentiment"] == "negative":
        reasons.append(f"negative {mention['sentiment_score']:.2f}")
    # Praise that mentions support or says "thank you" is a thank-you for the digest,
    # not an alarm, even when it reads like a request.
    if mention["needs_reply"] and mention["sentiment"] != "positive":
        reasons.append("needs reply")
    return reasons


def primary_watchlist(watchlists: list[WatchlistConfig]) -> WatchlistConfig | None:
    """The brand watchlist that owns a mention: a critical one first, else the first."""
    brand_lists = [w for w in watchlists if w.kind == "brand"]
    if not brand_lists:
        return None
    return next((w for w in brand_lists if w.critical), brand_lists[0])


def needs_attention(mention: dict[str, Any], watchlists: list[WatchlistConfig]) -> bool:
    """Alert-worthy: a live (not backfill) brand mention that is negative or needs a reply."""
    return (
        not mention["backfill"]
        and primary_watchlist(watchlists) is not None
        and bool(mention_reasons(mention))
    )


def notify_people(watchlist: WatchlistConfig, *, backup: bool = False) -> list[str]:
    """Person keys told about an alert of this watchlist: owner (and backup), then `people`."""
    keys = [watchlist.owner, watchlist.backup if backup else None, *watchlist.people]
    return list(dict.fromkeys(k for k in keys if k))


def decide_new_mention(
    mention: dict[str, Any], watchlists: list[WatchlistConfig], ctx: RuleContext
) -> list[OutboxItem]:
    """Alerts for a mention stored for the first time (one alert per sink, whatever the
    number of watchlists it matched)."""
    if not needs_attention(mention, watchlists):
        return []
    primary = primary_watchlist(watchlists)
    assert primary is not None
    reasons = mention_reasons(mention)
    if mention["tagged"]:
        reasons.append("tags the brand")
    payload = {
        "title": _title(mention, primary),
        "reasons": reasons,
        "watchlists": [w.name for w in watchlists],
        "watchlist": primary.name,
        "people": notify_people(primary),
        "owner": primary.owner,
        "backup": primary.backup,
        "critical": primary.critical,
        "reply_within": format_duration(primary.sla),
    }
    return [
        OutboxItem(
            dedup_key=f"mention:{mention['id']}:{sink}",
            kind="mention",
            sink=sink,
            payload=payload,
            mention_id=mention["id"],
            target=primary.route.get(sink, ""),
            not_before=quiet_until(ctx.config.alerts, sink, ctx.now, critical=primary.critical),
        )
        for sink in ctx.sinks
    ]


def _title(mention: dict[str, Any], watchlist: WatchlistConfig) -> str:
    mood = "Negative mention" if mention["sentiment"] == "negative" else "Mention needing a reply"
    return f"{mood} on {mention['platform']} ({watchlist.name})"


# ------------------------------------------------------------------------- quiet hours


def quiet_until(alerts: AlertsBase, sink: str, now: datetime, *, critical: bool) -> datetime | None:
    """When a non-critical alert for ``sink`` may go out, if ``now`` is in its quiet hours."""
    quiet = alerts.quiet_hours_for(sink)
    if not quiet.enabled or (critical and quiet.critical_override):
        return None
    return quiet_hours_end(quiet, alerts.digest.timezone, now)


def quiet_hours_end(quiet: QuietHoursConfig, timezone: str, now: datetime) -> datetime | None:
    """The end of the quiet period ``now`` falls in, or None outside quiet hours.

    Quiet hours may wrap midnight (22:00–07:00); equal start and end mean none."""
    zone = ZoneInfo(timezone)
    local = now.astimezone(zone)
    start, end, clock = quiet.start, quiet.end, local.time().replace(tzinfo=None)
    if start == end:
        return None
    if start < end:
        inside = start <= clock < end
        end_day = local.date()
    else:
        inside = clock >= start or clock < end
        end_day = local.date() if clock < end else local.date() + timedelta(days=1)
    if not inside:
        return None
    wall = datetime.combine(end_day, end).replace(tzinfo=zone)
    return wall.astimezone(UTC)
