"""RSS 0.9x/1.0/2.0 and Atom feeds, fetched with the shared HTTP layer, parsed off the loop.

docs: https://feedparser.readthedocs.io/en/latest/

Everything CPU-bound — feedparser and turning entries into mentions — runs in a worker
thread, so a 5,000-entry feed never stalls the event loop. The helpers here (parse_feed,
entry_identities, ...) are shared by the other feed adapters (Google Alerts, Google News).
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import re
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar, Literal
from xml.sax import SAXParseException

import feedparser

from monitor.mention import Mention
from monitor.textclean import html_to_line, html_to_text
from sources.base import FetchResult, Source, SourceConfig, SourceError, SourceState
from sources.http import HttpResponse

# source_key is a String(1000) column; longer keys end in a hash instead.
MAX_KEY_CHARS = 900
# Ids remembered per feed to notice rotating GUIDs (feeds list newest first).
MAX_REMEMBERED_IDS = 500
# expat's complaints when a document simply stops: the last entry may be cut off.
_TRUNCATION = ("no element found", "unclosed token", "unclosed cdata section")
_HTML_PAGE = re.compile(
    rb"^\s*(<\?xml[^>]*>\s*)?(<!--.*?-->\s*)*<(!doctype\s+html|html[\s>])", re.I | re.S
)
_HTML_TITLE = re.compile(rb"<title[^>]*>(.*?)</title>", re.I | re.S)
# Encoding mistakes feedparser recovered from; the document itself was read fine.
_RECOVERED = (feedparser.CharacterEncodingOverride, feedparser.NonXMLContentType)


class RssConfig(SourceConfig):
    type: Literal["rss"] = "rss"
    # The feed's URL (http or https).
    url: str


class RssSource(Source):
    kind: ClassVar[str] = "rss"
    docs_url: ClassVar[str] = "https://www.rssboard.org/rss-specification"
    # Feeds rarely change faster than this; polling more often only costs the publisher.
    min_interval_s: ClassVar[float] = 60.0
    # A feed given `watchlist:` was chosen for that one topic (and a Google Alert is a query
    # Google already ran): everything in it is filed under the watchlist.
    routes_to_watchlist: ClassVar[bool] = True
    # A feed's own <ttl> may stretch the poll interval up to this, never further:
    # mentions must still be seen within the hour.
    max_ttl_s: ClassVar[float] = 3600.0
    Config = RssConfig
    config: RssConfig

    async def fetch(self, state: SourceState) -> FetchResult:
        response = await self.context.http.get(
            self.name, self.config.url, etag=state.etag, last_modified=state.last_modified
        )
        if response.not_modified:
            return unchanged(state, response.warnings)
        return await asyncio.to_thread(self.read, response, state.cursor)

    def read(self, response: HttpResponse, cursor: Mapping[str, Any]) -> FetchResult:
        """Parse one fetched document into mentions. Runs in a worker thread: no I/O here."""
        document = parse_feed(self.name, response)
        trust_ids, cursor = track_ids(document.entries, cursor)
        identities = entry_identities(document.entries, trust_ids=trust_ids)
        mentions = [
            self.entry_to_mention(entry, identity, document)
            for entry, identity in zip(document.entries, identities, strict=True)
        ]
        cursor["entries"] = len(mentions)
        return document.result(mentions, cursor, self.ttl_delay(document.ttl))

    def entry_to_mention(self, entry: Any, identity: str, document: FeedDocument) -> Mention:
        content = entry_html(entry)
        return Mention(
            source_key=bounded_key(f"rss:{self.config.url}#{identity}"),
            url=str(entry.get("link", "")),
            title=html_to_line(entry.get("title", "")),
            text=html_to_text(content),
            html=content,
            author=html_to_line(entry.get("author", "")),
            author_url=str(entry.get("author_detail", {}).get("href", "")),
            published_at=entry_time(entry),
            watchlist_hint=self.watchlist_hint(),
            language_hint=entry_language(entry, document.language),
        )

    def ttl_delay(self, ttl: timedelta | None) -> timedelta | None:
        """Honour a feed's <ttl> when it asks for longer than our interval, up to max_ttl_s."""
        if ttl is None or ttl <= self.interval:
            return None
        return min(ttl, timedelta(seconds=self.max_ttl_s))


def unchanged(state: SourceState, warnings: list[str]) -> FetchResult:
    """HTTP 304: nothing new, and the document still holds the entries it held before.

    ``stats["unchanged_items"]`` tells monitor.health the source is not silent.
    """
    return FetchResult(
        [],
        cursor=state.cursor,
        etag=state.etag,
        last_modified=state.last_modified,
        warnings=warnings,
        stats={"unchanged_items": int(state.cursor.get("entries", 0))},
    )


# ----------------------------------------------------------------------- parsing


