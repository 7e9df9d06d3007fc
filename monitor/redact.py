"""Keeping secrets out of everything the daemon prints.

Secrets in the config are ``SecretStr`` (masked by pydantic), except the database URL,
which SQLAlchemy takes as a plain string: ``Config`` shows it through ``safe_url``.
Third-party libraries can still echo a secret in an error message (a URL with a key in
its query string, say); ``SecretFilter`` masks every configured secret in every log
record, whoever wrote it.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

MASK = "***"
# Shorter values are not masked in free text: "abc" would be cut out of ordinary words.
MIN_MASKED_CHARS = 4


def safe_url(url: str) -> str:
    """``url`` with its password masked, for logs and messages."""
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:
        return "(unparseable database URL)"


def url_password(url: str) -> str | None:
    from sqlalchemy.engine import make_url

    try:
        password = make_url(url).password
    except Exception:
        return None
    return str(password) if password else None


class SecretFilter(logging.Filter):
    """Replaces every known secret in a log record's message and traceback with ``***``.

    Installed on the handlers (a filter on the root logger would not see records that
    propagate up from other loggers)."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        super().__init__()
        self.secrets: list[str] = []
        self.add(secrets)

    def add(self, secrets: Iterable[str]) -> None:
        known = set(self.secrets)
        known.update(s for s in secrets if s and len(s) >= MIN_MASKED_CHARS)
        # Longest first, so a secret that contains another is masked whole.
        self.secrets = sorted(known, key=len, reverse=True)

    def mask(self, text: str) -> str:
        for secret in self.secrets:
            if secret in text:
                text = text.replace(secret, MASK)
        return text

    def filter(self, record: logging.LogRecord) -> bool:
        if not self.secrets:
            return True
        message = record.getMessage()
        masked = self.mask(message)
        if masked != message:
            record.msg, record.args = masked, None
        if record.exc_info and not record.exc_text:
            # Format the traceback here (the handler's formatter would reuse exc_text) so the
            # exception's message is masked too.
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = self.mask(record.exc_text)
        if record.stack_info:
            record.stack_info = self.mask(record.stack_info)
        return True


def install(secrets: Iterable[str], logger: logging.Logger | None = None) -> None:
    """Mask ``secrets`` in everything the handlers of ``logger`` (default: the root
    logger, where `monitor` commands log) write."""
    target = logger or logging.getLogger()
    secrets = list(secrets)
    for handler in target.handlers:
        if not any(isinstance(f, SecretFilter) for f in handler.filters):
            handler.addFilter(SecretFilter())
    remember(secrets, target)


def remember(secrets: Iterable[str], logger: logging.Logger | None = None) -> None:
    """Add secrets to the masks ``install`` set up (a reloaded config may bring new ones);
    does nothing where none was installed, e.g. a daemon run inside a test."""
    target = logger or logging.getLogger()
    secrets = list(secrets)
    for handler in target.handlers:
        for existing in handler.filters:
            if isinstance(existing, SecretFilter):
                existing.add(secrets)


def secret_strings(value: Any) -> list[str]:
    """Every SecretStr value inside a config tree (models, lists, dicts)."""
    from pydantic import BaseModel, SecretStr

    found: list[str] = []
    if isinstance(value, SecretStr):
        found.append(value.get_secret_value())
    elif isinstance(value, BaseModel):
        for name in type(value).model_fields:
            found += secret_strings(getattr(value, name))
    elif isinstance(value, dict):
        for item in value.values():
            found += secret_strings(item)
    elif isinstance(value, list | tuple | set):
        for item in value:
            found += secret_strings(item)
    return [s for s in dict.fromkeys(found) if s]
