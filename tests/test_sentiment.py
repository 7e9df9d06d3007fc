"""Sentiment backends: English cues, the Hindi/Bengali/Persian lexicons, negation,
intensifiers, "but", emoji, unknown languages, and the router."""

from __future__ import annotations

import math

import pytest

from monitor.classify import Classifier
from monitor.classify.base import from_compound
from monitor.classify.emoji import emoji_valences
from monitor.classify.languages import bengali_split_negation, persian_split_negation, rules_for
from monitor.classify.lexicon import ALPHA, score_text
from monitor.classify.vader_en import VaderBackend, cue_valence


@pytest.fixture(scope="module")
def classifier() -> Classifier:
    return Classifier()


def label(classifier: Classifier, text: str, language: str) -> str:
    return classifier.sentiment(text, language).label


@pytest.mark.parametrize(
    "text",
    [
        "@acme still waiting for my refund, 3 weeks now",
        "@acme flight Cancelled Flightled and nobody at the desk. Thanks a lot!",
        "on hold for 2 hours. never again @acme",
        "@acme lost my bag and no response to my emails",
    ],
)
def test_english_complaints_without_negative_words_are_negative(
    classifier: Classifier, text: str
) -> None:
    assert label(classifier, text, "en") == "negative"


def test_plain_vader_misses_what_the_cues_catch() -> None:
    text = "@acme still waiting for my refund, 3 weeks now"
    assert VaderBackend(cues=False).score(text, "en").label != "negative"
    assert cue_valence(text) < 0


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Love the new Acme dashboard, great work team!", "positive"),
        ("Acme announces quarterly results on Tuesday", "neutral"),
    ],
)
def test_english_praise_and_news(classifier: Classifier, text: str, expected: str) -> None:
    assert label(classifier, text, "en") == expected


@pytest.mark.parametrize(
    ("text", "language", "expected"),
    [
        # Hindi: inflected forms, post-posed negation, intensifier, "but".
        ("यह फोन बहुत अच्छी है, बैटरी शानदार", "hi", "positive"),
        ("सामान बेकार निकला, पैसे की बर्बादी", "hi", "negative"),
        ("कैमरा अच्छा नहीं है", "hi", "negative"),
        ("दो दिन में ही काम नहीं कर रहा", "hi", "negative"),
        ("डिज़ाइन अच्छा है लेकिन बैटरी बहुत खराब है", "hi", "negative"),
        ("कंपनी ने नया मॉडल लॉन्च किया", "hi", "neutral"),
        # Bengali: case endings, না/নয়, attached নি.
        ("অসাধারণ সার্ভিস, অনেক ধন্যবাদ", "bn", "positive"),
        ("একদম বাজে জিনিস, টাকা নষ্ট", "bn", "negative"),
        ("খাবারটা ভালো না", "bn", "negative"),
        ("ডেলিভারি এখনো আসেনি, খুব হতাশ", "bn", "negative"),
        ("প্রতারকদের থেকে সাবধান", "bn", "negative"),
        ("আজ ঢাকায় নতুন অফিস খোলা হলো", "bn", "neutral"),
        # Persian: ZWNJ/solid/spaced spellings, Arabic letter variants, نمی‌/ن prefixes.
        ("گوشی عالیه، واقعاً راضی‌ام", "fa", "positive"),
        ("كيفيتش افتضاحه، پشيمونم", "fa", "negative"),
        ("اصلا نمی‌ارزه", "fa", "negative"),
        ("نمی ارزه، نخرید", "fa", "negative"),
        ("ظاهرش قشنگه ولی باتریش خیلی ضعیفه", "fa", "negative"),
        ("هیچ مشکلی نداره و خیلی خوبه", "fa", "positive"),
        ("این گوشی در سه رنگ عرضه شده است", "fa", "neutral"),
    ],
)
def test_lexicon_languages(classifier: Classifier, text: str, language: str, expected: str) -> None:
    assert label(classifier, text, language) == expected


