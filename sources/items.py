"""Reading a platform's JSON items without trusting them (not an adapter).

An API sends what it sends: a field can be null, of another type, a number no clock can
hold (10**40, 1e400 → inf, NaN), a string of megabytes. The JSON adapters therefore turn
items into mentions one at a time, each inside ``SkippedItems.guard()``:

    skipped = SkippedItems()
    for raw in page:
        with skipped.guard():
            item = obj(raw)
            key, created = ident(item, "id"), epoch(item, "created")  # identity first
            if mark.admit(key, created):
                mentions.append(convert(item))                        # then the rest
    skipped.report(warnings)

A malformed item is left out and counted; the good ones are kept; the FetchResult carries
one warning ("skipped 3 malformed items (first: ...)") that source health shows. A stream
(Jetstream) reports the skips of each batch with that batch, its stats keep the total; a
brand-reply listing has no FetchResult, so it logs the warning once (``SkippedItems.log``).

The cursor rule, the same in every adapter: only an item's identity and the value the
cursor is made of (a creation time, a status id) are read before it may move the cursor,
and they are read strictly. So a bogus time or id is refused before it can push the
cursor past good items (or far into the future, where it would sit for ever); and an item
whose identity is fine but whose other fields are not still counts as seen, so the
cursor moves past it and it is skipped once, not again on every poll.

The readers below are strict about ids, times and text: a text field of another type (a
title that is an object) makes the item malformed. Such an item is skipped whole rather
than read with that field empty, because an item we only half understand could be matched
or threaded wrongly (a comment whose ``comment_text`` is a list would pass for a story),
and text of any kind may be matched, shown in an alert or used as a link — its ``str()``
("{'x': ...}") must never get there. Only display-only numbers and booleans (``count``,
``flag``) are lenient: a score that is not a plain integer is just unknown.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sources.incremental import from_epoch, parse_time

log = logging.getLogger(__name__)

# What converting a malformed item raises: wrong types (TypeError, AttributeError), missing
# keys (KeyError), bad values (ValueError, MalformedItem), numbers beyond a clock
# (OverflowError). Not OSError: guarded code does no I/O, and a network error (an OSError)
# must never pass for a bad item.
ITEM_ERRORS: tuple[type[Exception], ...] = (
    TypeError,
    ValueError,
    KeyError,
    AttributeError,
    OverflowError,
)
# Longer ids are not ids; they would also bloat the cursor and every key derived from them.
MAX_ID_CHARS = 500
# Integer ids are 64-bit at most (APIs send bigger ones as strings); 10**40 is no id.
MAX_INT_ID = 2**63
# The exception text quoted in a warning is cut here: it may quote the offending value.
MAX_REASON_CHARS = 200
# JSON integers beyond this are not counts anyone displays (and not exact as a double).
MAX_COUNT = 2**53


class MalformedItem(ValueError):
    """One field of an API item is not what the API documents."""

    def __init__(self, key: str, problem: str) -> None:
        super().__init__(f"`{key}` {problem}")
        self.key = key


@dataclass
class SkippedItems:
    """The items of one poll (or stream batch, or reply listing) left out as malformed."""

    # What the items are called in the warning: items, posts, events.
    noun: str = "items"
    count: int = 0
    first: str = ""

    @contextmanager
    def guard(self) -> Iterator[None]:
        """Run the body for one item; if the item turns out malformed, count it and carry on
        with the next. Keep the body to reading and converting: no I/O, no awaits."""
        try:
            yield
        except ITEM_ERRORS as exc:
            self.skip(exc)

    def skip(self, reason: Exception) -> None:
        self.count += 1
        if self.count == 1:
            self.first = _describe(reason)
            # Our own bug looks the same as the API's from here: keep the traceback findable.
            log.debug("skipped a malformed item: %s", self.first, exc_info=reason)

    def warning(self) -> str | None:
        if not self.count:
            return None
        noun = self.noun if self.count > 1 else self.noun.removesuffix("s")
        return (
            f"skipped {self.count} malformed {noun} (first: {self.first}); the rest were kept "
            "— if this persists, the API has changed or the source's URL points at another one"
        )

    def report(self, warnings: list[str]) -> None:
        """Add the warning (if any item was skipped) to a FetchResult's warnings."""
        if (warning := self.warning()) is not None:
            warnings.append(warning)

    def log(self, where: str) -> None:
        """For listings without a FetchResult (brand replies): one log line instead."""
        if (warning := self.warning()) is not None:
            log.warning("%s: %s", where, warning)


def _describe(exc: Exception) -> str:
    text = str(exc) if isinstance(exc, MalformedItem) else f"{type(exc).__name__}: {exc}"
    return text if len(text) <= MAX_REASON_CHARS else text[: MAX_REASON_CHARS - 1] + "…"


