"""Helpers for the feed tests: read back what the daemon stored, and watch the event loop."""

from __future__ import annotations

import asyncio
import contextlib
import zlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from monitor.store import Store
from monitor.store import mentions as mention_store
from monitor.store import sources as source_store
from monitor.store.tables import sightings

FEED_FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "feeds"


@dataclass
class Stored:
    mentions: list[dict[str, Any]]
    sightings: int


async def stored(database: str) -> Stored:
    """Every stored mention (newest first) and the number of sightings."""
    store = await Store.open(database)
    try:
        async with store.read() as connection:
            found = await mention_store.list_mentions(connection)
            count = await connection.scalar(select(func.count()).select_from(sightings))
        return Stored(found, int(count or 0))
    finally:
        await store.dispose()


async def health_of(database: str, name: str) -> source_store.SourceHealth:
    store = await Store.open(database)
    try:
        async with store.read() as connection:
            return next(h for h in await source_store.health(connection) if h.source == name)
    finally:
        await store.dispose()


@dataclass
class LoopLag:
    """Worst and typical overshoot of a task that sleeps ``period_s`` in a loop."""

    period_s: float = 0.01
    samples: list[float] = field(default_factory=list)

    @property
    def worst_s(self) -> float:
        return max(self.samples, default=0.0)

    @property
    def p99_s(self) -> float:
        ordered = sorted(self.samples)
        return ordered[int(len(ordered) * 0.99)] if ordered else 0.0


@contextlib.asynccontextmanager
async def loop_lag_probe(period_s: float = 0.01) -> AsyncIterator[LoopLag]:
    """While the body runs, measure how late the event loop wakes a 10 ms sleeper."""
    lag = LoopLag(period_s)
    loop = asyncio.get_running_loop()

    async def probe() -> None:
        while True:
            started = loop.time()
            await asyncio.sleep(period_s)
            lag.samples.append(loop.time() - started - period_s)

    task = asyncio.create_task(probe(), name="loop-lag-probe")
    try:
        yield lag
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def gzip_bomb(size: int) -> bytes:
    """``size`` zero bytes in one gzip member: about 1000:1."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    block = bytes(1 << 20)
    parts = [compressor.compress(block) for _ in range(size >> 20)]
    return b"".join([*parts, compressor.flush()])
