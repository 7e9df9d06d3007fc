"""Normalisation and word segmentation in English, Hindi, Bengali and Persian."""

from __future__ import annotations

import itertools
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from monitor.normalize import (
    few_chars,
    normalize_mapped,
    normalize_text,
    replace_chars,
    tokenize,
    words,
)

# Letters, combining marks, joiners and digits of the four scripts, for generated text.
SCRIPT_ALPHABETS = {
    "latin": "abcxyzABCXYZéÉßİ0123456789",
    "devanagari": "कखगजडढफयरलशसहािीुूेैोौंँःृ़्क़ज़ड़०१२९\u200c\u200d",
    "bengali": "কখগজডঢতদনবযরলশসহািীুূেৈোৌংঁঃৃ্ৎড়য়০১২৯\u200c\u200d",
    "persian": "ابپتثجچحخدذرزژسشصطعغفقکگلمنوهیيكةۀأإآؤئـًٌٍَُِّْٰ۰۱۲۹٠١٢٩\u200c",
}
SEPARATORS = " \n\t.,!?-#@()«»،؛"


def script_text(alphabet: str) -> st.SearchStrategy[str]:
    return st.text(alphabet=alphabet + SEPARATORS, max_size=40)


@pytest.mark.parametrize(
    ("variant", "canonical"),
    [
        # English: case, full-width forms, ligatures, accents kept but composed
        ("ACME Cloud", "acme cloud"),
        ("Ａｃｍｅ　Ｃｌｏｕｄ", "acme cloud"),
        ("ﬁnally", "finally"),
        ("cafe\u0301", "café"),
        ("İstanbul", "istanbul"),
        ("ac\u00adme", "acme"),  # soft hyphen
        # Hindi: nukta, chandrabindu, invisible joiners, digits
        ("ज़रूरत", "जरूरत"),
        ("\u091c\u093c\u0930\u0942\u0930\u0924", "जरूरत"),  # the same, nukta typed separately
        ("माँ", "मां"),
        ("क्\u200dष", "क्ष"),
        ("क्\u200cष", "क्ष"),
        ("१२३ रुपये", "123 रुपये"),
        # Bengali: khanda ta written with ZWJ, the two spellings of the English "a" sound, digits
        ("উৎপাদন", "উৎপাদন"),
        ("উত্\u200dপাদন", "উৎপাদন"),
        ("এ্যাকমি", "অ্যাকমি"),
        ("০১৯৮৭৬", "019876"),
        # Persian/Arabic: yeh, kaf, teh marbuta, hamza forms, tatweel, harakat, ZWNJ, digits
        ("گوشي خوبيه", "گوشی خوبیه"),
        ("كيفيت", "کیفیت"),
        ("مدرسة", "مدرسه"),
        ("خانهٔ", "خانه"),
        ("خانۀ", "خانه"),
        ("مـــــن", "من"),
        ("مُحَمَّد", "محمد"),
        ("أحمد إسلام آب", "احمد اسلام اب"),
        ("پائیز", "پاییز"),
        ("می\u200cخواهم", "میخواهم"),
        ("۱۲۳ ١٢٣", "123 123"),
        ("\u200fسلام\u200e", "سلام"),  # bidi marks
        ("ﻙﻼﻡ", "کلام"),  # presentation forms
    ],
)
def test_spelling_variants_normalise_the_same(variant: str, canonical: str) -> None:
    assert normalize_text(variant) == canonical
    assert normalize_text(canonical) == canonical


def test_case_kept_when_asked() -> None:
    assert normalize_text("ACME ｃｌｏｕｄ", casefold=False) == "ACME cloud"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("AcmeCloud's outage, again!", ["acmecloud", "s", "outage", "again"]),
        ("#AcmeCloud @acmecloud", ["acmecloud", "acmecloud"]),
        ("एक्मे क्लाउड की सेवा", ["एक्मे", "क्लाउड", "की", "सेवा"]),
        ("অ্যাকমি ক্লাউডের সেবা খারাপ", ["অ্যাকমি", "ক্লাউডের", "সেবা", "খারাপ"]),
        ("اکمی کلاود، خیلی بده!", ["اکمی", "کلاود", "خیلی", "بده"]),
        ("snake_case", ["snake", "case"]),
    ],
)
def test_words_keep_combining_marks(text: str, expected: list[str]) -> None:
    assert words(text) == expected


