"""Helpers shared by CLI commands: config loading, logging, store access, output."""

from __future__ import annotations

import argparse
import asyncio
import getpass
import json
import logging
import os
import sys
from collections.abc import Awaitable, Callable, Coroutine, Iterable
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, TypeVar

from monitor import redact
from monitor.config import Config, ConfigError, load_config
from monitor.store import Store, StoreError

T = TypeVar("T")


class CliError(Exception):
    def __init__(self, message: str, exit_code: int = 1) -> None:
        super().__init__(message)
        self.exit_code = exit_code


@dataclass(frozen=True, slots=True)
class Command:
    help: str
    arguments: Callable[[argparse.ArgumentParser], None]
    handler: Callable[[argparse.Namespace], int]


def config_path(args: argparse.Namespace) -> str:
    return args.config or os.environ.get("MONITOR_CONFIG") or "config.yaml"


def load(args: argparse.Namespace, path: str | None = None) -> Config:
    try:
        return load_config(path or config_path(args))
    except ConfigError as exc:
        raise CliError(str(exc), exit_code=2) from None


def setup_logging(
    args: argparse.Namespace, level: str = "INFO", secrets: Iterable[str] = ()
) -> None:
    """Log to stderr; ``secrets`` (``Config.secret_values()``) are masked in every record,
    including what third-party libraries log."""
    logging.basicConfig(
        level=logging.DEBUG if getattr(args, "verbose", False) else getattr(logging, level),
        format="%(asctime)s %(levelname)-7s %(name)s: %(message)s",
        stream=sys.stderr,
        force=True,
    )
    redact.install(secrets)
    # Third-party chatter that says nothing an operator can act on.
    for noisy in ("apscheduler", "aiosqlite", "alembic", "asyncio"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def run_async(coro: Coroutine[Any, Any, T]) -> T:
    try:
        return asyncio.run(coro)
    except StoreError as exc:
        raise CliError(str(exc)) from None


async def with_store(config: Config, action: Callable[[Store], Awaitable[T]]) -> T:
    store = await Store.open(config.database)
    try:
        return await action(store)
    finally:
        await store.dispose()


def actor() -> str:
    try:
        return f"cli:{getpass.getuser()}"
    except Exception:
        return "cli"


def to_json(value: Any) -> str:
    def default(obj: Any) -> Any:
        if isinstance(obj, datetime | date):
            return obj.isoformat()
        raise TypeError(f"not JSON serialisable: {type(obj).__name__}")

    return json.dumps(value, ensure_ascii=False, default=default, sort_keys=False)
