"""The digest's numbers and `monitor report`: reply times, SLA, overdue, praise, competitors."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from alerts import metrics
from alerts.digest import is_due
from monitor.cli import main
from monitor.config import Config
from monitor.matching import WatchlistMatch
from monitor.store import Store
from monitor.store import mentions as mention_store
from tests.conftest import base_config_dict
from tests.helpers.process import write_config
from tests.test_store import mention_values

NOW = datetime.now(UTC).replace(microsecond=0)


def test_percentile_interpolates() -> None:
    assert metrics.percentile([], 0.5) is None
    assert metrics.percentile([10, 20], 0.5) == 15
    assert metrics.percentile(list(range(1, 11)), 0.9) == pytest.approx(9.1)


def test_digest_is_due_once_a_day_after_its_time(make_config: Callable[..., Config]) -> None:
    config = make_config(alerts={"digest": {"at": "09:00", "timezone": "Asia/Kolkata"}})
    morning = datetime(2026, 11, 23, 3, 0, tzinfo=UTC)  # 08:30 in Kolkata
    assert is_due(config, None, morning) is None
    assert is_due(config, None, morning + timedelta(hours=1)) == "2026-11-23"
    assert is_due(config, {"last_date": "2026-11-23"}, morning + timedelta(hours=2)) is None


async def seed(store: Store) -> None:
    rows: list[dict[str, Any]] = [
        # answered after 10 and 50 minutes; the SLA is 1h
        mention_values(
            "rss:a",
            published_at=NOW - timedelta(hours=3),
            answered_at=NOW - timedelta(hours=3) + timedelta(minutes=10),
            state="answered",
        ),
        mention_values(
            "rss:b",
            published_at=NOW - timedelta(hours=3),
            answered_at=NOW - timedelta(hours=3) + timedelta(minutes=50),
            state="answered",
        ),
        # still open after 2 hours: overdue
        mention_values("rss:c", published_at=NOW - timedelta(hours=2), author="dana"),
        mention_values(
            "rss:d", sentiment="positive", needs_reply=False, title="Love it", author="eve"
        ),
        mention_values("rss:e", sentiment="neutral", needs_reply=False, title="Globex launch"),
    ]
    lists = ["brand", "brand", "brand", "brand", "competitors"]
    async with store.begin() as connection:
        for values, watchlist in zip(rows, lists, strict=True):
            values["fetched_at"] = NOW - timedelta(hours=3)
            mention_id = await mention_store.insert_mention(connection, values)

            match = WatchlistMatch(watchlist, [], [])
            await mention_store.add_matches(connection, mention_id, [match], NOW)


async def seeded_report(config: Config) -> metrics.Report:
    store = await Store.open(config.database)
    try:
        await seed(store)
        async with store.read() as connection:
            return await metrics.compute(connection, config, NOW - timedelta(days=1), NOW)
    finally:
        await store.dispose()


def test_metrics_and_report_command(
    tmp_path: Path, make_config: Callable[..., Config], capsys: pytest.CaptureFixture[str]
) -> None:
    config = make_config()
    report = asyncio.run(seeded_report(config))
    assert report.total == 5 and report.by_watchlist == {"brand": 4, "competitors": 1}
    assert report.negative_share == 0.6
    assert (report.first_reply_median_s, report.first_reply_p90_s) == (1800.0, 2760.0)
    assert (report.needing_attention, report.answered_within_sla) == (3, 2)
    assert report.within_sla_share == pytest.approx(2 / 3, abs=1e-4)
    assert [item["author"] for item in report.overdue] == ["dana"]
    assert [item["title"] for item in report.praise] == ["Love it"]
    assert [item["title"] for item in report.competitors] == ["Globex launch"]

    path = write_config(tmp_path / "config.yaml", base_config_dict(config.database))
    assert main(["report", "-c", str(path), "--since", "1d", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["first_reply_median_s"] == 1800.0 and len(data["overdue"]) == 1
    assert main(["report", "-c", str(path)]) == 0
    out = capsys.readouterr().out
    assert "time to first reply: median 30m, 90th percentile 46m" in out
    assert "Praise — thank them" in out
    assert main(["report", "-c", str(path), "--since", "soon"]) == 2
