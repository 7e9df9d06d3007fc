"""The outbox worker: a failing sink is reported through the others, once, and its recovery too."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta

from alerts.console import ConsoleConfig, ConsoleSink
from alerts.slack import SlackConfig, SlackSink
from monitor.delivery import Deliverer
from monitor.store import Store, outbox
from monitor.store.outbox import OutboxItem
from tests.helpers.fake_slack import FakeSlack
from tests.helpers.servers import LocalServer


async def test_failing_sink_is_reported_through_a_working_one(
    local_server: LocalServer, database_url: str
) -> None:
    slack = FakeSlack(local_server)
    slack.fail("chat.postMessage", *[(500, {})] * 3)
    console = io.StringIO()
    sinks = {
        "slack": SlackSink(
            SlackConfig(token="xoxb-t", channel="#a", api_url=slack.api_url, max_retries=0)
        ),
        "console": ConsoleSink(ConsoleConfig(), stream=console),
    }
    store = await Store.open(database_url)
    try:
        now = datetime.now(UTC)
        async with store.begin() as connection:
            await outbox.enqueue(
                connection,
                [
                    OutboxItem(f"storm:w:1:{sink}", "storm", sink, {"title": "Storm"})
                    for sink in sinks
                ],
                now,
            )
        deliverer = Deliverer(store, sinks, report_after=3)
        for attempt in range(5):  # three failures, then Slack works again
            await deliverer.deliver_due(now=now + timedelta(hours=attempt + 1))
        output = console.getvalue()
        assert output.count("slack alerts are not being delivered") == 1
        assert "slack: chat.postMessage failed: internal_error" in output
        assert output.count("slack alerts are delivered again") == 1
        assert len(slack.of("chat.postMessage")) == 4
        async with store.read() as connection:
            assert (await outbox.counts(connection)).get("pending", 0) == 0
    finally:
        await store.dispose()
