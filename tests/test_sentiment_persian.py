"""Persian lexicon rules: verb-final negation and its reach, pre-posed negators, negated
positives vs negated negatives, intensifiers, "but" clauses, hedges, spelling variants, and
quality/amount pairs. Every sentence here is invented for the test."""

from __future__ import annotations

from pathlib import Path

import pytest

from monitor.classify import Classifier, lexicon
from monitor.classify.languages import persian_retokenize, persian_variants, rules_for
from monitor.classify.lexicon import LanguageRules, load_lexicon, score_text


@pytest.fixture(scope="module")
def rules() -> LanguageRules:
    return rules_for("fa")


@pytest.fixture(scope="module")
def classifier() -> Classifier:
    return Classifier()


def compound(rules: LanguageRules, text: str) -> float:
    return score_text(text, rules).compound


def label(classifier: Classifier, text: str) -> str:
    return classifier.sentiment(text, "fa").label


# ------------------------------------------------------------------------------ negation


@pytest.mark.parametrize(
    "text",
    [
        "این هدفون خوب نیست",
        "اصلا از خریدم راضی نیستم",
        "این گوشی دوربین خوبی نداره",  # the verb negates a polar word three words back
        "نمی‌تونه انتخاب خوبی برای عکاسی باشه",  # "cannot" governs what follows it
        "فکر نمی‌کنم خوب باشه",
        "به هیچ وجه ارزش خرید نداره",
        "توصیه نمی‌کنم",
    ],
)
def test_negated_positive_is_negative(classifier: Classifier, text: str) -> None:
    assert label(classifier, text) == "negative"


@pytest.mark.parametrize(
    "text",
    [
        "بد نیست",
        "هیچ مشکلی نداره",
        "مشکل خاصی باهاش نداشتم",
        "بدون هیچ مشکلی کار می‌کنه",
        "اصلا داغ نمی‌کنه",
        "هیچ نگرانی بابت حافظه‌ی گوشی نخواهید داشت",  # هیچ carries the verb's negation back
    ],
)
def test_negated_negative_is_not_negative(classifier: Classifier, text: str) -> None:
    assert label(classifier, text) != "negative"


def test_negated_negative_is_milder_than_the_positive_word(rules: LanguageRules) -> None:
    good, not_good = compound(rules, "خوبه"), compound(rules, "خوب نیست")
    bad, not_bad = compound(rules, "بده و خرابه"), compound(rules, "بد نیست")
    assert not_good < 0 < not_bad < good
    assert bad < not_good


def test_negation_stops_at_that_and_passes_over_sentence_adverbs(rules: LanguageRules) -> None:
    # حیف / متاسفانه judge the whole sentence; the negated verb does not flip them.
    assert compound(rules, "حیف که سیم‌کارت دوم نمی‌خوره") < -0.4
    assert compound(rules, "متاسفانه از کارت حافظه پشتیبانی نمی‌کنه") < -0.4
    # A negated verb after که does not reach back into the main clause.
    assert compound(rules, "گوشی عالیه که کسی نمی‌دونه") > 0


def test_pre_negators_govern_the_next_word_or_stay_silent(rules: LanguageRules) -> None:
    assert compound(rules, "بدون لگ اجرا می‌کنه") > 0
    assert compound(rules, "بدون کابل فروخته می‌شه") == 0  # "without" + neutral says nothing
    assert compound(rules, "فاقد فلاش است") < 0  # "lacking" + neutral is a complaint
    assert compound(rules, "نداشتن فلاش") < 0
    assert -0.4 < compound(rules, "نه خوبه نه بد") < 0.3  # neither … nor


@pytest.mark.parametrize("text", ["نه تنها سریعه بلکه ارزونه", "باید دید ارزشش رو داره یا نه"])
def test_na_that_is_not_a_negation(rules: LanguageRules, text: str) -> None:
    assert compound(rules, text) > 0


def test_negated_comparative_says_nothing(rules: LanguageRules) -> None:
    assert compound(rules, "از مدل قبلی بهتر نیست") == pytest.approx(0.0)


# -------------------------------------------------------------------- intensifiers, but


def test_intensifiers_and_diminishers_scale_negatives(rules: LanguageRules) -> None:
    weak = compound(rules, "باتریش ضعیفه")
    assert compound(rules, "باتریش خیلی ضعیفه") < weak < compound(rules, "باتریش کمی ضعیفه") < 0
    assert compound(rules, "اصلا خوب نیست") < compound(rules, "خوب نیست")


