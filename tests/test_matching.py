"""Watchlist queries: syntax, errors, whole words in four scripts, spans, many watchlists."""

from __future__ import annotations

import re
from typing import Any

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from monitor.config import Config
from monitor.matching import Matcher, MatchInput, QueryError, _document, parse_query, search_terms
from monitor.normalize import fold_case, normalize_text, words
from monitor.pipeline import brand_handles, is_tagged


def matches(query: str, text: str, **fields: str) -> bool:
    return bool(Matcher([("w", query, [])]).match(MatchInput(text, **fields)))


def highlighted(query: str, text: str) -> list[str]:
    (result,) = Matcher([("w", query, [])]).match(MatchInput(text))
    return [text[start:end] for start, end in result.spans]


# ----------------------------------------------------------------------------- syntax


@pytest.mark.parametrize(
    ("query", "text", "expected"),
    [
        ("acme", "I use ACME daily", True),
        ("acme", "acmecorp is different", False),
        ('"acme cloud"', "Acme   Cloud is down", True),
        ('"acme cloud"', "acme-cloud is down", True),
        ('"acme cloud"', "cloud acme", False),
        ("acme cloud", "cloud ... acme", True),
        ("acme AND cloud", "acme only", False),
        ("acme OR globex", "globex rocks", True),
        ("acme | globex", "globex rocks", True),
        ("acme -jobs", "acme jobs board", False),
        ("acme NOT jobs", "acme jobs board", False),
        ("acme -jobs", "acme is down", True),
        ('"acme cloud" OR acmecloud -jobs', "acmecloud jobs", False),  # OR binds tighter
        ('"acme cloud" OR acmecloud -jobs', "acme cloud jobs", False),
        ('"acme cloud" OR acmecloud -jobs', "acmecloud outage", True),
        ("(acme OR globex) (outage OR down)", "globex down again", True),
        ("(acme OR globex) (outage OR down)", "globex is fine", False),
        ("refund*", "where are my refunds", True),
        ("refund*", "no money back", False),
        ('"acme clo*"', "acme cloudy day", True),
        ('"acme" near/3 refund', "acme please give a refund", True),  # 3 words between
        ('"acme" near/3 refund', "acme please give me a refund", False),  # 4 words between
        ('"acme" near/3 refund', "refund from acme", True),  # either order
        ('"acme cloud" near/1 "refund policy"', "acme cloud changed refund policy", True),
        ("case:ACME", "ACME launches", True),
        ("case:ACME", "Acme launches", False),
        ('case:"Acme Cloud"', "new Acme Cloud region", True),
        ('case:"Acme Cloud"', "new acme cloud region", False),
        ("acme or globex", "acme or globex", True),  # lowercase or is a word
        ("acme or globex", "globex", False),
    ],
)
def test_query_language(query: str, text: str, expected: bool) -> None:
    assert matches(query, text) is expected


@pytest.mark.parametrize(
    ("query", "fields", "expected"),
    [
        ("acme site:example.com", {"url": "https://news.example.com/a"}, True),
        ("acme site:example.com", {"url": "https://www.example.com/a"}, True),
        ("acme site:example.com", {"url": "https://badexample.com/a"}, False),
        ("acme -site:acme.example", {"url": "https://blog.acme.example/x"}, False),
        ("acme -site:acme.example", {"url": "https://other.test/x"}, True),
        ("acme author:alice", {"author": "@Alice"}, True),
        ("acme author:alice", {"author": "@alice@mastodon.social"}, True),
        ("acme author:alice", {"author": "alice.bsky.social"}, True),
        ("acme author:alice", {"author": "malice"}, False),
        ('acme author:"Jane Doe"', {"author": "Jane Doe"}, True),
        ("acme -author:acmecloud", {"author": "acmecloud"}, False),
        ("acme lang:hi", {"language": "hi"}, True),
        ("acme lang:hi", {"language": "en"}, False),
        ("acme lang:pt", {"language": "pt-BR"}, True),
    ],
)
def test_field_filters(query: str, fields: dict[str, str], expected: bool) -> None:
    assert matches(query, "news about acme", **fields) is expected


