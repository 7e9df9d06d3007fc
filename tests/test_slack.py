"""Slack sink against a local fake of the Slack Web API: escaping, retries, errors, webhook."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from typing import Any

from alerts.base import Alert, Person
from alerts.slack import SlackConfig, SlackSink
from alerts.slack_blocks import group_blocks
from monitor.delivery import MAX_RETRY_DELAY, Deliverer, retry_delay
from monitor.store import Store, outbox
from monitor.store.outbox import OutboxItem
from tests.helpers.fake_slack import FakeSlack
from tests.helpers.servers import LocalServer

HOSTILE = (
    "<!channel> <!here> <@U0BOSS> look at <http://evil.test|https://acme.example/login> "
    "& <script>alert(1)</script> acme cloud is a scam >:( \u202eevil"
)


def hostile_mention(**overrides: Any) -> dict[str, Any]:
    mention = {
        "id": 7,
        "source": "blog",
        "platform": "rss",
        "title": "",
        "text": HOSTILE,
        "url": "https://blog.test/x|<!channel>",
        "author": "<@U0BOSS> & co",
        "author_url": "javascript:alert(1)",
        "language": "hi",
        "state": "open",
        "state_by": "daemon",
        "state_at": datetime.now(UTC),
        "spans": [[HOSTILE.index("acme cloud"), HOSTILE.index("acme cloud") + 10]],
        "signals": {
            "author_mentions": 4,
            "author_negative_share": 0.75,
            "author_answered": False,
            "same_text_count": 2,
            "same_text_authors": 2,
            "link_only": True,
            "hints": ["link-only", "never-answered", "repeat-text"],
        },
    }
    mention.update(overrides)
    return mention


def sink(slack: FakeSlack, **overrides: Any) -> SlackSink:
    config = {
        "token": "xoxb-test",
        "channel": "#brand-alerts",
        "api_url": slack.api_url,
        **overrides,
    }
    return SlackSink(SlackConfig(**config))


def alert(**overrides: Any) -> Alert:
    values: dict[str, Any] = {
        "id": 1,
        "kind": "mention",
        "title": "Negative mention on rss (brand)",
        "reasons": ["negative 0.93", "needs reply"],
        "mention": hostile_mention(),
        "people": [Person("priya", "Priya", "UPRIYA")],
        "body": {"reply_within": "1h"},
    }
    values.update(overrides)
    return Alert(**values)


async def test_mention_text_cannot_ping_or_disguise_links(local_server: LocalServer) -> None:
    slack = FakeSlack(local_server)
    delivery = await sink(slack).send(alert())
    assert delivery.ok and delivery.provider_id == "C0ALERTS:1700000000.000001"
    (call,) = slack.of("chat.postMessage")
    body = call.raw.decode()  # the request exactly as Slack would receive it
    sent = json.loads(body)
    everything = sent["text"] + json.dumps(sent["blocks"], ensure_ascii=False)
    for control in (
        "<!channel>",
        "<!here>",
        "<@U0BOSS>",
        "<http://evil.test|",
        "<script>",
        "\u202e",
    ):
        assert control not in everything, control
    assert "&lt;!channel&gt;" in everything and "&amp; co" in everything
    assert "*acme cloud*" in everything  # the matched term is highlighted
    assert "javascript:" not in everything  # the author link was dropped
    assert "<https://blog.test/x%7C%3C!channel%3E|Open the post ↗>" in everything
    assert "<@UPRIYA>" in everything  # people from config are real mentions
    assert "4 mentions by this author, 75% negative, never answered" in everything
    assert (
        "link-only: little more than links · never-answered · repeat-text: the same " in everything
    )
    assert "written in Hindi" in everything
    assert sent["link_names"] is False and sent["parse"] == "none"


async def test_rate_limit_then_server_error_then_ok_is_delivered_once(
    local_server: LocalServer, sqlite_url: str
) -> None:
    slack = FakeSlack(local_server)
    slack.fail("chat.postMessage", (429, {"Retry-After": "0"}), (500, {}))
    store = await Store.open(sqlite_url)
    try:
        async with store.begin() as connection:
            await outbox.enqueue(
                connection,
                [
                    OutboxItem(
                        "storm:brand:x:slack", "storm", "slack", {"title": "Storm", "reasons": []}
                    )
                ],
                datetime.now(UTC),
            )
        stats = await Deliverer(store, {"slack": sink(slack)}).deliver_due()
        assert (stats.sent, stats.retried) == (1, 0)
        assert len(slack.of("chat.postMessage")) == 3  # 429, 500, then 200: one message
        assert await Deliverer(store, {"slack": sink(slack)}).deliver_due() is not None
        assert len(slack.of("chat.postMessage")) == 3
        async with store.read() as connection:
            assert await outbox.counts(connection) == {"sent": 1}
    finally:
        await store.dispose()


async def test_errors_teach_and_permanent_ones_are_marked(local_server: LocalServer) -> None:
    slack = FakeSlack(local_server)
    slack.fail(
        "chat.postMessage", ("not_in_channel", {}), ("channel_not_found", {}), ("invalid_auth", {})
    )
    slack_sink = sink(slack, token="xoxb-very-secret-token")
    first = await slack_sink.send(alert())
    assert (
        first.error
        == "slack: chat.postMessage failed: not_in_channel — invite the bot to #brand-alerts"
    )
    assert not first.permanent
    second = await slack_sink.send(alert(target="#support"))
    assert second.permanent and "channel_not_found" in second.error and "#support" in second.error
    third = await slack_sink.send(alert())
    assert third.permanent and "check alerts.slack.token" in third.error
    assert "very-secret" not in third.error + repr(slack_sink.config)


async def test_webhook_mode_posts_without_threads_or_buttons(local_server: LocalServer) -> None:
    slack = FakeSlack(local_server)
    calls: list[bytes] = []

    async def hook(request: Any) -> Any:
        from aiohttp import web

        calls.append(await request.read())
        return web.Response(text="ok")

    local_server.route("/hook", hook)
    webhook = SlackSink(SlackConfig(webhook_url=local_server.url("/hook")))
    delivery = await webhook.send(alert(thread_ref="C1:1.2"))
    assert delivery.ok
    sent = json.loads(calls[0])
    assert "thread_ts" not in sent and not any(b["type"] == "actions" for b in sent["blocks"])
    assert "<!channel>" not in calls[0].decode()
    assert (await webhook.update(alert(), "webhook-1")).ok and slack.calls == []


async def test_a_long_retry_after_goes_back_to_the_outbox_for_exactly_that_long(
    local_server: LocalServer, sqlite_url: str
) -> None:
    """Waiting 120 s inside the call would outlive the send timeout (30 s) and then be
    retried after a generic 2 s; the outbox waits what Slack asked instead."""
    slack = FakeSlack(local_server)
    slack.fail("chat.postMessage", (429, {"Retry-After": "120"}))
    store = await Store.open(sqlite_url)
    try:
        async with store.begin() as connection:
            await outbox.enqueue(
                connection,
                [OutboxItem("storm:brand:y:slack", "storm", "slack", {"title": "Storm"})],
                datetime.now(UTC),
            )
        deliverer = Deliverer(store, {"slack": sink(slack)})
        before = datetime.now(UTC)
        async with asyncio.timeout(10):  # not SEND_TIMEOUT_S, and not 120 s
            stats = await deliverer.deliver_due()
        after = datetime.now(UTC)
        assert (stats.sent, stats.retried) == (0, 1)
        assert len(slack.of("chat.postMessage")) == 1  # no retry inside the call
        async with store.read() as connection:
            row = await outbox.row(connection, "storm:brand:y:slack")
        assert row.status == "pending"
        assert before + timedelta(seconds=120) <= row.next_attempt_at
        assert row.next_attempt_at <= after + timedelta(seconds=120)
        assert row.last_error.startswith(
            "slack: chat.postMessage failed: rate limited — retrying in 120s as Slack asked"
        )

        assert (await deliverer.deliver_due(now=before + timedelta(seconds=119))).sent == 0
        assert len(slack.of("chat.postMessage")) == 1
        assert (await deliverer.deliver_due(now=after + timedelta(seconds=120))).sent == 1
        async with store.read() as connection:
            assert await outbox.counts(connection) == {"sent": 1}
    finally:
        await store.dispose()


def test_retry_delay_is_what_the_service_asked_for_whatever_the_attempt() -> None:
    asked = timedelta(seconds=120)
    assert [retry_delay(n, asked) for n in (1, 4, 8, 20)] == [asked] * 4
    assert retry_delay(3, timedelta(hours=2)) == timedelta(hours=2)  # beyond the cap
    assert retry_delay(3, timedelta(0)) == timedelta(seconds=1)  # never a busy loop
    assert [retry_delay(n) for n in (1, 2, 3)] == [timedelta(seconds=s) for s in (2, 4, 8)]
    assert retry_delay(20) == MAX_RETRY_DELAY


def test_a_storm_lists_its_first_mentions_and_counts_the_rest() -> None:
    listed = [{**hostile_mention(), "id": i, "text": f"down again {i}"} for i in range(15)]
    storm = alert(
        kind="storm",
        title="Storm on brand",
        mention=None,
        body={"mention_ids": list(range(15)), "mention_count": 51},
        group=listed,
    )
    text = json.dumps(group_blocks(storm), ensure_ascii=False)
    assert "down again 14" in text
    assert "…and 36 more" in text
    # an older row without a count: its list is the whole group
    older = alert(
        kind="batch", title="7 more", mention=None, body={"mention_ids": [1, 2]}, group=listed[:2]
    )
    assert "more:" not in json.dumps(group_blocks(older), ensure_ascii=False)
