"""Per-source health: the dark condition, its life cycle in the store, and `monitor sources`."""

from __future__ import annotations

import asyncio
import dataclasses
import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import insert

from monitor.cli import main
from monitor.daemon import Daemon, _clip
from monitor.health import dark_condition, update_dark
from monitor.store import Store, alert_state
from monitor.store import sources as source_store
from monitor.store.tables import mentions, sightings
from sources.base import FetchResult
from tests.conftest import base_config_dict, deep_merge
from tests.helpers.feeds import health_of
from tests.helpers.process import write_config
from tests.helpers.servers import LocalServer, rss

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


def dark_reason(row: source_store.SourceHealth, interval: timedelta, now: datetime) -> str | None:
    found = dark_condition(row, interval, now)
    return found[1] if found else None


QUARTER = timedelta(minutes=15)
MENTION_ITEM = {"id": "1", "title": "Acme Cloud", "link": "https://x.test/1", "text": "acme cloud"}


def row(**changes: Any) -> source_store.SourceHealth:
    """A source polled every 15 minutes for 10 days, with items on every run."""
    healthy = source_store.SourceHealth(
        source="feed",
        kind="rss",
        last_success_at=NOW - timedelta(minutes=5),
        last_attempt_at=NOW - timedelta(minutes=5),
        items_24h=12,
        error_streak=0,
        next_check_at=NOW + timedelta(minutes=10),
        last_error=None,
        warning=None,
        degraded=None,
        dark_since=None,
        retry_after_until=None,
        stats={},
        last_item_at=NOW - timedelta(minutes=5),
        item_runs=960,
        runs=960,
        created_at=NOW - timedelta(days=10),
    )
    return dataclasses.replace(healthy, **changes)


# ------------------------------------------------------------------- the rules


def test_a_healthy_source_is_not_dark() -> None:
    assert dark_reason(row(), QUARTER, NOW) is None


def test_four_errors_within_the_hour_are_not_yet_dark() -> None:
    failing = row(error_streak=4, failing_since=NOW - timedelta(minutes=50), last_error="e")
    assert dark_reason(failing, QUARTER, NOW) is None


def test_five_errors_in_a_row_are_dark() -> None:
    since = NOW - timedelta(minutes=20)
    failing = row(error_streak=5, failing_since=since, last_error="feed: not found (HTTP 404)")
    assert dark_reason(failing, QUARTER, NOW) == (
        "failing since 2026-11-23 11:40 UTC (5 errors in a row): feed: not found (HTTP 404)"
    )


def test_failing_for_over_an_hour_is_dark_even_with_one_error() -> None:
    """A 429 with a long Retry-After: one error, then a long wait — the source is blocked."""
    blocked = row(
        error_streak=1,
        failing_since=NOW - timedelta(minutes=61),
        retry_after_until=NOW + timedelta(hours=5),
        last_error="feed: rate limited (HTTP 429)",
    )
    reason = dark_reason(blocked, QUARTER, NOW)
    assert reason is not None and reason.startswith("failing since 2026-11-23 10:59 UTC")
    assert "the server asked us to wait until 2026-11-23 17:00 UTC" in reason


def test_a_slow_source_gets_two_intervals_before_failing_counts() -> None:
    six_hours = timedelta(hours=6)
    failing = row(error_streak=1, failing_since=NOW - timedelta(hours=5), last_error="e")
    assert dark_reason(failing, six_hours, NOW) is None
    failing = row(error_streak=1, failing_since=NOW - timedelta(hours=13), last_error="e")
    assert dark_reason(failing, six_hours, NOW) is not None


