"""Configuration: YAML validated by pydantic, errors that name file, line and dotted path.

Source and sink sections come from their adapters' own ``Config`` models, looked up in
the explicit registries, so adding an adapter never touches this module.
"""

from __future__ import annotations

import difflib
import os
import re
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import time, timedelta
from pathlib import Path
from typing import Annotated, Any, Literal, Union

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    create_model,
    field_serializer,
    field_validator,
    model_validator,
)

from alerts import DEFAULT_SINK, SINKS, UNAVAILABLE
from alerts.base import SinkConfig
from monitor.classify.settings import ClassifyConfig
from monitor.durations import Duration
from monitor.envvars import expand_tree
from monitor.redact import safe_url, secret_strings, url_password
from monitor.yaml_lines import YamlError, format_path, load_with_lines
from sources import SOURCES
from sources.base import SourceConfig

DEFAULT_DATABASE = "sqlite+aiosqlite:///./data/monitor.db"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class PersonConfig(Strict):
    # Display name used in alerts.
    name: str = ""
    # Slack member id (U…) to @-mention when this person is responsible.
    slack: str | None = None
    # Address that receives this person's email alerts.
    email: str | None = None


class BrandConfig(Strict):
    # The brand as people write it; used in demo texts and digests.
    name: str
    # The brand's own accounts per platform (handle, or list of handles). Posts that
    # @-tag one are labelled `tagged`; replies from one mark a thread answered.
    accounts: dict[str, list[str]] = Field(default_factory=dict)

    @field_validator("accounts", mode="before")
    @classmethod
    def _one_or_many(cls, value: Any) -> Any:
        if isinstance(value, dict):
            return {k: [v] if isinstance(v, str) else v for k, v in value.items()}
        return value


class WatchlistConfig(Strict):
    # Short unique name, shown in alerts and used by `--watchlist`.
    name: str
    # Boolean query: terms, "phrases", OR, -term/NOT, ( ), prefix*, site:, author:, lang:, near/N.
    query: str
    # Only keep mentions in these languages (ISO 639-1, e.g. [en, hi, bn, fa]); empty = all.
    # Mentions too short to tell the language of are kept.
    languages: list[str] = Field(default_factory=list)
    # `brand` mentions can alert; `competitor` mentions go to the digest.
    kind: Literal["brand", "competitor"] = "brand"
    # Key under `people:` of the one person responsible for answering.
    owner: str | None = None
    # Key under `people:` escalated to when the owner does not answer in time.
    backup: str | None = None
    # Critical watchlists get a 15-minute default SLA and override quiet hours.
    critical: bool = False
    # How long a mention that needs an answer may stay unanswered (default 1h, 15m if critical).
    reply_within: Duration | None = None
    # Per-sink destination override, e.g. {slack: "#support", email: "help@acme.example"}.
    route: dict[str, str] = Field(default_factory=dict)
    # More people (keys under `people:`) told about every alert of this watchlist.
    people: list[str] = Field(default_factory=list)

    @field_validator("name")
    @classmethod
    def _valid_name(cls, value: str) -> str:
        if not _NAME.match(value):
            raise ValueError("use letters, digits, '-', '_' or '.' (no spaces)")
        return value

    @field_validator("query")
    @classmethod
    def _valid_query(cls, value: str) -> str:
        from monitor.matching import QueryError, parse_query

        try:
            parse_query(value)
        except QueryError as exc:
            raise ValueError(str(exc)) from None
        return value

    @field_validator("languages")
    @classmethod
    def _lowercase_languages(cls, value: list[str]) -> list[str]:
        return [code.strip().lower() for code in value]

    @property
    def sla(self) -> timedelta:
        if self.reply_within is not None:
            return self.reply_within
        return timedelta(minutes=15) if self.critical else timedelta(hours=1)


class DigestConfig(Strict):
    # Send a daily digest (counts, open/overdue, competitors, praise worth a thank-you).
    enabled: bool = True
    # Local time of day the digest goes out, HH:MM.
    at: time = time(9, 0)
    # IANA time zone for `at` and for quiet hours, e.g. Asia/Kolkata.
    timezone: str = "UTC"

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(
                f"unknown time zone {value!r}; use an IANA name like Asia/Kolkata"
            ) from None
        return value


