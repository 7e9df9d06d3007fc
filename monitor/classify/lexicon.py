"""A small rule-based polarity scorer driven by per-language word lists.

For each clause: look words (and two/three-word phrases) up in the lexicon, scale them by
intensifiers/diminishers just before them, flip them when a negator governs them, weigh
what follows a "but" more than what precedes it, then add emoji. The sum is squashed into
a compound score in [-1, 1] the way VADER does, so every backend thresholds the same way.

Negation differs by language: English and Persian ``نه``/``بدون`` put it before the word,
Hindi and Bengali put it after (``अच्छा नहीं``, ``ভালো না``), and Bengali and Persian also
attach it to the verb (``পারিনি``, ``نمی‌ارزه``). ``LanguageRules.split_negation`` handles the
attached forms; a negator flips the nearest polar word before it, else (where the language
allows) the next one after it; a negator listed under ``[pre-negators]`` flips the next polar
word after it first. Persian negates the clause-final verb, so its window is wider, its verbs
never reach forward into what follows them, and nothing reaches past ``که``/``و``. Persian
also reads an amount by the quality it describes (کیفیت پایین is bad, قیمت پایین good).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from importlib import resources

from monitor.classify.emoji import emoji_valences
from monitor.classify.text import clauses, exclamations, fold

# VADER's normalisation constant: compound = s / sqrt(s² + ALPHA).
ALPHA = 15.0
# A negated positive becomes this much negative ("not good" is milder than "bad");
# a negated negative becomes mildly positive ("not bad").
NEGATED_POSITIVE = -0.8
NEGATED_NEGATIVE = -0.4
# Words on either side of a negator it may govern.
NEGATION_WINDOW = 3
# Words after a pre-negator it may govern: "without X", "neither X".
PRE_NEGATION_WINDOW = 3
# "X but Y": X counts this much, Y this much.
BEFORE_BUT = 0.5
AFTER_BUT = 1.5
# A clause with "if", "maybe", "some say" counts this much: it reports no experience.
IRREALIS = 0.5
# Each '!' (up to three) makes the text's polarity this much stronger.
EXCLAMATION_BOOST = 0.25
# "Quality is low", "price is high": the amount word gets this valence (signed), when it
# follows its aspect within this many words.
ASPECT_VALENCE = 1.2
ASPECT_WINDOW = 4
# Words remembered per language and lookup table: a bound, so a firehose of new words
# cannot grow the caches without end.
CACHE_ENTRIES = 100_000

Lookup = Callable[[str], tuple[float | None, bool]]
# Lexicon line fields: entry, valence, optional negation factor.
_FIELDS = re.compile(r"\t+| {2,}")


@dataclass(frozen=True, slots=True)
class Lexicon:
    words: dict[str, float]
    phrases: dict[tuple[str, ...], float]
    negators: frozenset[str]
    intensifiers: dict[str, float]  # multiplier: > 1 intensifies, < 1 diminishes
    contrast: frozenset[str]
    irrealis: frozenset[str] = frozenset()  # "if", "maybe", "some say": the clause counts less
    # Negators that govern what follows them (Persian بدون "without", نه … نه "neither … nor",
    # نمی‌تونه "cannot" + what it cannot be); one may be two words (فکر نمی‌کنم "I don't think").
    pre_negators: frozenset[str] = frozenset()
    # Words a negator's reach stops at (Persian که "that": حیف که … نمی‌خوره).
    barriers: frozenset[str] = frozenset()
    # Entry (word or phrase, as a tuple) → what negation multiplies it by, when not the
    # language's default; 1 means negation passes over it (متاسفانه "unfortunately").
    negated: dict[tuple[str, ...], float] = field(default_factory=dict)
    # Every phrase without its last word, so a word starts a phrase lookup only when it can.
    phrase_heads: frozenset[tuple[str, ...]] = frozenset()
    # Pre-negators that say nothing when no polar word follows (بدون "without"), unlike
    # those also listed as plain negators (فاقد "lacking": فاقد فلاش is a complaint).
    silent_negators: frozenset[str] = frozenset()
    # Qualities whose amount decides the polarity: +1 more is better (کیفیت "quality"),
    # -1 more is worse (قیمت "price"); and amount words, +1 high (بالا), -1 low (پایین).
    aspects: dict[str, float] = field(default_factory=dict)
    amounts: dict[str, float] = field(default_factory=dict)
    # Words that agree with a later negated verb (Persian هیچ "no/any": هیچ نگرانی … نخواهید
    # داشت); the verb reaches the polar word right after one, however far back in its clause.
    concord: frozenset[str] = frozenset()


@dataclass(slots=True)
class LanguageRules:
    """How one language's words are looked up; the lexicon itself is data."""

    language: str
    lexicon: Lexicon
    # Candidate spellings of a word to try in the lexicon, most specific first.
    variants: Callable[[str], Iterable[str]] = lambda word: (word,)
    # A word with negation attached (Bengali করেনি, Persian نمی‌خرم) → (rest, True).
    split_negation: Callable[[str], tuple[str, bool]] = lambda word: (word, False)
    # Polarity of a negation that governs no polar word: "काम नहीं करता", "doesn't work".
    bare_negation: float = 0.0
    # Words on either side of a negator it may govern.
    negation_window: int = NEGATION_WINDOW
    # Whether a negator with no polar word before it may govern one after it.
    negation_looks_ahead: bool = True
    # A negated positive/negative is multiplied by these.
    negated_positive: float = NEGATED_POSITIVE
    negated_negative: float = NEGATED_NEGATIVE
    # "X but Y": X counts before_but, Y after_but.
    before_but: float = BEFORE_BUT
    after_but: float = AFTER_BUT
    # Rejoins what writers split with a space: Persian می / نمی prefixes, ها / تر endings.
    retokenize: Callable[[list[str]], list[str]] = lambda words: words
    _cache: dict[str, str | None] = field(default_factory=dict)
    # Aspect and amount lookups (see ``entry_in``), keyed by table and word.
    _table_cache: dict[tuple[int, str], str | None] = field(default_factory=dict)

    def entry(self, word: str) -> str | None:
        """The lexicon word this word is a form of, if any."""
        if word in self._cache:
            return self._cache[word]
        found = next((c for c in self.variants(word) if c in self.lexicon.words), None)
        if len(self._cache) < CACHE_ENTRIES:
            self._cache[word] = found
        return found

    def entry_in(self, table: dict[str, float], word: str) -> str | None:
        """The key of ``table`` (the lexicon's aspects or amounts) this word is a form of.
        Every word of every clause is looked up: remembered, like ``entry``."""
        key = (id(table), word)
        if key in self._table_cache:
            return self._table_cache[key]
        found = next((c for c in self.variants(word) if c in table), None)
        if len(self._table_cache) < CACHE_ENTRIES:
            self._table_cache[key] = found
        return found

    def valence(self, word: str) -> float | None:
        found = self.entry(word)
        return None if found is None else self.lexicon.words[found]


