"""The reminder ladder, Slack buttons that stop it, and answered/reopened from brand replies."""

from __future__ import annotations

import asyncio
import copy
import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from aiohttp import web
from slack_bolt.request.async_request import AsyncBoltRequest

from alerts.escalation import due_step
from alerts.slack import SlackConfig
from alerts.slack_interactive import SlackInteractive
from monitor.config import Config, EscalationConfig, WatchlistConfig
from monitor.daemon import Daemon
from monitor.mention import BrandReply, Mention
from monitor.pipeline import Pipeline
from monitor.replies import cursor_name, poll_replies
from monitor.store import Store, alert_state, events, outbox
from monitor.store import mentions as mention_store
from monitor.store import sources as source_store
from sources.base import FetchResult, Source, SourceConfig, SourceContext
from tests.helpers.fake_slack import FakeSlack
from tests.helpers.servers import LocalServer, rss

FIXTURES = Path(__file__).parent / "fixtures" / "slack"
COMPLAINT = {
    "id": "c1",
    "title": "Acme Cloud billing",
    "link": "https://forum.test/t/1",
    "text": "Acme Cloud charged me twice this month and nobody answers my tickets. Terrible, "
    "awful service, I am really angry about it.",
}


def button_payload(action_id: str, value: str) -> dict[str, Any]:
    payload = json.loads((FIXTURES / "block_actions_button.json").read_text())
    payload["actions"][0].update(action_id=action_id, value=value)
    return payload


def test_ladder_steps() -> None:
    watchlist = WatchlistConfig(name="w", query="acme", reply_within="1h")
    settings = EscalationConfig(reminders=2)
    steps = [
        due_step(timedelta(minutes=m), watchlist, settings)
        for m in (59, 60, 119, 120, 180, 240, 600)
    ]
    assert steps == [0, 1, 1, 2, 3, 4, 4]  # owner, backup, then two reminders at most
    assert WatchlistConfig(name="c", query="a", critical=True).sla == timedelta(minutes=15)


async def test_unacknowledged_escalates_in_thread_and_acknowledge_stops_it(
    local_server: LocalServer, make_daemon: Callable[..., Daemon]
) -> None:
    slack = FakeSlack(local_server)
    local_server.serve_bytes("/feed.xml", rss([COMPLAINT]))
    slack_config = {
        "token": "xoxb-test",
        "channel": "#brand-alerts",
        "api_url": slack.api_url,
        "app_token": "xapp-test",
    }
    daemon = make_daemon(
        people={
            "priya": {"name": "Priya", "slack": "UPRIYA"},
            "sam": {"name": "Sam", "slack": "USAM"},
        },
        watchlists=[
            {
                "name": "brand",
                "query": "acme",
                "owner": "priya",
                "backup": "sam",
                "reply_within": "2s",
            }
        ],
        sources=[{"type": "rss", "name": "forum", "url": local_server.url("/feed.xml")}],
        alerts={"console": {"enabled": False}, "slack": slack_config, "digest": {"enabled": False}},
    )
    await daemon.run_once()
    (first,) = slack.of("chat.postMessage")
    assert any(b["type"] == "actions" for b in first.args["blocks"])  # buttons: app_token set

    await asyncio.sleep(2.1)
    await daemon.open()
    try:
        await daemon.check_alerts()
        posts = slack.of("chat.postMessage")
        assert len(posts) == 2
        escalation = posts[1].args
        assert escalation["thread_ts"] == "1700000000.000001"  # in the alert's thread
        assert "<@UPRIYA>" in escalation["text"] and "<@USAM>" not in escalation["text"]
        assert escalation["reply_broadcast"] is False

        async with daemon.store.read() as connection:
            (mention,) = await mention_store.list_mentions(connection)
        interactive = SlackInteractive(
            daemon.store, daemon.sinks["slack"].config, daemon.check_alerts
        )  # type: ignore[arg-type]
        assert await interactive.dispatch(button_payload("bm_ack", str(mention["id"]))) == 200
        await interactive.idle()

        (update,) = slack.of("chat.update")
        assert (update.args["channel"], update.args["ts"]) == ("C0ALERTS", "1700000000.000001")
        assert "acknowledged* by <@W111>" in json.dumps(update.args["blocks"])
        async with daemon.store.read() as connection:
            log = await events.for_mention(connection, mention["id"])
        assert [(e["actor"], e["data"].get("to")) for e in log if e["kind"] == "state_changed"] == [
            ("slack:W111", "acknowledged")
        ]

        await asyncio.sleep(2.1)  # the backup's step is now due, but nobody is told
        await daemon.check_alerts()
        assert len(slack.of("chat.postMessage")) == 2
        assert len(slack.of("auth.test")) == 1  # bolt asked who it is, once
    finally:
        await daemon.close()


