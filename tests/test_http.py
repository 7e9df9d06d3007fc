"""The shared HTTP layer against misbehaving servers on localhost."""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import socket
import tracemalloc
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any

import pytest
from aiohttp import web

from monitor import __version__
from monitor.config import HttpConfig
from monitor.daemon import Daemon
from sources.base import SourceError
from sources.http import MAX_RETRY_AFTER, HttpClient, parse_retry_after, safe_url
from tests.helpers.feeds import FEED_FIXTURES, gzip_bomb, health_of
from tests.helpers.servers import LocalServer, drop_connection, rss

CORPUS = FEED_FIXTURES / "compression"
FEED = rss([{"id": "1", "title": "Acme Cloud news", "link": "https://x.test/1", "text": "hi"}])
MB = 1_000_000


@pytest.fixture
async def client() -> AsyncIterator[HttpClient]:
    http = HttpClient(
        HttpConfig(
            contact="https://acme.example/monitor",
            read_timeout=timedelta(seconds=0.5),
            total_timeout=timedelta(seconds=2),
            max_body_bytes=MB,
            max_redirects=3,
        )
    )
    yield http
    await http.close()


async def failure(coro: Any) -> SourceError:
    with pytest.raises(SourceError) as info:
        await coro
    return info.value


# --------------------------------------------------------------------- identity


async def test_user_agent_names_product_version_and_contact(
    local_server: LocalServer, client: HttpClient
) -> None:
    local_server.serve_bytes("/feed", FEED)
    response = await client.get("blog", local_server.url("/feed"))
    assert response.status == 200 and response.body == FEED
    agent = local_server.requests[0].headers["User-Agent"]
    assert agent == f"brand-monitor/{__version__} (+https://acme.example/monitor)"
    assert local_server.requests[0].headers["Accept-Encoding"] == "gzip, deflate"


# --------------------------------------------------------------- conditional GET


def conditional_feed(body: bytes, etag: str, last_modified: str) -> Callable[..., Any]:
    async def handler(request: web.Request) -> web.Response:
        if request.headers.get("If-None-Match") == etag or (
            request.headers.get("If-Modified-Since") == last_modified
        ):
            return web.Response(status=304, headers={"ETag": etag})
        return web.Response(
            body=body,
            content_type="application/rss+xml",
            headers={"ETag": etag, "Last-Modified": last_modified},
        )

    return handler


async def test_conditional_get_sends_validators_and_304_is_not_modified(
    local_server: LocalServer, client: HttpClient
) -> None:
    last_modified = "Wed, 10 Jul 2019 11:53:37 GMT"
    local_server.route("/feed", conditional_feed(FEED, '"v1"', last_modified))
    first = await client.get("blog", local_server.url("/feed"))
    assert not first.not_modified and first.headers["ETag"] == '"v1"'

    again = await client.get("blog", local_server.url("/feed"), etag='"v1"')
    assert again.not_modified and again.body == b""
    assert local_server.requests[-1].headers["If-None-Match"] == '"v1"'

    by_date = await client.get("blog", local_server.url("/feed"), last_modified=last_modified)
    assert by_date.not_modified
    assert local_server.requests[-1].headers["If-Modified-Since"] == last_modified


async def test_etag_round_trips_through_source_state(
    local_server: LocalServer, make_daemon: Callable[..., Daemon]
) -> None:
    local_server.route("/feed", conditional_feed(FEED, '"v7"', "Wed, 10 Jul 2019 11:53:37 GMT"))
    sources = [{"type": "rss", "name": "blog", "url": local_server.url("/feed")}]
    daemon = make_daemon(sources=sources)
    (first,) = await daemon.run_once()
    assert first.ok and first.stats and first.stats.new == 1

    again = make_daemon(config=daemon.config)
    (second,) = await again.run_once()
    assert second.ok and second.stats and (second.stats.fetched, second.stats.new) == (0, 0)
    assert local_server.requests[-1].headers["If-None-Match"] == '"v7"'
    assert "If-Modified-Since" in local_server.requests[-1].headers
    health = await health_of(daemon.config.database, "blog")
    assert health.error_streak == 0 and health.last_error is None


