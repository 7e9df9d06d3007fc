"""Finds and reloads the model `monitor train` wrote; numpy is imported only when one exists.

A language's trained model is used only where `monitor train` found it better than the
default backend by cross-validation (``crossval.verdict``) and it learnt from enough
corrections; every other language keeps the default backend.
"""

from __future__ import annotations

import logging
import math
import time
from pathlib import Path
from typing import TYPE_CHECKING

from monitor.classify.base import LABELS

if TYPE_CHECKING:
    from monitor.classify.trained import TrainedBackend

log = logging.getLogger(__name__)

# How often (seconds) the router looks whether `monitor train` wrote a new model file.
RELOAD_CHECK_S = 30.0


class TrainedModels:
    """The model file next to the database, reloaded when `monitor train` replaces it."""

    def __init__(self, path: Path, *, min_corrections: int = 50, min_per_class: int = 10) -> None:
        self.path = path
        self.min_corrections = min_corrections
        self.min_per_class = min_per_class
        self._backends: dict[str, TrainedBackend] = {}
        self._mtime: float | None = None
        self._checked_at = -math.inf

    def for_language(self, language: str) -> TrainedBackend | None:
        now = time.monotonic()
        if now - self._checked_at >= RELOAD_CHECK_S:
            self._checked_at = now
            self._refresh()
        return self._backends.get(language)

    def _refresh(self) -> None:
        try:
            mtime = self.path.stat().st_mtime
        except OSError:
            self._backends, self._mtime = {}, None
            return
        if mtime == self._mtime:
            return
        self._mtime = mtime
        try:
            from monitor.classify.trained import TrainedBackend, load

            models, meta = load(self.path)
        except (OSError, ValueError, KeyError) as exc:
            log.error(
                "classify: cannot read trained model %s (%s) — run `monitor train` again",
                self.path,
                exc,
            )
            self._backends = {}
            return
        self._backends = {}
        for language, info in meta["languages"].items():
            cv = info.get("cv", {})
            if language not in models or not cv.get("preferred"):
                log.info(
                    "classify: %s keeps the default backend: the trained model lost the "
                    "cross-validation (%s)",
                    language,
                    cv.get("reason", "no scores"),
                )
            elif self.enough(info.get("per_class", {})):
                self._backends[language] = TrainedBackend(models[language], int(info["examples"]))
        if self._backends:
            log.info("classify: trained model in use for %s", ", ".join(sorted(self._backends)))

    def enough(self, per_class: dict[str, int]) -> bool:
        counts = [int(per_class.get(label, 0)) for label in LABELS]
        return sum(counts) >= self.min_corrections and min(counts) >= self.min_per_class