class QuietHoursConfig(Strict):
    # Whether non-critical alerts wait until quiet hours end.
    enabled: bool = False
    # Start of quiet hours, HH:MM local time.
    start: time = time(22, 0)
    # End of quiet hours, HH:MM local time.
    end: time = time(7, 0)
    # Critical watchlists still alert during quiet hours.
    critical_override: bool = True


class EscalationConfig(Strict):
    # Escalate unanswered mentions: the owner at reply_within, the backup at twice that.
    enabled: bool = True
    # Reminders to owner and backup after the backup was told; 0 = none.
    reminders: int = Field(default=3, ge=0, le=50)
    # Time between reminders (default: the watchlist's reply_within).
    reminder_every: Duration | None = None


class StormConfig(Strict):
    # Raise one "storm" alert instead of many when negative mentions spike.
    enabled: bool = True
    # Window in which a watchlist's negative mentions are counted.
    window: Duration = Field(default=timedelta(hours=1))
    # A storm needs at least this many negative mentions in the window...
    min_count: int = Field(default=8, ge=2)
    # ...and this many times the watchlist's own average per window over `baseline`.
    factor: float = Field(default=4.0, ge=1.0)
    # How far back the baseline average looks.
    baseline: Duration = Field(default=timedelta(days=7))


class BatchConfig(Strict):
    # At most this many single alerts per sink within `window`; the rest go out as one list.
    max_alerts: int = Field(default=5, ge=1)
    # The window over which max_alerts is counted.
    window: Duration = Field(default=timedelta(minutes=5))


class DaemonConfig(Strict):
    # How often the scheduler asks the store which sources are due.
    tick: Duration = Field(default=timedelta(seconds=1))
    # Hard limit on loading state and fetching in one source run; a hung source is
    # cancelled and backs off. Storing is never cut short (it would leave the database
    # locked); an overrun while storing is logged.
    source_timeout: Duration = Field(default=timedelta(seconds=120))
    # How many sources may run at the same time.
    max_concurrent_sources: int = Field(default=4, ge=1, le=64)
    # Longest backoff after repeated errors.
    max_backoff: Duration = Field(default=timedelta(hours=6))
    # How often the daemon writes its heartbeat row.
    heartbeat_every: Duration = Field(default=timedelta(seconds=30))
    # `monitor healthcheck` fails when the heartbeat is older than this.
    stale_after: Duration = Field(default=timedelta(minutes=3))
    # How long SIGTERM waits for in-flight runs before cancelling them. Whatever stops the
    # daemon (docker --stop-timeout, systemd TimeoutStopSec) must allow this + 10 s.
    shutdown_grace: Duration = Field(default=timedelta(seconds=20))
    # How often pending alerts are delivered (retries back off on their own).
    deliver_every: Duration = Field(default=timedelta(seconds=2))
    # Logging level: DEBUG, INFO, WARNING or ERROR.
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"


class HttpConfig(Strict):
    # Contact URL or address put in the User-Agent so site owners can reach you.
    contact: str = "https://github.com/brand-monitor/brand-monitor"
    # Seconds to wait for a TCP/TLS connection.
    connect_timeout: Duration = Field(default=timedelta(seconds=10))
    # Seconds to wait between bytes of a response.
    read_timeout: Duration = Field(default=timedelta(seconds=30))
    # Seconds for a whole request, body included.
    total_timeout: Duration = Field(default=timedelta(seconds=60))
    # Largest response body accepted, after decompression.
    max_body_bytes: int = Field(default=10_000_000, ge=1024)
    # Redirects followed before giving up.
    max_redirects: int = Field(default=5, ge=0, le=20)


def _alerts_model() -> type[BaseModel]:
    """`alerts:` has one optional section per registered sink plus the shared settings."""
    sink_fields: dict[str, Any] = {kind: (sink.Config | None, None) for kind, sink in SINKS.items()}
    return create_model(  # type: ignore[call-overload, no-any-return]
        "AlertsConfig",
        __base__=AlertsBase,
        **sink_fields,
    )


