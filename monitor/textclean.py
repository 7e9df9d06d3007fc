"""Markup from feeds and APIs → clean text for matching, classification and alerts."""

from __future__ import annotations

import html
import re

import nh3
from w3lib.html import remove_comments, remove_tags, remove_tags_with_content

_SPACE = re.compile(r"[ \t\r\f\v\u00a0]+")
_BLANK_LINES = re.compile(r"\n\s*\n+")
_MARKUP_HINT = re.compile(r"<[a-zA-Z/!]|&(#\d+|#x[0-9a-fA-F]+|[a-zA-Z]{2,8});")
_BLOCK_TAG = re.compile(r"<\s*(br|/p|/div|/li|/h[1-6]|/tr|/blockquote)\b[^>]*>", re.IGNORECASE)


def html_to_text(markup: str, *, max_rounds: int = 3) -> str:
    """Strip tags and decode entities, also when a feed escaped its HTML twice."""
    text = markup or ""
    for _ in range(max_rounds):
        if not _MARKUP_HINT.search(text):
            break
        text = remove_comments(text)
        text = remove_tags_with_content(text, which_ones=("script", "style"))
        text = _BLOCK_TAG.sub("\n", text)
        text = remove_tags(text)
        text = html.unescape(text)
    text = "".join(
        ch for ch in text if ch in "\n\t" or (ord(ch) >= 32 and not 0x7F <= ord(ch) < 0xA0)
    )
    text = _SPACE.sub(" ", text)
    text = _BLANK_LINES.sub("\n\n", text)
    return "\n".join(line.strip() for line in text.split("\n")).strip()


def html_to_line(markup: str) -> str:
    """``html_to_text`` on one line: for titles, authors and other short fields."""
    return " ".join(html_to_text(markup).split())


def safe_markup(markup: str) -> str:
    """Markup from the internet made safe to show: scripts, styles, event handlers and
    javascript: links removed (nh3, the Rust ammonia sanitiser). Applied to what is stored
    for display, once per stored mention, rather than to every entry of every feed."""
    return nh3.clean(markup) if markup else ""
