"""A dumb scheduler: the store says which sources are due; all durable state is there.

APScheduler holds only in-memory interval jobs rebuilt from config (tick, deliver,
heartbeat, maintenance). Each tick asks the store for sources whose ``next_check_at``
has passed and starts them, bounded by ``max_concurrent_sources``. Fetching has a hard
timeout (storing is never cut short: see ``SourceRunner.run``); failures back off
exponentially with jitter and never below Retry-After.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from apscheduler.schedulers.asyncio import AsyncIOScheduler

from monitor.config import DaemonConfig
from monitor.crashpoints import crash_point
from monitor.pipeline import IngestStats, Pipeline
from monitor.store import Store, database_problem, is_database_error
from monitor.store import sources as source_store
from sources.base import FetchResult, Source, SourceError, SourceState

log = logging.getLogger(__name__)

JITTER_FRACTION = 0.1
PERMANENT_ERROR_MIN_DELAY = timedelta(minutes=30)
# When even recording a failure fails (database locked, disk full), wait this long.
STORE_FAILURE_DELAY = timedelta(seconds=30)
# A stream that stayed connected this long was healthy, and its next failure starts the
# backoff afresh; one that fails sooner is flapping, and the backoff keeps growing.
STREAM_STABLE_AFTER = timedelta(minutes=1)
# Reconnect backoff of streaming sources: first delay and cap.
STREAM_BACKOFF = timedelta(seconds=2)
STREAM_MAX_BACKOFF = timedelta(minutes=5)


def backoff_delay(
    streak: int,
    interval: timedelta,
    *,
    retry_after: timedelta | None = None,
    max_backoff: timedelta = timedelta(hours=6),
    permanent: bool = False,
    rand: Callable[[], float] = random.random,
) -> timedelta:
    """Delay before the next attempt after ``streak`` consecutive failures (streak ≥ 1).

    interval × 2^(streak-1), capped at max_backoff, ±10 % jitter — but never sooner than
    the server's Retry-After, which may exceed the cap (the server knows best).
    """
    exponent = min(max(streak - 1, 0), 20)
    delay = min(interval * (2**exponent), max_backoff)
    if permanent:
        delay = max(delay, min(PERMANENT_ERROR_MIN_DELAY, max_backoff))
    delay = delay * (1 + JITTER_FRACTION * (2 * rand() - 1))
    if retry_after is not None:
        delay = max(delay, retry_after)
    return delay


def next_poll_delay(interval: timedelta, rand: Callable[[], float] = random.random) -> timedelta:
    return interval * (1 + JITTER_FRACTION * (2 * rand() - 1) / 2)


@dataclass(slots=True)
class RunOutcome:
    source: str
    ok: bool
    stats: IngestStats | None = None
    error: str = ""


class SourceRunner:
    """Runs one source once: load state → fetch (with timeout) → pipeline, or record the error."""

    def __init__(self, store: Store, pipeline: Pipeline, config: DaemonConfig) -> None:
        self.store = store
        self.pipeline = pipeline
        self.config = config
        # In-memory floor for when the store itself is failing and cannot hold next_check_at.
        self.not_before: dict[str, datetime] = {}
        self.totals = IngestStats()
        # Called when a batch enqueued alerts, so they go out now rather than on the next
        # delivery tick (detection latency is poll interval + this, not + deliver_every).
        self.on_alerts: Callable[[], None] | None = None

    async def run(self, source: Source, *, alerts_enabled: bool = True) -> RunOutcome:
        """Load state → fetch → store, or record the error.

        ``daemon.source_timeout`` is a hard limit on loading the state and fetching, where
        a run can hang (a server that never answers). Storing is deliberately not cut
        short: cancelling a SQLite write mid-transaction orphans the aiosqlite connection
        with the write lock still held, and every later write then waits out busy_timeout
        and fails (measured). Storing is bounded otherwise — ``BATCH_SIZE`` rows per
        transaction, busy_timeout per statement — and a run that overruns the limit while
        storing is logged with what to check."""
        started = time.monotonic()
        now = datetime.now(UTC)
        limit = self.config.source_timeout.total_seconds()
        try:
            async with asyncio.timeout(limit) as deadline:
                async with self.store.read() as connection:
                    state = await source_store.load(connection, source.name)
                result = await source.fetch(state)
        except asyncio.CancelledError:
            raise
        except SourceError as exc:
            return await self.failed(source, str(exc), exc.retry_after, exc.permanent)
        except TimeoutError as exc:
            if not deadline.expired():  # the adapter's own timeout escaped it: a bug
                return await self._adapter_bug(source, exc)
            return await self.failed(
                source,
                f"{source.name}: no answer within {limit:g}s — the server hangs or is very "
                "slow; raise daemon.source_timeout if it is just slow",
                None,
                False,
            )
        except Exception as exc:  # an adapter bug must not take the daemon down
            return await self._adapter_bug(source, exc)
        crash_point("after_fetch")
        outcome = await self.deliver(source, state, result, alerts_enabled=alerts_enabled, now=now)
        took = time.monotonic() - started
        if took > limit:
            log.warning(
                "%s: this run took %.1fs, past daemon.source_timeout (%gs), storing %d fetched "
                "items; storing is never cut short, because cancelling a database write "
                "mid-transaction would leave the database locked — check whether another "
                "process holds a lock on the database (a backup, a second daemon), or raise "
                "daemon.source_timeout if such large batches are expected",
                source.name,
                took,
                limit,
                len(result.mentions),
            )
        return outcome

    async def _adapter_bug(self, source: Source, exc: BaseException) -> RunOutcome:
        log.error("%s: unexpected error in the %s adapter", source.name, source.kind, exc_info=exc)
        return await self.failed(
            source,
            f"{source.name}: internal error in the {source.kind} adapter: {exc!r} (see log)",
            None,
            False,
        )

    async def deliver(
        self,
        source: Source,
        state: SourceState,
        result: FetchResult,
        *,
        alerts_enabled: bool = True,
        now: datetime | None = None,
    ) -> RunOutcome:
        """Hand a fetch result to the pipeline (also used by streaming sources per batch)."""
        now = now or datetime.now(UTC)
        delay = (
            result.next_check_in
            if result.next_check_in is not None
            else next_poll_delay(source.interval)
        )
        try:
            stats = await self.pipeline.ingest(
                source.name,
                result,
                first_run=state.first_run,
                next_check_at=now + max(delay, min(source.interval, timedelta(seconds=1))),
                alerts_enabled=alerts_enabled,
                now=now,
            )
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            if is_database_error(exc):
                log.error(
                    "%s: could not store %d mentions: %s",
                    source.name,
                    len(result.mentions),
                    database_problem(exc),
                )
            else:
                log.exception("%s: storing %d mentions failed", source.name, len(result.mentions))
            self.not_before[source.name] = now + STORE_FAILURE_DELAY
            return RunOutcome(
                source.name, False, error=f"{source.name}: storing results failed: {exc}"
            )
        self.not_before.pop(source.name, None)
        state.first_run = False
        self.totals.add(stats)
        if stats.alerts and self.on_alerts is not None:
            self.on_alerts()
        if result.warnings:
            log.warning("%s: %s", source.name, "; ".join(result.warnings))
        log.info(
            "%s: %d fetched, %d matched, %d new, %d alerts",
            source.name,
            stats.fetched,
            stats.matched,
            stats.new,
            stats.alerts,
        )
        return RunOutcome(source.name, True, stats)

    async def failed(
        self, source: Source, message: str, retry_after: timedelta | None, permanent: bool
    ) -> RunOutcome:
        now = datetime.now(UTC)
        log.warning("%s", message)
        try:
            async with self.store.begin() as connection:
                streak = await source_store.record_failure(
                    connection,
                    source.name,
                    message,
                    now=now,
                    next_check_at=now,
                    retry_after_until=now + retry_after if retry_after is not None else None,
                )
                delay = backoff_delay(
                    streak,
                    source.interval,
                    retry_after=retry_after,
                    max_backoff=self.config.max_backoff,
                    permanent=permanent,
                )
                await source_store.reschedule(connection, source.name, now + delay)
        except Exception as exc:
            if is_database_error(exc):
                log.error(
                    "%s: could not record its failure: %s", source.name, database_problem(exc)
                )
            else:
                log.exception("%s: could not record the failure in the database", source.name)
            self.not_before[source.name] = now + STORE_FAILURE_DELAY
        return RunOutcome(source.name, False, error=message)


class Scheduler:
    """Ticker over polled sources plus supervisors for streaming ones."""

    def __init__(
        self,
        store: Store,
        runner: SourceRunner,
        config: DaemonConfig,
        jobs: dict[str, tuple[Callable[[], Awaitable[Any]], timedelta]],
    ) -> None:
        self.store = store
        self.runner = runner
        self.config = config
        self.jobs = jobs
        self.sources: dict[str, Source] = {}
        self.in_flight: dict[str, asyncio.Task[RunOutcome]] = {}
        self.streams: dict[str, asyncio.Task[None]] = {}
        self.job_tasks: dict[str, asyncio.Task[None]] = {}
        self._aps: AsyncIOScheduler | None = None
        self._slots = asyncio.Semaphore(config.max_concurrent_sources)
        self._stopping = False

    def start(self, sources: dict[str, Source]) -> None:
        self.sources = sources
        self._aps = AsyncIOScheduler(timezone=UTC)
        self._add_job("tick", self.tick, self.config.tick)
        for name, (func, every) in self.jobs.items():
            self._add_job(name, func, every)
        self._aps.start()
        for source in sources.values():
            if source.streaming:
                self.streams[source.name] = asyncio.create_task(
                    self._supervise(source), name=f"stream:{source.name}"
                )

    def _start_run(self, source: Source) -> None:
        if not self._stopping:
            self.in_flight[source.name] = asyncio.create_task(
                self._run(source), name=f"run:{source.name}"
            )

    def _add_job(self, name: str, func: Callable[[], Awaitable[Any]], every: timedelta) -> None:
        """APScheduler only *launches* our jobs as tracked tasks: on shutdown it would cancel
        a running coroutine mid-way (e.g. between sending an alert and recording it)."""
        assert self._aps is not None

        async def launch() -> None:
            if self._stopping:
                return
            running = self.job_tasks.get(name)
            if running is None or running.done():
                self.job_tasks[name] = asyncio.create_task(
                    self._guard(name, func), name=f"job:{name}"
                )

        self._aps.add_job(
            launch,
            "interval",
            seconds=max(every.total_seconds(), 0.05),
            id=name,
            max_instances=1,
            coalesce=True,
            misfire_grace_time=None,
            next_run_time=datetime.now(UTC),
        )

    @staticmethod
    async def _guard(name: str, func: Callable[[], Awaitable[Any]]) -> None:
        try:
            await func()
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("scheduler: job %s failed; it will run again on schedule", name)

    async def tick(self) -> None:
        now = datetime.now(UTC)
        candidates = [
            name
            for name, source in self.sources.items()
            if not source.streaming
            and name not in self.in_flight
            and self.runner.not_before.get(name, now) <= now
        ]
        try:
            async with self.store.read() as connection:
                due = await source_store.due(connection, candidates, now)
        except Exception as exc:
            log.error("scheduler: cannot read source schedule from the database: %s", exc)
            return
        for name in due:
            if name not in self.in_flight:
                self._start_run(self.sources[name])

    async def _run(self, source: Source) -> RunOutcome:
        try:
            async with self._slots:
                return await self.runner.run(source)
        finally:
            self.in_flight.pop(source.name, None)

    async def _supervise(self, source: Source) -> None:
        """Keep a streaming source connected; back off when it keeps failing.

        Everything that can fail, loading the source's state included, is inside the
        ``try``: an exception escaping this loop would end the stream for good, silently."""
        streak = 0
        while True:
            connected_at = time.monotonic()
            try:
                try:
                    async with self.store.read() as connection:
                        state = await source_store.load(connection, source.name)
                except Exception as exc:
                    raise SourceError(
                        source.name,
                        f"cannot load its state from the database ({database_problem(exc)}); "
                        "the stream is retried with backoff",
                    ) from exc

                async def deliver(result: FetchResult, state: SourceState = state) -> None:
                    outcome = await self.runner.deliver(source, state, result)
                    if not outcome.ok:
                        raise SourceError(source.name, outcome.error)

                await source.stream(state, deliver)
                streak = 0
                delay = timedelta(seconds=1)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                # Not "it delivered something": a server that accepts, sends a few events
                # and drops the connection would then be retried every 2 s for ever.
                if time.monotonic() - connected_at >= STREAM_STABLE_AFTER.total_seconds():
                    streak = 0
                streak += 1
                message = (
                    str(exc)
                    if isinstance(exc, SourceError)
                    else f"{source.name}: stream failed: {exc!r}"
                )
                retry_after = getattr(exc, "retry_after", None)
                await self.runner.failed(source, message, retry_after, False)
                delay = backoff_delay(
                    streak, STREAM_BACKOFF, retry_after=retry_after, max_backoff=STREAM_MAX_BACKOFF
                )
            await asyncio.sleep(delay.total_seconds())

    def stop_scheduling(self) -> None:
        self._stopping = True
        if self._aps is not None:
            self._aps.shutdown(wait=False)
            self._aps = None

    async def drain(self, grace: timedelta) -> int:
        """Wait for in-flight runs up to ``grace``; cancel what is left. Returns cancelled count."""
        for task in self.streams.values():
            task.cancel()
        pending = (
            list(self.in_flight.values())
            + list(self.streams.values())
            + list(self.job_tasks.values())
        )
        if not pending:
            return 0
        _done, still = await asyncio.wait(pending, timeout=grace.total_seconds())
        for task in still:
            task.cancel()
        if still:
            await asyncio.wait(still, timeout=5)
        self.streams.clear()
        self.job_tasks.clear()
        return len([t for t in still if t.get_name().startswith("run:")])
