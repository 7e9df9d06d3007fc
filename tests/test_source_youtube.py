"""YouTube Data API v3 search and channel comments against a local server (documented shapes)."""

from __future__ import annotations

import asyncio
import copy
import io
import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from sqlalchemy import select

from monitor.cli import main
from monitor.config import Config, ConfigError, load_config, parse_config
from monitor.daemon import Daemon, build_sources
from monitor.durations import format_duration
from monitor.store import sources as source_store
from monitor.store.tables import mentions
from sources.base import SourceContext
from sources.youtube import YoutubeSource, next_pacific_midnight
from tests.conftest import FIXTURES, base_config_dict, deep_merge
from tests.helpers.process import write_config
from tests.helpers.servers import LocalServer

HERE = FIXTURES / "youtube"
VIDEOS = json.loads((HERE / "search_list_videos.json").read_text())
THREADS = json.loads((HERE / "comment_threads.json").read_text())
KEY = "AIzaSyD-test-key-0000000000000000000"
BRAND_CHANNEL = "UCacmeCloudOfficial000001"
WATCHLISTS = [
    {"name": "brand", "query": '"acme cloud" OR acmecloud OR "एक्मे क्लाउड"', "owner": "priya"},
    {"name": "competitors", "query": "globex", "kind": "competitor"},
]


class YouTube:
    """search.list (terms split on `|`, publishedAfter, order=date) and commentThreads.list."""

    def __init__(self, server: LocalServer) -> None:
        self.server = server
        self.videos = copy.deepcopy(VIDEOS["items"])
        self.threads = copy.deepcopy(THREADS)
        self.answer: web.Response | None = None
        server.route("/youtube/v3/search", self.search)
        server.route("/youtube/v3/commentThreads", self.comment_threads)

    def calls(self, method: str) -> list[Any]:
        return [r for r in self.server.requests if r.path == f"/youtube/v3/{method}"]

    async def search(self, request: web.Request) -> web.Response:
        if self.answer is not None:
            return self.answer
        assert request.query["key"] == KEY
        if "pageToken" in request.query:
            return web.json_response({"kind": "youtube#searchListResponse", "items": []})
        terms = [t.strip('"').casefold() for t in request.query["q"].split("|")]
        after = request.query.get("publishedAfter", "")
        found = [
            item
            for item in self.videos
            if any(t in json.dumps(item["snippet"], ensure_ascii=False).casefold() for t in terms)
            and item["snippet"]["publishedAt"] >= after
        ]
        found.sort(key=lambda item: item["snippet"]["publishedAt"], reverse=True)
        return web.json_response({**VIDEOS, "items": found})

    async def comment_threads(self, request: web.Request) -> web.Response:
        assert request.query["allThreadsRelatedToChannelId"] == BRAND_CHANNEL
        body = copy.deepcopy(self.threads)
        if "replies" not in request.query["part"]:
            for thread in body["items"]:
                thread.pop("replies", None)
        return web.json_response(body)


def youtube_source(server: LocalServer, **extra: Any) -> dict[str, Any]:
    return {
        "type": "youtube",
        "name": "youtube",
        "api_url": server.url("/youtube/v3"),
        "api_key": KEY,
        "channel_id": BRAND_CHANNEL,
        "every": "1m",
        **extra,
    }


async def opened(daemon: Daemon) -> Daemon:
    await daemon.open()
    async with daemon.store.begin() as connection:
        for source in daemon.sources.values():
            await source_store.ensure(connection, source.name, source.kind, datetime.now(UTC))
    return daemon


async def health(daemon: Daemon) -> source_store.SourceHealth:
    async with daemon.store.read() as connection:
        (row,) = await source_store.health(connection)
        return row


@pytest.fixture
def youtube(local_server: LocalServer) -> YouTube:
    return YouTube(local_server)


