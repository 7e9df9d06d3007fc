"""Helpers for incremental search APIs: an overlapping cursor and rate-limit headers.

Search indexes lag: a post created at 10:00 may only become searchable at 10:03, after a
poll that already moved the cursor past 10:02. So each poll asks again from a little
before the newest item seen (``overlap``) and drops the ids it returned before. The cursor
keeps only the ids inside that window, so it stays small.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

# More ids than this in one window means the overlap is far too wide for the traffic.
MAX_REMEMBERED_IDS = 2000
# Times outside this range are not when anything was posted. They are refused rather than
# stored, so they can neither move a cursor nor overflow the arithmetic done with one
# (``newest - overlap``, a day's worth of polls); the upper end is far from datetime's
# year-9999 limit for that reason. A time that is merely in the future is accepted: the
# cursors clamp it to the clock.
EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
LATEST = datetime(9000, 1, 1, tzinfo=UTC)


def parse_time(value: Any) -> datetime | None:
    """An ISO 8601 timestamp (``Z`` or offset; naive means UTC) → aware UTC, else None
    (also for a time outside EARLIEST..LATEST)."""
    if not isinstance(value, str) or not value or len(value) > 64:
        return None
    text = value.strip().replace("Z", "+00:00").replace("z", "+00:00")
    try:
        parsed = datetime.fromisoformat(text)
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=UTC)
        # Converting year 9999 at -01:00 to UTC leaves datetime's range.
        parsed = parsed.astimezone(UTC)
    except (ValueError, OverflowError):
        return None
    return parsed if EARLIEST <= parsed <= LATEST else None


def from_epoch(value: Any) -> datetime | None:
    """Epoch seconds (an int or a float, not a bool) → aware UTC, else None: NaN, ±inf,
    10**40 and anything outside EARLIEST..LATEST are refused before datetime sees them
    (it would raise OverflowError, ValueError or OSError, depending on the platform)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    # Compared before any conversion (float(10**400) itself overflows); NaN and ±inf fail it.
    if not EARLIEST.timestamp() <= value <= LATEST.timestamp():
        return None
    return datetime.fromtimestamp(value, UTC)


def iso(when: datetime) -> str:
    """UTC, second precision, ``Z`` suffix: what GitHub, YouTube and Bluesky all accept."""
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(slots=True)
class SeenWindow:
    """The newest time seen plus the ids seen within ``overlap`` of it."""

    overlap: timedelta
    newest: datetime | None = None
    seen: dict[str, str] = field(default_factory=dict)

    @classmethod
    def load(cls, data: Any, overlap: timedelta) -> SeenWindow:
        """Rebuild from a stored cursor fragment; anything unreadable starts afresh."""
        if not isinstance(data, Mapping):
            return cls(overlap)
        seen = data.get("seen")
        return cls(
            overlap,
            parse_time(data.get("newest")),
            {str(k): str(v) for k, v in seen.items()} if isinstance(seen, Mapping) else {},
        )

    @property
    def first_run(self) -> bool:
        return self.newest is None

    def since(self) -> datetime | None:
        """Where the next query starts (inclusive), or None on the very first poll."""
        return None if self.newest is None else self.newest - self.overlap

    def is_new(self, key: str) -> bool:
        return key not in self.seen

    def add(self, key: str, when: datetime | None) -> None:
        now = datetime.now(UTC)
        # A timestamp from the future (a wrong client clock) must not push the cursor ahead.
        when = min(when or self.newest or now, now)
        self.seen[key] = iso(when)
        if self.newest is None or when > self.newest:
            self.newest = when

    def dump(self) -> dict[str, Any]:
        """JSON for the cursor: ids older than the window are forgotten."""
        if self.newest is None:
            return {}
        floor = self.newest - self.overlap
        kept = sorted(
            (
                (key, when)
                for key, when in self.seen.items()
                if (parse_time(when) or floor) >= floor
            ),
            key=lambda item: item[1],
            reverse=True,
        )[:MAX_REMEMBERED_IDS]
        return {"newest": iso(self.newest), "seen": dict(kept)}


@dataclass(slots=True)
class RateLimit:
    """What ``X-RateLimit-*`` / ``RateLimit-*`` headers say about the remaining budget."""

    limit: int | None = None
    remaining: int | None = None
    reset_at: datetime | None = None

    @classmethod
    def from_headers(cls, headers: Mapping[str, str], now: datetime | None = None) -> RateLimit:
        lowered = {key.lower(): value for key, value in headers.items()}

        def number(name: str) -> int | None:
            for prefix in ("x-ratelimit-", "ratelimit-"):
                raw = lowered.get(prefix + name, "").split(",")[0].strip()
                if raw:
                    try:
                        return int(float(raw))
                    except ValueError:
                        return None
            return None

        reset = number("reset")
        reset_at = None
        if reset is not None:
            now = now or datetime.now(UTC)
            # Epoch seconds (GitHub, Bluesky) or, per the IETF draft, seconds from now.
            reset_at = (
                datetime.fromtimestamp(reset, UTC)
                if reset > 1_000_000_000
                else now + timedelta(seconds=reset)
            )
        return cls(number("limit"), number("remaining"), reset_at)

    def wait(self, needed: int, now: datetime | None = None) -> timedelta | None:
        """How long to wait for the reset when fewer than ``needed`` calls remain."""
        if self.remaining is None or self.remaining >= needed or self.reset_at is None:
            return None
        left = self.reset_at - (now or datetime.now(UTC))
        return left if left > timedelta(0) else None

    def stats(self) -> dict[str, Any]:
        found: dict[str, Any] = {}
        if self.remaining is not None:
            found["rate_limit_remaining"] = self.remaining
        if self.limit is not None:
            found["rate_limit"] = self.limit
        if self.reset_at is not None:
            found["rate_limit_reset_at"] = iso(self.reset_at)
        return found
