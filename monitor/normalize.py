"""Text normalisation and word segmentation shared by matching, dedup and classification.

``normalize_text`` makes the spellings people actually type compare equal:

- Unicode NFKC (full-width letters, ligatures and Arabic presentation forms become plain
  letters), then case folding (unless ``casefold=False``);
- every decimal digit (Devanagari ०-९, Bengali ০-৯, Persian ۰-۹, Arabic-Indic ٠-٩, ...) → ASCII;
- Persian/Arabic letter variants: ي ى ئ → ی, ك → ک, ة ۀ ە → ه, أ إ آ ٱ → ا, ؤ → و; tatweel,
  harakat and other diacritics removed;
- Devanagari nukta removed (ज़ → ज, ड़ → ड) and chandrabindu folded to anusvara (माँ → मां);
  Bengali ত্‍ → ৎ and এ্য → অ্য (two spellings of the English "a" sound);
- invisible characters dropped: ZWJ, soft hyphen, bidi marks, BOM, variation selectors; the
  zero-width non-joiner too (می‌خواهم → میخواهم). The matcher keeps the ZWNJ of Arabic-script
  words as a soft word boundary instead (``normalize_mapped(..., keep_zwnj=True)``).

Words (``tokenize``) are maximal runs of letters, combining marks and digits, so Devanagari
and Bengali words are not split at their vowel signs and viramas the way ``\\w`` splits them.
Normalisation is idempotent: ``normalize_text(normalize_text(t)) == normalize_text(t)``.
"""

from __future__ import annotations

import re
import sys
import unicodedata
from dataclasses import dataclass
from functools import lru_cache
from typing import NamedTuple

ZWNJ = "\u200c"
ZWJ = "\u200d"

# Letter variants folded for matching (applied after NFKC, before case folding).
_LETTER_FOLDS = {
    "\u064a": "\u06cc",  # ي Arabic yeh → ی Farsi yeh
    "\u0649": "\u06cc",  # ى alef maksura → ی
    "\u0626": "\u06cc",  # ئ yeh with hamza → ی (پائیز / پاییز)
    "\u0643": "\u06a9",  # ك Arabic kaf → ک keheh
    "\u0629": "\u0647",  # ة teh marbuta → ه
    "\u06c0": "\u0647",  # ۀ heh with yeh above (ezafe) → ه
    "\u06d5": "\u0647",  # ە ae → ه
    "\u0623": "\u0627",  # أ → ا
    "\u0625": "\u0627",  # إ → ا
    "\u0622": "\u0627",  # آ → ا
    "\u0671": "\u0627",  # ٱ alef wasla → ا
    "\u0624": "\u0648",  # ؤ → و
    "\u0929": "\u0928",  # ऩ → न (nukta forms NFC keeps composed)
    "\u0931": "\u0930",  # ऱ → र
    "\u0934": "\u0933",  # ऴ → ळ
    "\u0901": "\u0902",  # Devanagari chandrabindu → anusvara
}

# Dropped: they change rendering or pronunciation marks, not the word.
_DROPPED = frozenset(
    [
        "\u0640",  # tatweel / kashida
        "\u093c",  # Devanagari nukta
        ZWJ,
        ZWNJ,  # dropped by normalize_text; normalize_mapped may keep it as a soft boundary
        "\u00ad",  # soft hyphen
        "\u200b",  # zero-width space inside a word (seen in copy-pasted text)
        "\u200e",  # left-to-right mark
        "\u200f",  # right-to-left mark
        "\u2060",  # word joiner
        "\ufeff",  # byte order mark / zero-width no-break space
        *(chr(c) for c in range(0x202A, 0x202F)),  # bidi embeddings and overrides
        *(chr(c) for c in range(0x2066, 0x206A)),  # bidi isolates
        *(chr(c) for c in range(0xFE00, 0xFE10)),  # variation selectors
        *(chr(c) for c in range(0x064B, 0x0660)),  # harakat, hamza above/below, madda
        "\u0670",  # superscript alef
        *(chr(c) for c in range(0x0610, 0x061B)),  # Arabic honorific and Quranic signs
        *(chr(c) for c in range(0x06D6, 0x06DD)),  # Quranic annotation marks
        *(chr(c) for c in range(0x06DF, 0x06E9)),
        *(chr(c) for c in range(0x06EA, 0x06EE)),
    ]
)

