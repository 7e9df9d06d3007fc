"""Troll/spam signals (``monitor.classify.signals``, stored in ``mentions.signals``) as short
plain-text notes beside an alert.

They tell the person answering who they are dealing with — how often this author wrote,
how negative, whether the brand ever answered them, whether the same text was posted
before, whether the post is little more than links. They are context only: no alert is
held back or hidden because of them. Each sink escapes these notes for its medium.
"""

from __future__ import annotations

from typing import Any

# One line each for the hints whose numbers the author note does not already give.
_HINT_NOTES = {
    "link-only": "link-only: little more than links",
    "frequent-author": "frequent-author",
    "mostly-negative-author": "mostly-negative-author",
    "never-answered": "never-answered",
}


def stored_signals(mention: dict[str, Any]) -> dict[str, Any]:
    """The mention's stored signals, or {} for a row from before they existed."""
    signals = mention.get("signals")
    return signals if isinstance(signals, dict) else {}


def author_note(signals: dict[str, Any]) -> str:
    """'first mention by this author' or '6 mentions by this author, 83% negative, never
    answered'; '' when the mention has no author."""
    total = signals.get("author_mentions")
    if not isinstance(total, int) or isinstance(total, bool) or total < 1:
        return ""
    if total == 1:
        return "first mention by this author"
    share = signals.get("author_negative_share")
    negative = f", {share:.0%} negative" if isinstance(share, int | float) else ""
    answered = "answered before" if signals.get("author_answered") else "never answered"
    return f"{total} mentions by this author{negative}, {answered}"


def signal_notes(signals: dict[str, Any]) -> list[str]:
    """One short note per stored hint, in the order they were stored."""
    notes = []
    for hint in signals.get("hints") or []:
        if hint == "repeat-text":
            count = _count(signals.get("same_text_count"))
            authors = _count(signals.get("same_text_authors"))
            by = f", by {_times(authors, 'author')}" if authors else ""
            notes.append(
                f"repeat-text: the same text was posted {_times(count, 'time')} before{by}"
            )
        elif isinstance(hint, str) and hint:
            notes.append(_HINT_NOTES.get(hint, hint))
    return notes


def _count(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def _times(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"
