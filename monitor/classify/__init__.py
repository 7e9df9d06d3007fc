"""Judging a mention: sentiment (negative/neutral/positive) and whether it needs a reply.

``Classifier`` routes each text to a ``SentimentBackend`` by language; backends are
registered in ``BACKENDS``.
"""

from __future__ import annotations

from monitor.classify.base import Judgement, SentimentBackend, SentimentResult
from monitor.classify.router import Classifier

__all__ = ["Classifier", "Judgement", "SentimentBackend", "SentimentResult"]