# Sequences replaced before anything else (they span several characters).
_SEQUENCE_FOLDS = (
    ("\u09a4\u09cd\u200d", "\u09ce"),  # ত্‍ (ta, hasanta, ZWJ) → ৎ khanda ta
    ("\u098f\u09cd\u09af", "\u0985\u09cd\u09af"),  # এ্য → অ্য
)


def _mark_class() -> str:
    """A regex character class body of every combining mark (Unicode category M); they all
    live in planes 0 and 1 and the variation selectors supplement."""
    ranges: list[tuple[int, int]] = []
    start = -1
    for code in [*range(0x20000), *range(0xE0000, 0xE1000), sys.maxunicode]:
        is_mark = unicodedata.category(chr(code))[0] == "M"
        if is_mark and start < 0:
            start = code
        elif not is_mark and start >= 0:
            ranges.append((start, code - 1))
            start = -1
    return "".join(f"\\U{a:08x}-\\U{b:08x}" for a, b in ranges)


_MARKS = _mark_class()
# A word: letters, digits and combining marks (what str.isalnum() misses: vowel signs, viramas).
WORD = re.compile(f"(?:[^\\W_]|[{_MARKS}])+")
_TOKEN = re.compile(f"(?:[^\\W_]|[{_MARKS}{ZWNJ}{ZWJ}])+")
# Characters normalisation changes; text without any (and already NFKC) is left as it is.
_CHANGED = re.compile(
    "|".join(
        [
            "[" + "".join(re.escape(ch) for ch in sorted({*_DROPPED, *_LETTER_FOLDS, ZWNJ})) + "]",
            *(re.escape(old) for old, _ in _SEQUENCE_FOLDS),
            r"(?![0-9])\d",
        ]
    )
)


class Token(NamedTuple):
    """A word and its offsets (a tuple: millions are made, and tuples are cheap to make)."""

    text: str
    start: int
    end: int


@dataclass(frozen=True, slots=True)
class MappedText:
    """Normalised text plus, for each of its characters, the span of the original it came from."""

    text: str
    starts: list[int]
    ends: list[int]

    def original_span(self, start: int, end: int) -> tuple[int, int]:
        """Offsets in the original text of the normalised slice ``[start, end)``."""
        return self.starts[start], self.ends[end - 1]


def is_arabic_script(ch: str) -> bool:
    code = ord(ch)
    return 0x0600 <= code <= 0x06FF or 0x0750 <= code <= 0x077F or 0x08A0 <= code <= 0x08FF


# Bounded: the Bluesky firehose brings every script, and CJK alone has thousands of clusters.
@lru_cache(maxsize=16384)
def _fold_cluster(cluster: str) -> str:
    """One base character with its combining marks → its normalised form (case kept)."""
    for old, new in _SEQUENCE_FOLDS:
        if old in cluster:
            cluster = cluster.replace(old, new)
    out = []
    for ch in unicodedata.normalize("NFKC", cluster):
        if ch in _DROPPED:
            continue
        ch = _LETTER_FOLDS.get(ch, ch)
        if ch.isdecimal() and not ch.isascii():
            ch = str(unicodedata.decimal(ch, 0))
        out.append(ch)
    return "".join(out)


# A base character with its combining marks and trailing Hangul jamo (NFKC never reaches
# across them); the multi-character folds in ``_SEQUENCE_FOLDS`` are kept inside one.
_CLUSTER = re.compile(
    "(?:"
    + "".join(re.escape(old) + "|" for old, _ in _SEQUENCE_FOLDS)
    + f".)[{_MARKS}\u1160-\u11ff\ud7b0-\ud7ff]*",
    re.DOTALL,
)


def normalize_mapped(text: str, *, keep_zwnj: bool = False) -> MappedText:
    """Normalise ``text`` without case folding, remembering where each character came from.

    With ``keep_zwnj`` a ZWNJ right after an Arabic-script letter is kept (the matcher treats
    it as a soft word boundary); every other ZWNJ is dropped.
    """
    if text.isascii() or _unchanged(text):
        return MappedText(text, list(range(len(text))), list(range(1, len(text) + 1)))
    out: list[str] = []
    starts: list[int] = []
    ends: list[int] = []
    start = 0
    # findall (strings, no match objects) and running offsets: the cheapest walk in Python.
    for cluster in _CLUSTER.findall(text):
        end = start + len(cluster)
        if cluster[0] == ZWNJ:
            if keep_zwnj and out and is_arabic_script(out[-1]):
                out.append(ZWNJ)
                starts.append(start)
                ends.append(end)
            cluster = cluster[1:]
        folded = _fold_cluster(cluster) if cluster else ""
        if len(folded) == 1:
            out.append(folded)
            starts.append(start)
            ends.append(end)
        else:
            for ch in folded:
                out.append(ch)
                starts.append(start)
                ends.append(end)
        start = end
    return MappedText("".join(out), starts, ends)


