"""SIGKILL at the worst moments, then restart: no stored mention is lost, no alert is left
unsent, and no alert is repeated but the one in flight — on Slack and email not even that.

Kills land on named crash points (``MONITOR_TEST_CRASH_AT``, monitor/crashpoints.py), so
each test dies exactly where it means to. The feed answers ``If-None-Match`` with 304, as
real feeds do: a source cursor (here the ETag) saved ahead of its mentions really loses
them, because the restarted daemon is then told "nothing new". Kills timed from outside
stay as the ``stress`` variants (`make stress`).
"""

from __future__ import annotations

import asyncio
import random
import re
import signal
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from sqlalchemy import func, select

from monitor.crashpoints import ENV as CRASH_AT
from monitor.store import Store, outbox
from monitor.store import sources as source_store
from monitor.store.tables import alert_outbox, mentions
from tests.conftest import base_config_dict, deep_merge
from tests.helpers.fake_slack import FakeSlack, SmtpServer
from tests.helpers.process import MonitorProcess, run_monitor, write_config
from tests.helpers.servers import LocalServer, rss

ITEMS = 150
# The alert a delivery crash interrupts (the 40th sent).
IN_FLIGHT = 40
ALERT_ID = re.compile(r"^id:\s+(\d+)", re.MULTILINE)
COMPLAINT = "Acme Cloud deleted my project and support is useless. Awful, terrible, I am furious."
VOCABULARY = [
    *("invoice", "billing", "outage", "login", "dashboard", "export", "backup", "restore"),
    *("latency", "region", "migration", "api", "webhook", "quota", "storage", "bucket"),
    *("upload", "download", "refund", "upgrade", "downgrade", "plan", "seat", "admin"),
    *("token", "password", "reset", "email", "phone", "chat", "ticket", "escalation"),
]


def complaints(count: int) -> list[dict[str, Any]]:
    """Distinct complaints (identical texts would rightly be folded into one mention)."""
    return [
        {
            "id": f"c-{i}",
            "title": f"Acme Cloud problem {i}",
            "link": f"https://blog.test/{i}",
            "text": f"{COMPLAINT} {' '.join(random.Random(i).sample(VOCABULARY, 8))}",
        }
        for i in range(count)
    ]


class EtagFeed:
    """An RSS feed with an ETag that answers a matching ``If-None-Match`` with 304."""

    etag = '"feed-v1"'

    def __init__(self, server: LocalServer, items: list[dict[str, Any]]) -> None:
        self.body = rss(items)
        self.full = 0
        self.not_modified = 0
        self.url = server.url("/feed")
        server.route("/feed", self.handle)

    async def handle(self, request: web.Request) -> web.Response:
        if request.headers.get("If-None-Match") == self.etag:
            self.not_modified += 1
            return web.Response(status=304, headers={"ETag": self.etag})
        self.full += 1
        return web.Response(
            body=self.body, content_type="application/rss+xml", headers={"ETag": self.etag}
        )


@dataclass
class Stored:
    mentions: int
    etag: str | None
    outbox: dict[str, int]


async def stored(database: str) -> Stored:
    store = await Store.open(database)
    try:
        async with store.read() as connection:
            count = await connection.scalar(select(func.count()).select_from(mentions))
            state = await source_store.load(connection, "blog")
            statuses = await outbox.counts(connection)
    finally:
        await store.dispose()
    return Stored(int(count or 0), state.etag, statuses)


async def provider_ids(database: str) -> list[str | None]:
    store = await Store.open(database)
    try:
        async with store.read() as connection:
            rows = await connection.execute(
                select(alert_outbox.c.provider_id).order_by(alert_outbox.c.id)
            )
            return [row.provider_id for row in rows]
    finally:
        await store.dispose()


def crash_config(tmp_path: Path, feed: EtagFeed, alerts: dict[str, Any] | None = None) -> Path:
    database = f"sqlite+aiosqlite:///{tmp_path / 'monitor.db'}"
    config = deep_merge(
        base_config_dict(database),
        {
            "sources": [{"type": "rss", "name": "blog", "url": feed.url, "every": "0.5s"}],
            "daemon": {"tick": "0.1s", "deliver_every": "0.05s"},
            # One alert per mention, so every alert can be accounted for individually.
            "alerts": {"storm": {"enabled": False}, "batch": {"max_alerts": ITEMS}},
        },
    )
    if alerts:
        config["alerts"].update(alerts)
    return write_config(tmp_path / "config.yaml", config)


