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
# Where alerts go when no sink is enabled: they are printed, never silently dropped.
DEFAULT_SINK: str = ConsoleSink.kind
