"""A per-deployment sentiment model learnt from people's corrections (`monitor train`).

Features are hashed character 2–4-grams and words of the folded text (no vocabulary to
store, any script); the model is multinomial logistic regression, one per language. At
run time it needs numpy only. `monitor train` cross-validates each language's model on the
corrections against the backend it would replace (``crossval``) and keeps the weights only
where it wins; the router prefers such a model once it learnt from ``min_corrections``
corrections with at least ``min_per_class`` of every class (``learned.TrainedModels``).
"""

from __future__ import annotations

import json
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from monitor.classify import crossval
from monitor.classify.base import LABELS, SentimentBackend, SentimentResult
from monitor.classify.text import fold
from monitor.normalize import token_texts

# 2: cross-validation scores per language; weights only for languages that won.
FORMAT_VERSION = 2
HASH_DIM = 2**17  # 131072 features × 3 classes × 4 bytes ≈ 1.5 MB per language
NGRAM_SIZES = (2, 3, 4)


def features(text: str, language: str, dim: int = HASH_DIM) -> tuple[np.ndarray, np.ndarray]:
    """Sparse feature vector: (indices, L2-normalised log counts)."""
    folded = " ".join(token_texts(fold(text, language)))
    counts: dict[int, int] = {}
    padded = f" {folded} "
    for n in NGRAM_SIZES:
        for i in range(len(padded) - n + 1):
            key = zlib.crc32(f"{n}:{padded[i : i + n]}".encode()) % dim
            counts[key] = counts.get(key, 0) + 1
    for word in folded.split():
        key = zlib.crc32(f"w:{word}".encode()) % dim
        counts[key] = counts.get(key, 0) + 1
    if not counts:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32)
    indices = np.fromiter(counts.keys(), dtype=np.int64, count=len(counts))
    values = np.log1p(np.fromiter(counts.values(), dtype=np.float32, count=len(counts)))
    values /= float(np.linalg.norm(values)) or 1.0
    return indices, values


@dataclass(slots=True)
class LanguageModel:
    weights: np.ndarray  # (dim, 3) float32
    bias: np.ndarray  # (3,) float32

    def probabilities(self, text: str, language: str) -> np.ndarray:
        indices, values = features(text, language, self.weights.shape[0])
        logits = self.bias + values @ self.weights[indices]
        logits = logits - logits.max()
        exp = np.exp(logits)
        return exp / exp.sum()

    def label(self, text: str, language: str) -> str:
        return LABELS[int(self.probabilities(text, language).argmax())]


class TrainedBackend(SentimentBackend):
    name: ClassVar[str] = "trained"
    version: ClassVar[str] = str(FORMAT_VERSION)
    languages: ClassVar[frozenset[str]] = frozenset()

    def __init__(self, model: LanguageModel, examples: int) -> None:
        self.model = model
        self.examples = examples

    def score(self, text: str, language: str) -> SentimentResult:
        p = self.model.probabilities(text, language)
        return SentimentResult(
            float(p[0]), float(p[1]), float(p[2]), f"{self.label}-{language}/{self.examples}"
        )


def train_language(
    texts: Sequence[str],
    labels: Sequence[str],
    language: str,
    *,
    dim: int = HASH_DIM,
    epochs: int = 300,
    l2: float = 1e-4,
    learning_rate: float = 0.5,
) -> LanguageModel:
    """Fit multinomial logistic regression by full-batch Adam on sparse features."""
    rows = [features(text, language, dim) for text in texts]
    lengths = np.array([len(r[0]) for r in rows], dtype=np.int64)
    indices = np.concatenate([r[0] for r in rows]) if rows else np.zeros(0, np.int64)
    values = np.concatenate([r[1] for r in rows]).astype(np.float32)
    doc_of = np.repeat(np.arange(len(rows)), lengths)
    target = np.zeros((len(rows), 3), dtype=np.float32)
    target[np.arange(len(rows)), [LABELS.index(label) for label in labels]] = 1.0
    # Balanced class weights: a deployment corrects mostly one kind of mistake.
    class_weight = target.sum(axis=0)
    class_weight = np.where(class_weight > 0, len(rows) / (3 * np.maximum(class_weight, 1)), 0.0)
    sample_weight = (target * class_weight).sum(axis=1, keepdims=True) / len(rows)

    used, inverse = np.unique(indices, return_inverse=True)  # train only touched features
    weights = np.zeros((len(used), 3), dtype=np.float32)
    bias = np.zeros(3, dtype=np.float32)
    moments = [np.zeros_like(weights), np.zeros_like(weights), np.zeros(3), np.zeros(3)]
    beta1, beta2, eps = 0.9, 0.999, 1e-8
    for step in range(1, epochs + 1):
        contributions = values[:, None] * weights[inverse]
        logits = np.zeros((len(rows), 3), dtype=np.float32)
        np.add.at(logits, doc_of, contributions)
        logits += bias
        logits -= logits.max(axis=1, keepdims=True)
        probs = np.exp(logits)
        probs /= probs.sum(axis=1, keepdims=True)
        delta = (probs - target) * sample_weight
        grad_w = np.zeros_like(weights)
        np.add.at(grad_w, inverse, values[:, None] * delta[doc_of])
        grad_w += l2 * weights
        grad_b = delta.sum(axis=0)
        for param, grad, m, v in ((weights, grad_w, 0, 1), (bias, grad_b, 2, 3)):
            moments[m] = beta1 * moments[m] + (1 - beta1) * grad
            moments[v] = beta2 * moments[v] + (1 - beta2) * grad * grad
            m_hat = moments[m] / (1 - beta1**step)
            v_hat = moments[v] / (1 - beta2**step)
            param -= (learning_rate * m_hat / (np.sqrt(v_hat) + eps)).astype(np.float32)
    full = np.zeros((dim, 3), dtype=np.float32)
    full[used] = weights
    return LanguageModel(full, bias.astype(np.float32))


