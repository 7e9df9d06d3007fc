"""Watchlists against mentions: which watchlists match, by which terms, and where.

The query language lives in ``monitor.query`` (re-exported here). Matching is whole-word by
default, with words defined on normalised text (``monitor.normalize``) so it works the same in
every script: Devanagari and Bengali words keep their vowel signs and viramas, a Persian ZWNJ
is a soft boundary (می‌خواهم, میخواهم and می خواهم match the same term), and `#AcmeCloud`
or `@acmecloud` contain the word `acmecloud`.

Cost does not grow with the number of watchlists: one Aho-Corasick automaton over every
term of every watchlist finds the terms present in a text in one pass; only watchlists with
a term hit (plus those that can match without any term, like a bare ``site:``) have their
boolean query evaluated.
"""

from __future__ import annotations

import itertools
from bisect import bisect_right
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import ahocorasick

from monitor.normalize import fold_case, is_arabic_script, normalize_mapped, normalize_text
from monitor.query import (
    FIELDS,
    And,
    FieldFilter,
    Near,
    Node,
    Not,
    Or,
    QueryError,
    Term,
    needs_term,
    parse_query,
    search_terms,
    split_units,
    terms_of,
    uses_language,
)

__all__ = [
    "FIELDS",
    "And",
    "FieldFilter",
    "MatchInput",
    "Matcher",
    "Near",
    "Node",
    "Not",
    "Or",
    "QueryError",
    "Term",
    "WatchlistMatch",
    "parse_query",
    "search_terms",
]

# Persian verb prefixes and plural suffixes, written joined, with a ZWNJ or with a space:
# a term in any of the three spellings matches the other two. (A ZWNJ is a soft word
# boundary, so اکمی already matches اکمی‌ها; the joined plural اکمیها is added explicitly.)
PERSIAN_PREFIXES = ("نمی", "می", "بی")
PERSIAN_SUFFIXES = ("هایی", "های", "ها")
PERSIAN_PLURALS = ("ها", "های")
# Bounds the spelling variants generated per term (they multiply with each ZWNJ).
MAX_VARIANTS = 16


@dataclass(slots=True)
class MatchInput:
    """The parts of a mention a query can look at."""

    text: str
    url: str = ""
    author: str = ""
    language: str = ""


@dataclass(slots=True)
class WatchlistMatch:
    watchlist: str
    terms: list[str]
    spans: list[tuple[int, int]] = field(default_factory=list)  # offsets in MatchInput.text


# --------------------------------------------------------------------------- variants


def _spellings(term: Term) -> list[tuple[tuple[str, ...], bool]]:
    """Word sequences that count as this term, each with "only inside a #tag/@handle"."""
    seps = [i in term.joins for i in range(len(term.words) - 1)]
    soft = [i for i, is_soft in enumerate(seps) if is_soft][:4]
    variants: dict[tuple[str, ...], None] = {}
    for mask in itertools.product((False, True), repeat=len(soft)):
        joined = {i for i, join in zip(soft, mask, strict=True) if join}
        units: list[str] = [term.words[0]]
        for i, word in enumerate(term.words[1:]):
            if i in joined:
                units[-1] += word
            else:
                units.append(word)
        variants[tuple(units)] = None
    for units in list(variants):
        for variant in _persian_affix_variants(units):
            variants.setdefault(variant, None)
    spellings = [(units, False) for units in list(variants)[:MAX_VARIANTS]]
    if len(term.words) > 1 and (joined_all := ("".join(term.words),)) not in variants:
        spellings.append((joined_all, True))  # "acme cloud" matches #AcmeCloud
    return spellings


def _persian_affix_variants(units: tuple[str, ...]) -> list[tuple[str, ...]]:
    out = []
    for i, unit in enumerate(units):
        if not is_arabic_script(unit[0]):
            continue
        before, after = units[:i], units[i + 1 :]
        for prefix in PERSIAN_PREFIXES:
            if unit.startswith(prefix) and len(unit) > len(prefix) + 1:
                out.append((*before, prefix, unit[len(prefix) :], *after))
                break
        if unit in PERSIAN_PREFIXES and after:
            out.append((*before, unit + after[0], *after[1:]))
        for suffix in PERSIAN_SUFFIXES:
            if unit.endswith(suffix) and len(unit) > len(suffix) + 1:
                out.append((*before, unit[: -len(suffix)], suffix, *after))
                break
        if unit in PERSIAN_SUFFIXES and before:
            out.append((*before[:-1], before[-1] + unit, *after))
    if is_arabic_script(units[-1][-1]) and not units[-1].endswith(PERSIAN_SUFFIXES):
        out += [(*units[:-1], units[-1] + plural) for plural in PERSIAN_PLURALS]
    return out


# ---------------------------------------------------------------------------- document


