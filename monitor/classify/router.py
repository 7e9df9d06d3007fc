"""Routes each text to the sentiment backend for its language.

Order of preference for a language: a model trained on this deployment's corrections
(where `monitor train` found it better by cross-validation and it learnt from enough of
them), then the configured backend, then the default backend for that language; a language nobody knows gets a neutral judgement whose
scores only lean with its emoji — never an alarm.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from monitor.classify.base import (
    ClassifierError,
    Judgement,
    SentimentBackend,
    SentimentResult,
    neutral,
)
from monitor.classify.emoji import emoji_valences
from monitor.classify.needs_reply import needs_reply
from monitor.language import detect_language

if TYPE_CHECKING:
    from monitor.classify.learned import TrainedModels
    from monitor.config import Config

log = logging.getLogger(__name__)

UNKNOWN_LANGUAGE = "none"


def default_backends() -> list[SentimentBackend]:
    from monitor.classify.lexicon_backend import LexiconBackend
    from monitor.classify.vader_en import VaderBackend

    return [VaderBackend(), LexiconBackend()]


class Classifier:
    def __init__(
        self,
        backends: list[SentimentBackend] | None = None,
        *,
        trained: TrainedModels | None = None,
    ) -> None:
        self.backends = backends if backends is not None else default_backends()
        self.trained = trained
        self._by_language: dict[str, SentimentBackend] = {}
        for backend in self.backends:
            for language in backend.languages:
                self._by_language.setdefault(language, backend)

    @classmethod
    def from_config(
        cls, config: Config, *, strict: bool = False, use_trained: bool = True
    ) -> Classifier:
        """The classifier a deployment asked for in `classify:`.

        A transformer that cannot be loaded raises ``ClassifierError`` when ``strict``;
        the daemon (not strict) logs the error and keeps running on the default backends.
        ``use_trained=False`` leaves out the trained model: what `monitor train` compares with.
        """
        from monitor.classify.learned import TrainedModels

        settings = config.classify
        backends: list[SentimentBackend] = []
        if settings.backend == "transformer":
            from monitor.classify.transformer import TransformerBackend

            try:
                backends.append(TransformerBackend.from_config(settings.transformer))
            except ClassifierError as exc:
                if strict:
                    raise
                log.error("%s; using the default backends until this is fixed", exc)
        backends += default_backends()
        if not use_trained:
            return cls(backends)
        trained = TrainedModels(
            settings.trained_model_path(config.database),
            min_corrections=settings.min_corrections,
            min_per_class=settings.min_per_class,
        )
        return cls(backends, trained=trained)

    def backend_for(self, language: str) -> SentimentBackend | None:
        return self._by_language.get(language)

    def sentiment(self, text: str, language: str) -> SentimentResult:
        if self.trained is not None and (model := self.trained.for_language(language)):
            return model.score(text, language)
        backend = self._by_language.get(language)
        if backend is None:
            return unknown_language(text)
        return backend.score(text, language)

    def judge(self, text: str, language: str | None = None, *, tagged: bool = False) -> Judgement:
        language = language if language is not None else detect_language(text)
        sentiment = self.sentiment(text, language)
        negative = sentiment.label == "negative"
        return Judgement(
            language=language,
            sentiment=sentiment,
            needs_reply=needs_reply(text, language, tagged=tagged, negative=negative),
        )


def unknown_language(text: str) -> SentimentResult:
    """Neutral, low confidence; the other two scores lean with the emoji, if any."""
    total = sum(emoji_valences(text))
    if not total:
        return neutral(UNKNOWN_LANGUAGE, 0.5)
    lean = min(abs(total) / 8, 1.0) * 0.1  # at most 0.35 against neutral's 0.5
    toward, away = 0.25 + lean, 0.25 - lean
    negative, positive = (away, toward) if total > 0 else (toward, away)
    return SentimentResult(negative, 0.5, positive, "emoji")