@dataclass(slots=True)
class Scored:
    compound: float
    positive: float  # sum of positive contributions
    negative: float  # sum of negative contributions (as a positive number)
    hits: int


def load_lexicon(
    name: str,
    language: str,
    retokenize: Callable[[list[str]], list[str]] = lambda words: words,
) -> Lexicon:
    """Read ``lexicons/<name>.txt``: sections [words] [negators] [pre-negators]
    [negation-barriers] [negative-concord] [intensifiers] [irrealis] [contrast] [aspects]
    [amounts].

    Lines are ``entry<TAB or 2+ spaces>number``; ``#`` starts a comment. A word entry with
    spaces is a phrase. A word or phrase may have a second number: what negation multiplies
    it by instead of the default. Keys are folded and rejoined like the text they are
    compared with.
    """
    text = resources.files("monitor.classify.lexicons").joinpath(f"{name}.txt").read_text("utf-8")
    words: dict[str, float] = {}
    phrases: dict[tuple[str, ...], float] = {}
    negated: dict[tuple[str, ...], float] = {}
    scales: dict[str, dict[str, float]] = {"intensifiers": {}, "aspects": {}, "amounts": {}}
    sets: dict[str, set[str]] = {
        section: set()
        for section in (
            "negators", "pre-negators", "negation-barriers", "negative-concord", "contrast",
            "irrealis",
        )
    }  # fmt: skip
    section = "words"
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        if line.startswith("[") and line.endswith("]"):
            section = line[1:-1]
            continue
        entry, *numbers = _FIELDS.split(line)
        key = tuple(retokenize(fold(entry, language).split()))
        try:
            if section == "words":
                if not 1 <= len(numbers) <= 2:
                    raise ValueError("expected: entry, valence, optional negation factor")
                if len(key) == 1:
                    words[key[0]] = float(numbers[0])
                else:
                    phrases[key] = float(numbers[0])
                if len(numbers) == 2:
                    negated[key] = float(numbers[1])
            elif section in scales:
                scales[section][" ".join(key)] = float(numbers[0])
            elif section in sets:
                sets[section].add(" ".join(key))
            else:
                raise ValueError(f"unknown section [{section}]")
        except (ValueError, IndexError) as exc:
            raise ValueError(f"lexicon {name}.txt line {number}: {exc}") from None
    return Lexicon(
        words=words,
        phrases=phrases,
        negators=frozenset(sets["negators"] | sets["pre-negators"]),
        intensifiers=scales["intensifiers"],
        contrast=frozenset(sets["contrast"]),
        irrealis=frozenset(sets["irrealis"]),
        pre_negators=frozenset(sets["pre-negators"]),
        barriers=frozenset(sets["negation-barriers"] | sets["contrast"]),
        negated=negated,
        phrase_heads=frozenset(key[:-1] for key in phrases),
        silent_negators=frozenset(sets["pre-negators"] - sets["negators"]),
        aspects=scales["aspects"],
        amounts=scales["amounts"],
        concord=frozenset(sets["negative-concord"]),
    )