def test_silence_far_beyond_the_usual_rate_is_dark() -> None:
    quiet = row(last_item_at=NOW - timedelta(hours=7))  # usually items every 15 minutes
    assert dark_reason(quiet, QUARTER, NOW) == (
        "no items since 2026-11-23 05:00 UTC although it usually has some every 15m — check "
        "that its URL or query still works and that the site is not blocking us"
    )
    assert dark_reason(row(last_item_at=NOW - timedelta(hours=5)), QUARTER, NOW) is None
    found = dark_condition(quiet, QUARTER, NOW)
    assert found is not None and found[0] == NOW - timedelta(hours=7)  # dark since the last item


def test_silence_is_judged_against_the_source_own_rate() -> None:
    """Items on about 1 run in 8 (every ~2 hours): 10 usual gaps is about 18 hours."""
    sparse = row(item_runs=120, last_item_at=NOW - timedelta(hours=17))
    assert dark_reason(sparse, QUARTER, NOW) is None
    sparse = row(item_runs=120, last_item_at=NOW - timedelta(hours=21))
    assert dark_reason(sparse, QUARTER, NOW) is not None


def test_a_stopped_daemon_does_not_make_sources_dark() -> None:
    """Silence counts up to the last successful run, not up to now."""
    after_a_week_off = row(
        last_success_at=NOW - timedelta(days=7), last_item_at=NOW - timedelta(days=7)
    )
    assert dark_reason(after_a_week_off, QUARTER, NOW) is None


def test_a_source_that_never_returned_anything_is_dark_after_a_week() -> None:
    never = row(item_runs=0, last_item_at=None, created_at=NOW - timedelta(days=8))
    reason = dark_reason(never, QUARTER, NOW)
    assert reason is not None and reason.startswith("not one item since it was added on")
    young = row(item_runs=0, last_item_at=None, created_at=NOW - timedelta(days=6))
    assert dark_reason(young, QUARTER, NOW) is None


def test_a_source_that_never_succeeded_is_judged_by_its_errors_only() -> None:
    new = row(last_success_at=None, last_item_at=None, item_runs=0, error_streak=0)
    assert dark_reason(new, QUARTER, NOW) is None


# ---------------------------------------------------------- store and life cycle


class _Stub:
    """What update_dark needs from a Source: its interval."""

    interval = QUARTER


async def test_dark_is_set_kept_and_cleared_in_source_state(database_url: str) -> None:
    store = await Store.open(database_url)
    sources: Any = {"feed": _Stub()}
    start = NOW - timedelta(hours=3)
    try:
        async with store.begin() as connection:
            await source_store.ensure(connection, "feed", "rss", start)
            for minutes in range(0, 60, 15):  # items for an hour
                await source_store.record_success(
                    connection,
                    "feed",
                    FetchResult([object()]),  # type: ignore[list-item]
                    now=start + timedelta(minutes=minutes),
                    next_check_at=NOW,
                )
            for attempt in range(5):  # then five failures
                await source_store.record_failure(
                    connection,
                    "feed",
                    "feed: server error (HTTP 503) — will retry",
                    now=start + timedelta(hours=2, minutes=attempt),
                    next_check_at=NOW,
                    retry_after_until=None,
                )
        assert await update_dark(store, sources, NOW) == [
            "feed: source dark — failing since 2026-11-23 11:00 UTC (5 errors in a row): "
            "feed: server error (HTTP 503) — will retry"
        ]
        assert await update_dark(store, sources, NOW + timedelta(minutes=1)) == []
        async with store.read() as connection:
            (health,) = await source_store.health(connection, NOW)
        # dark since the episode began (the first error), kept while it lasts
        assert health.dark_since == health.failing_since == start + timedelta(hours=2)

        async with store.begin() as connection:  # an unchanged feed (304) is a healthy run
            await source_store.record_success(
                connection,
                "feed",
                FetchResult([], stats={"unchanged_items": 3}),
                now=NOW + timedelta(minutes=2),
                next_check_at=NOW,
            )
        assert await update_dark(store, sources, NOW + timedelta(minutes=3)) == [
            "feed: no longer dark"
        ]
        async with store.read() as connection:
            (health,) = await source_store.health(connection, NOW)
        assert (health.dark_since, health.dark_reason, health.failing_since) == (None, None, None)
        assert health.item_runs == 5 and health.last_item_at == NOW + timedelta(minutes=2)

        assert await update_dark(store, {}, NOW) == []  # unconfigured: never dark
    finally:
        await store.dispose()