@dataclass(slots=True)
class _Doc:
    folded: str  # " word word … " — normalised, case-folded words joined by single spaces
    folded_starts: list[int]  # offset of each word in ``folded``
    exact: str  # the same without case folding (for case: terms)
    exact_starts: list[int]
    spans: list[tuple[int, int]]  # each word's offsets in the original text
    tags: list[bool]  # the word follows # or @
    host: str
    authors: frozenset[str]
    language: str


def _join(words: Sequence[str]) -> tuple[str, list[int]]:
    starts = []
    offset = 1
    for word in words:
        starts.append(offset)
        offset += len(word) + 1
    return " " + " ".join(words) + " ", starts


def _document(item: MatchInput) -> _Doc:
    mapped = normalize_mapped(item.text, keep_zwnj=True)
    spans, _soft = split_units(mapped.text)
    exact_words = [mapped.text[s:e] for s, e in spans]
    exact, exact_starts = _join(exact_words)
    if exact.isascii():
        folded, folded_starts = exact.lower(), exact_starts
    else:
        # One call for the whole line: folding never reaches across the spaces between
        # words (NFKC composes only onto a preceding letter), and a word may change length.
        folded = fold_case(exact)
        folded_starts = _join(folded[1:-1].split(" "))[1] if exact_words else []
    return _Doc(
        folded=folded,
        folded_starts=folded_starts,
        exact=exact,
        exact_starts=exact_starts,
        spans=[mapped.original_span(s, e) for s, e in spans],
        tags=[s > 0 and mapped.text[s - 1] in "#@" for s, _e in spans],
        host=_host(item.url),
        authors=author_forms(item.author),
        language=item.language.lower(),
    )


def _host(url: str) -> str:
    if not url:
        return ""
    try:
        host = urlsplit(url.strip()).hostname or ""
    except ValueError:
        return ""
    return host.lower().removeprefix("www.")


def author_forms(author: str) -> frozenset[str]:
    """Ways an `author:` filter may name this author: `alice` matches @alice,
    @alice@mastodon.social and alice.bsky.social; a full handle matches only itself."""
    full = fold_case(author.strip()).lstrip("@")
    if not full:
        return frozenset()
    forms = {full, full.split("@")[0]}
    if "." in full and " " not in full:
        forms.add(full.split(".")[0])
    return frozenset(forms)


# ----------------------------------------------------------------------------- matcher


@dataclass(slots=True)
class CompiledWatchlist:
    name: str
    query: Node
    languages: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class _Pattern:
    length: int  # characters, including the leading space
    term_id: int
    words: int
    tag_only: bool
    prefix: bool


class Matcher:
    """Evaluates every watchlist against one mention; safe to share between threads."""

    def __init__(self, watchlists: Iterable[tuple[str, str, Sequence[str]]]) -> None:
        self.watchlists = [
            CompiledWatchlist(name, parse_query(query), tuple(lang.lower() for lang in languages))
            for name, query, languages in watchlists
        ]
        self._term_ids: dict[Term, int] = {}  # equal terms in several watchlists share an id
        self._node_ids: dict[int, int] = {}  # id() of each Term node → its term id
        by_term: dict[int, set[int]] = defaultdict(set)
        self._always: list[int] = []
        for index, watchlist in enumerate(self.watchlists):
            for term in terms_of(watchlist.query):
                term_id = self._term_ids.setdefault(term, len(self._term_ids))
                self._node_ids[id(term)] = term_id
                by_term[term_id].add(index)
            if not needs_term(watchlist.query):
                self._always.append(index)
        self._by_term = [frozenset(by_term[i]) for i in range(len(self._term_ids))]
        # Whether any query tests `lang:`, so the language must be known before matching.
        self.needs_language = any(uses_language(w.query) for w in self.watchlists)
        self._folded = _automaton(t for t in self._term_ids.items() if not t[0].case_sensitive)
        self._exact = _automaton(t for t in self._term_ids.items() if t[0].case_sensitive)
        self._units = _unit_automaton(self._term_ids)

    @classmethod
    def from_config(cls, watchlists: Iterable[Any]) -> Matcher:
        return cls((w.name, w.query, w.languages) for w in watchlists)

    @property
    def term_count(self) -> int:
        return len(self._term_ids)

    def language_allowed(self, watchlist: str, language: str) -> bool:
        """Apply a watchlist's `languages:` filter after the fact (see ``match``)."""
        found = next((w for w in self.watchlists if w.name == watchlist), None)
        return found is None or _language_allowed(language, found.languages)

    def might_match(self, text: str) -> bool:
        """A cheap superset of ``match``: could any term occur in this text at all? If one
        does, each of its words appears in the normalised, case-folded text as a substring,
        so a text containing no word of any term cannot match. Most posts of a firehose and
        most feed entries contain none, and skip building the word-by-word document.
        (A hypothesis test holds ``match`` with and without this check equal.)"""
        if self._always or self._units is None:
            return True
        return next(self._units.iter(normalize_text(text)), None) is not None

    def match(self, item: MatchInput, only: str | None = None) -> list[WatchlistMatch]:
        if not self.might_match(item.text):
            return []
        doc = _document(item)
        hits: dict[int, set[tuple[int, int]]] = defaultdict(set)
        if self._folded is not None:
            _scan(self._folded, doc.folded, doc.folded_starts, doc.tags, hits)
        if self._exact is not None:
            _scan(self._exact, doc.exact, doc.exact_starts, doc.tags, hits)
        candidates = set(self._always)
        for term_id in hits:
            candidates |= self._by_term[term_id]
        results = []
        for index in sorted(candidates):
            watchlist = self.watchlists[index]
            if only is not None and watchlist.name != only:
                continue
            if not _language_allowed(doc.language, watchlist.languages):
                continue
            found: list[tuple[Term, tuple[int, int]]] = []
            if not self._evaluate(watchlist.query, doc, hits, found):
                continue
            terms = list(dict.fromkeys(term.raw for term, _ in found))
            spans = sorted(
                {(doc.spans[first][0], doc.spans[last][1]) for _, (first, last) in found}
            )
            results.append(WatchlistMatch(watchlist.name, terms, spans))
        return results

    def _evaluate(
        self,
        node: Node,
        doc: _Doc,
        hits: dict[int, set[tuple[int, int]]],
        found: list[tuple[Term, tuple[int, int]]] | None,
    ) -> bool:
        if isinstance(node, Term):
            positions = hits.get(self._node_ids[id(node)], ())
            if found is not None:
                found.extend((node, p) for p in positions)
            return bool(positions)
        if isinstance(node, FieldFilter):
            return _field_matches(node, doc)
        if isinstance(node, Not):
            return not self._evaluate(node.child, doc, hits, None)
        if isinstance(node, And):
            collected: list[tuple[Term, tuple[int, int]]] = []
            for child in node.children:
                if not self._evaluate(child, doc, hits, collected):
                    return False
            if found is not None:
                found.extend(collected)
            return True
        if isinstance(node, Or):
            matched = False
            for child in node.children:
                matched = self._evaluate(child, doc, hits, found) or matched
            return matched
        assert isinstance(node, Near) and isinstance(node.left, Term)
        assert isinstance(node.right, Term)
        left = hits.get(self._node_ids[id(node.left)], ())
        right = hits.get(self._node_ids[id(node.right)], ())
        pairs = [(a, b) for a in left for b in right if _words_between(a, b) <= node.distance]
        if found is not None:
            for a, b in pairs:
                found.append((node.left, a))
                found.append((node.right, b))
        return bool(pairs)