# ------------------------------------------------------------------ Retry-After

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("120", timedelta(seconds=120)),
        (" 0 ", timedelta(0)),
        ("1.5", timedelta(seconds=1.5)),
        ("Mon, 23 Nov 2026 12:05:00 GMT", timedelta(minutes=5)),
        ("Mon, 23 Nov 2026 11:00:00 GMT", timedelta(0)),  # in the past: now
        ("99999999", MAX_RETRY_AFTER),
        ("Fri, 31 Dec 2100 00:00:00 GMT", MAX_RETRY_AFTER),
        ("-5", None),
        ("nan", None),
        ("soon", None),
        ("", None),
        (None, None),
    ],
)
def test_parse_retry_after(value: str | None, expected: timedelta | None) -> None:
    assert parse_retry_after(value, now=NOW) == expected


@pytest.mark.parametrize(
    ("status", "retry_after", "message", "seconds"),
    [
        (429, "90", "rate limited (HTTP 429)", 90),
        (429, None, "rate limited (HTTP 429)", 300),  # no header: a polite default
        (503, "30", "server error (HTTP 503)", 30),
        (500, None, "server error (HTTP 500)", None),
    ],
)
async def test_rate_limits_and_server_errors_carry_retry_after(
    local_server: LocalServer,
    client: HttpClient,
    status: int,
    retry_after: str | None,
    message: str,
    seconds: int | None,
) -> None:
    headers = {"Retry-After": retry_after} if retry_after else None
    local_server.serve_bytes("/api", b"busy", status=status, headers=headers)
    error = await failure(client.get("reddit", local_server.url("/api")))
    assert str(error).startswith(f"reddit: {message} — ")
    assert error.hint and not error.permanent
    assert error.retry_after == (timedelta(seconds=seconds) if seconds is not None else None)


async def test_429_with_an_http_date_backs_off_in_source_state(
    local_server: LocalServer, make_daemon: Callable[..., Daemon]
) -> None:
    until = datetime.now(UTC).replace(microsecond=0) + timedelta(minutes=10)
    local_server.serve_bytes(
        "/feed", b"slow down", status=429, headers={"Retry-After": format_datetime(until, True)}
    )
    daemon = make_daemon(
        sources=[{"type": "rss", "name": "busy", "url": local_server.url("/feed")}]
    )
    (outcome,) = await daemon.run_once()
    assert not outcome.ok and outcome.error.startswith("busy: rate limited (HTTP 429)")
    health = await health_of(daemon.config.database, "busy")
    assert health.error_streak == 1
    assert health.retry_after_until is not None
    assert abs(health.retry_after_until - until) < timedelta(seconds=5)
    assert health.next_check_at >= until - timedelta(seconds=5)


@pytest.mark.parametrize(
    ("status", "message", "permanent"),
    [
        (401, "access denied (HTTP 401)", True),
        (403, "access denied (HTTP 403)", True),
        (404, "not found (HTTP 404) at http://127.0.0.1", True),
        (410, "not found (HTTP 410)", True),
        (418, "unexpected HTTP 418", False),
    ],
)
async def test_client_errors_are_named_with_a_hint(
    local_server: LocalServer, client: HttpClient, status: int, message: str, permanent: bool
) -> None:
    local_server.serve_bytes("/x", b"no", status=status)
    error = await failure(client.get("feed", local_server.url("/x") + "?api_key=s3cret"))
    assert str(error).startswith(f"feed: {message}")
    assert error.permanent is permanent and " — " in str(error)
    assert "s3cret" not in str(error)  # query strings (API keys) never reach messages


def test_safe_url_drops_query_and_credentials() -> None:
    assert safe_url("https://u:p@x.test:8080/a/b?key=1#f") == "https://x.test:8080/a/b"
    assert safe_url("http://[::1]/feed?token=x") == "http://[::1]/feed"


# --------------------------------------------------------------------- timeouts


async def test_a_server_that_stops_sending_hits_the_read_timeout(
    local_server: LocalServer, client: HttpClient
) -> None:
    async def stall(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "application/rss+xml"})
        await response.prepare(request)
        await response.write(b"<rss>")
        await asyncio.sleep(5)
        return response

    local_server.route("/feed", stall)
    error = await failure(client.get("blog", local_server.url("/feed")))
    assert "blog: the server stopped sending for 0.5s (http.read_timeout)" in str(error)


async def test_a_slow_drip_hits_the_total_timeout(
    local_server: LocalServer, client: HttpClient
) -> None:
    async def drip(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "application/rss+xml"})
        await response.prepare(request)
        for _ in range(100):  # a byte every 0.1 s never trips the read timeout
            await response.write(b" ")
            await asyncio.sleep(0.1)
        return response

    local_server.route("/feed", drip)
    started = asyncio.get_running_loop().time()
    error = await failure(client.get("blog", local_server.url("/feed")))
    assert "took longer than 2s in total (http.total_timeout)" in str(error)
    assert asyncio.get_running_loop().time() - started < 4