async def test_answer_dialog_and_wrong_sentiment_buttons(
    local_server: LocalServer, make_config: Callable[..., Config]
) -> None:
    slack = FakeSlack(local_server)
    config = make_config()
    store = await Store.open(config.database)
    try:
        pipeline = Pipeline(store, config)
        async with store.begin() as connection:
            await source_store.ensure(connection, "forum", "rss", datetime.now(UTC))
        await pipeline.ingest(
            "forum",
            FetchResult([Mention("rss:1", "https://f.test/1", text=COMPLAINT["text"])]),
            first_run=False,
            next_check_at=datetime.now(UTC),
        )
        slack_config = SlackConfig(token="xoxb-test", channel="#a", api_url=slack.api_url)
        interactive = SlackInteractive(store, slack_config)
        assert await interactive.dispatch(button_payload("bm_answered", "1")) == 200
        (opened,) = slack.of("views.open")
        view = opened.args["view"]
        assert view["private_metadata"] == "1" and opened.args["trigger_id"] == "111.222.valid"

        submission = json.loads((FIXTURES / "view_submission_modal.json").read_text())
        submission["view"].update(
            callback_id=view["callback_id"],
            private_metadata="1",
            state={
                "values": {
                    "reply_link": {
                        "url": {"type": "url_text_input", "value": "javascript:alert(1)"}
                    }
                }
            },
        )
        refused = await interactive.app.async_dispatch(
            AsyncBoltRequest(body=copy.deepcopy(submission), mode="socket_mode")
        )
        assert refused.status == 200
        assert json.loads(refused.body) == {
            "response_action": "errors",
            "errors": {"reply_link": "Use an http(s) link"},
        }
        async with store.read() as connection:
            row = await mention_store.get(connection, 1)
            log = await events.for_mention(connection, 1)
        assert row is not None and (row["state"], row["answer_url"]) == ("open", None)
        assert "state_changed" not in [e["kind"] for e in log]
        submission["view"]["state"]["values"]["reply_link"]["url"]["value"] = (
            "https://f.test/1#reply"
        )
        assert await interactive.dispatch(submission) == 200

        select = button_payload("bm_sentiment", "")
        select["actions"][0] = {
            "action_id": "bm_sentiment",
            "block_id": "mention:1",
            "type": "static_select",
            "selected_option": {"value": "1:neutral"},
            "action_ts": "1596530385.194939",
        }
        assert await interactive.dispatch(select) == 200
        async with store.read() as connection:
            row = await mention_store.get(connection, 1)
            log = await events.for_mention(connection, 1)
        assert row is not None
        assert (row["state"], row["answer_url"], row["state_by"]) == (
            "answered",
            "https://f.test/1#reply",
            "slack:W111",
        )
        assert row["sentiment"] == "neutral"
        assert [e["kind"] for e in log][-2:] == ["state_changed", "corrected"]
    finally:
        await store.dispose()


