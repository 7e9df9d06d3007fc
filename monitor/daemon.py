"""Lifecycle of the always-on service: start, run, reload on SIGHUP, stop cleanly.

SIGTERM/SIGINT: stop scheduling, wait up to ``daemon.shutdown_grace`` for in-flight
runs, flush the outbox, log one summary line, dispose the engine.
SIGHUP: reload the config; an invalid new config is logged and the old one keeps running.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import signal
import textwrap
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TextIO

from alerts import SINKS
from alerts.base import AlertSink, SinkContext
from alerts.jobs import run_checks
from monitor import redact
from monitor.classify import Classifier
from monitor.config import Config, ConfigError, load_config
from monitor.delivery import Deliverer
from monitor.durations import format_duration
from monitor.health import update_dark
from monitor.pipeline import IngestStats, Pipeline
from monitor.replies import poll_replies
from monitor.scheduler import RunOutcome, Scheduler, SourceRunner
from monitor.store import Store, alert_state, database_problem, is_database_error, outbox
from monitor.store import heartbeat as heartbeat_store
from monitor.store import sources as source_store
from sources import SOURCES
from sources.base import FetchResult, Source, SourceContext, SourceError, share_budgets
from sources.http import HttpClient

log = logging.getLogger("monitor")

# How often SQLite's query-planner statistics are refreshed (PRAGMA optimize).
OPTIMIZE_EVERY_S = 6 * 3600


def build_sources(config: Config, context: SourceContext) -> dict[str, Source]:
    built: dict[str, Source] = {}
    for section in config.sources:
        if section.enabled:
            built[section.name] = SOURCES[section.type](section.name, section, context)
    for note in share_budgets(built.values()):
        log.warning("budget: %s", note)
    return built


def build_sinks(config: Config, context: SinkContext) -> dict[str, AlertSink]:
    """Every enabled sink, or the default one when none is (see ``active_sinks``)."""
    return {
        kind: SINKS[kind](section, context)
        for kind, section in config.alerts.active_sinks().items()
    }


class Daemon:
    def __init__(
        self,
        config: Config,
        config_path: str | Path | None = None,
        *,
        console_stream: TextIO | None = None,
        classifier_factory: Callable[[Config], Classifier] | None = None,
    ) -> None:
        self.config = config
        self.config_path = Path(config_path) if config_path else None
        self.console_stream = console_stream
        self.classifier_factory = classifier_factory or Classifier.from_config
        self.started_at = datetime.now(UTC)
        self.stop_event = asyncio.Event()
        self._delivery_task: asyncio.Task[None] | None = None
        self._optimize_due = 0.0  # the first heartbeat refreshes planner statistics
        self._last_summary = ""
        self.store: Store
        self.http: HttpClient
        self.pipeline: Pipeline
        self.runner: SourceRunner
        self.deliverer: Deliverer
        self.scheduler: Scheduler | None = None
        self.sources: dict[str, Source] = {}
        self.sinks: dict[str, AlertSink] = {}
        self._opened = False  # open() ran and close() has not yet

    # ----------------------------------------------------------------- build and start

    async def open(self) -> None:
        """Open the store (migrating it) and build sources, sinks and the pipeline."""
        self.store = await Store.open(self.config.database)
        self._opened = True
        self.http = HttpClient(self.config.http)
        self.pipeline = Pipeline(self.store, self.config, self.classifier_factory(self.config))
        self.pipeline.warm_up()
        # What is alive after start-up (models, lexicons, config) lives as long as the
        # daemon: keep it out of full garbage collections, which otherwise hold the GIL for
        # ~100 ms while a worker thread parses a big feed and stall the event loop
        # (tests/test_rss.py measures it).
        gc.freeze()
        self.runner = SourceRunner(self.store, self.pipeline, self.config.daemon)
        self.runner.on_alerts = self._deliver_soon
        self._build_adapters(self.config)
        async with self.store.begin() as connection:
            recovered = await outbox.recover_in_flight(connection)
        if recovered:
            log.warning(
                "outbox: %d alerts were being sent when the daemon stopped; retrying them "
                "(a sink that can look for its earlier message first does so)",
                recovered,
            )

    def _build_adapters(self, config: Config) -> None:
        context = SourceContext(http=self.http, watchlists=config.watchlists, brand=config.brand)
        self.sources = build_sources(config, context)
        self.sinks = build_sinks(config, SinkContext(console=self.console_stream))
        self.deliverer = Deliverer(
            self.store,
            self.sinks,
            config.people,
            report_after=config.alerts.sink_failures_before_report,
        )
        self.pipeline.sinks = list(self.sinks)

    async def _register_sources(self) -> None:
        now = datetime.now(UTC)
        async with self.store.begin() as connection:
            for source in self.sources.values():
                await source_store.ensure(connection, source.name, source.kind, now)
            # Mentions published before a watchlist existed are backfill for it.
            await alert_state.register_watchlists(
                connection, [w.name for w in self.config.watchlists], now
            )

    def _jobs(self) -> dict:
        daemon, alerts = self.config.daemon, self.config.alerts
        return {
            "deliver": (self.deliver_alerts, daemon.deliver_every),
            "heartbeat": (self.beat, daemon.heartbeat_every),
            "alert_checks": (self.check_alerts, alerts.check_every),
            "replies": (self.poll_replies, alerts.replies_every),
        }

    async def check_alerts(self) -> None:
        """Escalations, message updates, source notices, the digest; then deliver."""
        await run_checks(self.store, self.config, list(self.sinks), list(self.sources))
        await self.deliver_alerts()

    async def poll_replies(self) -> None:
        answered = await poll_replies(self.store, self.sources, self.config)
        if answered:
            log.info("replies: %d mentions answered by the brand", answered)
            await self.check_alerts()

    async def _start_interactive(self) -> None:
        """Sinks that take input from people (Slack buttons) start listening."""
        for sink in self.sinks.values():
            try:
                await sink.start_interactive(self.store, self.check_alerts)
            except Exception:
                log.exception("%s: cannot take input from people; alerts still go out", sink.kind)

    async def _stop_interactive(self) -> None:
        for sink in self.sinks.values():
            try:
                await sink.stop_interactive()
            except Exception:
                log.exception("%s: error while stopping its input", sink.kind)

    async def start(self) -> None:
        await self.open()
        await self._register_sources()
        self.scheduler = Scheduler(self.store, self.runner, self.config.daemon, self._jobs())
        self.scheduler.start(self.sources)
        await self._start_interactive()
        log.info(
            "started: %d sources (%s), %d watchlists, alerts → %s, database %s",
            len(self.sources),
            ", ".join(s.describe() for s in self.sources.values()) or "none",
            len(self.config.watchlists),
            ", ".join(sink.describe() for sink in self.sinks.values()),
            redact.safe_url(self.config.database),
        )

    # ------------------------------------------------------------------------ running

    async def run_forever(self) -> int:
        loop = asyncio.get_running_loop()
        await self.start()
        installed = []
        for signum, handler in (
            (signal.SIGTERM, self.stop_event.set),
            (signal.SIGINT, self.stop_event.set),
            (signal.SIGHUP, lambda: asyncio.ensure_future(self.reload())),
        ):
            try:
                loop.add_signal_handler(signum, handler)
                installed.append(signum)
            except (NotImplementedError, RuntimeError):  # not the main thread, or Windows
                pass
        try:
            await self.stop_event.wait()
        finally:
            for signum in installed:
                loop.remove_signal_handler(signum)
            await self.shutdown()
        return 0

    async def run_once(self, *, alerts_enabled: bool = True) -> list[RunOutcome]:
        """Run every source once, deliver the alerts, stop. For cron, tests and seeding."""
        await self.open()
        try:
            return await self.poll_once(alerts_enabled=alerts_enabled)
        finally:
            await self.close()

    async def poll_once(self, *, alerts_enabled: bool = True) -> list[RunOutcome]:
        """The body of ``run_once`` on an opened daemon: every source, the brand's replies,
        the alert checks, delivery."""
        await self._register_sources()
        slots = asyncio.Semaphore(self.config.daemon.max_concurrent_sources)

        async def one(source: Source) -> RunOutcome:
            async with slots:
                if source.streaming:
                    return await self._stream_once(source, alerts_enabled)
                return await self.runner.run(source, alerts_enabled=alerts_enabled)

        outcomes = list(await asyncio.gather(*(one(s) for s in self.sources.values())))
        if alerts_enabled:
            # Cron installs have no `replies` job: answered threads must be seen here, before
            # the checks, so no escalation goes out for a mention the brand already answered.
            answered = await poll_replies(self.store, self.sources, self.config)
            if answered:
                log.info("replies: %d mentions answered by the brand", answered)
            await run_checks(self.store, self.config, list(self.sinks), list(self.sources))
            await self.deliverer.flush(self.config.daemon.shutdown_grace)
        await self.beat()
        return outcomes

    async def _stream_once(self, source: Source, alerts_enabled: bool) -> RunOutcome:
        async with self.store.read() as connection:
            state = await source_store.load(connection, source.name)
        total = IngestStats()

        async def deliver(result: FetchResult) -> None:
            outcome = await self.runner.deliver(
                source, state, result, alerts_enabled=alerts_enabled
            )
            if outcome.stats:
                total.add(outcome.stats)

        try:
            await asyncio.wait_for(source.stream(state, deliver), timeout=source.once_timeout_s)
        except TimeoutError:
            pass
        except SourceError as exc:
            return await self.runner.failed(source, str(exc), exc.retry_after, exc.permanent)
        except Exception as exc:
            return await self.runner.failed(source, f"{source.name}: {exc}", None, False)
        return RunOutcome(source.name, True, total)

    async def _settle_delivery(self) -> None:
        if self._delivery_task is not None:
            await asyncio.wait([self._delivery_task])
            self._delivery_task = None

    def _deliver_soon(self) -> None:
        """Start a delivery pass now unless one is already running (it will see new rows)."""
        if self._delivery_task is None or self._delivery_task.done():
            self._delivery_task = asyncio.create_task(self.deliver_alerts(), name="deliver:soon")

    async def deliver_alerts(self) -> None:
        try:
            await self.deliverer.deliver_due()
        except Exception as exc:
            if not is_database_error(exc):
                log_bug(exc, "outbox: delivery pass failed; will retry")
                return
            log.error("outbox: delivery pass failed: %s", database_problem(exc))

    async def beat(self) -> None:
        try:
            await update_dark(self.store, self.sources)
        except Exception as exc:
            if not is_database_error(exc):
                log_bug(exc, "health: could not work out which sources are dark; will retry")
            else:
                log.error("health: could not check for dark sources: %s", database_problem(exc))
        summary = await self.health_summary()
        if summary != self._last_summary:
            log.info("health: %s", summary)
            self._last_summary = summary
        try:
            async with self.store.begin() as connection:
                await heartbeat_store.beat(
                    connection, started_at=self.started_at, now=datetime.now(UTC), summary=summary
                )
        except Exception as exc:
            log.error("heartbeat: cannot write to the database: %s", database_problem(exc))
        if time.monotonic() >= self._optimize_due:
            self._optimize_due = time.monotonic() + OPTIMIZE_EVERY_S
            try:
                await self.store.optimize()
            except Exception as exc:
                log.warning("database: refreshing planner statistics failed (%s); harmless", exc)

    async def health_summary(self) -> str:
        try:
            async with self.store.read() as connection:
                health = await source_store.health(connection)
                pending = (await outbox.counts(connection)).get("pending", 0)
        except Exception as exc:
            return f"database unavailable: {exc}"
        configured = set(self.sources)
        rows = [h for h in health if h.source in configured]
        unwell = [h for h in rows if h.error_streak or h.dark_since]
        waiting = [h for h in rows if h.last_attempt_at is None and not h.error_streak]
        parts = [f"{len(rows) - len(unwell) - len(waiting)}/{len(rows)} sources ok"]
        if waiting:
            parts.append(f"{len(waiting)} not polled yet")
        parts += [f"{h.source} DARK: {_clip(h.dark_reason, 200)}" for h in rows if h.dark_since]
        parts += [
            f"{h.source} failing ×{h.error_streak}: {_clip(h.last_error, 160)}"
            for h in unwell
            if not h.dark_since
        ]
        parts += [f"{h.source} degraded: {h.degraded}" for h in rows if h.degraded]
        parts.append(f"{pending} alerts pending")
        if problem := self.store.write_health.describe():
            parts.insert(0, problem)
        parts += [
            f"sink {kind} failing ×{h.consecutive_failures}: {_clip(h.last_error, 120)}"
            for kind, h in self.deliverer.health.items()
            if h.consecutive_failures
        ]
        return "; ".join(parts)

    # ----------------------------------------------------------------------- reload

    async def reload(self) -> bool:
        if self.config_path is None:
            log.warning("reload: the daemon was not started from a config file; nothing to reload")
            return False
        try:
            new = load_config(self.config_path)
        except ConfigError as exc:
            log.error("reload: new config rejected, keeping the running one:\n%s", exc)
            return False
        redact.remember(new.secret_values())  # new tokens are masked in the log from now on
        if new.database != self.config.database:
            log.warning(
                "reload: `database` changed; that takes a restart — keeping %s",
                redact.safe_url(self.config.database),
            )
            new = new.model_copy(update={"database": self.config.database})
        if self.scheduler is not None:
            self.scheduler.stop_scheduling()
            await self.scheduler.drain(self.config.daemon.shutdown_grace)
        old_sources, old_sinks = self.sources, self.sinks
        await self._stop_interactive()
        self.config = new
        self.pipeline.reconfigure(new)
        self.runner.config = new.daemon
        self._build_adapters(new)
        for source in old_sources.values():
            await source.close()
        for sink in old_sinks.values():
            await sink.close()
        await self._register_sources()
        async with self.store.begin() as connection:
            retried = await outbox.retry_failed(connection, datetime.now(UTC))
        if retried:
            log.info("reload: retrying %d alerts that had failed permanently", retried)
        if self.scheduler is not None:
            self.scheduler = Scheduler(self.store, self.runner, new.daemon, self._jobs())
            self.scheduler.start(self.sources)
            await self._start_interactive()
        log.info("reload: now %d sources, %d watchlists", len(self.sources), len(new.watchlists))
        return True

    # --------------------------------------------------------------------- shutdown

    def request_stop(self) -> None:
        self.stop_event.set()

    async def shutdown(self) -> None:
        started = time.monotonic()
        cancelled = 0
        if self.scheduler is not None:
            self.scheduler.stop_scheduling()
            cancelled = await self.scheduler.drain(self.config.daemon.shutdown_grace)
        remaining = max(
            self.config.daemon.shutdown_grace.total_seconds() - (time.monotonic() - started), 1.0
        )
        await self._settle_delivery()
        pending = await self.deliverer.flush(timedelta(seconds=remaining))
        uptime = format_duration(datetime.now(UTC) - self.started_at)
        totals = self.runner.totals
        log.info(
            "stopped after %s: %d items fetched, %d new mentions, %d alerts sent, "
            "%d alerts pending for next start, %d runs cancelled",
            uptime,
            totals.fetched,
            totals.new,
            self.deliverer.totals.sent,
            pending,
            cancelled,
        )
        await self.close()

    async def close(self) -> None:
        """Close sources, sinks and the engine; a no-op when not open (safe to call twice)."""
        if not self._opened:
            return
        self._opened = False
        await self._settle_delivery()
        await self._stop_interactive()
        for source in self.sources.values():
            try:
                await source.close()
            except Exception:
                log.exception("%s: error while closing", source.name)
        for sink in self.sinks.values():
            try:
                await sink.close()
            except Exception:
                log.exception("%s: error while closing", sink.kind)
        await self.http.close()
        await self.store.dispose()
        gc.unfreeze()


def log_bug(exc: BaseException, message: str) -> None:
    """Log an unexpected error with its traceback (a bug to report), keeping the daemon up."""
    log.error(message, exc_info=exc)


def _clip(text: str | None, width: int) -> str:
    """A long error shortened at a word, marked with an ellipsis (the health line is one
    log line; the whole error is in ``monitor sources``)."""
    return textwrap.shorten(text or "", width=width, placeholder=" …")
