"""Troll/spam signals computed at ingest: author history, repeated text, link-only posts.
They are context only: every mention is still stored and alerted as usual."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from alerts.console import ConsoleConfig, ConsoleSink
from alerts.email import EmailConfig, EmailSink
from alerts.slack import SlackConfig, SlackSink
from monitor.classify.signals import link_only, text_hash
from monitor.delivery import Deliverer
from monitor.mention import Mention
from monitor.pipeline import Pipeline
from monitor.store import Store
from monitor.store import mentions as mention_store
from monitor.store.tables import mentions
from sources.base import FetchResult
from tests.helpers.fake_slack import FakeSlack, SmtpServer
from tests.helpers.servers import LocalServer

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def post(key: str, text: str, author: str = "grumpy", at: datetime = NOW) -> Mention:
    return Mention(
        source_key=f"mastodon:{key}",
        url=f"https://social.example/@{author}/{key}",
        text=text,
        author=author,
        published_at=at - timedelta(minutes=5),
    )


async def ingest(pipeline: Pipeline, items: list[Mention], at: datetime) -> None:
    await pipeline.ingest(
        "social", FetchResult(mentions=items), first_run=False, next_check_at=at, now=at
    )


async def stored(store: Store) -> list[dict[str, Any]]:
    async with store.read() as connection:
        rows = await connection.execute(select(mentions).order_by(mentions.c.id))
        return [dict(row._mapping) for row in rows]


def test_text_hash_ignores_links_and_case_and_skips_tiny_texts() -> None:
    a = text_hash("Acme Cloud is the WORST, avoid it https://t.example/1")
    b = text_hash("acme cloud is the worst avoid it https://t.example/2")
    assert a is not None and a == b
    assert text_hash("acme down?") is None


@pytest.mark.parametrize(
    "text",
    [
        "acme cloud https://spam.example/win @acmecloud #free",
        # Hashtags whose words carry vowel signs and viramas: `\w` would split each one and
        # count the pieces as words, so these spam posts looked like real text.
        "https://spam.example/win #एक्मेक्लाउड #ऑफ़र #सेल #डील",
        "https://spam.example/win #অ্যাকমিক্লাউড #অফার #সেল #ছাড়",
        "https://spam.example/win #اکمی‌کلاود #تخفیف #فروش #ویژه",
    ],
    ids=["en", "hi", "bn", "fa"],
)
def test_link_only(text: str) -> None:
    assert link_only(text)


@pytest.mark.parametrize(
    "text",
    [
        "Acme Cloud lost my files, details: https://blog.example/post",
        "acme cloud is slow today",
        "एक्मे क्लाउड ने मेरी फ़ाइलें खो दीं, पूरी बात यहाँ https://blog.example/post #एक्मे",
        "অ্যাকমি ক্লাউড আমার ফাইল হারিয়ে ফেলেছে, বিস্তারিত এখানে https://blog.example/post",
    ],
    ids=["en-link", "en-no-link", "hi", "bn"],
)
def test_not_link_only(text: str) -> None:
    assert not link_only(text)


async def test_author_history_and_answered(database_url: str, make_config: Any) -> None:
    config = make_config(database=database_url)
    store = await Store.open(database_url)
    try:
        pipeline = Pipeline(store, config)
        await ingest(pipeline, [post("1", "acme cloud is terrible, still waiting")], NOW)
        first = (await stored(store))[0]
        assert first["signals"]["author_mentions"] == 1
        assert first["signals"]["author_answered"] is False
        assert first["signals"]["author_negative_share"] == 1.0
        async with store.begin() as connection:
            await mention_store.set_state(
                connection, first["id"], "answered", actor="cli:test", now=NOW
            )
        later = NOW + timedelta(minutes=10)
        await ingest(pipeline, [post("2", "acme cloud support fixed it, thank you")], later)
        second = (await stored(store))[1]
        assert second["signals"]["author_mentions"] == 2
        assert second["signals"]["author_answered"] is True
        assert second["signals"]["author_negative_share"] == 0.5
        assert "never-answered" not in second["signals"]["hints"]
    finally:
        await store.dispose()


async def test_repeated_text_and_link_spam_are_flagged_not_hidden(
    database_url: str, make_config: Any
) -> None:
    config = make_config(database=database_url)
    store = await Store.open(database_url)
    try:
        pipeline = Pipeline(store, config)
        text = "acme cloud is a scam do not use it"
        items = [post(str(i), text, author=f"bot{i}") for i in range(3)]
        items.append(post("9", "acme cloud https://spam.example/prize", author="spammer"))
        stats_before = len(await stored(store))
        await ingest(pipeline, items, NOW)
        rows = await stored(store)
        assert len(rows) - stats_before == 4  # every one stored: signals never hide
        assert [r["signals"].get("same_text_count") for r in rows[:3]] == [0, 1, 2]
        assert rows[2]["signals"]["same_text_authors"] == 2
        assert "repeat-text" in rows[2]["signals"]["hints"]
        assert rows[3]["signals"]["link_only"] is True
        assert "link-only" in rows[3]["signals"]["hints"]
    finally:
        await store.dispose()


@pytest.fixture
def smtp(tmp_path: Path) -> Iterator[SmtpServer]:
    server = SmtpServer(tmp_path).start()
    yield server
    server.stop()


async def test_signals_are_shown_with_the_alert_in_every_sink(
    local_server: LocalServer, smtp: SmtpServer, sqlite_url: str, make_config: Any
) -> None:
    """The author's history and the repeated text reach Slack, email and the console as
    context, from the signals stored at ingest; the alert itself goes out as usual."""
    slack = FakeSlack(local_server)
    slack_config = {"token": "xoxb-test", "channel": "#brand-alerts", "api_url": slack.api_url}
    config = make_config(
        alerts={"slack": slack_config, "email": smtp.config(), "console": {"enabled": True}}
    )
    console = io.StringIO()
    sinks = {
        "slack": SlackSink(SlackConfig(**slack_config)),
        "email": EmailSink(EmailConfig(**smtp.config())),
        "console": ConsoleSink(ConsoleConfig(), stream=console),
    }
    now = datetime.now(UTC)
    copied = "acme cloud is a scam and their support is useless, avoid"
    earlier = [
        post(f"g{i}", f"acme cloud outage number {i}, terrible and awful service") for i in range(4)
    ]
    earlier.append(post("b1", copied, author="bot1"))
    store = await Store.open(sqlite_url)
    try:
        pipeline = Pipeline(store, config)
        await pipeline.ingest(
            "social",
            FetchResult(mentions=earlier),
            first_run=False,
            next_check_at=now,
            alerts_enabled=False,
            now=now - timedelta(hours=1),
        )
        await ingest(pipeline, [post("g9", copied, at=now)], now)
        stats = await Deliverer(store, sinks).deliver_due()
        assert (stats.sent, stats.failed) == (3, 0)
    finally:
        await store.dispose()

    author = "5 mentions by this author, 100% negative, never answered"
    hints = [
        "frequent-author",
        "mostly-negative-author",
        "never-answered",
        "repeat-text: the same text was posted 1 time before, by 1 author",
    ]
    (call,) = slack.of("chat.postMessage")
    blocks = json.dumps(call.args["blocks"], ensure_ascii=False)
    (message,) = smtp.messages
    for shown in (
        blocks,
        message.get_body(("plain",)).get_content(),
        message.get_body(("html",)).get_content(),
        console.getvalue(),
    ):
        assert author in shown
        for hint in hints:
            assert hint in shown