def score_text(text: str, rules: LanguageRules) -> Scored:
    total = 0.0
    positive = negative = 0.0
    hits = 0
    parts = [rules.retokenize(words) for words in clauses(text, rules.language)]
    contrast_at = _last_contrast(parts, rules.lexicon.contrast)
    for index, words in enumerate(parts):
        values = _clause_values(words, rules)
        mood = IRREALIS if rules.lexicon.irrealis.intersection(words) else 1.0
        for word_index, value in enumerate(values):
            if value == 0.0:
                continue
            weight = mood
            if contrast_at is not None:
                position = (index, word_index)
                weight *= rules.before_but if position < contrast_at else rules.after_but
            total += value * weight
            hits += 1
            if value > 0:
                positive += value * weight
            else:
                negative -= value * weight
    for value in emoji_valences(text):
        total += value
        hits += 1
        if value > 0:
            positive += value
        else:
            negative -= value
    if total:
        total += math.copysign(EXCLAMATION_BOOST * exclamations(text), total)
    return Scored(total / math.sqrt(total * total + ALPHA), positive, negative, hits)


def _last_contrast(parts: list[list[str]], contrast: frozenset[str]) -> tuple[int, int] | None:
    found = None
    for index, words in enumerate(parts):
        for word_index, word in enumerate(words):
            if word in contrast:
                found = (index, word_index)
    return found


def _clause_values(words: list[str], rules: LanguageRules) -> list[float]:
    """Valence of each word in one clause after phrases, intensifiers and negation."""
    lexicon = rules.lexicon
    count = len(words)
    values = [0.0] * count
    keys: list[tuple[str, ...] | None] = [None] * count  # the entry each polar word matched
    negator = [False] * count
    stems = list(words)
    intensifiers = lexicon.intensifiers
    for i, word in enumerate(words):
        if word in lexicon.negators:
            negator[i] = True
            continue
        if rules.valence(word) is not None:  # listed as a whole: نخرید, পারবনা
            continue
        rest, negated = rules.split_negation(word)
        if negated:
            negator[i] = True
            stems[i] = rest
    # Phrases first (longest wins); their words are not looked up again.
    covered = [False] * count
    for length in (4, 3, 2):
        for i in range(count - length + 1):
            head = tuple(words[i : i + length - 1])
            if head not in lexicon.phrase_heads or any(covered[i : i + length]):
                continue
            last = i + length - 1
            key = _phrase_key(lexicon, head, words[last], stems[last], rules)
            if key is not None:
                values[last] = lexicon.phrases[key]
                keys[last] = key if values[last] else None
                for j in range(i, i + length):  # the phrase's own negation is in its value
                    covered[j] = True
                    negator[j] = False
    for i in range(count):
        if covered[i] or (negator[i] and stems[i] == words[i]) or words[i] in intensifiers:
            continue
        found = rules.entry(stems[i])
        if found is not None and lexicon.words[found]:
            values[i] = lexicon.words[found]
            keys[i] = (found,)
    if lexicon.aspects:
        _apply_aspects(words, values, keys, covered, rules)
    # Intensifiers scale the next polar word (within two words).
    for i, word in enumerate(words):
        factor = intensifiers.get(word)
        if factor is None:
            continue
        for j in range(i + 1, min(i + 3, count)):
            if keys[j] is not None:
                values[j] *= factor
                break
    _apply_negation(values, keys, negator, words, rules)
    return values


