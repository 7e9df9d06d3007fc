"""Medium-neutral pieces of an alert's content: snippet with matched spans, safe links,
language names and the state line (the author's history and other signals: context.py).

Everything that came from a mention is untrusted; each sink escapes these pieces for
its own medium (Slack mrkdwn, HTML, plain text).
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any
from urllib.parse import quote, urlsplit

from alerts.console import terminal_safe
from monitor.durations import format_duration

LANGUAGES = {
    "en": "English",
    "hi": "Hindi",
    "bn": "Bengali",
    "fa": "Persian",
    "ur": "Urdu",
    "ar": "Arabic",
    "es": "Spanish",
    "fr": "French",
    "de": "German",
    "pt": "Portuguese",
}
_SLACK_ID = re.compile(r"^[UW][A-Z0-9]{2,20}$")
# Characters that let a URL break out of Slack's <url|label> or an HTML attribute.
_URL_UNSAFE = re.compile(r"[\s<>|\"'`\\^{}]")


def match_text(mention: dict[str, Any]) -> str:
    """Title and body as the matcher saw them (the spans index into this)."""
    title, text = mention.get("title") or "", mention.get("text") or ""
    if title and text and not text.startswith(title):
        return f"{title}\n{text}"
    return text or title


def snippet(mention: dict[str, Any], limit: int = 400) -> tuple[str, list[tuple[int, int]]]:
    """A window of the text around the first matched term, and the spans inside it."""
    text = match_text(mention)
    spans = sorted(
        (int(s[0]), int(s[1]))
        for s in mention.get("spans") or []
        if len(s) == 2 and 0 <= int(s[0]) < int(s[1]) <= len(text)
    )
    start = max(0, spans[0][0] - limit // 4) if spans and spans[0][1] > limit else 0
    end = min(len(text), start + limit)
    window = text[start:end]
    prefix = "…" if start else ""
    suffix = "…" if end < len(text) else ""
    shift = len(prefix) - start
    inside = [(a + shift, b + shift) for a, b in spans if a >= start and b <= end]
    merged: list[tuple[int, int]] = []
    for a, b in inside:
        if merged and a < merged[-1][1]:
            continue  # overlapping matches: keep the first
        merged.append((a, b))
    return _clean(prefix + window + suffix, merged)


def _clean(text: str, spans: list[tuple[int, int]]) -> tuple[str, list[tuple[int, int]]]:
    """Drop control and bidi characters, moving the spans with the text."""
    kept, mapping = [], []
    for ch in text:
        mapping.append(len(kept))
        if terminal_safe(ch) == ch:
            kept.append(ch)
    mapping.append(len(kept))
    return "".join(kept), [(mapping[a], mapping[b]) for a, b in spans if mapping[a] < mapping[b]]


def split_spans(text: str, spans: list[tuple[int, int]]) -> list[tuple[str, bool]]:
    """The text cut into (piece, is_match) parts."""
    parts, position = [], 0
    for a, b in spans:
        if a > position:
            parts.append((text[position:a], False))
        parts.append((text[a:b], True))
        position = b
    if position < len(text):
        parts.append((text[position:], False))
    return parts


def safe_url(url: str | None) -> str | None:
    """An http(s) URL with every character that could break out of markup percent-encoded;
    None for anything else (javascript:, data:, relative)."""
    if not url:
        return None
    url = terminal_safe(url.strip())
    try:
        scheme = urlsplit(url).scheme.lower()
    except ValueError:
        return None
    if scheme not in ("http", "https"):
        return None
    return _URL_UNSAFE.sub(lambda m: quote(m.group(0), safe=""), url)


def language_note(code: str) -> str:
    """'' for English or unknown; otherwise a reminder to read it in its language."""
    if not code or code == "en":
        return ""
    name = LANGUAGES.get(code, code)
    return f"written in {name} — answer in {name} or get it translated first"


def language_name(code: str) -> str:
    return LANGUAGES.get(code, code or "unknown")


def slack_member(person_id: str | None) -> str | None:
    return person_id if person_id and _SLACK_ID.match(person_id) else None


def actor_member(actor: str) -> str | None:
    """The Slack member id of an actor written as ``slack:U123``."""
    return slack_member(actor.removeprefix("slack:")) if actor.startswith("slack:") else None


def state_summary(mention: dict[str, Any]) -> tuple[str, str, datetime | None]:
    """(state, who, when) of the mention's workflow state."""
    return mention.get("state", "open"), mention.get("state_by", ""), mention.get("state_at")


STATE_ICONS = {
    "open": "🔴",
    "acknowledged": "👀",
    "answered": "💬",
    "resolved": "✅",
    "ignored": "⚪",
}


def age(mention: dict[str, Any], now: datetime) -> str:
    since = mention.get("published_at") or mention.get("fetched_at")
    return format_duration(now - since) if since else ""


def digest_line_text(item: dict[str, Any], limit: int = 140) -> str:
    """One mention in a list: its title or the start of its text, cleaned."""
    text = " ".join((item.get("title") or item.get("text") or "").split())
    text = terminal_safe(text)
    return text if len(text) <= limit else text[: limit - 1] + "…"
