"""Needs-reply in English, Hindi, Bengali and Persian, on the project's own invented cases."""

from __future__ import annotations

from pathlib import Path

import pytest

from monitor.classify import Classifier
from monitor.classify.needs_reply import needs_reply

CASES = Path(__file__).parent / "fixtures" / "needs_reply" / "cases.tsv"


def load_cases() -> list[tuple[str, bool, bool, str]]:
    cases = []
    for line in CASES.read_text("utf-8").splitlines():
        if line.strip() and not line.startswith("#"):
            language, tagged, expected, text = line.split("\t")
            cases.append((language, tagged == "1", expected == "yes", text))
    return cases


def test_the_case_set_covers_four_languages_both_ways() -> None:
    cases = load_cases()
    for language in ("en", "hi", "bn", "fa"):
        answers = {expected for lang, _, expected, _ in cases if lang == language}
        assert answers == {True, False}, language


@pytest.mark.parametrize("language", ["en", "hi", "bn", "fa"])
def test_precision_and_recall_per_language(language: str) -> None:
    classifier = Classifier()
    tp = fp = fn = 0
    for lang, tagged, expected, text in load_cases():
        if lang != language:
            continue
        predicted = classifier.judge(text, lang, tagged=tagged).needs_reply
        tp += predicted and expected
        fp += predicted and not expected
        fn += expected and not predicted
    assert tp / max(tp + fp, 1) >= 0.85
    assert tp / max(tp + fn, 1) >= 0.85


@pytest.mark.parametrize(
    ("language", "text"),
    [
        ("hi", "एक्मे क्लाउड का ऐप बार-बार क्रैश हो रहा है"),  # the app keeps crashing
        ("bn", "অ্যাকমি ক্লাউডের অ্যাপ বারবার ক্র্যাশ করছে"),
        ("fa", "اپلیکیشن اکمی کلاود مدام کرش می‌کنه"),
        ("en", "The Acme Cloud app keeps crashing since the last update"),
        ("en", "@acmecloud my invoice shows a double charge, can someone look at it"),
        ("en", "Does Acme Cloud support IPv6?"),  # asked of the brand, named not tagged
        ("fa", "پشتیبانی اکمی کلاود خیلی بده و جواب ندادن"),  # support is bad, didn't answer
        ("bn", "সাপোর্ট খুব খারাপ, এক সপ্তাহেও কেউ উত্তর দেয়নি"),
    ],
)
def test_crashes_double_charges_unanswered_and_product_questions_need_a_reply(
    language: str, text: str
) -> None:
    assert Classifier().judge(text, language).needs_reply  # untagged, as the daemon sees them


@pytest.mark.parametrize(
    ("language", "text"),
    [
        ("en", "Acme Cloud now supports IPv6 in every region"),
        ("en", "Which clouds support IPv6? A roundup of Acme Cloud, Globex and others"),
        ("en", "Acme Cloud fixed the bug that made its app crash on older phones"),
        ("hi", "एक्मे क्लाउड अब IPv6 सपोर्ट करता है"),
        ("bn", "অ্যাকমি ক্লাউড এখন IPv6 সাপোর্ট করে"),
        ("fa", "پشتیبانی اکمی کلاود عالی بود و سریع جواب دادن"),
    ],
)
def test_news_and_praise_about_the_same_things_need_no_reply(language: str, text: str) -> None:
    assert not Classifier().judge(text, language).needs_reply


def test_a_question_about_the_product_is_not_praise() -> None:
    assert Classifier().sentiment("Does Acme Cloud support IPv6?", "en").label == "neutral"


def test_a_complaint_about_own_experience_needs_a_reply_a_headline_does_not() -> None:
    assert needs_reply("My invoice is wrong again", "en", negative=True)
    assert not needs_reply("Acme shares fall after weak quarter", "en", negative=True)


def test_question_mark_alone_needs_someone_addressed() -> None:
    assert not needs_reply("Is this the future of cloud storage?", "en")
    assert needs_reply("Is this the future of cloud storage?", "en", tagged=True)
    assert needs_reply("چرا سرویس شما قطع است؟", "fa")


def test_other_languages_only_for_a_question_to_the_tagged_brand() -> None:
    assert not needs_reply("Ne fonctionne pas du tout", "fr")
    assert needs_reply("Pourquoi ça ne marche pas ?", "fr", tagged=True)