@dataclass(slots=True)
class FeedDocument:
    entries: list[Any]
    title: str = ""
    language: str = ""
    ttl: timedelta | None = None
    warnings: list[str] = field(default_factory=list)
    # False when feedparser had to guess: validators are then not kept, so the next
    # poll fetches the whole document again instead of a 304 for a broken copy.
    well_formed: bool = True
    etag: str | None = None
    last_modified: str | None = None

    def result(
        self,
        mentions: list[Mention],
        cursor: dict[str, Any],
        next_check_in: timedelta | None = None,
    ) -> FetchResult:
        return FetchResult(
            mentions,
            cursor=cursor,
            etag=self.etag if self.well_formed else None,
            last_modified=self.last_modified if self.well_formed else None,
            warnings=self.warnings,
            next_check_in=next_check_in,
            stats={"entries": len(self.entries)},
        )


def parse_feed(source: str, response: HttpResponse) -> FeedDocument:
    """feedparser on the bytes we fetched, or a SourceError saying why they are no feed.

    Never ``feedparser.parse(url)``, and never bare bytes either: feedparser treats a
    bytes argument that names a local file as a path and opens it.
    """
    body = response.body
    if not body.strip():
        raise SourceError(
            source,
            f"empty response (HTTP {response.status}) instead of a feed",
            hint="open the URL in a browser; the feed may have moved or the server is broken",
        )
    parsed = feedparser.parse(io.BytesIO(body), response_headers=_parser_headers(response))
    entries = list(parsed.entries)
    problem = parsed.get("bozo_exception") if parsed.bozo else None
    recovered = isinstance(problem, _RECOVERED)
    if not parsed.version and not entries:
        raise _not_a_feed(source, body, problem)
    warnings = list(response.warnings)
    if problem is not None and not recovered:
        note = f"feed is not well-formed but usable: {_describe(problem)}"
        if _last_entry_unclosed(body, entries):
            entries.pop()  # its text stops where the document breaks off
            note += "; its last entry is cut off and was skipped"
        if not entries and (_is_truncation(problem) or not parsed.feed):
            raise SourceError(
                source,
                f"the feed is broken and no complete entry could be read ({_describe(problem)})",
                hint="open the URL in a browser; the server may be sending a cut-off or corrupt file",
            )
        warnings.append(note)
    elif problem is not None:
        warnings.append(f"feed is not well-formed but usable: {_describe(problem)}")
    return FeedDocument(
        entries=entries,
        title=html_to_line(parsed.feed.get("title", "")),
        language=_language(parsed.feed.get("language", "")),
        ttl=_ttl(parsed.feed.get("ttl")),
        warnings=warnings,
        well_formed=problem is None or recovered,
        etag=response.headers.get("ETag"),
        last_modified=response.headers.get("Last-Modified"),
    )


def _parser_headers(response: HttpResponse) -> dict[str, str]:
    """The headers feedparser uses: charset, base URL for relative links, language.

    RFC 3023 made text/xml without a charset mean us-ascii; RFC 7303 replaced that with
    "read the XML declaration", which is what servers mean, so we say application/xml.
    """
    headers = {"content-location": response.url}
    content_type = response.headers.get("Content-Type", "")
    media = content_type.split(";")[0].strip().lower()
    if media.startswith("text/") and media.endswith("xml") and "charset" not in content_type:
        content_type = "application/xml"
    if content_type:
        headers["content-type"] = content_type
    if language := response.headers.get("Content-Language"):
        headers["content-language"] = language
    return headers


def _not_a_feed(source: str, body: bytes, problem: Exception | None) -> SourceError:
    head = body[:4096]
    if _HTML_PAGE.match(head):
        title = _HTML_TITLE.search(body[:65536])
        named = ""
        if title:
            named = f" titled {_quote(html_to_line(title.group(1).decode('utf-8', 'replace')))}"
        return SourceError(
            source,
            f"got an HTML page{named} instead of a feed",
            hint="open the URL in a browser: it may be an error, login or consent page, "
            "or the site's page rather than its feed",
        )
    detail = f" ({_describe(problem)})" if problem is not None else ""
    start = _quote(head[:60].decode("utf-8", "replace"))
    return SourceError(
        source,
        f"the response is not an RSS or Atom feed{detail}; it starts with {start}",
        hint="check that the URL is the feed's address, not a web page or an API error",
    )


def _quote(text: str) -> str:
    """Untrusted text for an error message: one short line, no control characters, and
    no angle brackets, so it can never become markup or a chat mention downstream."""
    text = " ".join(text.split())[:80]
    text = "".join(ch for ch in text if ch.isprintable())
    return repr(text.replace("<", "‹").replace(">", "›"))


def _describe(problem: Exception | None) -> str:
    if isinstance(problem, SAXParseException):
        return f"{problem.getMessage()} at line {problem.getLineNumber()}"
    return str(problem) or problem.__class__.__name__


def _last_entry_unclosed(body: bytes, entries: list[Any]) -> bool:
    """In a broken document, fewer closing tags than entries: the last one was cut off."""
    return bool(entries) and body.count(b"</item>") + body.count(b"</entry>") < len(entries)


def _is_truncation(problem: Exception) -> bool:
    return isinstance(problem, SAXParseException) and problem.getMessage() in _TRUNCATION


def _ttl(value: Any) -> timedelta | None:
    try:
        minutes = int(str(value).strip())
    except (TypeError, ValueError):
        return None
    return timedelta(minutes=minutes) if 0 < minutes <= 7 * 24 * 60 else None