def press(message: Any, message_ref: str, action_id: str, user: str) -> dict[str, Any]:
    """The block_actions payload Slack sends when ``user`` presses a button of ``message``
    (posted as ``message_ref``, "channel:ts"): the recorded fixture with the pressed
    element, its block and its message as they were posted."""
    (actions,) = [b for b in message.args["blocks"] if b["type"] == "actions"]
    (button,) = [e for e in actions["elements"] if e["action_id"] == action_id]
    channel, ts = message_ref.split(":")
    payload = json.loads((FIXTURES / "block_actions_button.json").read_text())
    payload["user"].update(id=user, username=user.lower(), name=user.lower())
    payload["container"].update(message_ts=ts, channel_id=channel, is_ephemeral=False)
    payload["channel"]["id"] = channel
    payload["actions"] = [{**button, "block_id": actions["block_id"], "action_ts": ts}]
    return payload


async def test_assign_resolve_and_not_relevant_buttons_record_who_and_when_and_redraw(
    local_server: LocalServer, make_daemon: Callable[..., Daemon]
) -> None:
    slack = FakeSlack(local_server)
    other = {
        **COMPLAINT,
        "id": "c2",
        "link": "https://forum.test/t/2",
        "title": "Acme Cloud deleted my database",
        "text": "Acme Cloud deleted my production database during maintenance. Horrible, "
        "I lost a week of work and nobody cares.",
    }
    local_server.serve_bytes("/feed.xml", rss([COMPLAINT, other]))
    daemon = make_daemon(
        watchlists=[{"name": "brand", "query": "acme"}],
        sources=[{"type": "rss", "name": "forum", "url": local_server.url("/feed.xml")}],
        alerts={
            "console": {"enabled": False},
            "slack": {
                "token": "xoxb-test",
                "channel": "#brand-alerts",
                "api_url": slack.api_url,
                "app_token": "xapp-test",
            },
            "digest": {"enabled": False},
        },
    )
    await daemon.run_once()
    first, second = slack.of("chat.postMessage")
    await daemon.open()
    try:
        interactive = SlackInteractive(
            daemon.store,
            daemon.sinks["slack"].config,  # type: ignore[arg-type]
            daemon.check_alerts,
        )

        async def click(message: Any, action_id: str, user: str) -> tuple[dict, list, Any]:
            """Press, wait for the redraw; the mention, the press's events and the chat.update."""
            mention_id = int(message.args["blocks"][-1]["block_id"].removeprefix("mention:"))
            async with daemon.store.read() as connection:
                (alert,) = await outbox.rows_with_prefix(connection, f"mention:{mention_id}:")
            updates = len(slack.of("chat.update"))
            before = datetime.now(UTC)
            payload = press(message, alert.provider_id, action_id, user)
            assert await interactive.dispatch(payload) == 200
            await interactive.idle()
            after = datetime.now(UTC)
            async with daemon.store.read() as connection:
                mention = await mention_store.get(connection, mention_id)
                log = await events.for_mention(connection, mention_id)
            assert mention is not None
            pressed = [e for e in log if e["actor"] == f"slack:{user}"]
            assert pressed and all(before <= e["at"] <= after for e in pressed)
            assert before <= mention["state_at"] <= after
            (update,) = slack.of("chat.update")[updates:]  # the alert message, redrawn once
            assert f"{update.args['channel']}:{update.args['ts']}" == alert.provider_id
            return mention, pressed, update

        # Assign to me: assignee, acknowledged (the ladder stops), buttons stay
        mention, pressed, update = await click(first, "bm_assign", "W111")
        assert (mention["assignee"], mention["state"], mention["state_by"]) == (
            "slack:W111",
            "acknowledged",
            "slack:W111",
        )
        assert [(e["kind"], e["data"].get("to")) for e in pressed] == [
            ("assigned", "slack:W111"),
            ("state_changed", "acknowledged"),
        ]
        drawn = json.dumps(update.args["blocks"])
        assert "acknowledged* by <@W111>" in drawn and "assigned to <@W111>" in drawn
        assert any(b["type"] == "actions" for b in update.args["blocks"])

        # Resolve, by someone else: resolved by them, still assigned, no more buttons
        mention, pressed, update = await click(first, "bm_resolve", "W222")
        assert (mention["state"], mention["state_by"], mention["assignee"]) == (
            "resolved",
            "slack:W222",
            "slack:W111",
        )
        assert [(e["kind"], e["data"]) for e in pressed] == [
            ("state_changed", {"from": "acknowledged", "to": "resolved"})
        ]
        drawn = json.dumps(update.args["blocks"])
        assert "resolved* by <@W222>" in drawn and "assigned to <@W111>" in drawn
        assert not any(b["type"] == "actions" for b in update.args["blocks"])

        # Not relevant: ignored with a reason in the log, no more buttons
        mention, pressed, update = await click(second, "bm_ignore", "W333")
        assert (mention["state"], mention["state_by"]) == ("ignored", "slack:W333")
        assert [(e["kind"], e["data"]) for e in pressed] == [
            (
                "state_changed",
                {"from": "open", "to": "ignored", "reason": "not relevant (Slack)"},
            )
        ]
        assert "ignored* by <@W333>" in json.dumps(update.args["blocks"])
        assert not any(b["type"] == "actions" for b in update.args["blocks"])
    finally:
        await daemon.close()


