"""The one HTTP layer every source uses: timeouts, size caps, conditional GET, Retry-After.

Parsers never do I/O; sources call ``HttpClient.get`` and hand the bytes to a parser.
Every failure becomes a ``SourceError`` prefixed with the source name and carrying a hint.

The body cap holds twice: on the bytes that arrive and on what they decompress to. We
decompress gzip/deflate ourselves, never asking zlib for more than the room left under
the cap, so a gzip bomb stops at the cap instead of filling memory.
"""

from __future__ import annotations

import asyncio
import errno
import socket
import zlib
from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit

import aiohttp
from multidict import CIMultiDictProxy

from monitor import PRODUCT, __version__
from sources.base import SourceError

if TYPE_CHECKING:
    from monitor.config import HttpConfig

_CHUNK_BYTES = 64 * 1024
_DEFAULT_BACKOFF = timedelta(minutes=5)
# A longer Retry-After is a misconfigured server; a source that stays blocked this long
# is reported dark by monitor.health anyway.
MAX_RETRY_AFTER = timedelta(days=1)
# Only what we decode ourselves (aiohttp would add br/zstd when those libraries are present).
ACCEPT_ENCODING = "gzip, deflate"
_CAP_HINT = "check the URL points at a feed or API, or raise http.max_body_bytes"


@dataclass(slots=True)
class HttpResponse:
    status: int
    url: str
    headers: CIMultiDictProxy[str]
    body: bytes
    # Usable-but-odd things the operator should hear about (moved permanently, mislabelled body).
    warnings: list[str] = field(default_factory=list)

    @property
    def not_modified(self) -> bool:
        return self.status == 304

    def header_dict(self) -> dict[str, str]:
        return {key.lower(): value for key, value in self.headers.items()}


def parse_retry_after(value: str | None, now: datetime | None = None) -> timedelta | None:
    """Retry-After is either delta-seconds or an HTTP-date (RFC 9110 §10.2.3).

    Capped at MAX_RETRY_AFTER; a date in the past means "now"; garbage means "not given".
    """
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = max((when - (now or datetime.now(UTC))).total_seconds(), 0.0)
    if seconds != seconds or seconds < 0:  # NaN or negative
        return None
    if seconds >= MAX_RETRY_AFTER.total_seconds():
        return MAX_RETRY_AFTER
    return timedelta(seconds=seconds)


