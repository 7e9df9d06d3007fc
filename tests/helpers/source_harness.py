"""Testing a source adapter for real: build it on a real HTTP client, run it through the
daemon, read back what the store recorded, and replay recorded API exchanges."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from aiohttp import web

from monitor.config import Config, HttpConfig
from monitor.daemon import Daemon
from monitor.store import mentions as mention_store
from monitor.store import sources as source_store
from sources import SOURCES
from sources.base import Source, SourceContext, SourceState
from sources.http import HttpClient

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"


@pytest.fixture
async def http_client() -> AsyncIterator[HttpClient]:
    client = HttpClient(HttpConfig())
    try:
        yield client
    finally:
        await client.close()


def build_source(config: Config, http: HttpClient, index: int = 0) -> Source:
    """The adapter for ``config.sources[index]``, wired exactly as the daemon wires it."""
    section = config.sources[index]
    context = SourceContext(http=http, watchlists=config.watchlists, brand=config.brand)
    return SOURCES[section.type](section.name, section, context)


@dataclass
class Recorded:
    """What the store holds about one source after a run."""

    health: source_store.SourceHealth
    state: SourceState
    mentions: list[dict[str, Any]]


async def recorded(make_daemon: Callable[..., Daemon], config: Config, name: str) -> Recorded:
    """Open a fresh daemon on the same database and read the source's row and mentions."""
    daemon = make_daemon(config=config)
    await daemon.open()
    try:
        async with daemon.store.read() as connection:
            health = next(h for h in await source_store.health(connection) if h.source == name)
            state = await source_store.load(connection, name)
            mentions = await mention_store.list_mentions(connection)
        return Recorded(health, state, mentions)
    finally:
        await daemon.close()


# ------------------------------------------------------------------ recorded exchanges


@dataclass
class Exchange:
    """One recorded request/response pair from a VCR-style cassette."""

    method: str
    uri: str
    status: int
    headers: dict[str, str]
    body: str

    def json(self) -> Any:
        return json.loads(self.body)

    def response(self, *, drop: tuple[str, ...] = ()) -> web.Response:
        """Replay it: recorded status, recorded headers (minus transport ones), recorded body."""
        skip = {"content-length", "content-encoding", "transfer-encoding", "connection", *drop}
        headers = {k: v for k, v in self.headers.items() if k.lower() not in skip}
        return web.Response(status=self.status, body=self.body.encode(), headers=headers)


def load_cassette(path: Path) -> list[Exchange]:
    """Betamax JSON (PRAW) or VCR.py YAML (Mastodon.py) cassettes."""
    text = path.read_text(encoding="utf-8")
    data = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    exchanges = []
    for item in data["interactions"]:
        request, response = item["request"], item["response"]
        status = response["status"]["code"]
        headers = {
            key: value[0] if isinstance(value, list) else value
            for key, value in response["headers"].items()
        }
        body = response["body"]["string"]
        exchanges.append(Exchange(request["method"], request["uri"], status, headers, body))
    return exchanges


def json_response(data: Any, *, status: int = 200, headers: dict[str, str] | None = None) -> Any:
    """A handler for LocalServer.route that answers with ``data`` as JSON."""

    async def handler(_request: web.Request) -> web.Response:
        return web.json_response(data, status=status, headers=headers)

    return handler