def save(path: Path, models: dict[str, LanguageModel], info: dict[str, dict[str, Any]]) -> None:
    """Write atomically, so a running daemon never reads half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    meta = {
        "format": FORMAT_VERSION,
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "languages": info,
    }
    arrays: dict[str, Any] = {"meta": np.array(json.dumps(meta))}
    for language, model in models.items():
        arrays[f"{language}.weights"] = model.weights
        arrays[f"{language}.bias"] = model.bias
    temporary = path.with_name(path.name + ".tmp")
    with open(temporary, "wb") as handle:
        np.savez_compressed(handle, **arrays)
    temporary.replace(path)


def load(path: Path) -> tuple[dict[str, LanguageModel], dict[str, Any]]:
    with np.load(path, allow_pickle=False) as data:
        meta = json.loads(str(data["meta"]))
        if meta.get("format") != FORMAT_VERSION:
            raise ValueError(f"unsupported model format {meta.get('format')!r}")
        models = {
            language: LanguageModel(data[f"{language}.weights"], data[f"{language}.bias"])
            for language in meta["languages"]
            if f"{language}.weights" in data.files
        }
    return models, meta


def train_all(
    examples: Sequence[tuple[str, str, str]],
    *,
    min_corrections: int,
    min_per_class: int,
    baseline: Callable[[str, str], str],
) -> tuple[dict[str, LanguageModel], dict[str, dict[str, Any]], dict[str, str]]:
    """Train one model per language that has enough (text, language, label) examples and
    cross-validate it against ``baseline(text, language)``, the label the router would give
    without it.

    Returns (models of the languages where the trained model won, info per evaluated
    language with its ``cv`` verdict and scores, reason per skipped language).
    """
    by_language: dict[str, list[tuple[str, str]]] = {}
    for text, language, label in examples:
        by_language.setdefault(language or "", []).append((text, label))
    models: dict[str, LanguageModel] = {}
    info: dict[str, dict[str, Any]] = {}
    skipped: dict[str, str] = {}
    for language, items in sorted(by_language.items()):
        per_class = {label: sum(1 for _, y in items if y == label) for label in LABELS}
        if not language:
            skipped["(unknown)"] = "language not detected; these corrections are not used"
            continue
        if len(items) < min_corrections or min(per_class.values()) < min_per_class:
            skipped[language] = (
                f"{len(items)} corrections {per_class}; needs {min_corrections} "
                f"with {min_per_class} of each class"
            )
            continue
        texts, labels = [t for t, _ in items], [y for _, y in items]
        judged = evaluate(texts, labels, language, baseline)
        info[language] = {"examples": len(items), "per_class": per_class, "cv": judged.as_dict()}
        if judged.preferred:
            models[language] = train_language(texts, labels, language)
    return models, info, skipped


def evaluate(
    texts: Sequence[str],
    labels: Sequence[str],
    language: str,
    baseline: Callable[[str, str], str],
) -> crossval.Verdict:
    """Cross-validated scores of a model trained on these examples and of the baseline on
    the same examples, and whether the router should prefer the trained model."""

    def fit_and_predict(train: list[int], test: list[int]) -> list[str]:
        model = train_language([texts[i] for i in train], [labels[i] for i in train], language)
        return [model.label(texts[i], language) for i in test]

    folds, predicted = crossval.cross_validated_predictions(texts, labels, fit_and_predict)
    default = [baseline(text, language) for text in texts]
    return crossval.verdict(
        language, folds, crossval.scores(labels, predicted), crossval.scores(labels, default)
    )