async def test_the_heartbeat_marks_a_blocked_source_dark_and_others_stay_ok(
    local_server: LocalServer, make_daemon: Callable[..., Daemon], sqlite_url: str
) -> None:
    local_server.serve_bytes("/blocked", b"denied", status=403)
    local_server.serve_bytes("/fine", rss([MENTION_ITEM]))
    config = make_daemon(
        sources=[
            {"type": "rss", "name": "blocked", "url": local_server.url("/blocked")},
            {"type": "rss", "name": "fine", "url": local_server.url("/fine")},
        ]
    ).config
    for _ in range(5):
        await make_daemon(config=config).run_once()  # run_once ends with a heartbeat
    blocked = await health_of(sqlite_url, "blocked")
    assert blocked.dark_since is not None
    assert blocked.dark_reason and "(5 errors in a row): blocked: access denied (HTTP 403)" in (
        blocked.dark_reason
    )
    fine = await health_of(sqlite_url, "fine")
    assert fine.dark_since is None and fine.error_streak == 0 and fine.item_runs == 5
    daemon = make_daemon(config=config)
    await daemon.open()
    try:
        summary = await daemon.health_summary()
    finally:
        await daemon.close()
    assert summary.startswith("1/2 sources ok; blocked DARK: failing since")


def test_the_health_line_shortens_long_errors_at_a_word() -> None:
    error = "feed: cannot connect to feeds.example.test:443 — check DNS and outbound network access"
    clipped = _clip(error, 60)
    assert len(clipped) <= 60 and clipped.endswith(" …")
    kept = clipped.removesuffix(" …")
    assert error.startswith(kept) and error[len(kept)] == " "  # cut between words
    assert _clip("short", 60) == "short" and _clip(None, 60) == ""


# ------------------------------------------------------------- monitor sources


@pytest.fixture
def health_config(tmp_path: Path) -> Path:
    """A database with one healthy feed, one dark feed, one never-run and one disabled."""
    database = f"sqlite+aiosqlite:///{tmp_path / 'monitor.db'}"
    data = deep_merge(
        base_config_dict(database),
        {
            "sources": [
                {"type": "rss", "name": "blog", "url": "https://blog.test/feed"},
                {
                    "type": "google_alerts",
                    "name": "alert",
                    "url": "https://g.test/a",
                    "watchlist": "brand",
                },
                {"type": "google_news", "name": "news", "every": "30m"},
                {"type": "rss", "name": "off", "url": "https://off.test/feed", "enabled": False},
            ]
        },
    )

    async def seed() -> None:
        store = await Store.open(database)
        now = datetime.now(UTC)
        try:
            async with store.begin() as connection:
                for name, kind in (
                    ("blog", "rss"),
                    ("alert", "google_alerts"),
                    ("news", "google_news"),
                ):
                    await source_store.ensure(connection, name, kind, now - timedelta(hours=1))
                await source_store.record_success(
                    connection,
                    "blog",
                    FetchResult([], warnings=["feed is not well-formed but usable: x"]),
                    now=now - timedelta(minutes=3),
                    stats={"entries": 20},
                    next_check_at=now + timedelta(minutes=12),
                )
                for _ in range(6):
                    await source_store.record_failure(
                        connection,
                        "alert",
                        "alert: got an HTML page titled 'Sign in' instead of a feed — open the URL",
                        now=now - timedelta(minutes=30),
                        next_check_at=now + timedelta(hours=2),
                        retry_after_until=None,
                    )
                await source_store.set_dark(
                    connection, "alert", now - timedelta(minutes=10), "failing since ... (6 errors)"
                )
                # The blog's sightings: three in the last 24 h, one just before — 24H says 3.
                mention_id = await connection.scalar(
                    insert(mentions)
                    .values(
                        source="blog",
                        platform="rss",
                        source_key="rss:blog#1",
                        fetched_at=now,
                        state_at=now,
                    )
                    .returning(mentions.c.id)
                )
                for index, hours in enumerate((1, 5, 23, 25)):
                    await connection.execute(
                        insert(sightings).values(
                            mention_id=mention_id,
                            source="blog",
                            source_key=f"rss:blog#{index}",
                            matched_by="new",
                            seen_at=now - timedelta(hours=hours),
                        )
                    )
        finally:
            await store.dispose()

    asyncio.run(seed())
    return write_config(tmp_path / "config.yaml", data)


