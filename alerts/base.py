"""The interface every alert sink implements, built-in or not."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, ClassVar, TextIO

from pydantic import BaseModel, ConfigDict, SecretStr

if TYPE_CHECKING:
    from monitor.store import Store


class SinkConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    # Whether alerts are delivered through this sink.
    enabled: bool = True

    def secrets(self) -> list[SecretStr]:
        return [value for value in self.__dict__.values() if isinstance(value, SecretStr)]


@dataclass(frozen=True, slots=True)
class Person:
    """Someone to notify, from the config's `people:` (trusted, unlike mention text)."""

    key: str
    name: str = ""
    slack: str | None = None  # Slack member id, U…/W…
    email: str | None = None


@dataclass(slots=True)
class Alert:
    """A rendered-independent description of what to tell a person.

    Everything in ``mention`` came from the internet and is untrusted: each sink escapes
    it for its own medium.
    """

    id: int  # outbox row id
    # mention | followup | escalation | storm | batch | digest | update |
    # source_dark | source_recovered | sink_down | sink_up
    kind: str
    title: str
    reasons: list[str]
    mention: dict[str, Any] | None = None
    watchlists: list[str] = field(default_factory=list)
    target: str = ""  # channel or address override from routing
    mention_people: list[str] = field(default_factory=list)  # person keys to notify
    thread_ref: str | None = None  # provider id of the first alert for this mention
    body: dict[str, Any] = field(default_factory=dict)  # kind-specific extras
    people: list[Person] = field(default_factory=list)  # mention_people resolved from config
    group: list[dict[str, Any]] = field(default_factory=list)  # mentions of a storm or batch
    # The same on every retry of this alert, unique across databases: a sink puts it where
    # it can recognise a repeat (Slack message metadata, the email Message-ID).
    idempotency_key: str = ""
    # Set when a crash cut short an attempt that started at this time, maybe after the
    # provider accepted it: a sink that can look for that earlier message should, instead
    # of sending it again.
    interrupted_at: datetime | None = None


@dataclass(slots=True)
class Delivery:
    ok: bool
    provider_id: str | None = None  # Slack ts, SMTP Message-ID, ...
    error: str = ""
    retry_after: timedelta | None = None
    permanent: bool = False  # retrying cannot help (bad token, unknown channel)


@dataclass(frozen=True, slots=True)
class SinkContext:
    """What the daemon hands every sink's constructor, built-in or third-party alike."""

    # Where a sink that writes to a terminal prints (standard output when None); the demo
    # and the tests capture it.
    console: TextIO | None = None


class AlertSink(ABC):
    # Registry key and the key under `alerts:` in config.
    kind: ClassVar[str]
    docs_url: ClassVar[str] = ""
    Config: ClassVar[type[SinkConfig]] = SinkConfig

    def __init__(self, config: SinkConfig, context: SinkContext | None = None) -> None:
        self.config = config
        self.context = context or SinkContext()

    @abstractmethod
    async def send(self, alert: Alert) -> Delivery: ...

    async def update(self, alert: Alert, provider_id: str) -> Delivery:
        """Refresh an earlier message after the mention's state changed (if supported)."""
        return Delivery(ok=True, provider_id=provider_id)

    def describe(self) -> str:
        return self.kind

    async def start_interactive(
        self, store: Store, on_change: Callable[[], Awaitable[Any]]
    ) -> None:
        """Start taking input from people (Slack's buttons) while the daemon runs; call
        ``on_change`` after each change so the alerts showing it are redrawn. Optional;
        ``run --once`` never calls it."""
        return None

    async def stop_interactive(self) -> None:
        """Stop what ``start_interactive`` started (on shutdown and before a reload)."""
        return None

    async def close(self) -> None:
        return None