def test_backslash_w_would_split_indic_words() -> None:
    """Why the tokenizer does not use \\w: it drops vowel signs and viramas."""
    assert re.findall(r"\w+", "क्लाउड") != ["क्लाउड"]
    assert re.findall(r"\w+", "ক্লাউড") != ["ক্লাউড"]
    assert [t.text for t in tokenize("क्लाउड ক্লাউড")] == ["क्लाउड", "ক্লাউড"]


def test_mapped_offsets_point_into_the_original() -> None:
    original = "Hi ＡＣＭＥ ज़रूर گوشي\u200cها"
    mapped = normalize_mapped(original, keep_zwnj=True)
    assert mapped.text == "Hi ACME जरूर گوشی\u200cها"
    start = mapped.text.index("ACME")
    assert original[slice(*mapped.original_span(start, start + 4))] == "ＡＣＭＥ"
    start = mapped.text.index("जरूर")
    assert original[slice(*mapped.original_span(start, start + 4))] == "ज़रूर"
    start = mapped.text.index("گوشی")
    assert original[slice(*mapped.original_span(start, start + 4))] == "گوشي"


def test_zwnj_kept_only_inside_arabic_script_words_when_mapping() -> None:
    assert normalize_mapped("می\u200cخواهم", keep_zwnj=True).text == "می\u200cخواهم"
    assert normalize_mapped("क्\u200cष", keep_zwnj=True).text == "क्ष"
    assert normalize_mapped("\u200cabc", keep_zwnj=True).text == "abc"


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=60))
def test_normalisation_is_idempotent_on_any_text(text: str) -> None:
    once = normalize_text(text)
    assert normalize_text(once) == once
    exact = normalize_text(text, casefold=False)
    assert normalize_text(exact, casefold=False) == exact


@settings(max_examples=200, deadline=None)
@given(
    st.sampled_from(sorted(SCRIPT_ALPHABETS)).flatmap(lambda s: script_text(SCRIPT_ALPHABETS[s]))
)
def test_normalisation_is_idempotent_in_each_script(text: str) -> None:
    once = normalize_text(text)
    assert normalize_text(once) == once
    mapped = normalize_mapped(text, keep_zwnj=True)
    assert len(mapped.starts) == len(mapped.ends) == len(mapped.text)
    assert all(0 <= s < e <= len(text) for s, e in zip(mapped.starts, mapped.ends, strict=True))


@settings(max_examples=400, deadline=None)
@given(
    st.one_of(
        st.text(max_size=60),
        st.sampled_from(sorted(SCRIPT_ALPHABETS)).flatmap(
            lambda s: script_text(SCRIPT_ALPHABETS[s])
        ),
    )
)
def test_whole_string_normalisation_equals_cluster_by_cluster(text: str) -> None:
    """normalize_text folds the whole string at once (fast, in C); normalize_mapped folds
    cluster by cluster to keep offsets. Matching relies on both giving the same text."""
    assert normalize_text(text, casefold=False) == normalize_mapped(text).text


@settings(max_examples=300, deadline=None)
@given(
    st.sampled_from(sorted(SCRIPT_ALPHABETS)).flatmap(lambda s: script_text(SCRIPT_ALPHABETS[s]))
)
def test_each_character_maps_to_the_cluster_it_came_from(text: str) -> None:
    """Offsets are what highlighting relies on: the spans follow each other, and the
    normalised spans of the original, in order, are the normalised text."""
    if text.isascii() or normalize_text(text, casefold=False) == text:
        return  # the identity map: nothing to rebuild
    mapped = normalize_mapped(text)
    spans = list(dict.fromkeys(zip(mapped.starts, mapped.ends, strict=True)))
    assert all(a[1] <= b[0] for a, b in itertools.pairwise(spans))
    rebuilt = "".join(normalize_text(text[start:end], casefold=False) for start, end in spans)
    assert rebuilt == mapped.text


_FEW = {"\u064a": "\u06cc", "\u0643": "\u06a9", "\u0640": None, "\u200c": None, "ँ": "ं"}


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.sampled_from([*_FEW, "ی", "ک", "ं", "a", " ", "ب"]), max_size=40))
def test_replace_chars_is_translate(text: str) -> None:
    assert replace_chars(text, few_chars(_FEW)) == text.translate(str.maketrans(_FEW))


def test_few_chars_refuses_a_chain() -> None:
    # "a" → "b" then "b" → "c" would turn "a" into "c"; translate gives "b".
    with pytest.raises(ValueError, match="also in a replacement"):
        few_chars({"a": "b", "b": "c"})