def test_sources_table(health_config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["sources", "-c", str(health_config)]) == 0
    lines = capsys.readouterr().out.splitlines()
    header = lines[0]
    for column in ("SOURCE", "STATUS", "LAST OK", "24H", "ERR", "NEXT", "EVERY", "LAST ERROR"):
        assert column in header
    # One row per source, then its limits and latest counters on indented lines.
    rows: dict[str, list[str]] = {}
    current = ""
    for line in lines[1:]:
        if line.startswith(" "):
            rows[current].append(line.strip())
        else:
            current = line.split()[0]
            rows[current] = [line]
    blog, alert, news, off = rows["blog"], rows["alert"], rows["news"], rows["off"]
    assert blog[0].split()[:3] == ["blog", "rss", "ok"]
    last_24h = slice(header.index("24H") - 2, header.index("24H") + 3)  # right-aligned, 5 wide
    assert [rows[name][0][last_24h].strip() for name in ("blog", "alert", "news")] == [
        "3",
        "0",
        "0",
    ]
    assert "feed is not well-formed but usable" in blog[0]
    assert "limits: min_interval=1m" in blog[1]
    assert "now: entries=20" in blog[2]
    assert alert[0].split()[:4] == ["alert", "google_alerts", "DARK", "never"]
    assert "failing since ... (6 errors)" in alert[0]
    assert news[0].split()[:3] == ["news", "google_news", "new"]
    assert " 30m " in news[0]
    assert "min_interval=10m searches=2" in news[1]
    assert off[0].split()[:3] == ["off", "rss", "disabled"]


def test_sources_json(health_config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["sources", "-c", str(health_config), "--json"]) == 0
    rows = {r["source"]: r for r in map(json.loads, capsys.readouterr().out.splitlines())}
    assert list(rows) == ["blog", "alert", "news", "off"]
    alert = rows["alert"]
    assert alert["status"] == "DARK" and alert["error_streak"] == 6
    assert alert["dark_reason"] == "failing since ... (6 errors)" and alert["dark_since"]
    assert alert["last_error"].startswith("alert: got an HTML page")
    assert alert["limits"] == {"min_interval_s": 300.0} and alert["interval_s"] == 300.0
    assert rows["blog"]["stats"] == {"entries": 20} and rows["blog"]["warning"]
    assert rows["blog"]["items_24h"] == 3 and rows["alert"]["items_24h"] == 0
    assert rows["news"]["limits"] == {"min_interval_s": 600.0, "searches": 2}
    assert rows["off"]["status"] == "disabled" and rows["off"]["enabled"] is False


REDDIT_DEGRADED = (
    "no OAuth credentials: reading the public search feed (at most 100 posts, stricter "
    "limits) — set sources['reddit'].client_id / client_secret"
)