def test_elongated_and_stacked_emphasis(rules: LanguageRules) -> None:
    assert compound(rules, "عاااالیه") == compound(rules, "عالیه")
    assert compound(rules, "خیییلی بده") == compound(rules, "خیلی بده") < -0.5


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("ظاهرش قشنگه ولی باتریش ضعیفه", "negative"),
        ("باتریش ضعیفه ولی در کل خیلی راضی‌ام", "positive"),
        ("قیمتش بالاست اما واقعا ارزششو داره", "positive"),
    ],
)
def test_what_follows_but_decides(classifier: Classifier, text: str, expected: str) -> None:
    assert label(classifier, text) == expected


# ---------------------------------------------------------------------- hedges, fixes


@pytest.mark.parametrize(
    "text",
    ["اگه خراب بشه گارانتی داره", "آیا باتریش زود خراب میشه", "امیدوارم مشکلش رو رفع کنن"],
)
def test_hedged_and_conditional_sentences_are_not_complaints(
    classifier: Classifier, text: str
) -> None:
    assert label(classifier, text) != "negative"


def test_a_fixed_problem_is_not_a_complaint(classifier: Classifier) -> None:
    assert label(classifier, "مشکل وای‌فای با آپدیت حل شد") != "negative"
    assert label(classifier, "مشکل وای‌فای هنوز هست") == "negative"


# ----------------------------------------------------------- spellings and colloquial


@pytest.mark.parametrize(
    "variants",
    [
        ("نمی‌ارزه", "نمی ارزه", "نمیارزه", "نمي ارزه"),
        ("بی‌کیفیت بود", "بی کیفیت بود", "بيكيفيت بود"),
        ("ضعیف‌تر از قبلی", "ضعیف تر از قبلی", "ضعیفتر از قبلی"),
        ("به درد نمی‌خوره", "بدرد نمیخوره", "به درد نمی خوره"),
    ],
)
def test_zwnj_space_and_arabic_letter_spellings_score_alike(
    rules: LanguageRules, variants: tuple[str, ...]
) -> None:
    scores = {round(compound(rules, text), 6) for text in variants}
    assert len(scores) == 1
    assert scores.pop() < -0.4


@pytest.mark.parametrize(
    "text",
    [
        "گوشیش داغونه",
        "کیفیت ساختش افتضاحه",
        "پشتیبانی اصلا جواب نمیدن",
        "سفارشم هنوز نرسیده",
        "اعصابم خورد شد از دستش",
        "خیلی کنده و هنگ می‌کنه",
    ],
)
def test_colloquial_complaints(classifier: Classifier, text: str) -> None:
    assert label(classifier, text) == "negative"


def test_split_prefixes_and_endings_are_rejoined() -> None:
    assert persian_retokenize(["نمی", "خوره"]) == ["نمیخوره"]
    assert persian_retokenize(["بی", "کیفیت"]) == ["بیکیفیت"]
    assert persian_retokenize(["گوشی", "ها", "ضعیف", "تر"]) == ["گوشیها", "ضعیفتر"]
    assert persian_retokenize(["خیییلی", "می"]) == ["خیلی", "می"]


def test_subjunctive_b_is_not_stripped_from_short_words() -> None:
    assert "خش" not in set(persian_variants("بخش"))  # "part", not ب + خش "scratch"
    assert "افت" not in set(persian_variants("بافت"))  # "texture", not ب + افت "drop"


# ------------------------------------------------------------------ quality and amount


def test_an_amount_reads_by_the_quality_it_describes(rules: LanguageRules) -> None:
    assert compound(rules, "کیفیت عکس‌هاش پایینه") < 0
    assert compound(rules, "قیمتش پایینه") > 0
    assert compound(rules, "مصرف باتریش خیلی بالاست") < compound(rules, "مصرف باتریش بالاست") < 0
    assert compound(rules, "در نور کم عکس گرفتم") == 0  # low light is a condition, not a fault


# --------------------------------------------------------------------------- the loader


def test_lexicon_lines_take_a_negation_factor(rules: LanguageRules) -> None:
    assert rules.lexicon.negated[("متاسفانه",)] == 1.0
    assert rules.lexicon.negated[("بهتر",)] == 0.0
    assert ("برای", "گفتن", "ندارد") in rules.lexicon.phrases
    # Keys are rejoined like text: the spaced form in the file matches the solid one.
    assert rules.lexicon.phrases[("بدرد", "نمیخوره")] < 0
    assert "فکر نمیکنم" in rules.lexicon.pre_negators


def test_a_bad_lexicon_line_names_its_file_and_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "xx.txt").write_text("[words]\nخوب\t2.0\nبد\tاشتباه\n", "utf-8")
    monkeypatch.setattr(lexicon.resources, "files", lambda _package: tmp_path)
    with pytest.raises(ValueError, match=r"xx\.txt line 3"):
        load_lexicon("xx", "fa")
