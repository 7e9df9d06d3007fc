"""`monitor demo`: the whole product against bundled sample mentions, no accounts, no internet.

A local aiohttp server publishes three feeds (RSS, Atom) from ``samples.json``: several
languages, some negative, some duplicated across feeds. A few seconds in, new posts
appear, so the demo shows live detection, dedup and console alerts.
"""

from __future__ import annotations

import asyncio
import json
import tempfile
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from importlib import resources
from pathlib import Path
from typing import Any, TextIO
from xml.sax.saxutils import escape

from aiohttp import web

from monitor.config import Config, parse_config

FEEDS = ("blogs", "forum", "news")
PHASE_TWO_AFTER_S = 6.0

DEMO_CONFIG = """
database: "sqlite+aiosqlite:///{db}"
brand:
  name: Acme Cloud
  accounts: {{mastodon: "@acmecloud@mastodon.example", bluesky: acmecloud.bsky.social}}
people:
  priya: {{name: Priya (support lead), email: priya@acme.example}}
watchlists:
  - name: acme
    query: 'acme OR "acme cloud" OR acmecloud OR "एक्मे क्लाउड" OR "অ্যাকমি ক্লাউড" OR "اکمی کلاود" -globex'
    owner: priya
    reply_within: 1h
  - name: competitors
    kind: competitor
    query: globex
sources:
  - {{type: rss, name: blogs, url: "{base}/blogs.rss", every: 2s}}
  - {{type: rss, name: forum, url: "{base}/forum.atom", every: 2s}}
  - {{type: rss, name: news, url: "{base}/news.rss", every: 2s}}
alerts:
  console: {{enabled: true}}
  backfill_first_poll: false
daemon:
  tick: 1s
  deliver_every: 1s
  log_level: WARNING
"""


@dataclass
class DemoServer:
    items: list[dict[str, Any]]
    started: float = field(default_factory=time.monotonic)
    requests: int = 0

    def visible(self, feed: str) -> list[dict[str, Any]]:
        elapsed = time.monotonic() - self.started
        phase = 2 if elapsed >= PHASE_TWO_AFTER_S else 1
        return [item for item in self.items if feed in item["feeds"] and item["phase"] <= phase]

    async def handle(self, request: web.Request) -> web.Response:
        self.requests += 1
        name, _, kind = request.match_info["name"].partition(".")
        if name not in FEEDS:
            raise web.HTTPNotFound()
        items = self.visible(name)
        if kind == "atom":
            return web.Response(
                body=atom_feed(name, items), content_type="application/atom+xml", charset="utf-8"
            )
        return web.Response(
            body=rss_feed(name, items), content_type="application/rss+xml", charset="utf-8"
        )


def _published(item: dict[str, Any]) -> datetime:
    return datetime.now(UTC) - timedelta(minutes=5 if item["phase"] == 1 else 0)


def _tracked(url: str) -> str:
    """The news feed adds tracking parameters, as real ones do; dedup must see through them."""
    return url if "?" in url else f"{url}?utm_source=newsfeed&utm_medium=rss"


def rss_feed(name: str, items: list[dict[str, Any]]) -> bytes:
    entries = "".join(
        f"<item><guid isPermaLink='false'>{name}-{escape(i['id'])}</guid><title>{escape(i['title'])}</title>"
        f"<link>{escape(_tracked(i['url']) if name == 'news' else i['url'])}</link><author>{escape(i['author'])}</author>"
        f"<pubDate>{format_datetime(_published(i))}</pubDate>"
        f"<description>{escape(i['text'])}</description></item>"
        for i in items
    )
    return (
        f"<?xml version='1.0' encoding='utf-8'?><rss version='2.0'><channel><title>{name}</title>"
        f"<link>http://demo.invalid/{name}</link><description>demo</description>{entries}</channel></rss>"
    ).encode()


def atom_feed(name: str, items: list[dict[str, Any]]) -> bytes:
    entries = "".join(
        f"<entry><id>urn:demo:{name}:{escape(i['id'])}</id><title>{escape(i['title'])}</title>"
        f'<link href="{escape(i["url"])}"/><author><name>{escape(i["author"])}</name></author>'
        f"<updated>{_published(i).isoformat()}</updated><content type='text'>{escape(i['text'])}</content></entry>"
        for i in items
    )
    return (
        f"<?xml version='1.0' encoding='utf-8'?><feed xmlns='http://www.w3.org/2005/Atom'>"
        f"<title>{name}</title><id>urn:demo:{name}</id><updated>{datetime.now(UTC).isoformat()}</updated>"
        f"{entries}</feed>"
    ).encode()


def load_samples() -> list[dict[str, Any]]:
    text = resources.files("monitor.demo").joinpath("samples.json").read_text(encoding="utf-8")
    return list(json.loads(text)["items"])


async def start_server(items: list[dict[str, Any]]) -> tuple[web.AppRunner, DemoServer, str]:
    server = DemoServer(items)
    app = web.Application()
    app.router.add_get("/{name}", server.handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    return runner, server, f"http://127.0.0.1:{port}"


def demo_config(base: str, directory: Path) -> Config:
    return parse_config(DEMO_CONFIG.format(base=base, db=directory / "demo.db"), "demo-config")


async def run_demo(seconds: float, out: TextIO) -> int:
    from monitor.daemon import Daemon
    from monitor.store import mentions as mention_store

    runner, _server, base = await start_server(load_samples())
    with tempfile.TemporaryDirectory(prefix="monitor-demo-") as directory:
        config = demo_config(base, Path(directory))
        out.write(
            f"Demo: serving 3 sample feeds on {base} (English, Hindi, Bengali, Persian; some duplicated).\n"
            f"Polling every 2s; new posts appear after {PHASE_TWO_AFTER_S:.0f}s. Alerts print below.\n\n"
        )
        out.flush()
        daemon = Daemon(config, console_stream=out)
        try:
            await daemon.start()
            await asyncio.sleep(seconds)
        finally:
            await daemon.shutdown()
            await runner.cleanup()

        from monitor.store import Store

        store = await Store.open(config.database)
        try:
            async with store.read() as connection:
                rows = await mention_store.list_mentions(connection)
        finally:
            await store.dispose()
    out.write(f"Stored {len(rows)} mentions (each once, however many feeds carried it):\n")
    for row in reversed(rows):
        lists = ",".join(row["watchlists"])
        out.write(
            f"  #{row['id']:<3} {row['language'] or '--':<3} {row['sentiment']:<8} "
            f"{'needs reply' if row['needs_reply'] else '':<11} [{lists}] {(row['title'] or row['text'])[:60]}\n"
        )
    out.write(
        "\nNext: copy config.example.yaml to config.yaml, set your brand and sources, then `make run`.\n"
    )
    out.flush()
    return 0