class AlertsBase(Strict):
    # Daily digest settings.
    digest: DigestConfig = Field(default_factory=DigestConfig)
    # Hours in which only critical alerts are delivered.
    quiet_hours: QuietHoursConfig = Field(default_factory=QuietHoursConfig)
    # Mentions published longer ago than this are stored as backfill, never alerted one by one.
    max_age: Duration = Field(default=timedelta(days=2))
    # No flood on day one: the first poll of a new source, and what was published before a
    # watchlist was added, are stored as backfill instead of alerted.
    backfill_first_poll: bool = True
    # Quiet hours for one sink, replacing `quiet_hours` there, e.g. {email: {enabled: false}}.
    quiet_hours_per_sink: dict[str, QuietHoursConfig] = Field(default_factory=dict)
    # Reminder ladder for mentions nobody acknowledged or answered in time.
    escalation: EscalationConfig = Field(default_factory=EscalationConfig)
    # Spike detection: one alert for a burst of negative mentions.
    storm: StormConfig = Field(default_factory=StormConfig)
    # Many alerts at once are sent as one list.
    batch: BatchConfig = Field(default_factory=BatchConfig)
    # A new alert-worthy message in a conversation alerted within this time goes into the
    # first alert's thread instead of the channel.
    thread_cooldown: Duration = Field(default=timedelta(minutes=30))
    # How often escalations, storms, source health and the digest are checked.
    check_every: Duration = Field(default=timedelta(seconds=30))
    # How often sources are asked for the brand's own replies (marks threads answered).
    replies_every: Duration = Field(default=timedelta(minutes=5))
    # A sink failing this many times in a row is reported through the other sinks.
    sink_failures_before_report: int = Field(default=3, ge=1)

    @model_validator(mode="before")
    @classmethod
    def _unavailable_sinks(cls, data: Any) -> Any:
        """A sink whose optional package is missing: an error if enabled, else ignored."""
        if not isinstance(data, dict):
            return data
        for kind, why in UNAVAILABLE.items():
            section = data.get(kind)
            if isinstance(section, dict) and section.get("enabled", True) is False:
                data = {key: value for key, value in data.items() if key != kind}
            elif kind in data:
                raise ValueError(f"{kind}: {why}")
        return data

    @model_validator(mode="after")
    def _known_quiet_hour_sinks(self) -> AlertsBase:
        unknown = set(self.quiet_hours_per_sink) - set(SINKS)
        if unknown:
            raise ValueError(
                f"quiet_hours_per_sink names unknown sinks {sorted(unknown)}; known: {sorted(SINKS)}"
            )
        return self

    def quiet_hours_for(self, sink: str) -> QuietHoursConfig:
        return self.quiet_hours_per_sink.get(sink, self.quiet_hours)

    def enabled_sinks(self) -> dict[str, SinkConfig]:
        found = {
            kind: section
            for kind in SINKS
            if isinstance(section := getattr(self, kind, None), SinkConfig) and section.enabled
        }
        return found

    def active_sinks(self) -> dict[str, SinkConfig]:
        """Where alerts go: the enabled sinks, or the default sink with its default settings
        when none is enabled, so an alert is never dropped for want of a sink."""
        return self.enabled_sinks() or {DEFAULT_SINK: SINKS[DEFAULT_SINK].Config()}


AlertsConfig = _alerts_model()


def _source_union() -> Any:
    members = tuple(source.Config for source in SOURCES.values())
    if len(members) == 1:
        return members[0]
    return Annotated[Union[members], Field(discriminator="type")]  # noqa: UP007


SourceConfigUnion = _source_union()