def test_a_query_without_terms_is_evaluated_for_every_text() -> None:
    matcher = Matcher([("site-only", "site:example.com", []), ("brand", "acme", [])])
    found = matcher.match(MatchInput("nothing to see", url="https://example.com/x"))
    assert [m.watchlist for m in found] == ["site-only"]
    assert matcher.match(MatchInput("nothing to see", url="https://other.test/x")) == []


@pytest.mark.parametrize(
    ("query", "message", "column"),
    [
        ("", "the query is empty", 1),
        ('acme "cloud', "unbalanced quote", 6),
        ("(acme OR globex", "unbalanced '('", 1),
        ("acme)", "unbalanced ')'", 5),
        ("acme OR", "OR needs a term on both sides", 6),
        ("OR acme", "OR needs a term on both sides", 1),
        ("acme AND AND cloud", "AND needs a term on both sides", 6),
        ("-jobs", "only excludes", 1),
        ("acme near/0 refund", "near/N needs a distance from 1 to 50", 6),
        ("acme near/3", "near/N needs a word or phrase on both sides", 6),
        ("acme near/3 (a OR b)", "near/N needs a word or phrase on both sides", 6),
        ("acme site:", "site: needs a value", 6),
        ("acme site:not_a_domain!", "not a domain name", 6),
        ("acme lang:english", "not a language code", 6),
        ("ac*me", "a wildcard * may only end a word", 3),
        ("acme a*", "at least two letters", 6),
        ("acme ()", "empty parentheses", 6),
        ('acme "!!"', "has no letters or digits", 6),
        ("(" * 50 + "acme" + ")" * 50, "nested more than 40 levels deep", 41),
    ],
)
def test_parse_errors_name_the_column(query: str, message: str, column: int) -> None:
    with pytest.raises(QueryError) as caught:
        parse_query(query)
    assert message in str(caught.value)
    assert str(caught.value).endswith(f"at column {column}")
    assert caught.value.position == column - 1


def test_search_terms_for_platform_searches() -> None:
    node = parse_query('"acme cloud" OR acmecloud OR case:ACME refund* -jobs -"acme jobs"')
    assert search_terms(node) == ["acme cloud", "acmecloud", "ACME", "refund"]


# ------------------------------------------------------------------ four scripts


@pytest.mark.parametrize(
    ("query", "text", "expected"),
    [
        # Hindi: whole words keep their vowel signs; \b would match पर inside परी
        ('"एक्मे क्लाउड"', "एक्मे क्लाउड की सेवा बहुत खराब है", True),
        ("पर", "एक परी की कहानी", False),
        ("पर", "भरोसा पर टिका है", True),
        ("क्लाउ", "एक्मे क्लाउड", False),
        ("क्लाउ*", "एक्मे क्लाउड", True),
        ("ज़रूरत", "मुझे रिफंड की जरूरत है", True),  # nukta variant
        ("माँ", "मां ने कहा", True),  # chandrabindu variant
        ("१२३", "order 123 is late", True),  # Devanagari digits
        # Bengali: the same, with ya-phala spellings and digits
        ('"অ্যাকমি ক্লাউড"', "অ্যাকমি ক্লাউড আবার বন্ধ", True),
        ('"অ্যাকমি ক্লাউড"', "এ্যাকমি ক্লাউড আবার বন্ধ", True),
        ("কর", "কাজ করা হয়নি", False),
        ("উৎপাদন", "উত্\u200dপাদন বন্ধ", True),  # khanda ta written with ZWJ
        ("৫০০", "500 টাকা ফেরত চাই", True),
        # Persian: letter variants typed on Arabic keyboards, tatweel, harakat, digits
        ("کیفیت", "كيفيت خيلي بده", True),
        ('"اکمی کلاود"', "اكمي كلاود قطع است", True),
        ("اکمی", "اکمـــی قطع است", True),
        ("اکمی", "اَکمی قطع است", True),
        ("اکمی", "اکمیپلاس", False),
        ("اکمی", "اکمی‌ها همیشه قطع‌اند", True),  # ZWNJ suffix: a soft boundary
        ("اکمی", "اکمیها همیشه قطع‌اند", True),  # the same plural written joined
        ("۱۲۳", "سفارش 123 کجاست", True),
        ("123", "سفارش ١٢٣ کجاست", True),
    ],
)
def test_whole_words_in_four_scripts(query: str, text: str, expected: bool) -> None:
    assert matches(query, text) is expected


