"""Acceptance, end to end: `monitor run --once` against local feeds, a fake Slack API and a
real SMTP server (STARTTLS with a test certificate)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from alerts.digest import enqueue_digest
from monitor.daemon import Daemon
from monitor.store import Store, outbox
from monitor.store import mentions as mention_store
from monitor.store import sources as source_store
from tests.helpers.fake_slack import FakeSlack, SmtpServer
from tests.helpers.servers import LocalServer, rss

NEGATIVE = {
    "id": "n1",
    "title": "Acme Cloud ate my data",
    "link": "https://blog.test/acme-lost-my-files",
    "text": "Acme Cloud lost my files and support is useless. Awful, terrible experience, "
    "I am furious.",
}
POSITIVE = {
    "id": "p1",
    "title": "Shout-out to Acme Cloud",
    "link": "https://blog.test/acme-praise",
    "text": "I love Acme Cloud, brilliant support and a wonderful, fast product. Thank you!",
}


@pytest.fixture
def smtp(tmp_path: Path) -> Iterator[SmtpServer]:
    server = SmtpServer(tmp_path).start()
    yield server
    server.stop()


def alert_config(slack: FakeSlack, smtp: SmtpServer, **alerts: Any) -> dict[str, Any]:
    return {
        "console": {"enabled": False},
        "slack": {"token": "xoxb-test", "channel": "#brand-alerts", "api_url": slack.api_url},
        "email": smtp.config(),
        "digest": {"enabled": False},
        "backfill_first_poll": False,
        **alerts,
    }


def feeds(local_server: LocalServer, *names: str) -> list[dict[str, Any]]:
    return [
        {"type": "rss", "name": name, "url": local_server.url(f"/{name}.xml"), "every": "1m"}
        for name in names
    ]


async def test_negative_alerts_once_everywhere_and_positive_waits_for_the_digest(
    local_server: LocalServer, smtp: SmtpServer, make_daemon: Callable[..., Daemon]
) -> None:
    slack = FakeSlack(local_server)
    local_server.serve_bytes("/blog.xml", rss([NEGATIVE]))
    local_server.serve_bytes("/news.xml", rss([]))
    config = {"sources": feeds(local_server, "blog", "news"), "alerts": alert_config(slack, smtp)}
    daemon = make_daemon(**config)
    await daemon.run_once()
    assert len(slack.of("chat.postMessage")) == 1
    assert len(smtp.messages) == 1
    assert "Negative mention on rss (brand)" in str(smtp.messages[0]["Subject"])

    # the same article again in its own feed and through another feed: no new alert
    local_server.serve_bytes(
        "/news.xml",
        rss([{**NEGATIVE, "id": "syndicated", "link": NEGATIVE["link"] + "?utm_source=x"}]),
    )
    local_server.serve_bytes("/blog.xml", rss([NEGATIVE, POSITIVE]))
    again = make_daemon(config=daemon.config)
    await again.run_once()
    assert len(slack.of("chat.postMessage")) == 1
    assert len(smtp.messages) == 1

    store = await Store.open(daemon.config.database)
    try:
        async with store.read() as connection:
            stored = {m["title"]: m for m in await mention_store.list_mentions(connection)}
        assert set(stored) == {NEGATIVE["title"], POSITIVE["title"]}
        assert stored[POSITIVE["title"]]["sentiment"] == "positive"
        # the digest lists the positive mention as one to thank
        digest_config = daemon.config.model_copy(deep=True)
        digest_config.alerts.digest.enabled = True
        now = datetime.now(UTC)
        async with store.begin() as connection:
            from monitor.store import alert_state

            await alert_state.set_cursor(connection, "digest", {"last_date": "x"}, now)
            digest_config.alerts.digest.at = (now - timedelta(minutes=1)).astimezone(UTC).time()
            if now.time() < digest_config.alerts.digest.at:  # just after midnight UTC
                digest_config.alerts.digest.at = now.time().replace(hour=0, minute=0)
            assert await enqueue_digest(connection, digest_config, ["slack", "email"], now) == 2
    finally:
        await store.dispose()
    final = make_daemon(config=digest_config)
    await final.run_once()
    digests = slack.of("chat.postMessage")[1:]
    assert len(digests) == 1
    digest_text = str(digests[0].args["blocks"])
    assert "Praise — thank them" in digest_text and "Shout-out to Acme Cloud" in digest_text
    assert "Daily digest" in str(smtp.messages[-1]["Subject"]) and len(smtp.messages) == 2


async def test_smtp_down_then_back_and_nothing_lost_across_a_restart(
    tmp_path: Path, local_server: LocalServer, make_daemon: Callable[..., Daemon]
) -> None:
    slack = FakeSlack(local_server)
    smtp = SmtpServer(tmp_path)  # not started: connection refused
    local_server.serve_bytes("/blog.xml", rss([NEGATIVE]))
    daemon = make_daemon(sources=feeds(local_server, "blog"), alerts=alert_config(slack, smtp))
    await daemon.run_once()
    assert len(slack.of("chat.postMessage")) == 1 and smtp.messages == []
    store = await Store.open(daemon.config.database)
    try:
        async with store.read() as connection:
            (row,) = [
                r
                for r in await outbox.due(
                    connection, datetime.now(UTC) + timedelta(hours=1), ["email"]
                )
            ]
        assert "cannot reach 127.0.0.1" in row.last_error and "alerts.email.host" in row.last_error
        smtp.start()
        try:
            restarted = make_daemon(config=daemon.config)  # a new process, same database
            await restarted.open()
            try:
                stats = await restarted.deliverer.deliver_due(
                    now=datetime.now(UTC) + timedelta(hours=1)
                )
            finally:
                await restarted.close()
            assert stats.sent == 1
            assert len(smtp.messages) == 1 and len(slack.of("chat.postMessage")) == 1
        finally:
            smtp.stop()
        async with store.read() as connection:
            assert await outbox.counts(connection) == {"sent": 2}
    finally:
        await store.dispose()


async def test_source_dark_is_alerted_once_then_recovered(
    local_server: LocalServer, smtp: SmtpServer, make_daemon: Callable[..., Daemon]
) -> None:
    slack = FakeSlack(local_server)
    local_server.serve_bytes("/blog.xml", rss([]))
    daemon = make_daemon(sources=feeds(local_server, "blog"), alerts=alert_config(slack, smtp))
    await daemon.run_once()
    store = await Store.open(daemon.config.database)
    try:
        async with store.begin() as connection:
            await source_store.set_dark(connection, "blog", datetime.now(UTC) - timedelta(days=2))
            await source_store.record_failure(
                connection,
                "blog",
                "blog: HTTP 404 — check sources[0].url",
                now=datetime.now(UTC),
                next_check_at=datetime.now(UTC) + timedelta(hours=1),
                retry_after_until=None,
            )
        for _ in range(2):
            again = make_daemon(config=daemon.config)
            await again.open()
            try:
                await again.check_alerts()
            finally:
                await again.close()
        posts = slack.of("chat.postMessage")
        assert len(posts) == 1 and "has gone dark" in posts[0].args["text"]
        assert "check sources[0].url" in str(posts[0].args["blocks"])
        async with store.begin() as connection:
            await source_store.set_dark(connection, "blog", None)
        again = make_daemon(config=daemon.config)
        await again.open()
        try:
            await again.check_alerts()
        finally:
            await again.close()
        posts = slack.of("chat.postMessage")
        assert len(posts) == 2 and "recovered" in posts[1].args["text"]
        assert posts[1].args["thread_ts"] == "1700000000.000001"  # in the dark notice's thread
    finally:
        await store.dispose()