async def test_a_host_that_never_accepts_hits_the_connect_timeout() -> None:
    """A listening socket whose accept queue is full: the kernel drops further SYNs."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(0)
        port = listener.getsockname()[1]
        fillers = [socket.socket() for _ in range(3)]
        for filler in fillers:
            filler.setblocking(False)
            with contextlib.suppress(BlockingIOError):
                filler.connect(("127.0.0.1", port))
        http = HttpClient(HttpConfig(connect_timeout=timedelta(seconds=0.3)))
        try:
            error = await failure(http.get("blog", f"http://127.0.0.1:{port}/feed"))
        finally:
            await http.close()
            for filler in fillers:
                filler.close()
    assert f"blog: could not connect to http://127.0.0.1:{port}/feed within 0.3s" in str(error)
    assert "(http.connect_timeout)" in str(error)


async def test_connection_refused_names_host_and_port(client: HttpClient) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    error = await failure(client.get("blog", f"http://127.0.0.1:{port}/feed"))
    assert f"blog: cannot connect to 127.0.0.1:{port}" in str(error)
    assert "check the host name" in error.hint


@pytest.mark.parametrize(
    ("reset", "detail"),
    [(True, "(ECONNRESET: Connection reset by peer)"), (False, "(server disconnected)")],
    ids=["rst", "fin"],
)
async def test_a_connection_dropped_before_the_answer_says_so_with_a_hint(
    local_server: LocalServer, client: HttpClient, reset: bool, detail: str
) -> None:
    async def drop(request: web.Request) -> web.Response:
        drop_connection(request, reset=reset)
        return web.Response()  # never sent: the connection is gone

    local_server.route("/feed", drop)
    error = await failure(client.get("blog", local_server.url("/feed") + "?key=s3cret"))
    assert str(error).startswith(
        f"blog: 127.0.0.1 closed the connection before sending a response {detail} — "
    )
    assert "will retry with backoff" in error.hint and "firewall" in error.hint
    assert not error.permanent and error.retry_after is None  # ordinary backoff
    assert "s3cret" not in str(error)


async def test_invalid_url_is_permanent(client: HttpClient) -> None:
    error = await failure(client.get("blog", "http://"))
    assert error.permanent and "blog: invalid URL" in str(error)


# -------------------------------------------------------------------- redirects


async def test_redirect_loop_stops_at_the_limit(
    local_server: LocalServer, client: HttpClient
) -> None:
    async def loop_a(_request: web.Request) -> web.Response:
        raise web.HTTPFound("/b")

    async def loop_b(_request: web.Request) -> web.Response:
        raise web.HTTPFound("/a")

    local_server.route("/a", loop_a)
    local_server.route("/b", loop_b)
    error = await failure(client.get("blog", local_server.url("/a")))
    assert "blog: more than 3 redirects from" in str(error)
    assert len(local_server.requests) == 4  # the first request and three redirects


async def test_max_redirects_zero_follows_none(local_server: LocalServer) -> None:
    async def moved(_request: web.Request) -> web.Response:
        raise web.HTTPFound("/feed")

    local_server.route("/old", moved)
    local_server.serve_bytes("/feed", FEED)
    http = HttpClient(HttpConfig(max_redirects=0))
    try:
        error = await failure(http.get("blog", local_server.url("/old")))
    finally:
        await http.close()
    assert "more than 0 redirects" in str(error) and len(local_server.requests) == 1


async def test_a_permanent_redirect_is_followed_with_a_warning(
    local_server: LocalServer, client: HttpClient
) -> None:
    async def moved(_request: web.Request) -> web.Response:
        raise web.HTTPMovedPermanently("/new-feed")

    local_server.route("/old-feed", moved)
    local_server.serve_bytes("/new-feed", FEED)
    response = await client.get("blog", local_server.url("/old-feed"))
    assert response.body == FEED and response.url.endswith("/new-feed")
    (warning,) = response.warnings
    assert "/old-feed moved permanently to" in warning and "update the URL" in warning


# ------------------------------------------------------------------- size caps


async def test_a_declared_oversized_body_is_refused_before_reading(
    local_server: LocalServer, client: HttpClient
) -> None:
    local_server.serve_bytes("/big", b"x" * (2 * MB))
    error = await failure(client.get("blog", local_server.url("/big")))
    assert f"response of {2 * MB} bytes is larger than the {MB}-byte cap" in str(error)
    assert "http.max_body_bytes" in error.hint


async def test_an_undeclared_oversized_body_stops_while_streaming(
    local_server: LocalServer, client: HttpClient
) -> None:
    sent = 0

    async def endless(request: web.Request) -> web.StreamResponse:
        nonlocal sent
        response = web.StreamResponse()  # chunked: no Content-Length to check up front
        await response.prepare(request)
        try:
            for _ in range(1000):
                await response.write(b"x" * 65536)
                sent += 65536
        except (ConnectionResetError, ConnectionError):
            pass
        return response

    local_server.route("/endless", endless)
    error = await failure(client.get("blog", local_server.url("/endless")))
    assert f"exceeded the {MB}-byte cap while downloading" in str(error)
    assert sent < 100 * MB  # we hung up instead of reading it all


async def test_a_gzip_bomb_stops_at_the_cap_after_decompression(
    local_server: LocalServer, client: HttpClient
) -> None:
    bomb = gzip_bomb(256 << 20)  # 256 MiB of zeros in ~250 kB
    assert len(bomb) < MB / 2
    local_server.serve_bytes(
        "/bomb", bomb, content_type="application/rss+xml", headers={"Content-Encoding": "gzip"}
    )
    tracemalloc.start()
    try:
        error = await failure(client.get("blog", local_server.url("/bomb")))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert f"exceeded the {MB}-byte cap after decompression (gzip)" in str(error)
    assert peak < 8 * MB, f"decoding the bomb took {peak} bytes of memory"


@pytest.mark.parametrize(
    ("fixture", "encoding"),
    [
        ("gzip.gz", "gzip"),
        ("deflate.z", "deflate"),  # zlib-wrapped, as the RFC says
        ("deflate-no-headers.z", "deflate"),  # raw deflate, as many servers send
    ],
)
async def test_compressed_bodies_are_decoded(
    local_server: LocalServer, client: HttpClient, fixture: str, encoding: str
) -> None:
    local_server.serve_bytes(
        "/feed", (CORPUS / fixture).read_bytes(), headers={"Content-Encoding": encoding}
    )
    response = await client.get("blog", local_server.url("/feed"))
    assert b"<feed" in response.body or b"<rss" in response.body
    assert response.warnings == []


async def test_gzip_members_are_all_decoded(local_server: LocalServer, client: HttpClient) -> None:
    body = gzip.compress(b"<rss><channel>") + gzip.compress(b"</channel></rss>")
    local_server.serve_bytes("/feed", body, headers={"Content-Encoding": "gzip"})
    assert (await client.get("blog", local_server.url("/feed"))).body == (
        b"<rss><channel></channel></rss>"
    )


@pytest.mark.parametrize(
    ("fixture", "encoding"),
    [("gzip-not-compressed.gz", "gzip"), ("deflate-not-compressed.z", "deflate")],
)
async def test_a_body_labelled_compressed_but_plain_is_used_with_a_warning(
    local_server: LocalServer, client: HttpClient, fixture: str, encoding: str
) -> None:
    plain = (CORPUS / fixture).read_bytes()
    local_server.serve_bytes("/feed", plain, headers={"Content-Encoding": encoding})
    response = await client.get("blog", local_server.url("/feed"))
    assert response.body == plain
    assert response.warnings == [
        f"the server labelled the body {encoding} but sent it uncompressed"
    ]


async def test_a_corrupt_gzip_body_is_an_error(
    local_server: LocalServer, client: HttpClient
) -> None:
    local_server.serve_bytes(
        "/feed",
        (CORPUS / "gzip-struct-error.gz").read_bytes(),
        headers={"Content-Encoding": "gzip"},
    )
    error = await failure(client.get("blog", local_server.url("/feed")))
    assert "blog: the gzip-compressed body" in str(error)


async def test_a_truncated_gzip_body_is_an_error(
    local_server: LocalServer, client: HttpClient
) -> None:
    body = gzip.compress(FEED)[:-20]
    local_server.serve_bytes("/feed", body, headers={"Content-Encoding": "gzip"})
    error = await failure(client.get("blog", local_server.url("/feed")))
    assert "blog: the gzip-compressed body ends early (truncated)" in str(error)


async def test_an_encoding_we_did_not_ask_for_is_refused(
    local_server: LocalServer, client: HttpClient
) -> None:
    local_server.serve_bytes("/feed", b"\x00\x01", headers={"Content-Encoding": "br"})
    error = await failure(client.get("blog", local_server.url("/feed")))
    assert "Content-Encoding 'br', which we did not ask for" in str(error)