def fold_case(text: str) -> str:
    """Case folding that stays normalised (NFKC after folding, like Unicode's NFKC_Casefold)."""
    if text.isascii():
        return text.lower()
    # Turkish İ folds to i + combining dot above; people searching "istanbul" mean it too.
    folded = text.casefold().replace("i\u0307", "i")
    return folded if folded.isascii() else unicodedata.normalize("NFKC", folded)


class _FoldTable(dict[int, "str | int | None"]):
    """``str.translate`` table of the single-character folds (dropped characters, letter
    variants, non-ASCII digits), filled the first time each character is seen."""

    # Beyond this many entries new characters are answered without being remembered, so a
    # firehose bringing every CJK character cannot grow the table without bound.
    MAX_ENTRIES = 50_000

    def __missing__(self, code: int) -> str | int | None:
        ch = chr(code)
        value: str | int | None = code
        if ch in _DROPPED:
            value = None
        elif ch in _LETTER_FOLDS:
            value = _LETTER_FOLDS[ch]
        elif ch.isdecimal() and not ch.isascii():
            value = str(unicodedata.decimal(ch, 0))
        if len(self) < self.MAX_ENTRIES:
            self[code] = value
        return value


_FOLDS = _FoldTable()


# The characters ``_FOLDS`` changes (dropped, letter variants, non-ASCII digits). Only those
# are looked up: ``str.translate`` with a dict table looks up every character of the text,
# some 4 µs for a line of Persian against well under one for a regex scan in C.
_FOLDED_CHAR = re.compile(
    "[" + "".join(re.escape(ch) for ch in sorted({*_DROPPED, *_LETTER_FOLDS, ZWNJ})) + "]"
    r"|(?![0-9])\d"
)


def _fold_char(match: re.Match[str]) -> str:
    value = _FOLDS[ord(match.group())]
    return "" if value is None else chr(value) if isinstance(value, int) else value


def replace_chars(text: str, table: tuple[tuple[str, str], ...]) -> str:
    """``str.translate`` for a handful of characters, as ``replace`` calls that scan in C
    (``translate`` with a dict looks every character up: 25 times slower on Devanagari).
    Build ``table`` with ``few_chars``."""
    for old, new in table:
        if old in text:
            text = text.replace(old, new)
    return text


def few_chars(mapping: dict[str, str | None]) -> tuple[tuple[str, str], ...]:
    """A ``replace_chars`` table. Replacing one after another equals replacing at once
    only when no replacement brings back a character replaced elsewhere: checked here."""
    table = tuple((old, new or "") for old, new in mapping.items())
    for old, _ in table:
        if any(old in new for _, new in table):
            raise ValueError(f"few_chars: {old!r} is also in a replacement")
    return table


def normalize_text(text: str, *, casefold: bool = True) -> str:
    """The normalised form of ``text`` used to compare words (see the module docstring).

    Whole-string operations in C (NFKC, then one ``translate``) give the same result as
    folding cluster by cluster (``normalize_mapped``; a test holds the two equal), because
    NFKC composes and reorders only within a base character and its combining marks.
    """
    if text.isascii() or _unchanged(text):
        normal = text
    else:
        for old, new in _SEQUENCE_FOLDS:
            if old in text:
                text = text.replace(old, new)
        normal = _FOLDED_CHAR.sub(_fold_char, unicodedata.normalize("NFKC", text))
    return fold_case(normal) if casefold else normal


def _unchanged(text: str) -> bool:
    """Would normalisation (before case folding) leave this text as it is? (Fast, in C.)"""
    return unicodedata.is_normalized("NFKC", text) and _CHANGED.search(text) is None


def tokenize(text: str) -> list[Token]:
    """Words of ``text``: maximal runs of letters, combining marks and digits (and the zero-width
    joiners, when the text was not normalised)."""
    return [Token(m.group(), m.start(), m.end()) for m in _TOKEN.finditer(text)]


def token_texts(text: str) -> list[str]:
    """The words of ``tokenize`` without their offsets (cheaper, for callers that need none)."""
    return _TOKEN.findall(text)


def words(text: str) -> list[str]:
    """Normalised, case-folded words of ``text`` (what dedup and lexicons compare)."""
    return _TOKEN.findall(normalize_text(text))