def test_backslash_b_gets_indic_words_wrong() -> None:
    """The bug the matcher avoids: \\b sees a boundary before every combining vowel sign."""
    assert re.search(r"\bपर\b", "परी") is not None
    assert re.search(r"\bকর\b", "করা") is not None
    assert not matches("पर", "परी") and not matches("কর", "করা")


@pytest.mark.parametrize("query", ["می\u200cخواهم", "میخواهم", '"می خواهم"'])
@pytest.mark.parametrize("text", ["من می\u200cخواهم", "من میخواهم", "من می خواهم"])
def test_zwnj_spellings_match_each_other(query: str, text: str) -> None:
    assert matches(query, text)


@pytest.mark.parametrize("query", ["کتاب\u200cها", "کتابها", '"کتاب ها"'])
@pytest.mark.parametrize("text", ["این کتاب\u200cها", "این کتابها", "این کتاب ها"])
def test_persian_plural_spellings_match_each_other(query: str, text: str) -> None:
    assert matches(query, text)


def test_hashtags_and_handles_contain_the_brand() -> None:
    assert matches("acmecloud", "down again #AcmeCloud")
    assert matches("acmecloud", "hey @acmecloud where is my refund")
    assert matches('"acme cloud"', "down again #AcmeCloud")  # a phrase, joined in a tag
    assert not matches('"acme cloud"', "acmecloud is down")  # but not in running text
    assert matches('"एक्मे क्लाउड"', "#एक्मेक्लाउड फिर बंद")


# --------------------------------------------------------------------------- spans


@pytest.mark.parametrize(
    ("query", "text", "expected"),
    [
        (
            '"acme cloud" OR refund*',
            "Ｗｈｙ is Ａｃｍｅ  Ｃｌｏｕｄ down? Refunds!",
            ["Ａｃｍｅ  Ｃｌｏｕｄ", "Refunds"],
        ),
        ("acmecloud", "😡 #AcmeCloud down", ["AcmeCloud"]),
        ('"एक्मे क्लाउड"', "फिर से एक्मे क्लाउड बंद", ["एक्मे क्लाउड"]),
        ("ज़रूरत", "मुझे ज़रूरत है", ["ज़रूरत"]),
        ("কর্মী", "অ্যাকমির কর্মী ভালো", ["কর্মী"]),
        ("کیفیت", "كيفيت خيلي بده", ["كيفيت"]),
        ("اکمی", "سرویس اکمـــی قطع است", ["اکمـــی"]),
        ("می\u200cخواهم", "پولم را می خواهم", ["می خواهم"]),
        ('"acme" near/3 refund', "acme, I want a refund", ["acme", "refund"]),
    ],
)
def test_spans_are_offsets_into_the_original_text(
    query: str, text: str, expected: list[str]
) -> None:
    assert highlighted(query, text) == expected


def test_match_reports_terms_of_the_true_branches_only() -> None:
    (found,) = Matcher([("w", "(acme OR globex) -(jobs near/2 acme)", [])]).match(
        MatchInput("Acme and Globex both went down")
    )
    assert found.terms == ["acme", "globex"]


# ---------------------------------------------------------------- many watchlists


def test_several_watchlists_each_report_their_own_terms() -> None:
    matcher = Matcher(
        [
            ("brand", '"acme cloud" OR acmecloud', []),
            ("outages", "(acme OR acmecloud) (down OR outage)", []),
            ("competitors", "globex", []),
        ]
    )
    found = matcher.match(MatchInput("AcmeCloud is down again"))
    assert [(m.watchlist, m.terms) for m in found] == [
        ("brand", ["acmecloud"]),
        ("outages", ["acmecloud", "down"]),
    ]