def alerted_ids(*outputs: str) -> Counter[int]:
    return Counter(int(m) for text in outputs for m in ALERT_ID.findall(text))


async def crash_at(tmp_path: Path, path: Path, point: str) -> str:
    """`run --once` until it kills itself at ``point``; returns what it printed."""
    code, out, err = await run_monitor(
        tmp_path, "run", "--once", "-c", str(path), env={CRASH_AT: point}
    )
    assert code == -signal.SIGKILL, f"the crash point {point} was never reached:\n{err}"
    assert f"crash point {point.split(':')[0]} reached" in err
    return out


async def restart(tmp_path: Path, path: Path) -> tuple[str, str]:
    code, out, err = await run_monitor(tmp_path, "run", "--once", "-c", str(path))
    assert code == 0, err
    assert "Traceback" not in err
    return out, err


@pytest.mark.parametrize("point", ["after_fetch", "mid_ingest"])
async def test_a_crash_before_mentions_commit_leaves_the_cursor_behind_them(
    tmp_path: Path, local_server: LocalServer, point: str
) -> None:
    feed = EtagFeed(local_server, complaints(ITEMS))
    path = crash_config(tmp_path, feed)
    database = f"sqlite+aiosqlite:///{tmp_path / 'monitor.db'}"

    await crash_at(tmp_path, path, point)
    before = await stored(database)
    # A cursor saved ahead of its mentions shows here: the ETag stored, the mentions not.
    assert (before.mentions, before.etag, before.outbox) == (0, None, {})

    out, _ = await restart(tmp_path, path)
    after = await stored(database)
    assert (after.mentions, after.etag) == (ITEMS, feed.etag), "a mention the feed served was lost"
    assert after.outbox == {"sent": ITEMS}
    assert set(alerted_ids(out)) == set(range(1, ITEMS + 1))
    assert (feed.full, feed.not_modified) == (2, 0)  # the restart fetched everything again

    # The ETag really is used: another run is told "nothing new". Without this, the test
    # could not tell a cursor saved too early from one saved in time.
    out, _ = await restart(tmp_path, path)
    assert feed.not_modified == 1 and alerted_ids(out) == Counter()
    assert (await stored(database)).mentions == ITEMS


@pytest.mark.parametrize("point", ["after_send", "before_mark_sent"])
async def test_a_crash_mid_delivery_repeats_only_the_console_alert_in_flight(
    tmp_path: Path, local_server: LocalServer, point: str
) -> None:
    feed = EtagFeed(local_server, complaints(ITEMS))
    path = crash_config(tmp_path, feed)
    database = f"sqlite+aiosqlite:///{tmp_path / 'monitor.db'}"

    first_out = await crash_at(tmp_path, path, f"{point}:{IN_FLIGHT}")
    before = await stored(database)
    assert (before.mentions, before.etag) == (ITEMS, feed.etag)
    assert before.outbox == {"sent": IN_FLIGHT - 1, "sending": 1, "pending": ITEMS - IN_FLIGHT}
    in_flight = ALERT_ID.findall(first_out)[-1]  # printed, then killed before it was recorded

    out, err = await restart(tmp_path, path)
    assert "outbox: 1 alerts were being sent when the daemon stopped" in err
    after = await stored(database)
    assert after.mentions == ITEMS and after.outbox == {"sent": ITEMS}
    delivered = alerted_ids(first_out, out)
    assert set(delivered) == set(range(1, ITEMS + 1)), "an alert was never delivered"
    # The console cannot look back at what it printed: the documented single repeat.
    assert {m: n for m, n in delivered.items() if n > 1} == {int(in_flight): 2}


async def test_a_slack_alert_posted_just_before_a_crash_is_not_posted_again(
    tmp_path: Path, local_server: LocalServer
) -> None:
    slack = FakeSlack(local_server)
    feed = EtagFeed(local_server, complaints(1))
    slack_config = {"token": "xoxb-test", "channel": "#brand-alerts", "api_url": slack.api_url}
    path = crash_config(tmp_path, feed, {"console": {"enabled": False}, "slack": slack_config})
    database = f"sqlite+aiosqlite:///{tmp_path / 'monitor.db'}"

    await crash_at(tmp_path, path, "after_send")
    assert len(slack.of("chat.postMessage")) == 1
    assert (await stored(database)).outbox == {"sending": 1}

    _, err = await restart(tmp_path, path)
    assert len(slack.of("chat.postMessage")) == 1, "the alert was posted to Slack twice"
    (lookup,) = slack.of("conversations.history")
    assert lookup.args["channel"] == "C0ALERTS" and lookup.args["include_all_metadata"] == "1"
    assert "was already posted before the restart" in err
    assert (await stored(database)).outbox == {"sent": 1}
    assert await provider_ids(database) == ["C0ALERTS:1700000000.000001"]


