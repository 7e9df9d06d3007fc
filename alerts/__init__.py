"""Alert sinks, one per file, registered explicitly by their key under `alerts:`."""

from __future__ import annotations

from alerts.base import AlertSink
from alerts.console import ConsoleSink
from alerts.email import EmailSink
from alerts.slack import SlackSink

SINKS: dict[str, type[AlertSink]] = {
    ConsoleSink.kind: ConsoleSink,
    SlackSink.kind: SlackSink,
    EmailSink.kind: EmailSink,
}

# Sinks whose optional dependency is not installed: key → what to do about it. Configuring
# one (enabled) is a config error that says so; a disabled section is accepted and ignored.
UNAVAILABLE: dict[str, str] = {}

try:
    from alerts.apprise import AppriseSink
except ModuleNotFoundError as exc:
    if exc.name != "apprise":
        raise
    UNAVAILABLE["apprise"] = (
        "the Apprise sink needs the apprise package, which is not installed — "
        "pip install 'brand-monitor[apprise]' (or set enabled: false)"
    )
else:
    SINKS[AppriseSink.kind] = AppriseSink

# Where alerts go when no sink is enabled: they are printed, never silently dropped.
DEFAULT_SINK: str = ConsoleSink.kind