def test_pacific_midnight_follows_daylight_saving() -> None:
    winter = datetime(2026, 11, 23, 11, 0, tzinfo=UTC)  # 03:00 PST
    summer = datetime(2026, 7, 4, 12, 0, tzinfo=UTC)  # 05:00 PDT
    assert next_pacific_midnight(winter) == datetime(2026, 11, 24, 8, 0, tzinfo=UTC)
    assert next_pacific_midnight(summer) == datetime(2026, 7, 5, 7, 0, tzinfo=UTC)


def test_the_quota_budget_sets_the_interval_and_the_expected_delay(
    local_server: LocalServer, make_daemon: Callable[..., Daemon]
) -> None:
    daemon = make_daemon(watchlists=WATCHLISTS, sources=[youtube_source(local_server)])
    config = daemon.config
    context = SourceContext(http=None, watchlists=config.watchlists, brand=config.brand)  # type: ignore[arg-type]
    source = YoutubeSource("youtube", config.sources[0], context)
    assert source._queries() == ['"acme cloud"|acmecloud|"एक्मे क्लाउड"|globex']
    limits = source.limits()
    assert limits["units_per_poll"] == 101  # one search + one comment page
    # 10,000 units a day ÷ 101 a poll = 99 polls ⇒ one every 14.5 minutes.
    assert limits["expected_delay_s"] == round(86400 / 99)
    now = datetime(2026, 11, 23, 20, 0, tzinfo=UTC)  # 12:00 PST: half the day left
    assert source.budget_interval(used=0, now=now) == timedelta(hours=12) / 99
    assert source.budget_interval(used=9_899, now=now) == timedelta(hours=12) / 1
    assert source.budget_interval(used=9_950, now=now) == timedelta(hours=12)  # until midnight


