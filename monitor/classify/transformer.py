"""Opt-in multilingual transformer sentiment, run with onnxruntime + tokenizers.

Install with ``pip install .[transformer]``. The model is a directory the user prepares
once (README, "Sentiment and needs-reply"): ``model.onnx`` (inputs ``input_ids`` and
``attention_mask``, optionally ``token_type_ids``; first output = logits per class),
``tokenizer.json`` (Hugging Face tokenizers format) and optionally ``config.json`` whose
``id2label`` names the classes. Nothing is ever downloaded at run time.

The backend's label (stored with every judgement) names the model and, when its metadata
has one, its version: ``transformer/<name>@<version>`` (see ``_identity``), so judgements
made by two models kept in the same directory can be told apart.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any, ClassVar

from monitor.classify.base import ClassifierError, SentimentBackend, SentimentResult
from monitor.classify.settings import TransformerConfig

# Label names seen in sentiment models' config.json, mapped to ours.
_LABEL_WORDS = {"neg": "negative", "neu": "neutral", "pos": "positive"}
# mentions.sentiment_backend holds at most this many characters.
LABEL_MAX_CHARS = 80


class TransformerBackend(SentimentBackend):
    name: ClassVar[str] = "transformer"
    version: ClassVar[str] = "1"
    languages: frozenset[str]  # type: ignore[misc]  # per instance, from the config

    def __init__(
        self, model_dir: Path, languages: list[str], *, max_tokens: int = 256, threads: int = 1
    ) -> None:
        try:
            import onnxruntime
            from tokenizers import Tokenizer
        except ImportError as exc:
            raise ClassifierError(
                f"classify: the transformer backend needs onnxruntime and tokenizers ({exc}) "
                "— install with `pip install .[transformer]`"
            ) from None
        model_path, tokenizer_path = model_dir / "model.onnx", model_dir / "tokenizer.json"
        for path in (model_path, tokenizer_path):
            if not path.is_file():
                raise ClassifierError(
                    f"classify: {path} not found — classify.transformer.model_dir must hold "
                    "model.onnx and tokenizer.json (see README, 'Sentiment and needs-reply')"
                )
        self.languages = frozenset(languages)
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        try:
            self._session = onnxruntime.InferenceSession(
                str(model_path), options, providers=["CPUExecutionProvider"]
            )
            self._tokenizer = Tokenizer.from_file(str(tokenizer_path))
        except Exception as exc:
            raise ClassifierError(
                f"classify: cannot load the transformer model in {model_dir}: {exc}"
            ) from None
        self._tokenizer.enable_truncation(max_length=max_tokens)
        self._tokenizer.no_padding()
        self._inputs = {i.name for i in self._session.get_inputs()}
        if "input_ids" not in self._inputs:
            raise ClassifierError(
                f"classify: {model_path} has no 'input_ids' input (has {sorted(self._inputs)})"
            )
        self._order = _label_order(model_dir / "config.json")
        self.model_name, self.model_version = _identity(self._session, model_dir)
        self._lock = threading.Lock()  # the pipeline may classify from a worker thread

    @classmethod
    def from_config(cls, config: TransformerConfig) -> TransformerBackend:
        if not config.model_dir:
            raise ClassifierError(
                "classify.backend is 'transformer' but classify.transformer.model_dir is empty "
                "— set it to the directory holding model.onnx and tokenizer.json"
            )
        return cls(
            Path(config.model_dir).expanduser(),
            config.languages,
            max_tokens=config.max_tokens,
            threads=config.threads,
        )

    @property
    def label(self) -> str:
        model = f"{self.model_name}@{self.model_version}" if self.model_version else self.model_name
        return f"{self.name}/{model}"[:LABEL_MAX_CHARS]

    def probabilities(self, text: str) -> list[float]:
        import numpy as np

        encoding = self._tokenizer.encode(text or " ")
        feed: dict[str, Any] = {"input_ids": np.array([encoding.ids], dtype=np.int64)}
        if "attention_mask" in self._inputs:
            feed["attention_mask"] = np.array([encoding.attention_mask], dtype=np.int64)
        if "token_type_ids" in self._inputs:
            feed["token_type_ids"] = np.array([encoding.type_ids], dtype=np.int64)
        with self._lock:
            logits = np.asarray(self._session.run(None, feed)[0], dtype=np.float64)[0]
        if logits.shape != (len(self._order),):
            raise ClassifierError(
                f"classify: the transformer returned {logits.shape[0]} scores, "
                f"config.json names {len(self._order)} labels"
            )
        exp = np.exp(logits - logits.max())
        probs = exp / exp.sum()
        by_label = dict.fromkeys(("negative", "neutral", "positive"), 0.0)
        for label, p in zip(self._order, probs, strict=True):
            by_label[label] += float(p)
        return [by_label["negative"], by_label["neutral"], by_label["positive"]]

    def score(self, text: str, language: str) -> SentimentResult:
        negative, neutral, positive = self.probabilities(text)
        return SentimentResult(negative, neutral, positive, self.label)


def _label_order(config_path: Path) -> list[str]:
    """Our label for each model output, from config.json's id2label; default neg/neu/pos."""
    if not config_path.is_file():
        return ["negative", "neutral", "positive"]
    try:
        id2label = json.loads(config_path.read_text("utf-8"))["id2label"]
        names = [str(id2label[str(i)]).casefold() for i in range(len(id2label))]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ClassifierError(f"classify: {config_path}: no usable id2label ({exc})") from None
    order = []
    for name in names:
        label = next((ours for key, ours in _LABEL_WORDS.items() if name.startswith(key)), None)
        if label is None:
            raise ClassifierError(
                f"classify: {config_path}: label {name!r} is not negative/neutral/positive"
            )
        order.append(label)
    return order


def _identity(session: Any, model_dir: Path) -> tuple[str, str]:
    """(name, version) of the model, from its own metadata where it has any.

    Name: ONNX metadata ``name``, else config.json's ``_name_or_path`` (last part, as Hugging
    Face writes it), else the directory's name. Version: ONNX metadata ``version``, else the
    ONNX ``model_version`` when set (it defaults to 0), else config.json's ``version``, else
    "" — a directory name says nothing about which weights are in it.
    """
    meta = session.get_modelmeta()
    custom = dict(meta.custom_metadata_map or {})
    config: dict[str, Any] = {}
    config_path = model_dir / "config.json"
    if config_path.is_file():
        try:
            loaded = json.loads(config_path.read_text("utf-8"))
        except (OSError, ValueError):
            loaded = {}  # _label_order has already said what is wrong with it
        config = loaded if isinstance(loaded, dict) else {}
    name = str(custom.get("name") or config.get("_name_or_path") or "").rstrip("/")
    name = name.rsplit("/", 1)[-1] or model_dir.name
    version = custom.get("version") or (str(meta.version) if meta.version else "")
    version = version or str(config.get("version") or "")
    return name, version
