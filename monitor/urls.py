"""Canonical URLs for dedup: the same article reached through different links is one key.

RFC 3986 normalisation (percent-encoding, IDNA hosts, query order) comes from w3lib; on
top of it we lower-case scheme and host, drop default ports, fragments and credentials,
remove tracking parameters and unwrap redirectors whose target can be read offline.
``t.co`` links and today's opaque Google News tokens cannot be, and stay as they are.
"""

from __future__ import annotations

import base64
import binascii
import re
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from w3lib.url import canonicalize_url

TRACKING_PARAMS = frozenset(
    {
        "fbclid",
        "gclid",
        "dclid",
        "gbraid",
        "wbraid",
        "msclkid",
        "yclid",
        "twclid",
        "ttclid",
        "mc_cid",
        "mc_eid",
        "ref",
        "ref_src",
        "ref_url",
        "igshid",
        "igsh",
        "si",
        "spm",
        "_hsenc",
        "_hsmi",
        "mkt_tok",
        "oly_anon_id",
        "oly_enc_id",
        "vero_id",
        "rb_clickid",
        "s_cid",
        "cmpid",
        "ncid",
        "ocid",
        "sr_share",
        "feature",
        "share",
        "utm",
    }
)
TRACKING_PREFIXES = ("utm_", "pk_", "mtm_", "hsa_", "_ga", "__hs")

# Redirectors whose target is a query parameter: host → (paths, parameter names).
_GOOGLE_HOST = re.compile(r"^(www\.)?google(\.com?)?(\.[a-z]{2})?$")
_GOOGLE_REDIRECT = (frozenset({"/url", "/link"}), ("url", "q"))
REDIRECTORS: dict[str, tuple[frozenset[str], tuple[str, ...]]] = {
    "news.google.com": (frozenset({"/url", "/news/url"}), ("url",)),
    "www.bing.com": (frozenset({"/ck/a", "/news/apiclick.aspx"}), ("url",)),
    "l.facebook.com": (frozenset({"/l.php"}), ("u",)),
    "lm.facebook.com": (frozenset({"/l.php"}), ("u",)),
    "l.instagram.com": (frozenset({"/"}), ("u",)),
    "out.reddit.com": (frozenset(), ("url",)),  # any path: /t3_abc?url=...
    "away.vk.com": (frozenset({"/away.php"}), ("to",)),
    "vk.com": (frozenset({"/away.php"}), ("to",)),
    "www.youtube.com": (frozenset({"/redirect"}), ("q",)),
}
# news.google.com/rss/articles/<token>: before 2024 the token was base64 of a small
# protobuf whose field 4 is the article URL; newer tokens are opaque ("AU_yqL...").
_GOOGLE_NEWS_ARTICLE = re.compile(r"^/(?:__i/rss/rd/|rss/)?articles/([A-Za-z0-9_-]+)$")
_HTTP = ("http://", "https://")


def unwrap_redirect(url: str, max_depth: int = 3) -> str:
    """``https://www.google.com/url?rct=j&url=https%3A%2F%2Fx.test%2Fa&ct=ga`` → ``https://x.test/a``.

    The query string is parsed properly (never split on '&' by hand), so an encoded '&'
    inside the target survives. Links that cannot be resolved without a network request
    (``t.co``, opaque Google News tokens) are returned unchanged.
    """
    for _ in range(max_depth):
        target = _redirect_target(url)
        if target is None:
            return url
        url = target
    return url


def _redirect_target(url: str) -> str | None:
    try:
        parts = urlsplit(url)
        host = (parts.hostname or "").lower()
    except ValueError:
        return None
    if host == "news.google.com" and (match := _GOOGLE_NEWS_ARTICLE.match(parts.path)):
        return google_news_article_url(match.group(1))
    if _GOOGLE_HOST.match(host):
        paths, names = _GOOGLE_REDIRECT
    elif host in REDIRECTORS:
        paths, names = REDIRECTORS[host]
    else:
        return None
    if paths and parts.path not in paths:
        return None
    params = dict(parse_qsl(parts.query))
    return next(
        (params[name] for name in names if params.get(name, "").startswith(_HTTP)),
        None,
    )


def google_news_article_url(token: str) -> str | None:
    """The article URL inside an old-style Google News token, or None if it is opaque."""
    try:
        data = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
    except (binascii.Error, ValueError):
        return None
    # field 1 (varint) then field 4 (length-delimited): 0x08 <n> 0x22 <length> <url>
    if len(data) < 4 or data[0] != 0x08:
        return None
    position = 2
    while position < len(data) and data[position - 1] & 0x80:  # rest of field 1's varint
        position += 1
    if position >= len(data) or data[position] != 0x22:
        return None
    length, position = _varint(data, position + 1)
    raw = data[position : position + length]
    try:
        url = raw.decode("utf-8")
    except UnicodeDecodeError:
        return None
    return url if url.startswith(_HTTP) and len(raw) == length else None


def _varint(data: bytes, position: int) -> tuple[int, int]:
    value = shift = 0
    while position < len(data):
        byte = data[position]
        position += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            break
        shift += 7
    return value, position


def is_tracking_param(name: str) -> bool:
    lowered = name.lower()
    return lowered in TRACKING_PARAMS or lowered.startswith(TRACKING_PREFIXES)


def canonical_url(url: str) -> str:
    """Canonical form used as a dedup key; empty string for anything that is not http(s)."""
    if not url:
        return ""
    url = unwrap_redirect(url.strip())
    try:
        parts = urlsplit(url)
        if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
            return ""
        query = urlencode(
            [
                (key, value)
                for key, value in parse_qsl(parts.query, keep_blank_values=True)
                if not is_tracking_param(key)
            ]
        )
        canonical = canonicalize_url(
            urlunsplit((parts.scheme, parts.netloc, parts.path, query, "")), keep_fragments=False
        )
        parts = urlsplit(canonical)
        scheme = parts.scheme.lower()
        host = (parts.hostname or "").lower().rstrip(".")
        port = parts.port
    except ValueError:  # bad port, bad IPv6 literal, unencodable host
        return ""
    if ":" in host:
        host = f"[{host}]"
    if port is not None and (scheme, port) not in (("http", 80), ("https", 443)):
        host = f"{host}:{port}"
    return urlunsplit((scheme, host, parts.path or "/", parts.query, ""))


def publisher_domain(url: str) -> str:
    """``https://www.Example.com/a`` → ``example.com``: who published it, for dedup hints."""
    try:
        host = (urlsplit(url).hostname or "").lower().rstrip(".")
    except ValueError:
        return ""
    return host.removeprefix("www.")
