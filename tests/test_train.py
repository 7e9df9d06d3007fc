"""Corrections are stored with who/when and applied; `monitor train` learns from them,
cross-validates the model against the default backend, and the router prefers it only
where it won and a language has enough examples."""

from __future__ import annotations

import asyncio
import itertools
import logging
import random
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from monitor.classify import Classifier
from monitor.classify.corrections import CorrectionError, record_correction, sentiment_examples
from monitor.classify.crossval import Scores, verdict
from monitor.classify.learned import TrainedModels
from monitor.classify.trained import load, save, train_all
from monitor.cli import main
from monitor.config import Config
from monitor.mention import Mention
from monitor.pipeline import Pipeline
from monitor.store import Store, events
from monitor.store.tables import corrections, mentions
from sources.base import FetchResult
from tests.conftest import base_config_dict
from tests.helpers.process import write_config

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)

# Invented Hindi examples: brand-specific slang a general lexicon does not know
# ("लटका दिया" = left hanging, "झोल" = a mess, "फुल ऑन" = totally) — what a deployment
# teaches the model with its corrections.
SUBJECTS = ["ऐप", "डिलीवरी", "सपोर्ट", "बिलिंग", "अपडेट", "राउटर", "प्लान", "सर्वर"]
NEGATIVE = ["ने फिर लटका दिया", "में फिर झोल है", "का हाल फुल झोल", "ने लटकाया"]
NEUTRAL = ["का नया वर्ज़न आया", "के बारे में लेख", "की कीमत घोषित", "पर चर्चा हुई"]
POSITIVE = ["फुल ऑन झकास", "एकदम चकाचक चला", "फुल ऑन मस्त", "झकास चल रहा"]


def examples(seed: int) -> list[tuple[str, str, str]]:
    rows = []
    for label, endings in (("negative", NEGATIVE), ("neutral", NEUTRAL), ("positive", POSITIVE)):
        for subject, ending in itertools.product(SUBJECTS, endings):
            rows.append((f"एक्मे {subject} {ending}", "hi", label))
    random.Random(seed).shuffle(rows)
    return rows


# Corrections that only confirm the default backend: each polar word occurs once, so a model
# that learns words from examples meets every held-out one for the first time, while VADER
# knows them all. A model trained on these is worse than the default.
KNOWN_POSITIVE = [
    "superb", "excellent", "wonderful", "fantastic", "brilliant", "delightful", "outstanding",
    "marvelous", "terrific", "splendid", "lovely", "awesome", "impressive", "charming",
    "pleasant", "fabulous", "magnificent", "amazing",
]  # fmt: skip
KNOWN_NEGATIVE = [
    "awful", "horrible", "pathetic", "disgusting", "lousy", "miserable", "horrendous",
    "terrible", "nasty", "bad", "poor", "horrid", "crappy", "ugly", "sad", "worst", "useless",
    "worthless",
]  # fmt: skip
PLAIN_NEWS = [
    "published its annual report", "moved its office to Berlin", "hired a new finance chief",
    "opened a region in Osaka", "changed its logo", "held a meeting on Monday",
    "renamed its storage product", "released version 4.2", "listed new job openings",
    "scheduled a conference for May", "updated its terms", "filed a quarterly statement",
    "announced a price list", "answered questions on a podcast", "sponsored a hackathon",
    "published an interview", "set a date for the launch", "posted a changelog",
]  # fmt: skip
PRODUCTS = ["app", "console", "support", "billing", "update", "router", "plan", "server"]


def confirmations() -> list[tuple[str, str, str]]:
    rows = [
        (f"the acme {PRODUCTS[i % 8]} is {word}", "en", label)
        for label, words in (("positive", KNOWN_POSITIVE), ("negative", KNOWN_NEGATIVE))
        for i, word in enumerate(words)
    ]
    return rows + [(f"acme {news}", "en", "neutral") for news in PLAIN_NEWS]


DEFAULT = Classifier()


def default_label(text: str, language: str) -> str:
    return DEFAULT.sentiment(text, language).label


