"""Memory and growth: the daemon's RSS with 50 sources while 500,000 posts stream through it.

    .venv/bin/python -m bench.memory [--posts 500000] [--match-share 0.05]

A real daemon (`python -m monitor run`, its own process, default classifier) is configured
with 50 sources: 49 RSS feeds of 50 entries each (polled every 30 s) and one Bluesky
Jetstream source. After start-up and the first poll of every feed, this process replays
``--posts`` generated posts (English, Hindi, Bengali, Persian; ``--match-share`` of them
mention a watched term, the rest are the firehose's everyday chatter) through the local
Jetstream websocket as fast as the daemon reads them, and waits until the daemon's stored
cursor reaches the last one. RSS and its peak (VmHWM) are read from /proc.

Database growth is measured on the mentions this run stored (bytes per 100,000 mentions,
SQLite file with its WAL checkpointed). Query latency at 1 M stored mentions is
``bench/dedup.py``'s job (it fills a database that large directly).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import sqlite3
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import yaml
from aiohttp import web

from bench.report import Section, Target, serve_on_loopback
from bench.workload import BRAND, QUERIES, feed, post
from monitor.store import Store

ROOT = Path(__file__).resolve().parents[1]
FEEDS = 49
TARGET_RSS_MB = 150


def proc_status(pid: int) -> dict[str, float]:
    """VmRSS and VmHWM of a process, in MB."""
    values = {}
    with open(f"/proc/{pid}/status", encoding="ascii") as status:
        for line in status:
            key, _, rest = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                values[key] = int(rest.split()[0]) / 1024
    return values


class World:
    def __init__(self, posts: int, match_share: float) -> None:
        rng = random.Random(13)
        self.feeds = {f"/feed{i}.xml": feed(i, 50, match_share=0.2, rng=rng) for i in range(FEEDS)}
        self.posts = posts
        self.match_share = match_share
        self.connected = asyncio.Event()
        self.go = asyncio.Event()
        self.sent = 0
        self.last_time_us = 0
        self.feed_requests = 0
        self.runner: web.AppRunner | None = None
        self.base = ""

    async def start(self) -> None:
        app = web.Application()
        app.router.add_get("/subscribe", self.jetstream)
        app.router.add_get("/{name}", self.feed)
        self.runner, self.base = await serve_on_loopback(app)

    async def stop(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()

    async def feed(self, request: web.Request) -> web.Response:
        self.feed_requests += 1
        body = self.feeds.get(request.path)
        if body is None:
            raise web.HTTPNotFound()
        return web.Response(body=body, content_type="application/rss+xml")

    async def jetstream(self, request: web.Request) -> web.StreamResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        self.connected.set()
        await self.go.wait()
        rng = random.Random(17)
        start_us = int(datetime.now(UTC).timestamp() * 1_000_000)
        created = datetime.now(UTC).isoformat().replace("+00:00", "Z")
        while self.sent < self.posts:
            i = self.sent
            _language, text = post(rng, mentions_brand=rng.random() < self.match_share)
            self.last_time_us = start_us + i
            event = {
                "did": f"did:plc:author{i % 40_000:06d}",
                "time_us": self.last_time_us,
                "kind": "commit",
                "commit": {
                    "rev": f"r{i}",
                    "operation": "create",
                    "collection": "app.bsky.feed.post",
                    "rkey": f"3m{i:011d}",
                    "record": {
                        "$type": "app.bsky.feed.post",
                        "createdAt": created,
                        "langs": [],
                        "text": f"{text} {i}",
                    },
                    "cid": f"bafy{i}",
                },
            }
            await ws.send_str(json.dumps(event, ensure_ascii=False))
            self.sent += 1
        async for _message in ws:
            pass
        return ws


def config(folder: Path, base: str) -> Path:
    sources: list[dict[str, object]] = [
        {"type": "rss", "name": f"feed{i}", "url": f"http://{base}/feed{i}.xml", "every": "30s"}
        for i in range(FEEDS)
    ]
    sources.append({"type": "bluesky", "name": "bluesky", "api_url": f"ws://{base}/subscribe"})
    data = {
        "database": f"sqlite+aiosqlite:///{folder / 'monitor.db'}",
        "brand": {"name": BRAND},
        "watchlists": [{"name": name, "query": query} for name, query in QUERIES.items()],
        "sources": sources,
        "alerts": {"console": {"enabled": True}},
    }
    path = folder / "monitor.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return path


def stored_cursor(database: Path) -> int:
    try:
        with sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=5) as db:
            row = db.execute("SELECT cursor FROM source_state WHERE source = 'bluesky'").fetchone()
    except sqlite3.Error:
        return 0
    if not row or not row[0]:
        return 0
    cursor = json.loads(row[0]) if isinstance(row[0], str) else row[0]
    return int(cursor.get("time_us", 0) or 0)


def counts(database: Path) -> tuple[int, int]:
    with sqlite3.connect(database) as db:
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        mentions = db.execute("SELECT count(*) FROM mentions").fetchone()[0]
        bluesky = db.execute("SELECT count(*) FROM mentions WHERE source = 'bluesky'").fetchone()[0]
    return mentions, bluesky


async def measure(posts: int, match_share: float) -> Section:
    world = World(posts, match_share)
    await world.start()
    folder = Path(tempfile.mkdtemp(prefix="memory-bench-"))
    database = folder / "monitor.db"
    # Created before the daemon starts, as on every start after the first: the daemon then
    # has no migration to run and never loads alembic.
    store = await Store.open(f"sqlite+aiosqlite:///{database}")
    await store.dispose()
    log = open(folder / "daemon.log", "wb")  # noqa: SIM115 - lives as long as the daemon
    daemon = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "monitor",
        "run",
        "-c",
        str(config(folder, world.base)),
        stdout=asyncio.subprocess.DEVNULL,
        stderr=log,
        cwd=ROOT,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        await asyncio.wait_for(world.connected.wait(), 60)
        deadline = time.monotonic() + 120
        while world.feed_requests < FEEDS and time.monotonic() < deadline:  # noqa: ASYNC110
            await asyncio.sleep(0.2)
        await asyncio.sleep(3)  # let the first polls be stored
        after_start = proc_status(daemon.pid)
        started = time.monotonic()
        world.go.set()
        while True:
            await asyncio.sleep(1)
            if world.sent >= posts and stored_cursor(database) >= world.last_time_us:
                break
            if daemon.returncode is not None:
                raise RuntimeError(f"the daemon exited; see {folder / 'daemon.log'}")
        replay_s = time.monotonic() - started
        await asyncio.sleep(2)
        after_replay = proc_status(daemon.pid)
    finally:
        daemon.terminate()
        await daemon.wait()
        log.close()
        await world.stop()
    stored, streamed = counts(database)
    size = database.stat().st_size
    per_100k = size / max(stored, 1) * 100_000 / 1e6
    peak = after_replay["VmHWM"]
    lines = [
        f"A real daemon process with 50 sources ({FEEDS} RSS feeds polled every 30 s + Bluesky "
        f"Jetstream) and the default classifier; {posts:,} posts replayed through the local "
        f"Jetstream as fast as the daemon reads them, {match_share:.0%} of them mentioning a "
        "watched term. RSS read from /proc.",
        "",
        "| measure | value |",
        "|---|---:|",
        f"| RSS after start and the first poll of every feed | {after_start['VmRSS']:.0f} MB |",
        f"| RSS after replaying {posts:,} posts | {after_replay['VmRSS']:.0f} MB |",
        f"| peak RSS over the whole run (VmHWM) | {peak:.0f} MB |",
        f"| replay | {replay_s:.0f} s, {posts / replay_s:,.0f} posts/s |",
        f"| mentions stored | {streamed:,} from Bluesky, {stored:,} in all |",
        f"| database size | {size / 1e6:.1f} MB = **{per_100k:.0f} MB per 100,000 mentions** |",
    ]
    return Section(
        "4. Memory and growth",
        lines,
        [
            Target(
                f"daemon peak RSS, 50 sources, {posts:,} posts replayed",
                f"{peak:.0f} MB",
                f"≤ {TARGET_RSS_MB} MB",
                peak <= TARGET_RSS_MB,
            )
        ],
    )


def run(posts: int, match_share: float) -> Section:
    return asyncio.run(measure(posts, match_share))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--posts", type=int, default=500_000)
    parser.add_argument("--match-share", type=float, default=0.05)
    args = parser.parse_args()
    print(run(args.posts, args.match_share).markdown())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
