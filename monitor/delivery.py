"""Outbox worker: deliver pending alerts through their sinks, record every attempt.

Each sink is served independently, so a Slack outage never delays email. Transient
failures retry with capped exponential backoff, forever: an alert is never dropped.
Permanent failures (bad token, unknown channel) are parked as `failed`, reported in
health, and retried after a config reload. A sink that fails
``sink_failures_before_report`` times in a row is reported through every other sink,
once per outage, and again when it recovers.

Delivery is at-least-once: a crash after a sink accepted an alert but before
``mark_sent`` committed leaves its row in ``sending``; after the restart the sink is told
(``Alert.interrupted_at``) and may find its earlier message instead of sending it again
(Slack does, email reuses the same Message-ID); others (the console) repeat that one alert.
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from alerts.base import Alert, AlertSink, Delivery, Person
from alerts.context import stored_signals
from monitor.crashpoints import crash_point
from monitor.store import Store, alert_state, events, outbox
from monitor.store import mentions as mention_store
from monitor.store.outbox import OutboxItem
from monitor.store.tables import mention_matches

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncConnection

    from monitor.config import PersonConfig

log = logging.getLogger(__name__)

SEND_TIMEOUT_S = 30.0
MAX_RETRY_DELAY = timedelta(minutes=30)
# A "Retry-After: 0" must not turn into a busy loop.
MIN_RETRY_DELAY = timedelta(seconds=1)
# An escalation waits for the alert it threads under; poll for it this often.
THREAD_PARENT_WAIT = timedelta(seconds=5)


def retry_delay(attempts: int, retry_after: timedelta | None = None) -> timedelta:
    """Exactly the wait the service asked for (Slack's Retry-After), even beyond the cap;
    otherwise capped exponential backoff."""
    if retry_after is not None:
        return max(retry_after, MIN_RETRY_DELAY)
    return min(timedelta(seconds=2) * (2 ** min(max(attempts - 1, 0), 12)), MAX_RETRY_DELAY)


@dataclass(slots=True)
class SinkHealth:
    consecutive_failures: int = 0
    last_error: str = ""
    last_ok_at: datetime | None = None
    reported_down: bool | None = None  # None: not read from the store yet


@dataclass(slots=True)
class DeliveryStats:
    sent: int = 0
    retried: int = 0
    failed: int = 0
    errors: list[str] = field(default_factory=list)


class Deliverer:
    def __init__(
        self,
        store: Store,
        sinks: dict[str, AlertSink],
        people: Mapping[str, PersonConfig] | None = None,
        *,
        report_after: int = 3,
    ) -> None:
        self.store = store
        self.sinks = sinks
        self.people = dict(people or {})
        self.report_after = report_after
        self.health: dict[str, SinkHealth] = defaultdict(SinkHealth)
        self.totals = DeliveryStats()
        self._lock = asyncio.Lock()

    async def deliver_due(self, now: datetime | None = None, limit: int = 50) -> DeliveryStats:
        """One pass over due alerts; concurrent across sinks, in order within one sink."""
        async with self._lock:
            now = now or datetime.now(UTC)
            async with self.store.read() as connection:
                rows = await outbox.due(connection, now, list(self.sinks), limit)
            by_sink: dict[str, list[Any]] = defaultdict(list)
            for row in rows:
                by_sink[row.sink].append(row)
            results = await asyncio.gather(
                *(self._deliver_sink(sink, items) for sink, items in by_sink.items())
            )
            stats = DeliveryStats()
            for result in results:
                stats.sent += result.sent
                stats.retried += result.retried
                stats.failed += result.failed
                stats.errors += result.errors
            self.totals.sent += stats.sent
            self.totals.retried += stats.retried
            self.totals.failed += stats.failed
            return stats

    async def flush(self, timeout: timedelta) -> int:
        """Deliver until nothing is due or ``timeout`` passes; return how many are still pending."""
        deadline = asyncio.get_running_loop().time() + timeout.total_seconds()
        while asyncio.get_running_loop().time() < deadline:
            stats = await self.deliver_due()
            if stats.sent == 0 and stats.retried == 0 and stats.failed == 0:
                break
            if stats.retried and not stats.sent:
                break  # the rest is waiting for a backoff; leave it for the next start
        async with self.store.read() as connection:
            return (await outbox.counts(connection)).get("pending", 0)

    async def _deliver_sink(self, sink_name: str, rows: list[Any]) -> DeliveryStats:
        stats = DeliveryStats()
        for row in rows:
            outcome = await self._deliver_one(self.sinks[sink_name], row)
            if outcome == "sent":
                stats.sent += 1
            elif outcome == "failed":
                stats.failed += 1
            elif outcome == "retry":
                stats.retried += 1
                break  # this sink is struggling: leave the rest for the next pass
        return stats

    async def _deliver_one(self, sink: AlertSink, row: Any) -> str:
        now = datetime.now(UTC)
        async with self.store.begin() as connection:
            if not await outbox.mark_sending(connection, row.id, now):
                return "skipped"
            thread_ref = None
            if row.thread_of is not None:
                status, thread_ref = await outbox.provider_id_of(connection, row.thread_of)
                if status in ("pending", "sending"):
                    await outbox.mark_retry(
                        connection,
                        row.id,
                        "waiting for the first alert of this thread",
                        now + THREAD_PARENT_WAIT,
                    )
                    return "waiting"
                if status != "sent":
                    thread_ref = None  # the first alert never went out: post on its own
                    if row.kind == "update":
                        await outbox.mark_skipped(connection, row.id, "no message to update")
                        return "skipped"
            mention = (
                await mention_store.get(connection, row.mention_id) if row.mention_id else None
            )
            if mention is not None:
                mention.update(await mention_context(connection, mention))
            if row.kind == "escalation" and mention is not None and mention["state"] != "open":
                await outbox.mark_skipped(
                    connection, row.id, f"mention is {mention['state']} by {mention['state_by']}"
                )
                return "skipped"
            group = await _group_mentions(connection, row.payload or {})
        alert = build_alert(row, mention, thread_ref, self.people)
        alert.group = group
        if row.last_error == outbox.INTERRUPTED:
            # A crash cut this row's last attempt short, maybe after the provider took it:
            # the sink may look for it before sending again (SlackSink does).
            alert.interrupted_at = row.next_attempt_at
        try:
            if row.kind == "update":
                call = sink.update(alert, thread_ref or "")
            else:
                call = sink.send(alert)
            delivery = await asyncio.wait_for(call, timeout=SEND_TIMEOUT_S)
        except asyncio.CancelledError:
            raise
        except TimeoutError:
            delivery = Delivery(
                ok=False, error=f"{sink.kind}: no answer within {SEND_TIMEOUT_S:.0f}s"
            )
        except Exception as exc:
            log.exception("%s: sink raised while sending alert %s", sink.kind, row.id)
            delivery = Delivery(ok=False, error=f"{sink.kind}: {exc.__class__.__name__}: {exc}")
        if delivery.ok:
            crash_point("after_send")
        return await self._record(sink, row, delivery)

    async def _record(self, sink: AlertSink, row: Any, delivery: Delivery) -> str:
        now = datetime.now(UTC)
        health = self.health[sink.kind]
        async with self.store.begin() as connection:
            if delivery.ok:
                await outbox.mark_sent(connection, row.id, delivery.provider_id, now)
                crash_point("before_mark_sent")  # written, not committed
                await events.record(
                    connection,
                    "alert_sent",
                    "daemon",
                    mention_id=row.mention_id,
                    at=now,
                    data={
                        "outbox_id": row.id,
                        "sink": sink.kind,
                        "kind": row.kind,
                        "provider_id": delivery.provider_id,
                    },
                )
                health.consecutive_failures = 0
                health.last_ok_at = now
                await self._report_recovery(connection, sink.kind, health, now)
                return "sent"
            health.consecutive_failures += 1
            health.last_error = delivery.error
            if health.consecutive_failures >= self.report_after:
                await self._report_outage(connection, sink.kind, health, now)
            if delivery.permanent:
                await outbox.mark_failed(connection, row.id, delivery.error)
                log.error("alert %s parked as failed: %s", row.id, delivery.error)
                return "failed"
            delay = retry_delay(row.attempts + 1, delivery.retry_after)
            await outbox.mark_retry(connection, row.id, delivery.error, now + delay)
            log.warning(
                "alert %s not delivered (%s); retrying in %ss",
                row.id,
                delivery.error,
                int(delay.total_seconds()),
            )
            return "retry"

    # ------------------------------------------------------------------ sink health

    async def _reported(self, connection: AsyncConnection, kind: str, health: SinkHealth) -> bool:
        if health.reported_down is None:
            cursor = await alert_state.get_cursor(connection, f"sink:{kind}")
            health.reported_down = bool(cursor and cursor.get("down_since"))
        return health.reported_down

    async def _report_outage(
        self, connection: AsyncConnection, kind: str, health: SinkHealth, now: datetime
    ) -> None:
        if await self._reported(connection, kind, health):
            return
        stamp = now.strftime("%Y%m%dT%H%M%S")
        others = [other for other in self.sinks if other != kind]
        await outbox.enqueue(
            connection,
            [
                OutboxItem(
                    dedup_key=f"sink_down:{kind}:{stamp}:{other}",
                    kind="sink_down",
                    sink=other,
                    payload={
                        "title": f"{kind} alerts are not being delivered",
                        "reasons": [health.last_error[:500]],
                        "failed_sink": kind,
                        "failures": health.consecutive_failures,
                    },
                )
                for other in others
            ],
            now,
        )
        await alert_state.set_cursor(
            connection, f"sink:{kind}", {"down_since": now.isoformat(), "stamp": stamp}, now
        )
        health.reported_down = True
        log.error(
            "sink %s failed %d times in a row (%s); reported through %s",
            kind,
            health.consecutive_failures,
            health.last_error,
            ", ".join(others) or "no other sink",
        )

    async def _report_recovery(
        self, connection: AsyncConnection, kind: str, health: SinkHealth, now: datetime
    ) -> None:
        if not await self._reported(connection, kind, health):
            return
        cursor = await alert_state.get_cursor(connection, f"sink:{kind}") or {}
        stamp = cursor.get("stamp", now.strftime("%Y%m%dT%H%M%S"))
        await outbox.enqueue(
            connection,
            [
                OutboxItem(
                    dedup_key=f"sink_up:{kind}:{stamp}:{other}",
                    kind="sink_up",
                    sink=other,
                    payload={"title": f"{kind} alerts are delivered again", "reasons": []},
                    thread_of_key=f"sink_down:{kind}:{stamp}:{other}",
                )
                for other in self.sinks
                if other != kind
            ],
            now,
        )
        await alert_state.set_cursor(connection, f"sink:{kind}", {}, now)
        health.reported_down = False
        log.info("sink %s delivers again", kind)


# ----------------------------------------------------------------------- alert content


async def mention_context(connection: AsyncConnection, mention: dict[str, Any]) -> dict[str, Any]:
    """What a sink shows beside the mention: matched spans, and the troll/spam signals
    stored at ingest (author history, repeated text, link-only) as context."""
    rows = await connection.execute(
        select(mention_matches.c.terms, mention_matches.c.spans).where(
            mention_matches.c.mention_id == mention["id"]
        )
    )
    spans: list[list[int]] = []
    terms: list[str] = []
    for row in rows:
        spans += [list(span) for span in row.spans or []]
        terms += list(row.terms or [])
    return {"spans": spans, "terms": terms, "signals": stored_signals(mention)}


async def _group_mentions(connection: AsyncConnection, payload: dict[str, Any]) -> list[dict]:
    ids = [int(i) for i in payload.get("mention_ids", [])][: outbox.GROUP_LISTED]
    found = []
    for mention_id in ids:
        mention = await mention_store.get(connection, mention_id)
        if mention is not None:
            found.append(mention)
    return found


def build_alert(
    row: Any,
    mention: dict[str, Any] | None,
    thread_ref: str | None,
    people: Mapping[str, PersonConfig] | None = None,
) -> Alert:
    payload = dict(row.payload or {})
    keys = list(payload.pop("people", []))
    known = people or {}
    return Alert(
        id=row.id,
        kind=row.kind,
        title=str(payload.pop("title", row.kind)),
        reasons=list(payload.pop("reasons", [])),
        mention=mention,
        watchlists=list(payload.pop("watchlists", mention["watchlists"] if mention else [])),
        target=row.target or "",
        mention_people=keys,
        thread_ref=thread_ref,
        idempotency_key=outbox.delivery_key(row),
        body=payload,
        people=[
            Person(key, known[key].name or key, known[key].slack or None, known[key].email or None)
            for key in keys
            if key in known
        ],
    )
