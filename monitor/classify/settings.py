"""The `classify:` config section (kept here so the classifier owns its settings)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.engine import make_url


class TransformerConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    # Directory holding model.onnx and tokenizer.json (and optionally config.json with
    # id2label); see README "Sentiment and needs-reply" for how to make one.
    model_dir: str = ""
    # Languages sent to the transformer; others keep the default backends.
    languages: list[str] = Field(default_factory=lambda: ["en", "hi", "bn", "fa"])
    # Longest input in tokens; longer texts are cut (head kept).
    max_tokens: int = Field(default=256, ge=8, le=4096)
    # CPU threads onnxruntime may use.
    threads: int = Field(default=1, ge=1, le=64)


class ClassifyConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    # Sentiment backend: "default" (VADER + complaint cues for English, the project's own
    # lexicons for Hindi, Bengali and Persian) or "transformer" (ONNX model, opt-in extra).
    backend: Literal["default", "transformer"] = "default"
    # Settings of the transformer backend (used when backend is "transformer").
    transformer: TransformerConfig = Field(default_factory=TransformerConfig)
    # File written by `monitor train`; empty = sentiment-model.npz next to the SQLite
    # database (./data/ for PostgreSQL).
    trained_model: str = ""
    # A language's trained model is used only once it learnt from this many corrections and
    # `monitor train` found it better than the default backend by cross-validation …
    min_corrections: int = Field(default=50, ge=1)
    # … with at least this many of every class (negative, neutral, positive).
    min_per_class: int = Field(default=10, ge=1)

    def trained_model_path(self, database: str) -> Path:
        if self.trained_model:
            return Path(self.trained_model)
        try:
            url = make_url(database)
        except Exception:
            return Path("data") / "sentiment-model.npz"
        if url.get_backend_name() == "sqlite" and url.database and url.database != ":memory:":
            return Path(url.database).parent / "sentiment-model.npz"
        return Path("data") / "sentiment-model.npz"
