"""The overlapping search cursor and rate-limit header parsing shared by the search adapters."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sources.incremental import RateLimit, SeenWindow, parse_time


def test_the_window_overlaps_forgets_old_ids_and_survives_a_round_trip() -> None:
    window = SeenWindow.load(None, timedelta(minutes=10))
    assert window.first_run and window.since() is None and window.dump() == {}
    t0 = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
    window.add("old", t0 - timedelta(hours=1))
    window.add("a", t0)
    window.add("b", t0 - timedelta(minutes=5))
    assert window.since() == t0 - timedelta(minutes=10)

    again = SeenWindow.load(window.dump(), timedelta(minutes=10))
    assert again.newest == t0
    assert not again.is_new("a") and not again.is_new("b")
    assert again.is_new("old")  # outside the window: forgotten, and never asked for again


def test_a_future_timestamp_cannot_push_the_cursor_ahead() -> None:
    window = SeenWindow(timedelta(minutes=10))
    before = datetime.now(UTC)
    window.add("from-the-future", before + timedelta(days=365))
    assert window.newest is not None and window.newest <= datetime.now(UTC)


def test_unreadable_cursor_fragments_start_afresh() -> None:
    for junk in ("x", 3, {"newest": "yesterday", "seen": ["a"]}):
        window = SeenWindow.load(junk, timedelta(minutes=1))
        assert window.newest is None and window.seen == {}


def test_rate_limit_headers_in_every_spelling() -> None:
    now = datetime(2026, 1, 1, tzinfo=UTC)
    github = RateLimit.from_headers(
        {
            "X-RateLimit-Limit": "30",
            "X-RateLimit-Remaining": "0",
            "X-RateLimit-Reset": "1767225660",
        },
        now,
    )
    assert (github.limit, github.remaining) == (30, 0)
    assert github.wait(needed=1, now=now) == timedelta(seconds=60)
    draft = RateLimit.from_headers({"RateLimit-Remaining": "5", "RateLimit-Reset": "30"}, now)
    assert draft.reset_at == now + timedelta(seconds=30)
    assert draft.wait(needed=5, now=now) is None and draft.wait(needed=6, now=now) is not None
    assert RateLimit.from_headers({}, now).wait(needed=100) is None
    assert github.wait(needed=1, now=now + timedelta(minutes=2)) is None  # already reset


def test_times_parse_to_aware_utc() -> None:
    assert parse_time("2026-07-04T14:38:02+02:00") == datetime(2026, 7, 4, 12, 38, 2, tzinfo=UTC)
    assert parse_time("2026-07-04T14:38:06.240Z") == datetime(
        2026, 7, 4, 14, 38, 6, 240000, tzinfo=UTC
    )
    assert parse_time("not a time") is None and parse_time(None) is None