class Config(Strict):
    # SQLAlchemy URL. SQLite by default; postgresql+asyncpg://user@host/db also works.
    database: str = DEFAULT_DATABASE
    # The brand being monitored.
    brand: BrandConfig
    # People who answer mentions, referenced by watchlists' owner/backup.
    people: dict[str, PersonConfig] = Field(default_factory=dict)
    # What to look for. Each mention is kept once, with every watchlist it matches.
    watchlists: list[WatchlistConfig] = Field(min_length=1)
    # Where to look. Each entry has a `type` (see README) and `every`.
    sources: list[SourceConfigUnion] = Field(default_factory=list)  # type: ignore[valid-type]
    # Where alerts go. With no sink enabled, alerts are printed to the console.
    alerts: AlertsConfig = Field(default_factory=AlertsConfig)  # type: ignore[valid-type]
    # Daemon timings and limits.
    daemon: DaemonConfig = Field(default_factory=DaemonConfig)
    # HTTP client settings shared by every source.
    http: HttpConfig = Field(default_factory=HttpConfig)
    # Sentiment backends and the model trained from corrections.
    classify: ClassifyConfig = Field(default_factory=ClassifyConfig)

    @model_validator(mode="after")
    def _cross_references(self) -> Config:
        _name_sources(self.sources)
        names = [w.name for w in self.watchlists]
        duplicates = {n for n in names if names.count(n) > 1}
        if duplicates:
            raise ValueError(f"watchlist names must be unique; repeated: {sorted(duplicates)}")
        source_names = [s.name for s in self.sources]
        repeated = {n for n in source_names if source_names.count(n) > 1}
        if repeated:
            raise ValueError(f"source names must be unique; repeated: {sorted(repeated)}")
        for watchlist in self.watchlists:
            for role in ("owner", "backup"):
                person = getattr(watchlist, role)
                if person and person not in self.people:
                    raise ValueError(
                        f"watchlist {watchlist.name!r}: {role} {person!r} is not defined under people:"
                    )
            for person in watchlist.people:
                if person not in self.people:
                    raise ValueError(
                        f"watchlist {watchlist.name!r}: people entry {person!r} is not defined under people:"
                    )
            unknown = set(watchlist.route) - set(SINKS)
            if unknown:
                raise ValueError(
                    f"watchlist {watchlist.name!r}: route names unknown sinks {sorted(unknown)}; "
                    f"known: {sorted(SINKS)}"
                )
        for source in self.sources:
            if source.watchlist and source.watchlist not in names:
                raise ValueError(
                    f"source {source.name!r} feeds watchlist {source.watchlist!r}, which is not defined"
                )
        return self

    def watchlist(self, name: str) -> WatchlistConfig | None:
        return next((w for w in self.watchlists if w.name == name), None)

    def secret_values(self) -> list[str]:
        """Every configured secret (each SecretStr anywhere, the database password), for
        masking in logs (``monitor.redact``) and for tests."""
        password = url_password(self.database)
        return secret_strings(self) + ([password] if password else [])

    # `database` stays a plain string, because the engine takes it as one; wherever the
    # config is shown (repr, str, JSON) its password is masked.
    def __repr_args__(self) -> Any:
        for name, value in super().__repr_args__():
            yield name, safe_url(value) if name == "database" else value

    @field_serializer("database", when_used="json")
    def _database_without_password(self, value: str) -> str:
        return safe_url(value)


def _name_sources(sources: list[SourceConfig]) -> None:
    counts: dict[str, int] = {}
    for source in sources:
        counts[source.type] = counts.get(source.type, 0) + 1
    seen: dict[str, int] = {}
    for source in sources:
        if source.name:
            continue
        seen[source.type] = seen.get(source.type, 0) + 1
        source.name = (
            source.type if counts[source.type] == 1 else f"{source.type}-{seen[source.type]}"
        )


# ---------------------------------------------------------------------------- loading


@dataclass(frozen=True, slots=True)
class ConfigProblem:
    file: str
    line: int
    path: str
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        return f"{where} {self.path}: {self.message}" if self.path else f"{where}: {self.message}"


class ConfigError(Exception):
    def __init__(self, problems: list[ConfigProblem]) -> None:
        super().__init__("\n".join(str(p) for p in problems))
        self.problems = problems


def load_config(path: str | os.PathLike[str], env: Mapping[str, str] | None = None) -> Config:
    file = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        reason = exc.strerror or str(exc)
        raise ConfigError(
            [
                ConfigProblem(
                    file,
                    0,
                    "",
                    f"cannot read the config file ({reason}); pass -c PATH or set MONITOR_CONFIG",
                )
            ]
        ) from None
    except UnicodeDecodeError:
        raise ConfigError(
            [ConfigProblem(file, 0, "", "the config file is not valid UTF-8")]
        ) from None
    return parse_config(text, file, os.environ if env is None else env)


def parse_config(
    text: str, file: str = "config.yaml", env: Mapping[str, str] | None = None
) -> Config:
    try:
        data, lines = load_with_lines(text)
    except YamlError as exc:
        raise ConfigError([ConfigProblem(file, exc.line, "", exc.message)]) from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError([ConfigProblem(file, 1, "", "the top level must be a mapping of keys")])

    data, unset = expand_tree(data, os.environ if env is None else env)
    if unset:
        raise ConfigError(
            [
                ConfigProblem(
                    file,
                    _line_for(lines, problem.path),
                    format_path(problem.path),
                    f"environment variable {problem.name} is not set "
                    f"(set it, or write ${{{problem.name}:-default}} for an optional value)",
                )
                for problem in unset
            ]
        )
    try:
        return Config.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_problems(exc, data, lines, file)) from None


