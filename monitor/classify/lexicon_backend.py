"""Hindi, Bengali and Persian sentiment from the project's own lexicons (see lexicon.py)."""

from __future__ import annotations

from typing import ClassVar

from monitor.classify.base import SentimentBackend, SentimentResult, from_compound, neutral
from monitor.classify.languages import rules_for
from monitor.classify.lexicon import LanguageRules, score_text

# Compound thresholds per language (label negative at or below, positive at or above).
# Chosen on the development sets named in bench/sentiment_eval.py to keep the negative
# class's precision above its floor, so the scores reported on those sets are in-sample;
# the word lists themselves are not derived from them.
THRESHOLDS: dict[str, tuple[float, float]] = {
    "hi": (-0.2, 0.3),
    "bn": (-0.2, 0.3),
    "fa": (-0.4, 0.3),
}


class LexiconBackend(SentimentBackend):
    name: ClassVar[str] = "lexicon"
    version: ClassVar[str] = "1"
    languages: ClassVar[frozenset[str]] = frozenset(THRESHOLDS)

    def __init__(self) -> None:
        self._rules: dict[str, LanguageRules] = {code: rules_for(code) for code in THRESHOLDS}

    def compound(self, text: str, language: str) -> float | None:
        rules = self._rules.get(language)
        if rules is None:
            return None
        return score_text(text, rules).compound

    def score(self, text: str, language: str) -> SentimentResult:
        compound = self.compound(text, language)
        if compound is None:
            return neutral(self.label, 0.4)
        negative_at, positive_at = THRESHOLDS[language]
        return from_compound(compound, f"{self.label}-{language}", negative_at, positive_at)
