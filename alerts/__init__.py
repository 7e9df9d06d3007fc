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