class RepliesSource(Source):
    """Test-only: a Mastodon-like source whose replies() reads a local JSON endpoint."""

    kind = "mastodon"
    docs_url = ""

    async def replies(self, account: str, since: datetime | None) -> list[BrandReply]:
        response = await self.context.http.get(self.name, str(self.config.url))  # type: ignore[attr-defined]
        return [
            BrandReply(
                thread_key=r["thread"],
                url=r["url"],
                published_at=datetime.fromisoformat(r["at"]),
                author=account,
            )
            for r in json.loads(response.body)
        ]


class RepliesConfig(SourceConfig):
    type: str = "mastodon"
    url: str = ""


async def test_brand_reply_answers_the_thread_and_a_new_message_reopens_it(
    local_server: LocalServer, make_config: Callable[..., Config]
) -> None:
    from sources.http import HttpClient

    config = make_config(alerts={"console": {"enabled": True}, "backfill_first_poll": False})
    store = await Store.open(config.database)
    posted = datetime.now(UTC) - timedelta(minutes=30)
    replied = posted + timedelta(minutes=12)
    local_server.serve_bytes(
        "/replies",
        json.dumps(
            [
                {
                    "thread": "mastodon:t1",
                    "url": "https://m.test/@acmecloud/9",
                    "at": replied.isoformat(),
                }
            ]
        ).encode(),
        content_type="application/json",
    )
    http = HttpClient(config.http)
    try:
        pipeline = Pipeline(store, config)
        async with store.begin() as connection:
            await source_store.ensure(connection, "masto", "mastodon", datetime.now(UTC))

        async def ingest(key: str, text: str, at: datetime) -> None:
            item = Mention(
                key,
                f"https://m.test/{key}",
                text=text,
                author="carol",
                thread_key="mastodon:t1",
                published_at=at,
            )
            await pipeline.ingest(
                "masto", FetchResult([item]), first_run=False, next_check_at=datetime.now(UTC)
            )

        await ingest("mastodon:1", "acmecloud why is my invoice wrong? please help", posted)
        source = RepliesSource(
            "masto",
            RepliesConfig(url=local_server.url("/replies")),
            SourceContext(http=http, watchlists=config.watchlists, brand=config.brand),
        )
        assert await poll_replies(store, {"masto": source}, config) == 1
        assert await poll_replies(store, {"masto": source}, config) == 0  # idempotent
        async with store.read() as connection:
            row = await mention_store.get(connection, 1)
        assert row is not None and row["state"] == "answered"
        assert row["answered_at"] - row["published_at"] == timedelta(minutes=12)
        assert row["answer_url"] == "https://m.test/@acmecloud/9"

        await ingest(
            "mastodon:2", "acmecloud still wrong, this is awful", replied + timedelta(minutes=5)
        )
        async with store.read() as connection:
            row = await mention_store.get(connection, 1)
            log = await events.for_mention(connection, 1)
        assert row is not None and row["state"] == "open"
        assert "carol wrote again" in log[-1]["data"]["reason"]
        assert row["answered_at"] == replied  # time to *first* reply is kept
    finally:
        await http.close()
        await store.dispose()


