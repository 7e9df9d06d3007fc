"""Language detection by script and by fastText's language-ID model, stored per mention, used by `languages:`."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest

from monitor.config import Config
from monitor.language import LANGID_LANGUAGES, _classify, detect_language
from monitor.mention import Mention
from monitor.pipeline import Pipeline
from monitor.store import Store
from monitor.store import mentions as mention_store
from monitor.store import sources as source_store
from sources.base import FetchResult

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "language"),
    [
        ("Acme Cloud की सेवा बहुत खराब है, रिफंड कब मिलेगा?", "hi"),  # Latin brand name inside
        ("অ্যাকমি ক্লাউডের সেবা খুবই খারাপ, টাকা ফেরত চাই", "bn"),
        ("سرویس اکمی کلاود خیلی بد است و پولم را می‌خواهم", "fa"),
        ("گوشي خوبيه ولي باطريش ضعيفه", "fa"),  # Persian typed on an Arabic keyboard
        ("الخدمة سيئة جدا ولم يتم حل المشكلة حتى الآن", "ar"),
        ("ایکمی کلاؤڈ کی سروس بہت خراب ہے", "ur"),
        ("Acme Cloud has been down for three hours", "en"),
        ("Acme Cloud est en panne depuis trois heures", "fr"),
        ("Acme Cloud ist seit drei Stunden ausgefallen", "de"),
        ("Облако Acme не работает уже три часа", "ru"),
        ("Η υπηρεσία είναι χάλια", "el"),
        ("アクメのサービスが止まった", "ja"),
        ("@acmecloud https://acme.example/refunds/english/words/here सेवा खराब है", "hi"),
    ],
)
def test_detects_languages(text: str, language: str) -> None:
    assert detect_language(text) == language


@pytest.mark.parametrize(
    "text",
    [
        "",
        "🔥🔥🔥",
        "acme down",  # too short to tell
        "yaar acme cloud phir se down hai",  # romanised Hindi: no confident answer
        "اکمی",  # one word in ی/ک: Persian or Urdu
        "اکمی کلاود",
        "@acmecloud #fail https://acme.example/status",
    ],
)
def test_too_short_or_unclear_is_empty_not_a_guess(text: str) -> None:
    assert detect_language(text) == ""


def test_platform_hint_fills_in_but_never_overrides_the_script() -> None:
    assert detect_language("lol", hint="en") == "en"
    assert detect_language("🔥🔥", hint="pt-BR") == "pt"
    assert detect_language("एक्मे क्लाउड की सेवा खराब है", hint="en") == "hi"
    assert detect_language("Acme Cloud has been down for three hours", hint="en") == "en"


def test_latin_detector_keeps_only_the_configured_languages() -> None:
    esperanto = "La kato dormas sur la tablo kaj la hundo ludas en la ĝardeno hodiaŭ."
    assert _classify(esperanto)[0] == "eo" and "eo" not in LANGID_LANGUAGES
    assert detect_language(esperanto) == ""  # outside the configured set: no guess
    assert detect_language("Le service client ne répond jamais à mes messages.") == "fr"


async def test_language_is_stored_per_mention_and_filters_watchlists(
    make_config: Callable[..., Config], sqlite_url: str
) -> None:
    config = make_config(
        watchlists=[
            {"name": "south-asia", "query": "acme OR एक्मे OR অ্যাকমি", "languages": ["hi", "bn"]},
            {"name": "persian", "query": "اکمی", "languages": ["fa"]},
            {"name": "everything", "query": "acme OR اکمی"},
        ]
    )
    items = [
        Mention("rss:hi", "https://x.test/hi", text="Acme की सेवा बहुत खराब है, रिफंड कब मिलेगा"),
        Mention("rss:bn", "https://x.test/bn", text="অ্যাকমি সেবা খুবই খারাপ, টাকা ফেরত চাই"),
        Mention("rss:fa", "https://x.test/fa", text="سرویس اکمی خیلی بد است و پولم را می‌خواهم"),
        Mention("rss:en", "https://x.test/en", text="Acme has been down for three hours again"),
        Mention("rss:xx", "https://x.test/xx", text="acme!!"),
    ]
    store = await Store.open(sqlite_url)
    try:
        async with store.begin() as connection:
            await source_store.ensure(connection, "blog", "rss", NOW)
        await Pipeline(store, config).ingest(
            "blog", FetchResult(items), first_run=False, next_check_at=NOW + timedelta(1), now=NOW
        )
        async with store.read() as connection:
            rows = await mention_store.list_mentions(connection)
    finally:
        await store.dispose()
    stored = {row["source_key"]: (row["language"], sorted(row["watchlists"])) for row in rows}
    assert stored == {
        "rss:hi": ("hi", ["everything", "south-asia"]),
        "rss:bn": ("bn", ["south-asia"]),
        "rss:fa": ("fa", ["everything", "persian"]),
        "rss:en": ("en", ["everything"]),
        "rss:xx": ("", ["everything", "south-asia"]),  # unknown language is not filtered out
    }