def kind_of(value: Any) -> str:
    """How a JSON value is described in a warning; never the value itself (it may be huge)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return f"a string of {len(value)} characters"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, Mapping):
        return "an object"
    return type(value).__name__


# ------------------------------------------------------------------------ readers


def obj(value: Any, key: str = "item") -> Mapping[str, Any]:
    """``value`` when it is a JSON object; else the item is malformed."""
    if not isinstance(value, Mapping):
        raise MalformedItem(key, f"is {kind_of(value)}, not an object")
    return value


def nested(data: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    """An optional object field: {} when null or missing."""
    value = data.get(key)
    return {} if value is None else obj(value, key)


def text(data: Mapping[str, Any], key: str) -> str:
    """A text field: "" when null or missing; anything but a string is malformed."""
    value = data.get(key)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise MalformedItem(key, f"is {kind_of(value)}, not text")
    return value


def ident(data: Mapping[str, Any], key: str, *, numeric: bool = False) -> str:
    """A required id (a string, or an integer as some APIs send them) as a string.

    ``numeric``: only digits, for ids that go into a URL path or are ordered as numbers."""
    value = data.get(key)
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise MalformedItem(key, f"is {kind_of(value)}, not an id")
    if isinstance(value, int) and not 0 <= value < MAX_INT_ID:
        raise MalformedItem(key, "is a number no id can be")
    found = str(value).strip()
    if not found or len(found) > MAX_ID_CHARS:
        raise MalformedItem(key, f"is {kind_of(value)}, not an id")
    if numeric and not (found.isascii() and found.isdigit()):
        raise MalformedItem(key, f"is {kind_of(value)}, not a numeric id")
    return found


def optional_ident(data: Mapping[str, Any], key: str, *, numeric: bool = False) -> str:
    """An id that may be absent: "" when null, missing or empty."""
    return "" if data.get(key) in (None, "") else ident(data, key, numeric=numeric)


def epoch(data: Mapping[str, Any], key: str) -> float:
    """A required time in epoch seconds, as sent (for cursors that store numbers)."""
    value = data.get(key)
    if from_epoch(value) is None:
        raise MalformedItem(key, f"is {kind_of(value)} that is no time in epoch seconds")
    return float(value)


def epoch_time(data: Mapping[str, Any], key: str) -> datetime:
    """A required time in epoch seconds, as an aware UTC datetime."""
    found = from_epoch(data.get(key))
    if found is None:
        raise MalformedItem(key, f"is {kind_of(data.get(key))} that is no time in epoch seconds")
    return found


def timestamp(data: Mapping[str, Any], key: str) -> datetime:
    """A required ISO 8601 time, as an aware UTC datetime."""
    found = parse_time(data.get(key))
    if found is None:
        raise MalformedItem(key, f"is {kind_of(data.get(key))} that is no ISO 8601 time")
    return found


def optional_timestamp(data: Mapping[str, Any], key: str) -> datetime | None:
    """An ISO 8601 time that may be absent: None when null or missing."""
    return None if data.get(key) is None else timestamp(data, key)


def count(data: Mapping[str, Any], key: str) -> int | None:
    """A display-only integer (score, replies): None unless it is a plain, sane integer."""
    value = data.get(key)
    if isinstance(value, bool) or not isinstance(value, int) or abs(value) > MAX_COUNT:
        return None
    return value


def flag(data: Mapping[str, Any], key: str) -> bool:
    """A display-only boolean: True only for JSON true (not for "false" or a huge string)."""
    return data.get(key) is True


def strings(data: Mapping[str, Any], key: str) -> list[str]:
    """A list of strings: [] when null or missing; other elements are dropped; anything but
    a list is malformed."""
    value = data.get(key)
    if value is None:
        return []
    if not isinstance(value, list):
        raise MalformedItem(key, f"is {kind_of(value)}, not a list")
    return [element for element in value if isinstance(element, str)]


def objects(data: Mapping[str, Any], key: str) -> list[Mapping[str, Any]]:
    """A list of objects: [] when null or missing; other elements are dropped; anything but
    a list is malformed."""
    value = data.get(key)
    if value is None:
        return []
    if not isinstance(value, list):
        raise MalformedItem(key, f"is {kind_of(value)}, not a list")
    return [element for element in value if isinstance(element, Mapping)]


def page_token(value: Any) -> str | None:
    """A next-page cursor as sent back to the API: a non-empty string, else no next page
    (an object here would fail inside the HTTP client, as an adapter bug)."""
    return value if isinstance(value, str) and value and len(value) <= MAX_ID_CHARS else None