@pytest.fixture
def social_config(tmp_path: Path) -> Path:
    """A degraded Reddit source with a long hint and a failing reply poll, and a live
    Jetstream source whose last row still carries limits in its stats (older versions)."""
    database = f"sqlite+aiosqlite:///{tmp_path / 'monitor.db'}"
    data = deep_merge(
        base_config_dict(database),
        {
            "brand": {"name": "Acme Cloud", "accounts": {"reddit": "acme_support"}},
            "sources": [
                {"type": "reddit", "name": "reddit"},
                {"type": "bluesky", "name": "sky", "batch_every": "0.1s"},
            ],
        },
    )

    async def seed() -> None:
        store = await Store.open(database)
        now = datetime.now(UTC)
        try:
            async with store.begin() as connection:
                await source_store.ensure(connection, "reddit", "reddit", now)
                await source_store.ensure(connection, "sky", "bluesky", now)
                await source_store.record_success(
                    connection,
                    "reddit",
                    FetchResult([], degraded=REDDIT_DEGRADED),
                    now=now,
                    stats={"mode": "public-feed"},
                    next_check_at=now + timedelta(minutes=1),
                )
                await source_store.record_success(
                    connection,
                    "sky",
                    FetchResult([]),
                    now=now,
                    stats={"posts_per_min": 812.5, "limits": {"rate_limit": "none"}},
                    next_check_at=now + timedelta(minutes=5),
                )
                await alert_state.set_cursor(
                    connection,
                    "replies:reddit:acme_support",
                    {
                        "since": now.isoformat(),
                        "checked_at": now.isoformat(),
                        "error": "replies of acme_support: reddit: the public feed "
                        "/user/acme_support/comments.rss refused this machine (HTTP 403)",
                    },
                    now,
                )
        finally:
            await store.dispose()

    asyncio.run(seed())
    return write_config(tmp_path / "config.yaml", data)


def table_rows(out: str) -> dict[str, list[str]]:
    rows: dict[str, list[str]] = {}
    current = ""
    for line in out.splitlines()[1:]:
        if line.startswith(" "):
            rows[current].append(line.strip())
        else:
            current = line.split()[0]
            rows[current] = [line]
    return rows


def test_sources_table_wraps_long_notes_and_shows_streams_as_live(
    social_config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["sources", "-c", str(social_config)]) == 0
    out = capsys.readouterr().out
    assert all(len(line) <= 100 for line in out.splitlines()[1:] if line.startswith(" "))
    rows = table_rows(out)
    reddit, sky = rows["reddit"], rows["sky"]
    assert reddit[0].split()[:3] == ["reddit", "reddit", "degraded"]
    # The hint is wrapped onto lines of its own, never cut: the key names survive.
    notes = [line for line in reddit if line.startswith("note: ")]
    assert len(notes) == 1
    note = " ".join(reddit[reddit.index(notes[0]) : reddit.index(notes[0]) + 2])
    assert REDDIT_DEGRADED in note.removeprefix("note: ")
    assert any(
        line.startswith("replies: replies of acme_support: reddit: the public") for line in reddit
    )
    # A stream has no interval or next poll: it is live.
    assert sky[0].split()[:3] == ["sky", "bluesky", "ok"]
    assert sky[0].split()[-2:] == ["live", "stream"]
    limits = next(line for line in sky if line.startswith("limits: "))
    assert "batch_every=100ms" in limits  # not 0s
    (now_line,) = [line for line in sky if line.startswith("now: ")]
    assert now_line == "now: posts_per_min=812.5"  # the stats' copy of the limits is not shown


def test_sources_json_shows_streams_and_reply_failures(
    social_config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["sources", "-c", str(social_config), "--json"]) == 0
    rows = {r["source"]: r for r in map(json.loads, capsys.readouterr().out.splitlines())}
    assert rows["sky"]["streaming"] is True and rows["sky"]["interval_s"] is None
    assert rows["sky"]["stats"] == {"posts_per_min": 812.5}
    assert rows["reddit"]["degraded"] == REDDIT_DEGRADED
    assert "refused this machine (HTTP 403)" in rows["reddit"]["replies_error"]
    assert rows["reddit"]["replies_checked_at"] and rows["sky"]["replies_error"] is None
