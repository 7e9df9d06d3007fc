"""Which of many regular expressions can match a text, found in one pass.

Searching 50 case-insensitive patterns one after another was the most expensive step of
English sentiment: each ``search`` tries its pattern at every position of the text. Nearly
every pattern contains a literal that any match of it must contain ("down", "refund",
"waiting"), so one Aho-Corasick pass over the lower-cased text finds the patterns worth
searching, and the rest are skipped. The answer is exactly that of searching them all:
a pattern whose required literals cannot be worked out is always searched.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

import ahocorasick

from monitor.normalize import few_chars, replace_chars

try:  # the parser behind `re`; private, so a Python without it searches every pattern
    from re import _constants as sre_constants  # type: ignore[attr-defined]
    from re import _parser as sre_parser  # type: ignore[attr-defined]
except ImportError:  # pragma: no cover - Python < 3.11 is not supported anyway
    sre_parser = None
    sre_constants = None

# The characters outside ASCII that a case-insensitive pattern lets match an ASCII letter
# (checked against every code point: Turkish İ ı, the long s, the Kelvin sign).
_CASE_TWINS = few_chars({"\u0130": "i", "\u0131": "i", "\u017f": "s", "\u212a": "k"})


def fold(text: str) -> str:
    """Lower case in which an ASCII literal occurs wherever a case-insensitive match has it."""
    return replace_chars(text, _CASE_TWINS).lower()


def required_literals(pattern: str, flags: int = 0) -> frozenset[str] | None:
    """Lower-case strings at least one of which is in every text the pattern matches;
    None when the pattern does not guarantee one (it must always be searched)."""
    if sre_parser is None:
        return None
    try:
        parsed = sre_parser.parse(pattern, flags)
    except re.error:
        return None
    return _sequence(list(parsed))


def _sequence(items: Sequence[tuple[object, object]]) -> frozenset[str] | None:
    """Best literal set of a concatenation: a run of literals, or one required part's set."""
    c = sre_constants
    options: list[frozenset[str]] = []
    run: list[str] = []
    for op, arg in items:
        if op is c.LITERAL and chr(arg).isascii():  # type: ignore[arg-type]
            # Only ASCII: what else a case-insensitive non-ASCII letter matches is not
            # always its lower case (σ and ς), and `fold` only knows the ASCII twins.
            run.append(chr(arg).lower())  # type: ignore[arg-type]
            continue
        if run:
            options.append(frozenset({"".join(run)}))
            run = []
        found: frozenset[str] | None = None
        if op is c.SUBPATTERN:
            found = _sequence(list(arg[-1]))  # type: ignore[index]
        elif op is c.BRANCH:
            found = _branches(arg[1])  # type: ignore[index]
        elif op in (c.MAX_REPEAT, c.MIN_REPEAT) and arg[0] >= 1:  # type: ignore[index]
            found = _sequence(list(arg[2]))  # type: ignore[index]
        if found:
            options.append(found)
    if run:
        options.append(frozenset({"".join(run)}))
    if not options:
        return None
    # The most selective: the longest shortest member, then the fewest members.
    return max(options, key=lambda option: (min(map(len, option)), -len(option)))


def _branches(alternatives: Iterable[object]) -> frozenset[str] | None:
    union: set[str] = set()
    for alternative in alternatives:
        found = _sequence(list(alternative))  # type: ignore[call-overload]
        if not found:
            return None  # one alternative without a literal: the whole may match without any
        union |= found
    return frozenset(union)


class CueIndex:
    """Finds the indexes of the patterns that match a text."""

    def __init__(self, patterns: Sequence[re.Pattern[str]]) -> None:
        self.patterns = list(patterns)
        self.always: list[int] = []
        triggers: dict[str, set[int]] = {}
        for index, pattern in enumerate(self.patterns):
            literals = required_literals(pattern.pattern, pattern.flags)
            if not literals:
                self.always.append(index)
                continue
            for literal in literals:
                triggers.setdefault(literal, set()).add(index)
        self._automaton = ahocorasick.Automaton()
        for literal, indexes in triggers.items():
            self._automaton.add_word(literal, tuple(sorted(indexes)))
        if triggers:
            self._automaton.make_automaton()
        self._has_triggers = bool(triggers)

    def candidates(self, text: str) -> list[int]:
        """Patterns that may match: every one whose required literal occurs, and the rest
        of those without one."""
        found = set(self.always)
        if self._has_triggers:
            for _, indexes in self._automaton.iter(fold(text)):
                found.update(indexes)
        return sorted(found)

    def matching(self, text: str) -> list[int]:
        return [i for i in self.candidates(text) if self.patterns[i].search(text)]
