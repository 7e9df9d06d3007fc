"""Per-language lookup rules for the lexicon backend: inflection variants and attached
negation. The word lists live in ``lexicons/<language>.txt``."""

from __future__ import annotations

import re
from collections.abc import Iterator

from monitor.classify.lexicon import LanguageRules, load_lexicon

# ---------------------------------------------------------------------------- Hindi

# Adjective/verb/noun endings stripped before retrying with the lexicon's citation ending
# (अच्छी, अच्छे → अच्छा; खराबी → खराब; बेकारों → बेकार).
_HINDI_SUFFIXES = (
    "ियों", "ियां", "ाओं", "ाएं", "ाइयों", "ाई", "ों", "ें", "ीं", "ां", "ता", "ती", "ते",
    "ना", "नी", "ने", "या", "यी", "ये", "ी", "े", "ा", "ो",
)  # fmt: skip
_HINDI_ENDINGS = ("", "ा", "ी", "े", "ना")


def hindi_variants(word: str) -> Iterator[str]:
    yield word
    for suffix in _HINDI_SUFFIXES:
        if word.endswith(suffix) and len(word) - len(suffix) >= 2:
            stem = word[: -len(suffix)]
            for ending in _HINDI_ENDINGS:
                yield stem + ending


# -------------------------------------------------------------------------- Bengali

_BENGALI_SUFFIXES = (
    "গুলোর", "গুলো", "গুলি", "দেরকে", "দের", "টার", "টির", "টা", "টি", "কে", "তে", "রা",
    "ের", "েরা", "য়", "র", "ে", "ই", "ও", "ভাবে",
)  # fmt: skip
# What may precede an attached না/নি on a verb: করেনি, পারিনা, হয়নি, যায়না, চাইনা.
_BENGALI_VERB_ENDINGS = ("ে", "ি", "ই", "য়", "ব", "ছ")


def bengali_variants(word: str) -> Iterator[str]:
    yield word
    for suffix in _BENGALI_SUFFIXES:
        if word.endswith(suffix) and len(word) - len(suffix) >= 2:
            yield word[: -len(suffix)]


def bengali_split_negation(word: str) -> tuple[str, bool]:
    for suffix in ("নি", "না"):
        if word.endswith(suffix) and len(word) > len(suffix) + 1:
            rest = word[: -len(suffix)]
            if rest.endswith(_BENGALI_VERB_ENDINGS):
                return rest, True
    return word, False


# -------------------------------------------------------------------------- Persian

# Only endings that cannot turn one word into another short one (بدن "body" is not بد).
_PERSIAN_SUFFIXES = (
    "هایی", "هایش", "های", "ها", "ترین", "تری", "تر", "یی", "ای", "یه", "ی", "ه", "ش",
    "ام", "م", "شون", "مون", "تون", "ست",
)  # fmt: skip
# Present/past stems that take the negative prefix ن (ندارد, نکرد, نمی‌شود, نخرید, نیست).
_PERSIAN_VERB_STEMS = (
    "دار", "داشت", "کرد", "کن", "شد", "بود", "باش", "خواه", "خواست", "ارز", "دید", "بین",
    "گرفت", "گیر", "رفت", "آمد", "آید", "یامد", "ده", "داد", "توان", "تون", "گذاشت",
    "پسند", "خر", "یست", "چسب", "خور", "زن", "ساز", "ساخت", "رسید", "رس",
    "یومد", "یاد",
)  # fmt: skip
# Written apart from their word as often as joined to it (می خوره, بی کیفیت, گوشی ها,
# ضعیف تر).
_PERSIAN_PREFIX_WORDS = frozenset({"می", "نمی", "بی"})
_PERSIAN_SUFFIX_WORDS = frozenset({"ها", "های", "هایی", "هایش", "تر", "تری", "ترین", "ای"})
# Three or more of one letter is emphasis (عاااالی, خیییلی); Persian words have at most two.
_ELONGATED = re.compile(r"(.)\1{2,}")


def persian_variants(word: str) -> Iterator[str]:
    yield word
    stripped = word
    if word.startswith("می") and len(word) >= 4:
        stripped = word[2:]
        yield stripped
    elif word.startswith("ب") and len(word) >= 5:  # subjunctive بخرید; never بخش, بافت, بارز
        yield word[1:]
    bases = [word, stripped]
    if word.endswith("و") and len(word) >= 4:  # spoken object marker: ارزششو = ارزشش رو
        bases.append(word[:-1])
        yield word[:-1]
    for base in dict.fromkeys(bases):
        for suffix in _PERSIAN_SUFFIXES:
            if base.endswith(suffix) and len(base) - len(suffix) >= 2:
                yield base[: -len(suffix)]


def persian_split_negation(word: str) -> tuple[str, bool]:
    if word.startswith("نمی") and len(word) > 4:
        return word[3:], True
    if word.startswith("ن") and len(word) > 2 and word[1:].startswith(_PERSIAN_VERB_STEMS):
        return word[1:], True
    return word, False


def persian_retokenize(words: list[str]) -> list[str]:
    """Join a spaced-off می/نمی/بی to its word and ها/تر/ترین to theirs; undo elongation."""
    joined: list[str] = []
    prefix = ""
    for word in words:
        word = _ELONGATED.sub(r"\1", word)
        if word in _PERSIAN_PREFIX_WORDS:
            prefix += word
            continue
        if word in _PERSIAN_SUFFIX_WORDS and joined and not prefix:
            joined[-1] += word
            continue
        joined.append(prefix + word)
        prefix = ""
    if prefix:
        joined.append(prefix)
    return joined


def rules_for(language: str) -> LanguageRules:
    if language == "hi":
        return LanguageRules("hi", load_lexicon("hi", "hi"), hindi_variants, bare_negation=-1.0)
    if language == "bn":
        return LanguageRules(
            "bn",
            load_lexicon("bn", "bn"),
            bengali_variants,
            bengali_split_negation,
            bare_negation=-0.6,
        )
    if language == "fa":
        return LanguageRules(
            "fa",
            load_lexicon("fa", "fa", persian_retokenize),
            persian_variants,
            persian_split_negation,
            bare_negation=-0.5,
            negation_window=5,
            negated_positive=-1.0,
            after_but=1.2,
            negation_looks_ahead=False,
            retokenize=persian_retokenize,
        )
    raise ValueError(f"no lexicon for language {language!r}")