def _automaton(terms: Iterable[tuple[Term, int]]) -> Any:
    """One automaton over " word word" patterns: a leading space (and, for whole words, a
    trailing one) makes every hit start and end on a word boundary, in any script."""
    patterns: dict[str, list[_Pattern]] = defaultdict(list)
    for term, term_id in terms:
        for units, tag_only in _spellings(term):
            key = " " + " ".join(units) + ("" if term.prefix else " ")
            patterns[key].append(_Pattern(len(key), term_id, len(units), tag_only, term.prefix))
    if not patterns:
        return None
    automaton = ahocorasick.Automaton()
    for key, payload in patterns.items():
        automaton.add_word(key, tuple(payload))
    automaton.make_automaton()
    return automaton


def _unit_automaton(term_ids: dict[Term, int]) -> Any:
    """Every word (unit) of every spelling of every term, case-folded, for ``might_match``.
    Whole-word and tag boundaries are ignored: a substring is enough for a superset."""
    units = {
        fold_case(unit)
        for term in term_ids
        for spelling, _tag in _spellings(term)
        for unit in spelling
    }
    units.discard("")
    if not units:
        return None
    automaton = ahocorasick.Automaton()
    for unit in units:
        automaton.add_word(unit, unit)
    automaton.make_automaton()
    return automaton


def _scan(
    automaton: Any,
    text: str,
    starts: list[int],
    tags: list[bool],
    hits: dict[int, set[tuple[int, int]]],
) -> None:
    for end, payload in automaton.iter(text):
        for pattern in payload:
            first = bisect_right(starts, end - pattern.length + 2) - 1
            if pattern.tag_only and not tags[first]:
                continue
            hits[pattern.term_id].add((first, first + pattern.words - 1))


def _words_between(a: tuple[int, int], b: tuple[int, int]) -> int:
    if a[1] < b[0]:
        return b[0] - a[1] - 1
    if b[1] < a[0]:
        return a[0] - b[1] - 1
    return 10**9  # overlapping: the same words cannot be near themselves


def _field_matches(node: FieldFilter, doc: _Doc) -> bool:
    if node.name == "site":
        return doc.host == node.value or doc.host.endswith("." + node.value)
    if node.name == "author":
        return node.value in doc.authors
    return doc.language == node.value or doc.language.startswith(node.value + "-")


def _language_allowed(language: str, allowed: tuple[str, ...]) -> bool:
    """A watchlist's `languages:` filter; a mention whose language is unknown ("") passes."""
    if not allowed or not language:
        return True
    return language in allowed or language.split("-")[0] in allowed