def test_languages_filter_uses_the_detected_language() -> None:
    matcher = Matcher([("hi-only", "acme", ["hi"]), ("any", "acme", [])])
    assert [m.watchlist for m in matcher.match(MatchInput("acme", language="en"))] == ["any"]
    assert len(matcher.match(MatchInput("acme", language="hi"))) == 2
    assert len(matcher.match(MatchInput("acme", language=""))) == 2  # unknown is kept


class CountingMatcher(Matcher):
    """A real matcher that counts how many watchlist queries it evaluated."""

    def __init__(self, watchlists: Any) -> None:
        super().__init__(watchlists)
        self.roots = {id(w.query) for w in self.watchlists}
        self.evaluated = 0

    def _evaluate(self, node: Any, doc: Any, hits: Any, found: Any) -> bool:
        if id(node) in self.roots:
            self.evaluated += 1
        return super()._evaluate(node, doc, hits, found)


def test_only_watchlists_with_a_term_hit_are_evaluated() -> None:
    lists = [(f"w{i}", f'"brand{i} cloud" OR brand{i}x -jobs', []) for i in range(2000)]
    lists.append(("site", "site:example.com", []))
    matcher = CountingMatcher(lists)
    assert matcher.term_count == 4001  # "jobs" is shared
    found = matcher.match(MatchInput("brand17x is down", url="https://other.test/"))
    assert [m.watchlist for m in found] == ["w17"]
    assert matcher.evaluated == 2  # w17 and the term-less site: watchlist, not 2001


# ------------------------------------------------------------------------ properties


@settings(max_examples=500, deadline=None)
@given(st.text(max_size=80))
def test_parser_only_ever_raises_query_error(query: str) -> None:
    try:
        parse_query(query)
    except QueryError as exc:
        assert 0 <= exc.position <= len(query)


QUERY_PIECES = st.sampled_from(
    ["acme", '"', "(", ")", "-", "OR", "AND", "NOT", "|", "*", "near/3", "near/x", "site:",
     "site:a.b", "author:", "lang:", "lang:fa", "case:", ":", " ", "एक्मे", "اکمی", "\u200c"]
)  # fmt: skip


@settings(max_examples=500, deadline=None)
@given(st.lists(QUERY_PIECES, max_size=12).map("".join))
def test_parser_only_ever_raises_query_error_on_query_like_input(query: str) -> None:
    try:
        node = parse_query(query)
    except QueryError as exc:
        assert 0 <= exc.position <= len(query)
        return
    Matcher([("w", query, [])]).match(MatchInput("acme एक्मे اکمی", url="https://a.b/"))
    assert node is not None


SCRIPTS = {
    "english": ("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ", "0123456789'"),
    "hindi": ("कखगघचजटडतदनपबमयरलवशसह", "ािीुूेैोौंँ्ृ़"),
    "bengali": ("কখগঘচজটডতদনপবমযরলশসহ", "ািীুূেৈোৌংঁ্ৃ়"),
    "persian": ("ابپتجچخدرزژسشعفقکگلمنوهیيكة", "ًٌٍَُِّْـ\u200c"),
}
NEIGHBOURS = st.sampled_from([" ", "  ", "\n", ", ", ". ", "!", "(", ")", "#", "@", "«", "»", "، "])


@st.composite
def embedded_word(draw: st.DrawFn) -> tuple[str, str, str, int]:
    letters, extras = SCRIPTS[draw(st.sampled_from(sorted(SCRIPTS)))]
    word = draw(st.sampled_from(letters)) + draw(st.text(letters + extras, max_size=8))
    context = st.text(letters + extras + " ,.!?", max_size=20)
    left = draw(context) + draw(NEIGHBOURS)
    right = draw(NEIGHBOURS) + draw(context)
    return word, left + word + right, left, len(word)


