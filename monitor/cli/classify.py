"""`monitor classify` (JSON Lines in, judgements out), `monitor correct`, `monitor train`."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from monitor.classify import Classifier
from monitor.classify.base import ClassifierError
from monitor.classify.corrections import CorrectionError, record_correction, sentiment_examples
from monitor.cli.common import CliError, Command, actor, config_path, load, run_async, with_store
from monitor.config import Config
from monitor.pipeline import brand_handles, is_tagged
from monitor.store import Store


def _optional_config(args: argparse.Namespace) -> Config | None:
    """`classify` works without a config file (default backends) unless one is named."""
    if args.config or os.environ.get("MONITOR_CONFIG") or Path(config_path(args)).is_file():
        return load(args)
    return None


def _classify_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--tagged",
        action="store_true",
        help="treat every text as tagging the brand (without it, a text is tagged when it "
        "@-mentions one of the config's brand.accounts, as in the daemon)",
    )


def judge_line(
    classifier: Classifier, line: str, tagged: bool, handles: Sequence[str] = ()
) -> dict[str, Any]:
    """One input line → one output object; a bad line gives an object with `error`.

    ``tagged`` is the line's own ``"tagged"`` if it has one, else True with ``--tagged``,
    else whether the text @-mentions one of the brand's ``handles`` (the daemon's rule).
    """
    try:
        item = json.loads(line)
    except ValueError as exc:
        return {"error": f"not JSON: {exc}"}
    if not isinstance(item, dict) or not isinstance(item.get("text"), str):
        return {"error": 'each line must be an object with a string "text"'}
    language = item.get("lang")
    if language is not None and not isinstance(language, str):
        return {"error": '"lang" must be a string such as "en", "hi", "bn" or "fa"'}
    given = item.get("tagged")
    if given is not None and not isinstance(given, bool):
        return {"error": '"tagged" must be true or false'}
    if given is None:
        given = tagged or is_tagged(item["text"], handles)
    judgement = classifier.judge(item["text"], language.lower() if language else None, tagged=given)
    sentiment = judgement.sentiment
    result: dict[str, Any] = {
        "sentiment": sentiment.label,
        "scores": sentiment.as_dict(),
        "language": judgement.language,
        "needs_reply": judgement.needs_reply,
        "tagged": given,
        "backend": sentiment.backend,
    }
    if "id" in item:
        result = {"id": item["id"], **result}
    return result


def _classify(args: argparse.Namespace) -> int:
    config = _optional_config(args)
    try:
        classifier = Classifier.from_config(config, strict=True) if config else Classifier()
    except ClassifierError as exc:
        raise CliError(str(exc), exit_code=2) from None
    handles = brand_handles(config) if config else []
    out = sys.stdout
    for number, line in enumerate(sys.stdin, 1):
        if not line.strip():
            result: dict[str, Any] = {"error": "empty line"}
        else:
            result = judge_line(classifier, line, args.tagged, handles)
        if "error" in result:
            result["line"] = number
        out.write(json.dumps(result, ensure_ascii=False) + "\n")
        out.flush()
    return 0


def _correct_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("id", type=int, help="mention id (see `monitor mentions`)")
    parser.add_argument(
        "--sentiment", choices=("negative", "neutral", "positive"), help="the right sentiment"
    )
    parser.add_argument(
        "--needs-reply", choices=("yes", "no"), help="whether the mention needs a reply"
    )


def _correct(args: argparse.Namespace) -> int:
    changes = [
        (field, value)
        for field, value in (("sentiment", args.sentiment), ("needs_reply", args.needs_reply))
        if value is not None
    ]
    if not changes:
        raise CliError("monitor correct: give --sentiment and/or --needs-reply", exit_code=2)
    config = load(args)
    who = actor()

    async def action(store: Store) -> list[dict[str, Any]]:
        now = datetime.now(UTC)
        async with store.begin() as connection:
            try:
                return [
                    await record_correction(connection, args.id, field, value, who, now)
                    for field, value in changes
                ]
            except CorrectionError as exc:
                raise CliError(f"monitor correct: {exc}") from None

    for change in run_async(with_store(config, action)):
        print(f"mention {args.id}: {change['field']} {change['from']} → {change['to']}")
    return 0


def _train_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--output", help="model file (default: classify.trained_model, else next to the database)"
    )


def _train(args: argparse.Namespace) -> int:
    from monitor.classify import trained

    config = load(args)
    settings = config.classify

    async def action(store: Store) -> list[Any]:
        async with store.read() as connection:
            return await sentiment_examples(connection)

    examples = run_async(with_store(config, action))
    # What the router gives without a trained model: the bar each trained model must clear.
    default = Classifier.from_config(config, use_trained=False)
    models, info, skipped = trained.train_all(
        [(e.text, e.language, e.label) for e in examples],
        min_corrections=settings.min_corrections,
        min_per_class=settings.min_per_class,
        baseline=lambda text, language: default.sentiment(text, language).label,
    )
    for language, reason in skipped.items():
        print(f"{language}: not trained — {reason}")
    if not info:
        print(f"no language has enough corrections yet ({len(examples)} in total); nothing written")
        return 0
    path = Path(args.output) if args.output else settings.trained_model_path(config.database)
    try:
        trained.save(path, models, info)
    except OSError as exc:
        raise CliError(f"monitor train: cannot write {path}: {exc}") from None
    for language, details in info.items():
        cv = details["cv"]
        print(
            f"{language}: trained on {details['examples']} corrections {details['per_class']}; "
            f"cross-validated in {cv['folds']} folds: trained "
            f"{_scores(cv['trained'])} vs default {_scores(cv['default'])}"
        )
        if language in models:
            print(f"{language}: the router will prefer the trained model — {cv['reason']}")
        else:
            print(f"{language}: keeping the default backend — {cv['reason']}")
    print(f"wrote {path}; the daemon picks it up within a minute")
    return 0


def _scores(scores: dict[str, float]) -> str:
    return (
        f"negative P {scores['negative_precision']:.2f} F1 {scores['negative_f1']:.2f}, "
        f"macro-F1 {scores['macro_f1']:.2f}"
    )


COMMANDS = {
    "classify": Command(
        "judge JSON Lines from stdin ({'text': ..., 'lang': optional}); one JSON object per line",
        _classify_arguments,
        _classify,
    ),
    "correct": Command(
        "correct a mention's sentiment or needs-reply (stored, logged, learnt from)",
        _correct_arguments,
        _correct,
    ),
    "train": Command(
        "fit the per-deployment sentiment model from corrections", _train_arguments, _train
    ),
}
