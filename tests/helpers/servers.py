"""Small real HTTP servers on localhost standing in for feeds and APIs."""

from __future__ import annotations

import asyncio
import socket
import struct
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass
class Recorded:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes


@dataclass
class LocalServer:
    """An aiohttp app on 127.0.0.1 with routes set per test; records every request."""

    routes: dict[str, Handler] = field(default_factory=dict)
    requests: list[Recorded] = field(default_factory=list)
    runner: web.AppRunner | None = None
    base_url: str = ""

    def route(self, path: str, handler: Handler) -> None:
        self.routes[path] = handler

    def serve_bytes(
        self,
        path: str,
        body: bytes,
        *,
        content_type: str = "application/rss+xml",
        status: int = 200,
        headers: dict[str, str] | None = None,
    ) -> None:
        async def handler(_request: web.Request) -> web.Response:
            return web.Response(
                body=body, status=status, content_type=content_type, headers=headers
            )

        self.routes[path] = handler

    def url(self, path: str) -> str:
        return self.base_url + path

    async def _dispatch(self, request: web.Request) -> web.StreamResponse:
        self.requests.append(
            Recorded(
                request.method,
                request.path,
                dict(request.query),
                dict(request.headers),
                await request.read(),
            )
        )
        handler = self.routes.get(request.path)
        if handler is None:
            raise web.HTTPNotFound()
        return await handler(request)

    async def start(self) -> LocalServer:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._dispatch)
        self.runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.5)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        self.base_url = f"http://127.0.0.1:{self.runner.addresses[0][1]}"
        return self

    async def stop(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()


def rss(items: list[dict[str, Any]], title: str = "test feed") -> bytes:
    """A small RSS 2.0 document; each item needs id, title, link, text."""
    from email.utils import format_datetime
    from xml.sax.saxutils import escape

    parts = []
    for item in items:
        published = item.get("published")
        pub = f"<pubDate>{format_datetime(published)}</pubDate>" if published else ""
        parts.append(
            f"<item><guid isPermaLink='false'>{escape(item['id'])}</guid><title>{escape(item['title'])}</title>"
            f"<link>{escape(item['link'])}</link>{pub}<description>{escape(item['text'])}</description></item>"
        )
    return (
        f"<?xml version='1.0' encoding='utf-8'?><rss version='2.0'><channel><title>{escape(title)}</title>"
        f"<link>http://feed.test/</link><description>t</description>{''.join(parts)}</channel></rss>"
    ).encode()


async def slow(seconds: float) -> None:
    await asyncio.sleep(seconds)


def drop_connection(request: web.Request, *, reset: bool = True) -> None:
    """Drop the client's connection mid-exchange, as a crashing server or a middlebox does.

    ``reset``: a TCP RST (SO_LINGER with a zero timeout turns close() into a reset);
    otherwise an orderly close (FIN) with nothing more sent.
    """
    transport = request.transport
    assert transport is not None
    if reset:
        transport.get_extra_info("socket").setsockopt(
            socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0)
        )
        transport.abort()
    else:
        transport.close()