def _language(value: Any) -> str:
    return str(value or "").strip().lower().replace("_", "-").split("-")[0][:8]


# ---------------------------------------------------------------------- identity


def entry_identities(entries: Sequence[Any], *, trust_ids: bool = True) -> list[str]:
    """The identity of each entry of one feed document; the first rule that holds wins:

    1. its guid/id — unless the feed is known to reuse or rotate ids (``trust_ids`` is
       False), or several entries of this document carry this id but differ in link or
       title (a feed that gives every item the same GUID);
    2. its link — unless entries with different titles share it (every item links to the
       home page);
    3. ``sha256:`` of its title and content.

    A feed that rotates GUIDs (a new one for the same item on every poll) is noticed
    across polls by ``track_ids`` and then uses rule 2; until then, dedup by canonical
    URL folds the copies into one mention.
    """
    id_owners, link_owners = _owners(entries)
    identities = []
    for entry in entries:
        guid, link = _id(entry), _link(entry)
        if trust_ids and guid and len(id_owners[guid]) == 1:
            identities.append(guid)
        elif link and len(link_owners[link]) == 1:
            identities.append(link)
        else:
            digest = hashlib.sha256(f"{entry.get('title', '')}\x00{entry_html(entry)}".encode())
            identities.append(f"sha256:{digest.hexdigest()[:32]}")
    return identities


def track_ids(entries: Sequence[Any], cursor: Mapping[str, Any]) -> tuple[bool, dict[str, Any]]:
    """Whether this feed's ids can be trusted, and the cursor that remembers it.

    Ids stop being trusted for good when one document reuses an id for different
    entries, or when an entry comes back (same link, same title) under a new id.
    """
    if cursor.get("ids") == "unreliable":
        return False, {"ids": "unreliable"}
    seen = _id_fingerprints(entries)
    before = cursor.get("seen") or {}
    rotated = any(
        (old := before.get(link)) and old[:8] != now[:8] and old[8:] == now[8:]
        for link, now in seen.items()
    )
    id_owners, _ = _owners(entries)
    reused = any(len(found) > 1 for guid, found in id_owners.items() if guid)
    if rotated or reused:
        return False, {"ids": "unreliable"}
    return True, {"ids": "trusted", "seen": seen}


def _owners(
    entries: Sequence[Any],
) -> tuple[dict[str, set[tuple[str, str]]], dict[str, set[str]]]:
    """Who carries each id ({(link, title)}) and each link ({title}) in one document."""
    id_owners: dict[str, set[tuple[str, str]]] = {}
    link_owners: dict[str, set[str]] = {}
    for entry in entries:
        guid, link, title = _id(entry), _link(entry), str(entry.get("title", ""))
        id_owners.setdefault(guid, set()).add((link, title))
        link_owners.setdefault(link, set()).add(title)
    return id_owners, link_owners


def _id_fingerprints(entries: Sequence[Any]) -> dict[str, str]:
    """{hash(link): hash(id) + hash(title)} for entries whose link is theirs alone."""
    counts = Counter(_link(e) for e in entries)
    found: dict[str, str] = {}
    for entry in entries:
        link = _link(entry)
        if link and counts[link] == 1 and _id(entry) and len(found) < MAX_REMEMBERED_IDS:
            found[_short(link)] = _short(_id(entry)) + _short(str(entry.get("title", "")))
    return found


def _short(text: str) -> str:
    return hashlib.blake2b(text.encode(), digest_size=4).hexdigest()


def _id(entry: Any) -> str:
    return str(entry.get("id") or "").strip()


def _link(entry: Any) -> str:
    return str(entry.get("link") or "").strip()


def headline_hint(headline: str, publisher: str) -> list[str]:
    """``headline@publisher`` as an extra dedup identity for news, where links are opaque
    (Google News) or differ (Google Alerts' redirects) but the story is the same."""
    words = headline.casefold().split()
    if len(words) < 3 or not publisher:  # "Update" @ example.com says too little
        return []
    return [f"headline:{' '.join(words)}@{publisher.casefold()}"]


def bounded_key(key: str) -> str:
    """A source_key that fits its column: a long one keeps its start plus a hash of it all."""
    if len(key) <= MAX_KEY_CHARS:
        return key
    digest = hashlib.sha256(key.encode()).hexdigest()[:32]
    return f"{key[: MAX_KEY_CHARS - 40]}~sha256:{digest}"


# ------------------------------------------------------------------ entry fields


def entry_html(entry: Any) -> str:
    if entry.get("content"):
        return str(entry["content"][0].get("value", ""))
    return str(entry.get("summary", ""))


def entry_time(entry: Any) -> datetime | None:
    for key in ("published_parsed", "updated_parsed", "created_parsed"):
        value = entry.get(key)
        if value:
            try:
                return datetime(*value[:6], tzinfo=UTC)
            except (TypeError, ValueError):
                continue
    return None


def entry_language(entry: Any, feed_language: str) -> str:
    detail = entry.get("title_detail") or {}
    return _language(detail.get("language")) or feed_language