def safe_url(url: str) -> str:
    """The URL for messages and logs: no query string or credentials (API keys live there)."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = parts.port
    except ValueError:
        return "(unparseable URL)"
    netloc = f"[{host}]" if ":" in host else host
    if port is not None:
        netloc += f":{port}"
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


class HttpClient:
    """One aiohttp session per daemon, shared by all sources."""

    def __init__(self, config: HttpConfig) -> None:
        self.config = config
        self.user_agent = f"{PRODUCT}/{__version__} (+{config.contact})"
        self._session: aiohttp.ClientSession | None = None

    @property
    def session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            timeout = aiohttp.ClientTimeout(
                total=self.config.total_timeout.total_seconds(),
                sock_connect=self.config.connect_timeout.total_seconds(),
                sock_read=self.config.read_timeout.total_seconds(),
            )
            self._session = aiohttp.ClientSession(
                timeout=timeout,
                headers={"User-Agent": self.user_agent},
                connector=aiohttp.TCPConnector(limit=32, limit_per_host=4),
            )
        return self._session

    async def close(self) -> None:
        if self._session is not None and not self._session.closed:
            await self._session.close()
        self._session = None

    async def get(
        self,
        source: str,
        url: str,
        *,
        params: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
        etag: str | None = None,
        last_modified: str | None = None,
        max_bytes: int | None = None,
        accept_status: Collection[int] = (),
    ) -> HttpResponse:
        """GET, conditional when ``etag``/``last_modified`` are given: a 304 comes back as a
        response with ``not_modified`` set and an empty body — "nothing new", not an error."""
        request_headers = dict(headers or {})
        if etag:
            request_headers["If-None-Match"] = etag
        if last_modified:
            request_headers["If-Modified-Since"] = last_modified
        return await self.request(
            source,
            "GET",
            url,
            params=params,
            headers=request_headers,
            max_bytes=max_bytes,
            accept_status=accept_status,
        )

    async def request(
        self,
        source: str,
        method: str,
        url: str,
        *,
        params: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
        data: Any = None,
        json: Any = None,
        max_bytes: int | None = None,
        accept_status: Collection[int] = (),
    ) -> HttpResponse:
        """``accept_status``: error statuses handed back as responses instead of raised, for
        APIs whose error body says what went wrong (quota vs. credentials, expired token)."""
        limit = max_bytes or self.config.max_body_bytes
        request_headers = {"Accept-Encoding": ACCEPT_ENCODING, **(headers or {})}
        try:
            async with self.session.request(
                method,
                url,
                params=params,
                headers=request_headers,
                data=data,
                json=json,
                # aiohttp gives up when it *receives* the n-th redirect (and treats 0 as
                # "no limit"); +1 makes it follow exactly http.max_redirects of them.
                max_redirects=self.config.max_redirects + 1,
                auto_decompress=False,
            ) as response:
                if response.status not in accept_status:
                    _check_status(source, response)
                declared = response.content_length
                if declared is not None and declared > limit:
                    raise SourceError(
                        source,
                        f"response of {declared} bytes is larger than the {limit}-byte cap",
                        hint=_CAP_HINT,
                    )
                body, warnings = await _read_body(source, response, limit)
                warnings += _moved_permanently(response, url)
                return HttpResponse(
                    response.status, str(response.url), response.headers, body, warnings
                )
        except SourceError:
            raise
        except aiohttp.TooManyRedirects:
            raise SourceError(
                source,
                f"more than {self.config.max_redirects} redirects from {safe_url(url)}",
                hint="open the URL in a browser; it may redirect in a loop or to a login page",
            ) from None
        except aiohttp.InvalidURL as exc:
            raise SourceError(
                source,
                f"invalid URL {safe_url(str(exc.url))}",
                hint="fix the URL in the config",
                permanent=True,
            ) from None
        except aiohttp.ConnectionTimeoutError:
            raise SourceError(
                source,
                f"could not connect to {safe_url(url)} within "
                f"{self.config.connect_timeout.total_seconds():g}s (http.connect_timeout)",
                hint="the host is down or a firewall drops the connection; will retry with backoff",
            ) from None
        except aiohttp.SocketTimeoutError:
            raise SourceError(
                source,
                f"the server stopped sending for {self.config.read_timeout.total_seconds():g}s "
                "(http.read_timeout)",
                hint="the server is overloaded or hangs; will retry with backoff",
            ) from None
        except TimeoutError:
            raise SourceError(
                source,
                f"the response took longer than {self.config.total_timeout.total_seconds():g}s "
                "in total (http.total_timeout)",
                hint="the server is very slow; raise http.total_timeout if it is just slow",
            ) from None
        except aiohttp.ClientSSLError as exc:
            raise SourceError(
                source,
                f"TLS failed for {exc.host}: {exc.os_error or exc}",
                hint="check the URL (https vs http) and the server's certificate; "
                "verification is never switched off",
            ) from None
        except aiohttp.ClientConnectorError as exc:
            if isinstance(exc.os_error, socket.gaierror):
                raise SourceError(
                    source,
                    f"cannot resolve host {exc.host}",
                    hint="check the host name in the URL and this machine's DNS",
                ) from None
            raise SourceError(
                source,
                f"cannot connect to {exc.host}:{exc.port} ({exc.os_error or exc})",
                hint="check the host name, DNS and outbound network access of this machine",
            ) from None
        except aiohttp.ClientPayloadError as exc:
            raise SourceError(
                source,
                f"broken response body ({exc})",
                hint="the server cut the response; will retry",
            ) from None
        except (aiohttp.ServerDisconnectedError, aiohttp.ClientOSError) as exc:
            if not _dropped_before_answer(exc):
                raise _other_client_error(source, exc) from None
            raise SourceError(
                source,
                f"{_host(url)} closed the connection before sending a response "
                f"({_connection_drop(exc)})",
                hint="the server may be overloaded or restarting, or a firewall or the site "
                "is blocking this machine; will retry with backoff (if it persists, fetch the "
                "URL with curl from this machine)",
            ) from None
        except aiohttp.ClientError as exc:
            raise _other_client_error(source, exc) from None


# The errno values of a connection the other side dropped (RST, or a write into it).
_DROPPED = (errno.ECONNRESET, errno.EPIPE, errno.ECONNABORTED)


def _dropped_before_answer(exc: aiohttp.ClientError) -> bool:
    """A reset or close before the status line: the same message for both, because which
    one aiohttp reports depends on timing, not on what the server did."""
    if isinstance(exc, aiohttp.ServerDisconnectedError):
        return True
    return isinstance(exc, aiohttp.ClientOSError) and exc.errno in _DROPPED


def _connection_drop(exc: aiohttp.ClientError) -> str:
    if isinstance(exc, aiohttp.ClientOSError) and exc.errno in _DROPPED:
        return f"{errno.errorcode[exc.errno]}: {exc.strerror or 'connection reset'}"
    return "server disconnected"


def _host(url: str) -> str:
    try:
        return urlsplit(url).hostname or "the server"
    except ValueError:
        return "the server"


def _other_client_error(source: str, exc: aiohttp.ClientError) -> SourceError:
    return SourceError(
        source,
        f"HTTP error: {exc.__class__.__name__}: {exc}",
        hint="will retry with backoff",
    )


def _check_status(source: str, response: aiohttp.ClientResponse) -> None:
    status = response.status
    if status < 400 or status == 304:
        return
    retry_after = parse_retry_after(response.headers.get("Retry-After"))
    if status == 429:
        raise SourceError(
            source,
            "rate limited (HTTP 429)",
            hint="the platform asks us to slow down; raise `every` for this source if it repeats",
            retry_after=retry_after or _DEFAULT_BACKOFF,
        )
    if status in (401, 403):
        raise SourceError(
            source,
            f"access denied (HTTP {status})",
            hint="check this source's credentials in the config and that the account may use this API",
            retry_after=retry_after,
            permanent=True,
        )
    if status in (404, 410):
        raise SourceError(
            source,
            f"not found (HTTP {status}) at {safe_url(str(response.url))}",
            hint="check the URL in the config; the feed or endpoint may have moved",
            permanent=True,
        )
    if status >= 500:
        raise SourceError(
            source,
            f"server error (HTTP {status})",
            hint="the platform is having trouble; the source will back off and retry",
            retry_after=retry_after,
        )
    raise SourceError(
        source,
        f"unexpected HTTP {status} {response.reason or ''}".rstrip(),
        hint="check the URL and parameters",
    )


def _moved_permanently(response: aiohttp.ClientResponse, requested: str) -> list[str]:
    if any(hop.status in (301, 308) for hop in response.history):
        return [
            f"{safe_url(requested)} moved permanently to {safe_url(str(response.url))} — "
            "update the URL in the config"
        ]
    return []


class _Decoder:
    """gzip/deflate → bytes, never producing more than ``room + 1`` bytes per call.

    A body labelled compressed that turns out not to be (a real server mistake) is passed
    through with a warning; one that breaks after it started decoding is an error.
    """

    def __init__(self, encoding: str) -> None:
        self.encoding = encoding
        self.warning = ""
        self._head = b""  # bytes held until there are enough to tell what they are
        self._zlib: Any = None
        self._passthrough = False

    def feed(self, data: bytes, room: int) -> bytes:
        if self._zlib is None and not self._passthrough:
            self._head += data
            if len(self._head) < 2:
                return b""
            data, self._head = self._head, b""
            self._choose(data)
        if self._passthrough:
            return data[: room + 1]
        return self._inflate(data, room)

    def pending(self) -> bool:
        """Input is left over because the last call hit its ``room``."""
        return self._zlib is not None and bool(self._zlib.unconsumed_tail)

    def drain(self, room: int) -> bytes:
        return self._inflate(self._zlib.unconsumed_tail, room)

    def _inflate(self, data: bytes, room: int) -> bytes:
        # max_length must stay ≥ 1: zlib reads 0 as "unlimited".
        out = bytes(self._zlib.decompress(data, room + 1))
        while (
            len(out) <= room
            and self._zlib.eof
            and self._zlib.unused_data[:2] == b"\x1f\x8b"  # another gzip member follows
        ):
            rest = self._zlib.unused_data
            self._zlib = zlib.decompressobj(16 + zlib.MAX_WBITS)
            out += self._zlib.decompress(rest, room + 1 - len(out))
        return out

    def close(self) -> tuple[bytes, bool]:
        """(bytes still held, whether the compressed stream was complete)."""
        if self._head:
            self._passthrough = True
            self.warning = self._mislabelled()
        return self._head, self._zlib is None or self._zlib.eof

    def _choose(self, first: bytes) -> None:
        if self.encoding in ("gzip", "x-gzip"):
            if first[:2] == b"\x1f\x8b":
                self._zlib = zlib.decompressobj(16 + zlib.MAX_WBITS)
                return
        elif (first[0] & 0x0F) == 8 and (first[0] << 8 | first[1]) % 31 == 0:
            self._zlib = zlib.decompressobj(zlib.MAX_WBITS)  # zlib-wrapped, as RFC 9110 says
            return
        elif _inflates(first):
            self._zlib = zlib.decompressobj(-zlib.MAX_WBITS)  # raw deflate, as many servers send
            return
        self._passthrough = True
        self.warning = self._mislabelled()

    def _mislabelled(self) -> str:
        return f"the server labelled the body {self.encoding} but sent it uncompressed"


def _inflates(data: bytes) -> bool:
    try:
        zlib.decompressobj(-zlib.MAX_WBITS).decompress(data[:_CHUNK_BYTES], 1)
    except zlib.error:
        return False
    return True


async def _read_body(
    source: str, response: aiohttp.ClientResponse, limit: int
) -> tuple[bytes, list[str]]:
    """Read the body, stopping as soon as the bytes received or the bytes they decode to
    pass ``limit``."""
    encoding = response.headers.get("Content-Encoding", "").strip().lower()
    if encoding not in ("", "identity", "gzip", "x-gzip", "deflate"):
        raise SourceError(
            source,
            f"the server used Content-Encoding {encoding!r}, which we did not ask for",
            hint=f"the server ignores Accept-Encoding: {ACCEPT_ENCODING}; report it to its operator",
        )
    decoder = _Decoder(encoding) if encoding not in ("", "identity") else None
    chunks: list[bytes] = []
    received = size = 0

    def keep(data: bytes) -> None:
        nonlocal size
        size += len(data)
        if size > limit:
            where = f"after decompression ({encoding})" if decoder else "while downloading"
            raise SourceError(
                source, f"response body exceeded the {limit}-byte cap {where}", hint=_CAP_HINT
            )
        chunks.append(data)

    try:
        async for chunk in response.content.iter_chunked(_CHUNK_BYTES):
            received += len(chunk)
            if received > limit:
                raise SourceError(
                    source,
                    f"response body exceeded the {limit}-byte cap while downloading",
                    hint=_CAP_HINT,
                )
            if decoder is None:
                keep(chunk)
                continue
            keep(decoder.feed(chunk, limit - size))
            while decoder.pending():
                keep(decoder.drain(limit - size))
            await asyncio.sleep(0)
        if decoder is None:
            return b"".join(chunks), []
        held, complete = decoder.close()
        keep(held)
    except zlib.error as exc:
        raise SourceError(
            source,
            f"the {encoding}-compressed body is corrupt ({exc})",
            hint="the server sent broken data; will retry",
        ) from None
    if not complete:
        raise SourceError(
            source,
            f"the {encoding}-compressed body ends early (truncated)",
            hint="the server cut the response; will retry",
        )
    return b"".join(chunks), [decoder.warning] if decoder.warning else []