async def test_an_email_repeated_after_a_crash_keeps_its_message_id(
    tmp_path: Path, local_server: LocalServer
) -> None:
    smtp = SmtpServer(tmp_path).start()
    try:
        feed = EtagFeed(local_server, complaints(1))
        path = crash_config(tmp_path, feed, {"console": {"enabled": False}, "email": smtp.config()})
        database = f"sqlite+aiosqlite:///{tmp_path / 'monitor.db'}"

        await crash_at(tmp_path, path, "after_send")
        await restart(tmp_path, path)
        # SMTP cannot be asked what it already took, so the mail goes out again — as the
        # same message: mail clients thread it as one and many keep a single copy.
        first, again = smtp.messages
        assert first["Message-ID"] == again["Message-ID"]
        assert await provider_ids(database) == [first["Message-ID"]]
    finally:
        smtp.stop()


# ------------------------------------------------------------------------------ stress


async def kill_when(tmp_path: Path, path: Path, *, after_alerts: int, extra_delay_s: float) -> str:
    """A real daemon, SIGKILLed from outside once ``after_alerts`` alerts were printed."""
    first = await MonitorProcess(tmp_path, "run", "-c", str(path), name="killed").start()
    try:
        await first.wait_for_log("started:")
        # Another process's output: there is no event to wait on, so poll it.
        while sum(alerted_ids(first.stdout).values()) < after_alerts:  # noqa: ASYNC110
            await asyncio.sleep(0.005)
        await asyncio.sleep(extra_delay_s)
        first.send(signal.SIGKILL)
        assert await first.wait(10) == -signal.SIGKILL
    finally:
        await first.kill()
    return first.stdout


@pytest.mark.stress
@pytest.mark.timeout(600)
@pytest.mark.parametrize("iteration", range(20))
async def test_sigkill_at_random_moments_stress(
    tmp_path: Path, local_server: LocalServer, iteration: int
) -> None:
    rng = random.Random(iteration)
    feed = EtagFeed(local_server, complaints(ITEMS))
    path = crash_config(tmp_path, feed)
    database = f"sqlite+aiosqlite:///{tmp_path / 'monitor.db'}"
    first_out = await kill_when(
        tmp_path, path, after_alerts=rng.randrange(0, ITEMS), extra_delay_s=rng.uniform(0, 0.05)
    )
    before = await stored(database)
    assert before.mentions in (0, ITEMS)
    assert (before.etag is None) == (before.mentions == 0), "cursor and mentions disagree"

    out, _ = await restart(tmp_path, path)
    after = await stored(database)
    assert after.mentions == ITEMS and after.outbox == {"sent": ITEMS}
    delivered = alerted_ids(first_out, out)
    assert set(delivered) == set(range(1, ITEMS + 1)), "an alert was never delivered"
    repeats = [mention_id for mention_id, count in delivered.items() if count > 1]
    assert len(repeats) <= 1 and all(delivered[m] == 2 for m in repeats), repeats


@pytest.mark.stress
@pytest.mark.timeout(600)
@pytest.mark.parametrize("iteration", range(12))
async def test_crash_points_at_random_counts_stress(
    tmp_path: Path, local_server: LocalServer, iteration: int
) -> None:
    rng = random.Random(1000 + iteration)
    point = ("after_send", "before_mark_sent")[iteration % 2]
    nth = rng.randrange(1, ITEMS + 1)
    feed = EtagFeed(local_server, complaints(ITEMS))
    path = crash_config(tmp_path, feed)
    database = f"sqlite+aiosqlite:///{tmp_path / 'monitor.db'}"
    first_out = await crash_at(tmp_path, path, f"{point}:{nth}")
    assert (await stored(database)).outbox.get("sending") == 1
    out, _ = await restart(tmp_path, path)
    delivered = alerted_ids(first_out, out)
    assert set(delivered) == set(range(1, ITEMS + 1))
    assert [m for m, n in delivered.items() if n > 1] == [int(ALERT_ID.findall(first_out)[-1])]
