"""Brand replies: polled within each source's limits, failures visible, answers NULL-safe.

The source is the real Hacker News adapter against a local stand-in for Algolia: its
search answers the poll, and `tags=comment,author_acmecloud` answers the reply listing.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from monitor.config import Config
from monitor.daemon import Daemon
from monitor.mention import BrandReply, Mention
from monitor.replies import mark_answered, poll_replies
from monitor.store import mentions as mention_store
from sources.base import FetchResult
from tests.conftest import FIXTURES, base_config_dict, deep_merge
from tests.helpers.process import run_monitor, write_config
from tests.helpers.servers import LocalServer

BRAND = {"name": "Acme Cloud", "accounts": {"hackernews": "acmecloud"}}


def fixture(name: str) -> dict[str, Any]:
    return json.loads((FIXTURES / "hackernews" / name).read_text(encoding="utf-8"))


class Algolia:
    """search_by_date: the brand account's comments for reply listings, a page of hits for
    polls; either can be swapped for an error answer."""

    def __init__(self, server: LocalServer) -> None:
        self.server = server
        self.poll_answer: web.Response | None = None
        self.replies_answer: web.Response | None = None
        server.route("/api/v1/search_by_date", self.search)

    async def search(self, request: web.Request) -> web.Response:
        if request.query.get("tags", "").startswith("comment,author_"):
            return self.replies_answer or web.json_response(
                fixture("comments_by_brand_author.json")
            )
        return self.poll_answer or web.json_response(fixture("search_by_date_page1_of_2.json"))

    def reply_calls(self) -> int:
        return sum(
            1 for r in self.server.requests if r.query.get("tags", "").startswith("comment,author_")
        )


@pytest.fixture
def algolia(local_server: LocalServer) -> Algolia:
    return Algolia(local_server)


def config_data(server: LocalServer, database: str) -> dict[str, Any]:
    section = {"type": "hackernews", "name": "hn", "api_url": server.url("/api/v1"), "every": "1m"}
    return deep_merge(base_config_dict(database), {"brand": BRAND, "sources": [section]})


@pytest.fixture
def config(local_server: LocalServer, sqlite_url: str) -> Config:
    return Config.model_validate(config_data(local_server, sqlite_url))


async def opened(make_daemon: Callable[..., Daemon], config: Config) -> Daemon:
    """Poll once (stores the customer's comment and story), then open for replies. Without
    alerts, because `run --once` with alerts lists the brand's replies itself."""
    await make_daemon(config=config).run_once(alerts_enabled=False)
    daemon = make_daemon(config=config)
    await daemon.open()
    return daemon


async def test_replies_are_listed_at_most_every_replies_min_interval(
    algolia: Algolia, make_daemon: Callable[..., Daemon], config: Config
) -> None:
    daemon = await opened(make_daemon, config)
    try:
        source = daemon.sources["hn"]
        now = datetime.now(UTC)
        assert await poll_replies(daemon.store, daemon.sources, config, now=now) == 2
        assert algolia.reply_calls() == 1
        # alerts.replies_every (5 min here too) may come round sooner; the adapter's floor holds.
        soon = now + timedelta(seconds=source.replies_min_interval_s - 1)
        assert await poll_replies(daemon.store, daemon.sources, config, now=soon) == 0
        assert algolia.reply_calls() == 1
        later = now + timedelta(seconds=source.replies_min_interval_s)
        await poll_replies(daemon.store, daemon.sources, config, now=later)
        assert algolia.reply_calls() == 2
    finally:
        await daemon.close()


@pytest.mark.parametrize(
    ("answer", "held", "free"),
    [
        # Rate limited: recorded as retry_after_until, 600 s on.
        (web.Response(status=429, headers={"Retry-After": "600"}), 590, 700),
        # Backing off after a failure without Retry-After: until the next poll, 1 min ±10 %.
        (web.Response(status=503), 45, 70),
    ],
    ids=["rate-limited", "backing-off"],
)
async def test_replies_wait_while_the_source_is_rate_limited_or_backing_off(
    algolia: Algolia,
    make_daemon: Callable[..., Daemon],
    config: Config,
    answer: web.Response,
    held: int,
    free: int,
) -> None:
    algolia.poll_answer = answer
    daemon = await opened(make_daemon, config)  # the poll fails
    try:
        now = datetime.now(UTC)
        for seconds in (0, held):
            await poll_replies(
                daemon.store, daemon.sources, config, now=now + timedelta(seconds=seconds)
            )
        assert algolia.reply_calls() == 0
        # Once the source itself may call again, so may its reply listing.
        await poll_replies(daemon.store, daemon.sources, config, now=now + timedelta(seconds=free))
        assert algolia.reply_calls() == 1
    finally:
        await daemon.close()


async def test_a_failing_reply_listing_is_shown_in_monitor_sources_until_it_works_again(
    algolia: Algolia,
    make_daemon: Callable[..., Daemon],
    local_server: LocalServer,
    sqlite_url: str,
    tmp_path: Path,
) -> None:
    data = config_data(local_server, sqlite_url)
    path = write_config(tmp_path / "config.yaml", data)
    config = Config.model_validate(data)
    algolia.replies_answer = web.Response(status=503)
    daemon = await opened(make_daemon, config)
    now = datetime.now(UTC)
    try:
        assert await poll_replies(daemon.store, daemon.sources, config, now=now) == 0
    finally:
        await daemon.close()

    async def sources(*args: str) -> str:
        code, out, err = await run_monitor(tmp_path, "sources", *args, "-c", str(path))
        assert code == 0, err
        return out

    (row,) = [json.loads(line) for line in (await sources("--json")).splitlines()]
    assert row["replies_error"].startswith("replies of acmecloud: hn: server error (HTTP 503)")
    assert row["status"] == "ok" and row["error_streak"] == 0  # the polls themselves are fine
    assert "replies: replies of acmecloud: hn: server error (HTTP 503)" in await sources()

    algolia.replies_answer = None
    daemon = make_daemon(config=config)
    await daemon.open()
    try:
        later = now + timedelta(seconds=daemon.sources["hn"].replies_min_interval_s)
        assert await poll_replies(daemon.store, daemon.sources, config, now=later) == 2
    finally:
        await daemon.close()
    (row,) = [json.loads(line) for line in (await sources("--json")).splitlines()]
    assert row["replies_error"] is None and row["replies_checked_at"]


async def test_answering_is_null_safe_and_skips_the_brands_own_post(
    make_daemon: Callable[..., Daemon],
) -> None:
    """Stack Exchange search results name no author and a reply's author can be unknown:
    `author != reply.author` ruled such mentions out for good."""
    daemon = make_daemon()
    await daemon.open()
    posted = datetime.now(UTC) - timedelta(hours=1)
    texts = {
        "q:1": "Acme Cloud support never answers my ticket about billing",
        "q:2": "Acme Cloud here: we are looking into the login errors right now",
        "q:3": "acmecloud login is broken again for our whole team since this morning",
    }

    def item(key: str, thread: str, author: str) -> Mention:
        return Mention(
            key,
            f"https://q.test/{key}",
            text=texts[key],
            author=author,
            thread_key=thread,
            published_at=posted,
        )

    try:
        await daemon.pipeline.ingest(
            "q",
            FetchResult(
                [item("q:1", "q:a", ""), item("q:2", "q:b", "acmecloud"), item("q:3", "q:b", "")]
            ),
            first_run=False,
            next_check_at=posted,
        )
        later = posted + timedelta(minutes=5)
        replies = [
            BrandReply("q:a", "https://q.test/answer/1", later),  # author unknown
            BrandReply("q:b", "https://q.test/answer/2", later, author="acmecloud"),
        ]
        async with daemon.store.begin() as connection:
            assert await mark_answered(connection, replies, datetime.now(UTC)) == 2
            found = await mention_store.list_mentions(connection)
        states = {m["source_key"]: m["state"] for m in found}
        assert states == {"q:1": "answered", "q:2": "open", "q:3": "answered"}
    finally:
        await daemon.close()