async def test_first_poll_finds_videos_and_channel_comments(
    local_server: LocalServer,
    youtube: YouTube,
    make_daemon: Callable[..., Daemon],
    database_url: str,
) -> None:
    daemon = make_daemon(
        database=database_url, watchlists=WATCHLISTS, sources=[youtube_source(local_server)]
    )
    before = datetime.now(UTC)
    (outcome,) = await daemon.run_once()
    assert outcome.ok, outcome.error
    (search,) = youtube.calls("search")
    assert search.query["type"] == "video" and search.query["order"] == "date"
    assert "publishedAfter" not in search.query
    assert len(youtube.calls("commentThreads")) == 1

    await daemon.open()
    try:
        async with daemon.store.read() as connection:
            rows = (await connection.execute(select(mentions))).all()
        by_key = {row.source_key: row for row in rows}
        # The brand's own upload, the channel result and the comment without a match are out.
        assert set(by_key) == {
            "youtube:dQ3v9ZbX1aQ",
            "youtube:hN7k2LmQp4s",
            "youtube:comment:UgzQe2kX9mV1bN0pL4Z4AaABAg",
        }
        outage = by_key["youtube:dQ3v9ZbX1aQ"]
        assert outage.title == "Acme Cloud outage AGAIN?! What's going on & how to get a refund"
        assert outage.url == "https://www.youtube.com/watch?v=dQ3v9ZbX1aQ"
        assert outage.author == "Tech Rants"
        assert outage.published_at == datetime(2026, 11, 20, 10, 15, 2, tzinfo=UTC)
        assert by_key["youtube:hN7k2LmQp4s"].language == "hi"
        comment = by_key["youtube:comment:UgzQe2kX9mV1bN0pL4Z4AaABAg"]
        assert comment.url.endswith("watch?v=Zx8Lp0Qw3Er&lc=UgzQe2kX9mV1bN0pL4Z4AaABAg")
        assert comment.text.startswith("Acmecloud billing charged me twice")

        row = await health(daemon)
        assert (row.stats["quota_used_today"], row.stats["quota_left_today"]) == (101, 9899)
        midnight = next_pacific_midnight(before)
        expected = (midnight - before) / (9899 // 101)
        assert abs(row.stats["poll_interval_s"] - expected.total_seconds()) < 60
        assert row.next_check_at >= before + expected - timedelta(seconds=60)
    finally:
        await daemon.close()


async def test_incremental_poll_uses_published_after_and_repeats_nothing(
    local_server: LocalServer, youtube: YouTube, make_daemon: Callable[..., Daemon]
) -> None:
    daemon = await opened(
        make_daemon(watchlists=WATCHLISTS, sources=[youtube_source(local_server)])
    )
    try:
        source = daemon.sources["youtube"]
        first = await daemon.runner.run(source)
        assert first.ok and first.stats is not None and first.stats.new == 3
        again = await daemon.runner.run(source)
        assert again.ok and again.stats is not None and again.stats.fetched == 0
        assert youtube.calls("search")[-1].query["publishedAfter"] == "2026-11-20T04:15:02Z"

        newer = copy.deepcopy(youtube.videos[0])
        newer["id"]["videoId"] = "Nw1Vid2Eo3x"
        newer["snippet"].update(publishedAt="2026-11-21T08:00:00Z", title="Acme Cloud is back up")
        youtube.videos.append(newer)
        third = await daemon.runner.run(source)
        assert third.ok and third.stats is not None
        assert (third.stats.fetched, third.stats.new) == (1, 1)
        stats = (await health(daemon)).stats
        assert stats["quota_used_today"] == 3 * 101
    finally:
        await daemon.close()


async def test_a_spent_budget_waits_for_midnight_pacific_without_calling(
    local_server: LocalServer, youtube: YouTube, make_daemon: Callable[..., Daemon]
) -> None:
    daemon = await opened(
        make_daemon(
            watchlists=WATCHLISTS,
            sources=[youtube_source(local_server, quota_units_per_day=150)],
        )
    )
    try:
        source = daemon.sources["youtube"]
        now = datetime.now(UTC)
        assert (await daemon.runner.run(source)).ok
        midnight = next_pacific_midnight(now)
        assert (await health(daemon)).next_check_at >= midnight - timedelta(seconds=5)
        calls = len(youtube.server.requests)
        assert (await daemon.runner.run(source)).ok
        assert len(youtube.server.requests) == calls  # nothing spent beyond the budget
        row = await health(daemon)
        assert "quota is used up" in (row.warning or "")
        assert row.next_check_at >= midnight - timedelta(seconds=5)
    finally:
        await daemon.close()


async def test_quota_exceeded_is_recorded_until_midnight_pacific(
    local_server: LocalServer, youtube: YouTube, make_daemon: Callable[..., Daemon]
) -> None:
    youtube.answer = web.Response(
        body=(HERE / "error_quota_exceeded.json").read_bytes(),
        status=403,
        content_type="application/json",
    )
    daemon = make_daemon(watchlists=WATCHLISTS, sources=[youtube_source(local_server)])
    now = datetime.now(UTC)
    (outcome,) = await daemon.run_once()
    assert not outcome.ok
    assert outcome.error.startswith("youtube: YouTube quota exceeded (HTTP 403 quotaExceeded:")
    assert "<a href" not in outcome.error
    await daemon.open()
    try:
        row = await health(daemon)
        assert row.error_streak == 1 and row.retry_after_until is not None
        assert abs(row.retry_after_until - next_pacific_midnight(now)) < timedelta(seconds=30)
    finally:
        await daemon.close()


RATE_LIMIT_EXCEEDED = {
    "error": {
        "code": 403,
        "message": "The request cannot be completed because you have exceeded your rate limit.",
        "errors": [
            {
                "message": "The request cannot be completed because you have exceeded your rate limit.",
                "domain": "youtube.quota",
                "reason": "rateLimitExceeded",
            }
        ],
    }
}


@pytest.mark.parametrize(
    ("answer", "message", "clears_in"),
    [
        (
            web.json_response(RATE_LIMIT_EXCEEDED, status=403),
            "youtube: rate limited by YouTube (HTTP 403 rateLimitExceeded: The request cannot "
            "be completed because you have exceeded your rate limit.)",
            timedelta(minutes=5),  # no Retry-After: the default pause
        ),
        (
            web.Response(status=429, headers={"Retry-After": "120"}, text="slow down"),
            "youtube: rate limited by YouTube (HTTP 429: slow down)",
            timedelta(seconds=120),
        ),
    ],
    ids=["rateLimitExceeded", "http-429"],
)
async def test_a_rate_limit_answer_is_recorded_with_the_time_it_clears(
    local_server: LocalServer,
    youtube: YouTube,
    make_daemon: Callable[..., Daemon],
    answer: web.Response,
    message: str,
    clears_in: timedelta,
) -> None:
    youtube.answer = answer
    daemon = make_daemon(watchlists=WATCHLISTS, sources=[youtube_source(local_server)])
    before = datetime.now(UTC)
    (outcome,) = await daemon.run_once()
    assert outcome.error.startswith(message)
    assert "too many requests in a short time; waiting" in outcome.error
    await daemon.open()
    try:
        row = await health(daemon)
        assert row.error_streak == 1 and row.retry_after_until is not None
        assert abs(row.retry_after_until - (before + clears_in)) < timedelta(seconds=10)
        assert row.next_check_at >= row.retry_after_until
    finally:
        await daemon.close()


def test_sources_on_one_key_split_its_quota_and_replies_are_set_aside(
    make_config: Callable[..., Config],
) -> None:
    def built(sources: list[dict[str, Any]], **extra: Any) -> list[YoutubeSource]:
        config = make_config(watchlists=WATCHLISTS, sources=sources, **extra)
        context = SourceContext(http=None, watchlists=config.watchlists, brand=config.brand)  # type: ignore[arg-type]
        return list(build_sources(config, context).values())  # type: ignore[arg-type]

    section = {"type": "youtube", "api_key": KEY, "channel_id": BRAND_CHANNEL, "every": "1m"}
    (alone,) = built([section])
    assert alone.daily_units() == 10_000 and alone.limits()["expected_delay_s"] == round(86400 / 99)
    # Two sources on one key (one project's quota): 5,000 units each, half as many polls.
    pair = built([{**section, "name": "a"}, {**section, "name": "b", "query": "globex"}])
    assert [source.daily_units() for source in pair] == [5_000, 5_000]
    assert pair[0].limits()["expected_delay_s"] == round(86400 / (5_000 // 101))
    assert pair[0].limits()["budget_shared_by"] == 2
    # Another key is another project's quota.
    other = built([{**section, "name": "a"}, {**section, "name": "b", "api_key": "AIza-other"}])
    assert [source.daily_units() for source in other] == [10_000, 10_000]
    # The brand channel's replies cost a unit a call, every 15 min at most: 96 set aside.
    brand = {"name": "Acme Cloud", "accounts": {"youtube": BRAND_CHANNEL}}
    (replying,) = built([section], brand=brand)
    assert replying.limits()["reply_units_per_day"] == 96
    assert replying.daily_units() == 10_000 - 96
    assert replying.limits()["expected_delay_s"] == round(86400 / ((10_000 - 96) // 101))


async def test_an_invalid_key_names_api_key_and_is_never_shown(
    local_server: LocalServer, youtube: YouTube, make_daemon: Callable[..., Daemon]
) -> None:
    youtube.answer = web.Response(
        body=(HERE / "error_key_invalid.json").read_bytes(),
        status=400,
        content_type="application/json",
    )
    daemon = make_daemon(watchlists=WATCHLISTS, sources=[youtube_source(local_server)])
    (outcome,) = await daemon.run_once()
    assert not outcome.ok
    assert outcome.error.startswith(
        "youtube: search.list refused the API key (HTTP 400 API_KEY_INVALID: API key not valid."
    )
    assert "check `api_key` of this source" in outcome.error
    assert KEY not in outcome.error and KEY not in daemon.sources["youtube"].describe()

    # The key travels in the URL: no error may quote the URL, whatever the status.
    for status in (404, 410, 502):
        youtube.answer = web.Response(text="<html>nope</html>", status=status)
        (outcome,) = await make_daemon(config=daemon.config).run_once()
        assert not outcome.ok and f"HTTP {status}" in outcome.error and KEY not in outcome.error


def test_an_enabled_source_without_a_key_is_a_config_error() -> None:
    text = (
        "brand: {name: Acme}\nwatchlists: [{name: brand, query: acme}]\n"
        "sources:\n  - type: youtube\n    api_key: ''\n"
    )
    with pytest.raises(ConfigError) as info:
        parse_config(text, "config.yaml", {})
    assert "sources[0]: needs `api_key`" in str(info.value)


async def test_malformed_json_is_a_clear_error(
    local_server: LocalServer, youtube: YouTube, make_daemon: Callable[..., Daemon]
) -> None:
    youtube.answer = web.Response(text='{"items": [', content_type="application/json")
    daemon = make_daemon(watchlists=WATCHLISTS, sources=[youtube_source(local_server)])
    (outcome,) = await daemon.run_once()
    assert not outcome.ok and outcome.error.startswith("youtube: malformed JSON from search.list")


async def test_an_empty_result_is_fine(
    local_server: LocalServer, youtube: YouTube, make_daemon: Callable[..., Daemon]
) -> None:
    youtube.videos = []
    youtube.threads = {"kind": "youtube#commentThreadListResponse", "items": []}
    daemon = make_daemon(watchlists=WATCHLISTS, sources=[youtube_source(local_server)])
    (outcome,) = await daemon.run_once()
    assert outcome.ok and outcome.stats is not None and outcome.stats.fetched == 0


async def test_replies_by_the_brand_channel_share_the_comment_thread_key(
    local_server: LocalServer, youtube: YouTube, make_daemon: Callable[..., Daemon]
) -> None:
    daemon = make_daemon(watchlists=WATCHLISTS, sources=[youtube_source(local_server)])
    (outcome,) = await daemon.run_once()
    assert outcome.ok
    await daemon.open()
    try:
        source = daemon.sources["youtube"]
        (reply,) = await source.replies(BRAND_CHANNEL, since=datetime(2026, 11, 1, tzinfo=UTC))
        async with daemon.store.read() as connection:
            thread_key = (
                await connection.execute(
                    select(mentions.c.thread_key).where(
                        mentions.c.source_key == "youtube:comment:UgzQe2kX9mV1bN0pL4Z4AaABAg"
                    )
                )
            ).scalar_one()
        assert reply.thread_key == thread_key
        assert reply.in_reply_to_key == "youtube:comment:UgzQe2kX9mV1bN0pL4Z4AaABAg"
        assert reply.published_at == datetime(2026, 11, 20, 11, 40, tzinfo=UTC)
        assert reply.url.endswith("&lc=UgzQe2kX9mV1bN0pL4Z4AaABAg.9xYz0aBcDeF")
        assert await source.replies(BRAND_CHANNEL, since=datetime(2026, 11, 21, tzinfo=UTC)) == []
    finally:
        await daemon.close()


def test_monitor_sources_shows_the_budget_and_the_expected_delay(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    async def seed() -> Path:
        server = await LocalServer().start()
        YouTube(server)
        data = deep_merge(
            base_config_dict(f"sqlite+aiosqlite:///{tmp_path / 'db.sqlite'}"),
            {"watchlists": WATCHLISTS, "sources": [youtube_source(server)]},
        )
        path = write_config(tmp_path / "config.yaml", data)
        await Daemon(load_config(path), console_stream=io.StringIO()).run_once()
        await server.stop()
        return path

    path = asyncio.run(seed())
    capsys.readouterr()
    assert main(["sources", "-c", str(path)]) == 0
    table = capsys.readouterr().out
    assert "youtube" in table and " ok " in table
    expected = format_duration(timedelta(seconds=round(86400 / 99)))
    assert f"expected_delay={expected}" in table  # limits(), from the config
    assert "quota_left_today=9899" in table  # stats, from the last run

    assert main(["sources", "-c", str(path), "--json"]) == 0
    (row,) = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert row["limits"]["quota_units_per_day"] == 10_000
    assert row["stats"]["quota_used_today"] == 101