def hn_hit(object_id: int, author: str, text: str, at: datetime, parent: int) -> dict[str, Any]:
    """A comment in the shape of Algolia's HN search_by_date hits (see fixtures/hackernews)."""
    return {
        "_tags": ["comment", f"author_{author}", "story_41000001"],
        "author": author,
        "comment_text": f"<p>{text}</p>",
        "created_at_i": int(at.timestamp()),
        "objectID": str(object_id),
        "parent_id": parent,
        "story_id": 41000001,
        "story_title": "Ask HN: which cloud do you use?",
    }


async def test_run_once_marks_threads_answered_from_brand_replies_before_the_checks(
    local_server: LocalServer, make_daemon: Callable[..., Daemon]
) -> None:
    """Cron installs only ever `run --once`: brand replies must be polled there too."""
    slack = FakeSlack(local_server)
    now = datetime.now(UTC)
    complaint = hn_hit(41000010, "carol", COMPLAINT["text"], now - timedelta(minutes=20), 41000001)
    brand_replies: list[dict[str, Any]] = []

    async def search_by_date(request: web.Request) -> web.Response:
        if "author_acmecloud" in request.query.get("tags", ""):
            return web.json_response({"hits": brand_replies, "nbPages": 1, "page": 0})
        return web.json_response({"hits": [complaint], "nbPages": 1, "page": 0})

    local_server.route("/hn/search_by_date", search_by_date)
    overrides = {
        "brand": {"name": "Acme Cloud", "accounts": {"hackernews": "acmecloud"}},
        "watchlists": [{"name": "brand", "query": "acme", "reply_within": "1s"}],
        "sources": [{"type": "hackernews", "name": "hn", "api_url": local_server.url("/hn")}],
        "alerts": {
            "console": {"enabled": False},
            "slack": {"token": "xoxb-test", "channel": "#brand-alerts", "api_url": slack.api_url},
            "digest": {"enabled": False},
        },
    }
    await make_daemon(**overrides).run_once()
    assert len(slack.of("chat.postMessage")) == 1  # negative: alerted at once, not answered
    assert slack.of("chat.update") == []

    reply_at = now - timedelta(minutes=5)
    brand_replies.append(hn_hit(41000020, "acmecloud", "Sorry! Refunded.", reply_at, 41000010))
    await asyncio.sleep(1.1)  # past reply_within: only the reply keeps it off the ladder
    # The next cron run comes after the source's minimum reply interval (not seconds later).
    store = await Store.open(make_daemon(**overrides).config.database)
    try:
        async with store.begin() as connection:
            name = cursor_name("hn", "acmecloud")
            cursor = await alert_state.get_cursor(connection, name) or {}
            earlier = datetime.now(UTC) - timedelta(hours=1)
            await alert_state.set_cursor(
                connection, name, {**cursor, "checked_at": earlier.isoformat()}, earlier
            )
    finally:
        await store.dispose()
    await make_daemon(**overrides).run_once()
    assert len(slack.of("chat.postMessage")) == 1  # no escalation for an answered thread
    (update,) = slack.of("chat.update")
    assert update.args["ts"] == "1700000000.000001"
    assert "answered" in json.dumps(update.args["blocks"])
    store = await Store.open(make_daemon(**overrides).config.database)
    try:
        async with store.read() as connection:
            (mention,) = await mention_store.list_mentions(connection)
    finally:
        await store.dispose()
    assert (mention["state"], mention["answer_url"]) == (
        "answered",
        "https://news.ycombinator.com/item?id=41000020",
    )
    assert mention["answered_at"] == reply_at.replace(microsecond=0)
