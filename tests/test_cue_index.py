"""The cue index finds exactly the patterns a full search would (monitor/classify/cue_index.py)."""

from __future__ import annotations

import re

from hypothesis import given, settings
from hypothesis import strategies as st

from monitor.classify.cue_index import CueIndex, fold, required_literals
from monitor.classify.vader_en import _CUES, cue_valence


def brute_force(patterns: list[re.Pattern[str]], text: str) -> list[int]:
    return [i for i, pattern in enumerate(patterns) if pattern.search(text)]


def test_required_literals_of_common_shapes() -> None:
    assert required_literals(r"\brefund\b", re.I) == {"refund"}
    assert required_literals(r"\b(?:is|are) down\b|\boutage", re.I) == {" down", "outage"}
    assert required_literals(r"\bugh+\b", re.I) == {"ug"}
    # Nothing guaranteed: an optional part, a class, an alternative without a literal.
    assert required_literals(r"(?:refund)?\d+", re.I) is None
    assert required_literals(r"\brefund\b|\d{3}", re.I) is None
    assert required_literals(r"[a-z]+", re.I) is None
    # Non-ASCII literals are not used (their case twins are not always their lower case).
    assert required_literals(r"σ", re.I) is None


def test_a_pattern_without_literals_is_always_searched() -> None:
    index = CueIndex([re.compile(r"\d+ ?hours?", re.I), re.compile(r"[?!]{2}")])
    assert index.always == [1]
    assert index.candidates("nothing to see") == [1]
    assert index.matching("3 hours late?!") == [0, 1]
    assert index.matching("no digits here") == []


def test_case_twins_of_ascii_letters_are_folded() -> None:
    # What re.IGNORECASE lets match an ASCII letter must not hide the literal from the index.
    patterns = [re.compile(r"\bstuck\b", re.I), re.compile(r"\bis down\b", re.I)]
    index = CueIndex(patterns)
    for text in ("ſtuck at the gate", "STUCK", "İS DOWN again", "ıs down", "\u212aeeps stuck"):
        assert index.matching(text) == brute_force(patterns, text), text
    assert fold("İſK") == "isk"


# Texts built from pieces of the cues themselves, so that most examples hit some of them.
_PIECES = [
    "still", "waiting", "on hold", "refund", "is down", "never again", "no", "one", "reply",
    "can't", "cancelled", "delayed", "lost my bag", "why is", "2 hours", "hrs", "thanks a lot",
    "thanks for nothing", "ugh", "UGHHH", "??", "!!", "İ", "ı", "ſ", "\u212a", "#fail", "fee",
    "not happy", "please help", "x", "é", "🙂", " ", ".", "\n",
]  # fmt: skip


_PATTERNS = [pattern for pattern, _ in _CUES]
_INDEX = CueIndex(_PATTERNS)


@settings(max_examples=400, deadline=None)
@given(st.lists(st.sampled_from(_PIECES), max_size=25).map("".join))
def test_complaint_cues_match_as_a_full_search_would(text: str) -> None:
    expected = brute_force(_PATTERNS, text)
    assert _INDEX.matching(text) == expected
    assert cue_valence(text) == sum(_CUES[i][1] for i in expected)


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=80))
def test_any_text_matches_as_a_full_search_would(text: str) -> None:
    assert _INDEX.matching(text) == brute_force(_PATTERNS, text)
