"""Interfaces for sentiment backends and the judgement the pipeline stores."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import ClassVar

LABELS = ("negative", "neutral", "positive")


@dataclass(frozen=True, slots=True)
class SentimentResult:
    negative: float
    neutral: float
    positive: float
    backend: str  # "name/version"

    @property
    def label(self) -> str:
        scores = {"negative": self.negative, "neutral": self.neutral, "positive": self.positive}
        return max(scores, key=scores.__getitem__)

    @property
    def confidence(self) -> float:
        return max(self.negative, self.neutral, self.positive)

    def as_dict(self) -> dict[str, float]:
        return {
            "negative": round(self.negative, 4),
            "neutral": round(self.neutral, 4),
            "positive": round(self.positive, 4),
        }


@dataclass(frozen=True, slots=True)
class Judgement:
    language: str
    sentiment: SentimentResult
    needs_reply: bool


class SentimentBackend(ABC):
    name: ClassVar[str]
    version: ClassVar[str]
    # ISO 639-1 codes this backend is good at; the router sends other languages elsewhere.
    languages: ClassVar[frozenset[str]]

    @abstractmethod
    def score(self, text: str, language: str) -> SentimentResult: ...

    @property
    def label(self) -> str:
        return f"{self.name}/{self.version}"


def from_compound(
    compound: float, backend: str, negative_at: float = -0.05, positive_at: float = 0.05
) -> SentimentResult:
    """Three probabilities from a compound polarity in [-1, 1]; the label flips to negative
    at ``negative_at`` and to positive at ``positive_at`` (each backend tunes its own)."""
    strength = min(abs(compound), 1.0)
    if compound <= negative_at:
        negative = 0.5 + strength / 2
        rest = 1.0 - negative
        return SentimentResult(negative, rest * 0.8, rest * 0.2, backend)
    if compound >= positive_at:
        positive = 0.5 + strength / 2
        rest = 1.0 - positive
        return SentimentResult(rest * 0.2, rest * 0.8, positive, backend)
    # Neutral band: neutral stays the largest, the lean shows in the other two.
    lean_negative = min(-compound / abs(negative_at), 1.0) if compound < 0 and negative_at else 0.0
    lean_positive = min(compound / positive_at, 1.0) if compound > 0 and positive_at else 0.0
    negative = 0.2 + 0.15 * lean_negative
    positive = 0.2 + 0.15 * lean_positive
    return SentimentResult(negative, 1.0 - negative - positive, positive, backend)


def neutral(backend: str, confidence: float = 0.5) -> SentimentResult:
    """Unknown language or nothing to go on: neutral with low confidence, never an alarm."""
    rest = (1.0 - confidence) / 2
    return SentimentResult(rest, confidence, rest, backend)


class ClassifierError(Exception):
    """A classifier that cannot be built as configured; the message says what to fix."""
