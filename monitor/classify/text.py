"""Text preparation for the lexicon backends: per-language spelling folds and clauses of words.

The folds here are for *lookup* only (the stored mention keeps its text): Persian Arabic
letter variants and diacritics, Devanagari nukta and chandrabindu, zero-width joiners.
Words come from ``monitor.normalize.tokenize``, which keeps combining marks inside words.
"""

from __future__ import annotations

import re
import unicodedata

from monitor.normalize import few_chars, replace_chars, token_texts

ZWNJ = "\u200c"
ZWJ = "\u200d"

_PERSIAN_FOLDS = few_chars(
    {
        "ي": "ی",
        "ى": "ی",
        "ئ": "ی",
        "ك": "ک",
        "ۀ": "ه",
        "ة": "ه",
        "ؤ": "و",
        "أ": "ا",
        "إ": "ا",
        "ٱ": "ا",
        "ـ": None,  # tatweel
        ZWNJ: None,
        ZWJ: None,
    }
)
_ARABIC_MARKS = re.compile("[\u064b-\u065f\u0670\u06d6-\u06ed]")
_DEVANAGARI_FOLDS = few_chars({"\u093c": None, "ँ": "ं", ZWNJ: None, ZWJ: None})
_ZERO_WIDTH = few_chars({ZWNJ: None, ZWJ: None})

# Clause boundaries: sentence punctuation in the four scripts, commas, line breaks.
_CLAUSE_BREAK = re.compile(r"[.!?।॥;:,،؛؟\n…]+|\s[-–—]\s")


def fold(text: str, language: str) -> str:
    """Lowercase and fold spelling variants so that lexicon keys and text compare equal."""
    text = unicodedata.normalize("NFC", text).casefold()
    if language in ("fa", "ar", "ur"):
        return replace_chars(_ARABIC_MARKS.sub("", text), _PERSIAN_FOLDS)
    if language in ("hi", "mr", "ne"):
        return replace_chars(text, _DEVANAGARI_FOLDS)
    return replace_chars(text, _ZERO_WIDTH)


def clauses(text: str, language: str) -> list[list[str]]:
    """Folded words, grouped by clause; negation and intensifiers never cross a clause."""
    result = []
    for part in _CLAUSE_BREAK.split(text):
        words = token_texts(fold(part, language))
        if words:
            result.append(words)
    return result


def exclamations(text: str) -> int:
    return min(text.count("!") + text.count("！"), 3)
