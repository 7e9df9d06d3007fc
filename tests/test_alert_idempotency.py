"""An alert whose delivery a crash cut short is not delivered twice where the provider
allows it: Slack looks for its own message (metadata + conversations.history) before
posting again; email sends the same Message-ID. tests/test_crash.py kills real processes;
these tests cover each branch of the look-up against the local fake Slack."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from alerts.base import Alert
from alerts.email import EmailConfig, EmailSink
from alerts.slack import METADATA_EVENT_TYPE, SlackConfig, SlackSink
from monitor.store.outbox import delivery_key
from tests.helpers.fake_slack import FakeSlack, SmtpServer
from tests.helpers.servers import LocalServer


def slack_sink(slack: FakeSlack, **overrides: Any) -> SlackSink:
    config = {"token": "xoxb-test", "channel": "#brand-alerts", "api_url": slack.api_url}
    return SlackSink(SlackConfig(**{**config, **overrides}))


def alert(key: str = "7.20261206101500000000", **overrides: Any) -> Alert:
    values: dict[str, Any] = {
        "id": int(key.split(".")[0]),
        "kind": "source_dark",
        "title": "blog has gone dark",
        "reasons": ["no items for 3 days"],
        "idempotency_key": key,
    }
    return Alert(**{**values, **overrides})


async def test_every_post_carries_the_alert_key_in_its_metadata(
    local_server: LocalServer,
) -> None:
    slack = FakeSlack(local_server)
    assert (await slack_sink(slack).send(alert())).ok
    (post,) = slack.of("chat.postMessage")
    assert post.args["metadata"] == {
        "event_type": METADATA_EVENT_TYPE,
        "event_payload": {"outbox_id": 7, "key": "7.20261206101500000000"},
    }
    assert slack.of("conversations.history") == []  # no look-up on a first attempt


async def test_an_interrupted_alert_already_in_the_channel_is_not_posted_again(
    local_server: LocalServer,
) -> None:
    slack = FakeSlack(local_server)
    sink = slack_sink(slack)
    started = datetime.now(UTC)
    first = await sink.send(alert())
    again = await sink.send(alert(interrupted_at=started))
    assert again.ok and again.provider_id == first.provider_id == "C0ALERTS:1700000000.000001"
    assert len(slack.of("chat.postMessage")) == 1
    (by_name,) = slack.of("conversations.list")  # history wants the id of #brand-alerts
    assert "private_channel" in by_name.args["types"]
    (lookup,) = slack.of("conversations.history")
    assert lookup.args["channel"] == "C0ALERTS"
    assert float(lookup.args["oldest"]) < started.timestamp() < float(lookup.args["latest"])


async def test_a_channel_id_is_used_as_it_is(local_server: LocalServer) -> None:
    slack = FakeSlack(local_server)
    sink = slack_sink(slack, channel="C0ALERTS")
    started = datetime.now(UTC)
    await sink.send(alert())
    await sink.send(alert(interrupted_at=started))
    assert len(slack.of("chat.postMessage")) == 1
    assert slack.of("conversations.list") == []


async def test_an_interrupted_thread_reply_is_looked_for_in_its_thread(
    local_server: LocalServer,
) -> None:
    slack = FakeSlack(local_server)
    sink = slack_sink(slack)
    parent = await sink.send(alert("1.20261206101500000000"))
    started = datetime.now(UTC)
    reply = alert("2.20261206101600000000", kind="escalation", thread_ref=parent.provider_id)
    first = await sink.send(reply)
    again = await sink.send(
        alert(
            "2.20261206101600000000",
            kind="escalation",
            thread_ref=parent.provider_id,
            interrupted_at=started,
        )
    )
    assert again.provider_id == first.provider_id
    assert len(slack.of("chat.postMessage")) == 2
    (lookup,) = slack.of("conversations.replies")
    assert lookup.args["ts"] == "1700000000.000001"


async def test_a_message_of_another_alert_is_not_taken_for_it(local_server: LocalServer) -> None:
    slack = FakeSlack(local_server)
    sink = slack_sink(slack)
    started = datetime.now(UTC)
    await sink.send(alert("7.20261206101500000000"))
    # Same row id, another database (created at another time): a different alert.
    delivery = await sink.send(alert("7.20261101090000000000", interrupted_at=started))
    assert delivery.ok and delivery.provider_id == "C0ALERTS:1700000000.000002"
    assert len(slack.of("chat.postMessage")) == 2


async def test_the_look_up_pages_through_a_busy_channel(local_server: LocalServer) -> None:
    slack = FakeSlack(local_server)
    sink = slack_sink(slack)
    started = datetime.now(UTC)
    await sink.send(alert("1.20261206101500000000"))
    for number in range(2, 42):  # newer messages push it to the third page of 15
        await sink.send(alert(f"{number}.20261206101500000000"))
    again = await sink.send(alert("1.20261206101500000000", interrupted_at=started))
    assert again.provider_id == "C0ALERTS:1700000000.000001"
    assert len(slack.of("conversations.history")) == 3
    assert len(slack.of("chat.postMessage")) == 41


async def test_an_alert_the_interrupted_attempt_never_posted_is_posted(
    local_server: LocalServer,
) -> None:
    slack = FakeSlack(local_server)
    delivery = await slack_sink(slack).send(alert(interrupted_at=datetime.now(UTC)))
    assert delivery.ok and len(slack.of("chat.postMessage")) == 1
    assert len(slack.of("conversations.history")) == 1


async def test_an_old_message_outside_the_window_is_not_matched(
    local_server: LocalServer,
) -> None:
    slack = FakeSlack(local_server)
    sink = slack_sink(slack)
    await sink.send(alert())
    # The interrupted attempt started an hour later: whatever it posted is newer.
    delivery = await sink.send(alert(interrupted_at=datetime.now(UTC) + timedelta(hours=1)))
    assert delivery.provider_id == "C0ALERTS:1700000000.000002"


async def test_without_the_history_scope_it_posts_again_and_says_what_to_add(
    local_server: LocalServer, caplog: pytest.LogCaptureFixture
) -> None:
    slack = FakeSlack(local_server)
    sink = slack_sink(slack)
    started = datetime.now(UTC)
    await sink.send(alert())
    slack.fail("conversations.history", ("missing_scope", {}))
    with caplog.at_level(logging.WARNING, logger="alerts.slack"):
        delivery = await sink.send(alert(interrupted_at=started))
    assert delivery.ok and len(slack.of("chat.postMessage")) == 2
    (note,) = [r.getMessage() for r in caplog.records if r.name == "alerts.slack"]
    assert "conversations.history failed (missing_scope" in note
    assert "channels:history" in note and "deploy/slack-app-manifest.yaml" in note
    assert "posting it again" in note


# ---------------------------------------------------------------------------- email


async def test_email_sends_one_message_id_per_alert_however_often_it_is_sent(
    tmp_path: Path,
) -> None:
    smtp = SmtpServer(tmp_path).start()
    try:
        sink = EmailSink(EmailConfig(**smtp.config()))
        for _ in range(2):
            assert (await sink.send(alert(interrupted_at=datetime.now(UTC)))).ok
        assert (await sink.send(alert("8.20261206101500000000"))).ok
        first, repeat, other = (m["Message-ID"] for m in smtp.messages)
        assert first == repeat == "<brand-monitor.7.20261206101500000000@acme.example>"
        assert other != first
    finally:
        smtp.stop()


def test_the_delivery_key_tells_rows_of_different_databases_apart() -> None:
    created = datetime(2026, 12, 6, 10, 15, tzinfo=UTC)
    row = SimpleNamespace(id=7, created_at=created)
    assert delivery_key(row) == delivery_key(SimpleNamespace(id=7, created_at=created))
    assert delivery_key(row) != delivery_key(
        SimpleNamespace(id=7, created_at=created - timedelta(days=30))
    )