def _apply_aspects(
    words: list[str],
    values: list[float],
    keys: list[tuple[str, ...] | None],
    covered: list[bool],
    rules: LanguageRules,
) -> None:
    """Give an amount word after its aspect a valence: کیفیتش پایینه, قیمت بالایی داره."""
    lexicon = rules.lexicon
    count = len(words)
    for i, word in enumerate(words):
        aspect = _entry_in(lexicon.aspects, word, rules)
        if aspect is None or covered[i]:
            continue
        for j in range(i + 1, min(i + 1 + ASPECT_WINDOW, count)):
            if keys[j] is not None or covered[j]:
                break  # a polar word already says how the aspect is
            if words[j] in lexicon.intensifiers:
                continue
            amount = _entry_in(lexicon.amounts, words[j], rules)
            if amount is not None:
                values[j] = ASPECT_VALENCE * lexicon.aspects[aspect] * lexicon.amounts[amount]
                keys[j] = (amount,)
                break


def _entry_in(table: dict[str, float], word: str, rules: LanguageRules) -> str | None:
    return rules.entry_in(table, word)


def _phrase_key(
    lexicon: Lexicon, head: tuple[str, ...], last: str, stem: str, rules: LanguageRules
) -> tuple[str, ...] | None:
    """The phrase these words are, the last one tried in each inflected form (نقاط ضعفش)."""
    for word in dict.fromkeys((last, stem)):
        for candidate in rules.variants(word):
            if (key := (*head, candidate)) in lexicon.phrases:
                return key
    return None


def _apply_negation(
    values: list[float],
    keys: list[tuple[str, ...] | None],
    negator: list[bool],
    words: list[str],
    rules: LanguageRules,
) -> None:
    lexicon = rules.lexicon
    count = len(values)
    window = rules.negation_window
    flipped = [False] * count

    def negatable(j: int) -> bool:
        key = keys[j]
        return key is not None and not flipped[j] and lexicon.negated.get(key) != 1.0

    def reach(indices: range) -> int | None:
        for j in indices:
            if words[j] in lexicon.barriers:
                return None
            if negatable(j):
                return j
        return None

    for i in range(count):
        if not negator[i]:
            continue
        if negatable(i):  # attached negation on a polar verb: نمی‌ارزه
            target: int | None = i
        else:
            before = range(i - 1, max(i - 1 - window, -1), -1)
            after = range(i + 1, min(i + 1 + window, count))
            pair = f"{words[i - 1]} {words[i]}" if i else ""
            if words[i] in lexicon.pre_negators or pair in lexicon.pre_negators:
                target = reach(range(i + 1, min(i + 1 + PRE_NEGATION_WINDOW, count)))
                silent = words[i] in lexicon.silent_negators or pair in lexicon.silent_negators
                if target is None and silent and not rules.split_negation(words[i])[1]:
                    continue  # "without X" with no polar X says nothing; "cannot" still does
            else:
                target = reach(before)
                if target is None and lexicon.concord:
                    target = _concord_target(i, words, lexicon, reach)
                if target is None and rules.negation_looks_ahead:
                    target = reach(after)
        if target is None:
            values[i] += rules.bare_negation
            continue
        key = keys[target]
        assert key is not None
        default = rules.negated_positive if values[target] > 0 else rules.negated_negative
        values[target] *= lexicon.negated.get(key, default)
        flipped[target] = True


def _concord_target(
    i: int, words: list[str], lexicon: Lexicon, reach: Callable[[range], int | None]
) -> int | None:
    """The polar word right after a هیچ-like word before position ``i`` in its clause."""
    for k in range(i - 1, -1, -1):
        if words[k] in lexicon.barriers:
            return None
        if words[k] in lexicon.concord:
            return reach(range(k + 1, min(k + 3, i)))
    return None
