"""Console sink: one readable block per alert on standard output.

The embedded default when no other sink is configured. Mention text is untrusted, so
terminal control characters (ANSI escapes, bidi overrides) are removed before printing.
"""

from __future__ import annotations

import sys
import unicodedata
from typing import ClassVar, TextIO

from alerts.base import Alert, AlertSink, Delivery, SinkConfig, SinkContext
from alerts.context import author_note, signal_notes, stored_signals

_BIDI_CONTROLS = {
    "\u202a",
    "\u202b",
    "\u202c",
    "\u202d",
    "\u202e",
    "\u2066",
    "\u2067",
    "\u2068",
    "\u2069",
}


class ConsoleConfig(SinkConfig):
    # Longest snippet printed per alert, in characters.
    max_snippet_chars: int = 400


def terminal_safe(text: str) -> str:
    """Drop control characters and bidi overrides; keep newlines and tabs."""
    return "".join(
        ch
        for ch in text
        if ch in "\n\t"
        or (unicodedata.category(ch) not in ("Cc", "Cf") and ch not in _BIDI_CONTROLS)
        or ch in ("\u200c", "\u200d")  # ZWNJ/ZWJ shape Persian and Indic words
    )


class ConsoleSink(AlertSink):
    kind: ClassVar[str] = "console"
    Config = ConsoleConfig
    config: ConsoleConfig

    def __init__(
        self,
        config: ConsoleConfig,
        context: SinkContext | None = None,
        *,
        stream: TextIO | None = None,
    ) -> None:
        super().__init__(config, context)
        # ``stream`` overrides the context's console, for tests that build a sink by hand.
        self.stream = stream or self.context.console

    async def send(self, alert: Alert) -> Delivery:
        out = self.stream or sys.stdout
        out.write(self.render(alert))
        out.flush()
        return Delivery(ok=True, provider_id=f"console-{alert.id}")

    def render(self, alert: Alert) -> str:
        lines = [f"━━ {alert.kind.upper()} ━━ {terminal_safe(alert.title)}"]
        if alert.reasons:
            lines.append("why:      " + "; ".join(terminal_safe(r) for r in alert.reasons))
        mention = alert.mention
        if mention:
            if alert.watchlists:
                lines.append("watch:    " + ", ".join(alert.watchlists))
            lines.append(f"source:   {terminal_safe(str(mention.get('source', '')))}")
            signals = stored_signals(mention)
            if mention.get("author"):
                history = author_note(signals)
                note = f" ({history})" if history else ""
                lines.append(f"author:   {terminal_safe(str(mention['author']))}{note}")
            notes = signal_notes(signals)
            if notes:
                lines.append("signals:  " + terminal_safe("; ".join(notes)) + " (context only)")
            if mention.get("language"):
                lines.append(f"language: {mention['language']}")
            snippet = terminal_safe(str(mention.get("text") or mention.get("title") or ""))
            limit = self.config.max_snippet_chars
            if len(snippet) > limit:
                snippet = snippet[: limit - 1] + "…"
            lines.append("text:     " + snippet.replace("\n", "\n          "))
            if mention.get("url"):
                lines.append(f"link:     {terminal_safe(str(mention['url']))}")
            if mention.get("id") is not None:
                lines.append(f"id:       {mention['id']}  (monitor ack {mention['id']})")
        for item in alert.group:
            text = " ".join(terminal_safe(str(item.get("title") or item.get("text") or "")).split())
            lines.append(f"  - #{item.get('id')} {text[:100]}")
        if alert.body.get("reply_within"):
            owner = f", owner: {', '.join(alert.mention_people)}" if alert.mention_people else ""
            lines.append(f"answer:   within {alert.body['reply_within']}{owner}")
        return "\n".join(lines) + "\n\n"