def test_train_all_learns_and_skips_languages_with_too_few() -> None:
    data = examples(1)
    train, held_out = data[:72], data[72:]
    train += [("খুব ভালো", "bn", "positive")] * 5
    models, info, skipped = train_all(
        train, min_corrections=50, min_per_class=10, baseline=default_label
    )
    assert set(models) == {"hi"}
    assert info["hi"]["examples"] == 72
    assert "bn" in skipped and "needs 50" in skipped["bn"]
    model = models["hi"]
    labels = ("negative", "neutral", "positive")
    right = sum(
        labels[int(model.probabilities(text, "hi").argmax())] == label
        for text, _, label in held_out
    )
    assert right / len(held_out) >= 0.8


def test_saved_model_round_trips_and_the_router_prefers_it(tmp_path: Path) -> None:
    models, info, _ = train_all(
        examples(2), min_corrections=50, min_per_class=10, baseline=default_label
    )
    path = tmp_path / "sentiment-model.npz"
    save(path, models, info)
    loaded, meta = load(path)
    assert meta["languages"]["hi"]["examples"] == 96
    assert (loaded["hi"].weights == models["hi"].weights).all()

    text = "एक्मे सपोर्ट ने फिर लटका दिया"
    plain = Classifier()
    assert plain.sentiment(text, "hi").label != "negative"  # the lexicon does not know it
    taught = Classifier(trained=TrainedModels(path, min_corrections=50, min_per_class=10))
    result = taught.sentiment(text, "hi")
    assert result.label == "negative"
    assert result.backend.startswith("trained")
    assert taught.sentiment("great service", "en").backend.startswith("vader")  # others unchanged

    strict = Classifier(trained=TrainedModels(path, min_corrections=500, min_per_class=10))
    assert strict.sentiment(text, "hi").backend.startswith("lexicon")  # not enough yet