@settings(max_examples=400, deadline=None)
@given(embedded_word())
def test_a_term_is_found_wherever_it_stands_between_non_word_characters(
    case: tuple[str, str, str, int],
) -> None:
    word, text, left, length = case
    assume(normalize_text(word).strip("\u0640") and '"' not in word)
    try:
        parse_query(f'"{word}"')
    except QueryError:
        assume(False)
    (found,) = Matcher([("w", f'"{word}"', [])]).match(MatchInput(text))
    start = len(left)
    assert any(
        s == start and e <= start + length and words(text[s:e]) == words(word)
        for s, e in found.spans
    ), (found.spans, start)


# ------------------------------------------------------------------------- tagged


@pytest.mark.parametrize(
    ("text", "tagged"),
    [
        ("hey @AcmeCloud where is my refund", True),
        ("@acmecloud@mastodon.social down again", True),
        ("cc @acmecloud.bsky.social.", True),
        ("＠acmecloud سرویس قطع است", True),  # full-width at sign
        ("@acmecloud, सेवा बंद है", True),
        ("acmecloud is down", False),  # untagged: kept and labelled, not dropped
        ("#acmecloud is down", False),
        ("mail me at bob@acmecloud.test", False),
        ("@acmecloudsupport is slow", False),
        ("@acmecloud.example.com is someone else", False),
    ],
)
def test_tagged_means_an_at_mention_of_a_brand_account(text: str, tagged: bool) -> None:
    config = Config.model_validate(
        {
            "brand": {
                "name": "Acme Cloud",
                "accounts": {
                    "mastodon": "@acmecloud@mastodon.social",
                    "bluesky": "acmecloud.bsky.social",
                    "youtube": "https://www.youtube.com/@AcmeCloud",
                },
            },
            "watchlists": [{"name": "brand", "query": "acme"}],
        }
    )
    handles = brand_handles(config)
    assert handles == ["acmecloud", "acmecloud.bsky.social"]
    assert is_tagged(text, handles) is tagged


class _Unfiltered(Matcher):
    """The same matcher without its cheap prefilter, as the reference."""

    def might_match(self, text: str) -> bool:
        return True


@st.composite
def query_and_text(draw: st.DrawFn) -> tuple[str, str]:
    letters, extras = SCRIPTS[draw(st.sampled_from(sorted(SCRIPTS)))]
    word = st.builds(
        lambda a, b: a + b, st.sampled_from(letters), st.text(letters + extras, max_size=5)
    )
    terms = draw(st.lists(word, min_size=1, max_size=3))
    shape = draw(st.sampled_from(["phrase", "or", "prefix", "tag", "case"]))
    if shape == "phrase":
        query = '"' + " ".join(terms) + '"'
    elif shape == "prefix":
        query = terms[0] + "*"
    elif shape == "tag":
        query = "#" + terms[0]
    elif shape == "case":
        query = "case:" + terms[0]
    else:
        query = " OR ".join(terms)
    pieces = draw(st.lists(st.one_of(word, NEIGHBOURS, st.sampled_from(terms)), max_size=12))
    return query, "".join(pieces)


@settings(max_examples=400, deadline=None)
@given(query_and_text())
def test_the_prefilter_never_drops_a_match(case: tuple[str, str]) -> None:
    query, text = case
    try:
        parse_query(query)
    except QueryError:
        assume(False)
    watchlists = [("w", query, [])]
    item = MatchInput(text)
    assert Matcher(watchlists).match(item) == _Unfiltered(watchlists).match(item)


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.characters(exclude_categories=["Cs"]), max_size=40))
def test_a_line_folds_word_by_word(text: str) -> None:
    """The matcher case-folds a post's words in one call (cheaper than one per word); the
    words and their offsets must be what folding each word alone gives."""
    doc = _document(MatchInput(text=text))
    words = [doc.exact[start:].split(" ", 1)[0] for start in doc.exact_starts]
    folded = [fold_case(word) for word in words]
    assert [doc.folded[start:].split(" ", 1)[0] for start in doc.folded_starts] == folded
    if words:
        assert doc.folded == " " + " ".join(folded) + " "