def test_negation_flips_and_softens() -> None:
    rules = rules_for("hi")
    good = score_text("अच्छा है", rules).compound
    not_good = score_text("अच्छा नहीं है", rules).compound
    not_bad = score_text("बुरा नहीं है", rules).compound
    assert good > 0 > not_good
    assert abs(not_good) < good  # "not good" is milder than "good" is positive
    assert not_bad > score_text("बुरा है", rules).compound


def test_negation_does_not_cross_a_clause() -> None:
    rules = rules_for("bn")
    assert score_text("ভালো। না", rules).compound > 0


def test_intensifiers_and_diminishers_scale() -> None:
    rules = rules_for("fa")
    plain = score_text("خوب", rules).compound
    assert score_text("خیلی خوب", rules).compound > plain > score_text("کمی خوب", rules).compound


def test_text_after_but_weighs_more() -> None:
    rules = rules_for("hi")
    assert score_text("अच्छा है लेकिन खराब है", rules).compound < 0
    assert score_text("खराब है लेकिन अच्छा है", rules).compound > 0


def test_attached_negation_is_split_only_from_verbs() -> None:
    assert bengali_split_negation("পারিনি") == ("পারি", True)
    assert bengali_split_negation("জানি") == ("জানি", False)  # ends in নি, not a negation
    assert persian_split_negation("نمیخرم") == ("خرم", True)
    assert persian_split_negation("نرم") == ("نرم", False)  # "soft", not ن + رم


# "My order from Acme came today": no polar word, so the emoji alone decide.
PLAIN = {
    "en": "my order from acme came today",
    "hi": "एक्मे से मेरा ऑर्डर आज आया",
    "bn": "অ্যাকমি থেকে আমার অর্ডার আজ এসেছে",
    "fa": "سفارشم از اکمی امروز رسید",
}


@pytest.mark.parametrize("language", sorted(PLAIN))
def test_emoji_count_in_every_language(classifier: Classifier, language: str) -> None:
    text = PLAIN[language]
    assert label(classifier, text, language) == "neutral"
    for emoji in ("😡😡", "👎", "🤬", "💩💩"):  # VADER alone scores each of these 0
        assert label(classifier, f"{text} {emoji}", language) == "negative", emoji
    assert label(classifier, f"{text} 😍👍", language) == "positive"


def test_a_run_of_one_emoji_counts_at_most_three_times() -> None:
    assert emoji_valences("😡😡😡😡😡") == [-3.0] * 3


def test_english_emoji_are_counted_once_with_the_projects_valence() -> None:
    """VADER reads ❤ as "red heart" and 🔥 as "fire"; those readings must not be added on
    top of the project's valences (❤ +2.0, 🔥 +0.5)."""
    vader = VaderBackend()
    assert vader.compound("acme ❤") == pytest.approx(2.0 / math.sqrt(2.0**2 + ALPHA))
    assert vader.compound("acme 🔥") == pytest.approx(0.5 / math.sqrt(0.5**2 + ALPHA))
    assert VaderBackend(cues=False).compound("acme 🤬") == 0.0  # plain VADER stays plain


def test_unknown_language_is_neutral_and_never_negative(classifier: Classifier) -> None:
    result = classifier.sentiment("Das ist eine Katastrophe 😡😡😡 🤬", "de")
    assert result.label == "neutral"
    assert result.negative > result.positive  # the emoji still show in the scores
    assert result.backend == "emoji"
    assert classifier.sentiment("Bonjour", "fr").as_dict() == {
        "negative": 0.25,
        "neutral": 0.5,
        "positive": 0.25,
    }


def test_judge_detects_language_when_not_given(classifier: Classifier) -> None:
    judgement = classifier.judge("यह सेवा बहुत खराब है")
    assert judgement.language == "hi"
    assert judgement.sentiment.backend == "lexicon/1-hi"


@pytest.mark.parametrize("compound", [-1.0, -0.4, -0.1, 0.0, 0.1, 0.4, 1.0])
def test_scores_are_probabilities_with_the_right_argmax(compound: float) -> None:
    result = from_compound(compound, "test", -0.3, 0.3)
    assert abs(result.negative + result.neutral + result.positive - 1.0) < 1e-9
    expected = "negative" if compound <= -0.3 else "positive" if compound >= 0.3 else "neutral"
    assert result.label == expected