def _problems(exc: ValidationError, data: Any, lines: dict, file: str) -> list[ConfigProblem]:
    problems = []
    for error in exc.errors(include_url=False, include_input=False):
        path = _data_path(data, error["loc"])
        if error["type"] == "union_tag_invalid":  # with 2+ source types: point at `type:`
            path = (*path, "type")
        message = _message(error, error["loc"])
        problem = ConfigProblem(file, _line_for(lines, path), format_path(path), message)
        if problem not in problems:
            problems.append(problem)
    return problems


def _data_path(data: Any, loc: tuple) -> tuple:
    """Drop the union tags pydantic puts in ``loc`` so the path matches the YAML."""
    path: list[Any] = []
    node = data
    for index, part in enumerate(loc):
        last = index == len(loc) - 1
        if (isinstance(node, dict) and part in node) or (
            isinstance(node, list) and isinstance(part, int) and part < len(node)
        ):
            path.append(part)
            node = node[part]
        elif (
            last
            and isinstance(node, dict)
            and isinstance(part, str)
            and not part.startswith("function-")
            and part != node.get("type")  # a source's union tag, e.g. a model validator's error
        ):
            path.append(part)
        # anything else is a union tag or validator name, not a key the user wrote
    return tuple(path)


def _line_for(lines: dict, path: tuple) -> int:
    for end in range(len(path), -1, -1):
        if path[:end] in lines:
            return lines[path[:end]]
    return 0


def _message(error: Any, loc: tuple) -> str:
    kind = error["type"]
    if kind == "extra_forbidden":
        key = str(loc[-1])
        known = _known_keys(loc[:-1])
        close = difflib.get_close_matches(key, known, n=1)
        hint = (
            f"; did you mean {close[0]!r}?"
            if close
            else (f"; known keys: {', '.join(sorted(known))}" if known else "")
        )
        return f"unknown key {key!r}{hint}"
    if kind == "missing":
        return "required key is missing"
    if kind == "union_tag_invalid":
        ctx = error.get("ctx", {})
        return f"unknown source type {ctx.get('tag')!r}; known types: {', '.join(SOURCES)}"
    if kind == "literal_error" and loc and loc[-1] == "type" and loc[0] == "sources":
        return f"unknown source type; known types: {', '.join(SOURCES)}"
    if kind == "union_tag_not_found":
        return f"each source needs a `type:` ({', '.join(SOURCES)})"
    message = str(error["msg"])
    for prefix in ("Value error, ", "Assertion failed, "):
        message = message.removeprefix(prefix)
    return message


def _known_keys(loc: tuple) -> list[str]:
    """Field names of the model found at ``loc``, for 'did you mean' hints."""
    annotation: Any = Config
    for part in loc:
        annotation = _step(annotation, part)
        if annotation is None:
            return []
    model = _as_model(annotation)
    return list(model.model_fields) if model else []


def _step(annotation: Any, part: Any) -> Any:
    annotation = _unwrap(annotation)
    model = _as_model(annotation)
    if model is not None:
        field = model.model_fields.get(str(part))
        return field.annotation if field else None
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin in (list, tuple) and isinstance(part, int):
        return args[0] if args else None
    if origin is dict:
        return args[1] if len(args) == 2 else None
    if origin in (Union, types.UnionType):
        for member in args:
            member_model = _as_model(member)
            type_field = member_model.model_fields.get("type") if member_model else None
            if type_field and part in typing.get_args(type_field.annotation):
                return member
    return None


def _unwrap(annotation: Any) -> Any:
    while typing.get_origin(annotation) is Annotated:
        annotation = typing.get_args(annotation)[0]
    origin = typing.get_origin(annotation)
    if origin in (Union, types.UnionType):
        members = [a for a in typing.get_args(annotation) if a is not type(None)]
        if len(members) == 1:
            return _unwrap(members[0])
    return annotation


def _as_model(annotation: Any) -> type[BaseModel] | None:
    annotation = _unwrap(annotation)
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    return None