def test_a_worse_model_is_not_preferred_and_a_better_one_is(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # Better (hi): slang the lexicon does not know, which the model learns.
    # Worse (en): words VADER knows, each seen once, which the model cannot learn.
    rows = [*confirmations(), *examples(4)]
    models, info, _ = train_all(rows, min_corrections=50, min_per_class=10, baseline=default_label)
    assert set(models) == {"hi"}
    won, lost = info["hi"]["cv"], info["en"]["cv"]
    assert won["preferred"] and won["trained"]["macro_f1"] > won["default"]["macro_f1"]
    assert not lost["preferred"] and lost["trained"]["macro_f1"] < lost["default"]["macro_f1"]
    assert lost["default"]["macro_f1"] == 1.0  # VADER gets every one of them right

    caplog.set_level(logging.INFO, "monitor.classify.learned")
    path = tmp_path / "sentiment-model.npz"
    save(path, models, info)
    _, meta = load(path)
    assert meta["languages"]["en"]["cv"] == lost  # the scores are stored with the model
    classifier = Classifier(trained=TrainedModels(path, min_corrections=50, min_per_class=10))
    assert classifier.sentiment("एक्मे सपोर्ट ने फिर लटका दिया", "hi").backend.startswith("trained")
    assert classifier.sentiment("the acme server is dreadful", "en").backend.startswith("vader")
    assert "en keeps the default backend" in caplog.text


@pytest.mark.parametrize(
    ("trained", "default", "preferred", "reason"),
    [
        ((0.90, 0.80, 0.70), (0.80, 0.70, 0.60), True, "beats the default"),
        ((0.90, 0.80, 0.60), (0.80, 0.70, 0.60), False, "macro-F1 0.60 does not beat"),
        ((0.75, 0.90, 0.80), (0.80, 0.70, 0.60), False, "below the default's 0.80"),
        # On corrections that are all the default's mistakes the default scores 0: a model
        # that beats 0 but would cry wolf is still not used.
        ((0.60, 0.70, 0.50), (0.00, 0.00, 0.00), False, "below the 0.70 floor for hi"),
    ],
)
def test_verdict_needs_higher_macro_f1_no_lower_precision_and_the_floor(
    trained: tuple[float, float, float],
    default: tuple[float, float, float],
    preferred: bool,
    reason: str,
) -> None:
    def scores(precision: float, f1: float, macro: float) -> Scores:
        return Scores(precision, f1, f1, macro)

    judged = verdict("hi", 5, scores(*trained), scores(*default))
    assert judged.preferred is preferred
    assert reason in judged.reason


def test_broken_model_file_is_ignored_with_an_error(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "sentiment-model.npz"
    path.write_bytes(b"not a model")
    classifier = Classifier(trained=TrainedModels(path))
    assert classifier.sentiment("बहुत खराब", "hi").label == "negative"
    assert "run `monitor train` again" in caplog.text


async def seed(config: Config, texts: list[tuple[str, str, str]]) -> list[int]:
    store = await Store.open(config.database)
    try:
        items = [
            Mention(
                source_key=f"rss:{i}",
                url=f"https://blog.example/{i}",
                text=text,
                author=f"a{i}",
                published_at=NOW,
                language_hint=language,
            )
            for i, (text, language, _) in enumerate(texts)
        ]
        await Pipeline(store, config).ingest(
            "blog", FetchResult(mentions=items), first_run=False, next_check_at=NOW, now=NOW
        )
        async with store.read() as connection:
            rows = await connection.execute(select(mentions.c.id).order_by(mentions.c.id))
            return [row.id for row in rows]
    finally:
        await store.dispose()


async def test_record_correction_stores_logs_and_updates(
    database_url: str, make_config: Any
) -> None:
    config = make_config(database=database_url)
    [mention_id] = await seed(config, [("acme cloud is fine I guess", "en", "")])
    store = await Store.open(database_url)
    try:
        async with store.begin() as connection:
            change = await record_correction(
                connection, mention_id, "sentiment", "negative", "slack:U123", NOW
            )
            await record_correction(connection, mention_id, "needs_reply", "yes", "slack:U123", NOW)
            with pytest.raises(CorrectionError, match="no mention with id 999"):
                await record_correction(connection, 999, "sentiment", "negative", "x", NOW)
            with pytest.raises(CorrectionError, match="sentiment must be one of"):
                await record_correction(connection, mention_id, "sentiment", "angry", "x", NOW)
        assert change == {"field": "sentiment", "from": change["from"], "to": "negative"}
        async with store.read() as connection:
            row = (await connection.execute(select(mentions))).one()
            assert (row.sentiment, row.needs_reply) == ("negative", True)
            assert row.sentiment_backend == "corrected:slack:U123"
            stored = (await connection.execute(select(corrections))).all()
            assert [(c.field, c.new_value, c.actor) for c in stored] == [
                ("sentiment", "negative", "slack:U123"),
                ("needs_reply", "true", "slack:U123"),
            ]
            assert stored[0].text and stored[0].language == "en"
            logged = await events.for_mention(connection, mention_id)
            assert [e["kind"] for e in logged].count("corrected") == 2
            assert [e.label for e in await sentiment_examples(connection)] == ["negative"]
    finally:
        await store.dispose()


def test_correct_and_train_commands_end_to_end(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    database = f"sqlite+aiosqlite:///{tmp_path / 'data' / 'monitor.db'}"
    (tmp_path / "data").mkdir()
    data = base_config_dict(database)
    data["watchlists"][0]["query"] = "एक्मे"
    path = write_config(tmp_path / "config.yaml", data)
    config = Config.model_validate(data)
    texts = examples(3)
    ids = asyncio.run(seed(config, texts))
    assert len(ids) == len(texts)

    assert main(["correct", "-c", str(path), str(ids[0])]) == 2  # nothing to correct
    assert main(["correct", "-c", str(path), "424242", "--sentiment", "negative"]) == 1
    capsys.readouterr()
    for mention_id, (_, _, label) in zip(ids, texts, strict=True):
        assert main(["correct", "-c", str(path), str(mention_id), "--sentiment", label]) == 0
    assert f"mention {ids[-1]}: sentiment" in capsys.readouterr().out

    assert main(["train", "-c", str(path)]) == 0
    out = capsys.readouterr().out
    assert "hi: trained on 96 corrections" in out
    assert "cross-validated in 5 folds" in out
    assert "hi: the router will prefer the trained model" in out
    model_file = tmp_path / "data" / "sentiment-model.npz"
    assert model_file.is_file()
    classifier = Classifier.from_config(config)
    result = classifier.sentiment("एक्मे राउटर में फिर झोल है", "hi")
    assert result.backend.startswith("trained") and result.label == "negative"
