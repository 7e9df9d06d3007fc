"""Apprise sink: one Markdown (or plain-text) notification per alert to any Apprise URL.
https://github.com/caronc/apprise/wiki

For the services without a sink of their own: Discord, Microsoft Teams, Telegram,
Matrix, ntfy, Pushover and a hundred more, each named by one URL under
``alerts.apprise.urls``. Installed with the optional extra: ``pip install
'brand-monitor[apprise]'``.

Apprise has no threads and cannot edit a sent message, so escalations arrive as new
notifications and state changes show in the digest. Everything from a mention is
untrusted: Markdown is escaped (no links, images or formatting from a post), and every
``@`` in it is followed by a zero-width space, so ``@everyone``, ``@here``, ``@channel``,
``<@123>``, ``<!channel>`` or a Telegram ``@username`` written in a post pings nobody.
"""

from __future__ import annotations

import asyncio
import logging
import re
from datetime import UTC, datetime
from typing import Any, ClassVar, Literal

import apprise
from pydantic import Field, SecretStr, model_validator

from alerts.base import Alert, AlertSink, Delivery, SinkConfig, SinkContext
from alerts.digest import DIGEST_KIND, sections
from alerts.text import (
    age,
    digest_line_text,
    language_name,
    language_note,
    safe_url,
    snippet,
    split_spans,
    terminal_safe,
)

log = logging.getLogger(__name__)

ZWSP = "\u200b"
# Markdown punctuation that could start a link, image, emphasis, code, heading or HTML.
_MARKDOWN = re.compile(r"([\\`*_\[\]<>~|#&])")
# Characters that end a Markdown link target early, percent-encoded in our own links.
_LINK_BREAKERS = str.maketrans({"(": "%28", ")": "%29", "[": "%5B", "]": "%5D"})


class AppriseConfig(SinkConfig):
    # Apprise URLs, one per service (formats: https://github.com/caronc/apprise/wiki). They
    # hold credentials: keep them in the environment, e.g. ["${APPRISE_DISCORD_URL}"].
    urls: list[SecretStr] = Field(default_factory=list)
    # markdown for chat services; text for SMS and push services that show raw text.
    body_format: Literal["markdown", "text"] = "markdown"

    @model_validator(mode="after")
    def _understood(self) -> AppriseConfig:
        if not self.enabled:
            return self
        if not self.urls:
            raise ValueError("urls: give at least one Apprise URL, e.g. ntfy://ntfy.sh/acme-alerts")
        for index, url in enumerate(self.urls):
            value = url.get_secret_value().strip()
            if not value:
                raise ValueError(f"urls[{index}] is empty — is its environment variable set?")
            if apprise.Apprise.instantiate(value) is None:
                scheme = value.split("://", 1)[0] if "://" in value else value[:12]
                raise ValueError(
                    f"urls[{index}]: Apprise does not understand this URL ({scheme}://…) — see "
                    "https://github.com/caronc/apprise/wiki for each service's URL format"
                )
        return self

    def secrets(self) -> list[SecretStr]:
        return list(self.urls)


def markdown_safe(text: Any) -> str:
    """Untrusted text → inert Markdown: escaped punctuation, no control characters, no pings."""
    return no_pings(_MARKDOWN.sub(r"\\\1", terminal_safe(str(text))))


def no_pings(text: str) -> str:
    """A zero-width space after every ``@`` and inside Slack's ``<!…>``: no service turns
    it into a mention or a broadcast."""
    for mark in ("@", "\uff20", "<!"):
        text = text.replace(mark, mark[0] + ZWSP + mark[1:])
    return text


def plain_safe(text: Any) -> str:
    return no_pings(terminal_safe(str(text)))


class AppriseSink(AlertSink):
    # Registry key and config section (`alerts.apprise`).
    kind: ClassVar[str] = "apprise"
    docs_url: ClassVar[str] = "https://github.com/caronc/apprise/wiki"
    # Longest snippet of the mention quoted in a notification, in characters.
    max_snippet_chars: ClassVar[int] = 600
    # Mentions listed in a storm, batch or digest section.
    max_list_items: ClassVar[int] = 15
    Config = AppriseConfig
    config: AppriseConfig

    def __init__(self, config: AppriseConfig, context: SinkContext | None = None) -> None:
        super().__init__(config, context)
        # One Apprise object per URL: a service that failed is retried alone, and the
        # ones that accepted the alert do not get it twice.
        self._targets: list[apprise.Apprise] = []
        for url in config.urls:
            target = apprise.Apprise()
            target.add(url.get_secret_value().strip())
            self._targets.append(target)
        self._delivered: dict[int, set[int]] = {}  # alert id → targets that accepted it

    def describe(self) -> str:
        return f"apprise ({', '.join(self._private_url(i) for i in range(len(self._targets)))})"

    def _private_url(self, index: int) -> str:
        """The URL with its secrets masked, as Apprise prints it."""
        services = list(self._targets[index])
        return services[0].url(privacy=True) if services else f"urls[{index}]"

    async def send(self, alert: Alert) -> Delivery:
        title, body = self.render(alert)
        done = self._delivered.setdefault(alert.id, set())
        waiting = [i for i in range(len(self._targets)) if i not in done]
        results = await asyncio.gather(
            *(self._notify(self._targets[i], title, body) for i in waiting)
        )
        failed = []
        for index, ok in zip(waiting, results, strict=True):
            if ok:
                done.add(index)
            else:
                failed.append(index)
        if not failed:
            self._delivered.pop(alert.id, None)
            return Delivery(ok=True, provider_id=f"apprise-{alert.id}")
        where = ", ".join(f"urls[{i}] ({self._private_url(i)})" for i in failed)
        return Delivery(
            ok=False,
            error=f"apprise: {where} did not accept the notification — check that URL and that "
            "the service is reachable; the apprise log lines above give its answer",
        )

    async def _notify(self, target: apprise.Apprise, title: str, body: str) -> bool:
        body_format = (
            apprise.NotifyFormat.MARKDOWN
            if self.config.body_format == "markdown"
            else apprise.NotifyFormat.TEXT
        )
        try:
            return bool(await target.async_notify(body=body, title=title, body_format=body_format))
        except Exception:
            log.exception("apprise: the notification raised")
            return False

    # ------------------------------------------------------------------------ rendering

    def render(self, alert: Alert) -> tuple[str, str]:
        """(title, body) in the configured format."""
        markdown = self.config.body_format == "markdown"
        safe = markdown_safe if markdown else plain_safe
        lines: list[str] = []
        if alert.kind in ("mention", "followup") and alert.mention:
            lines += self._mention_lines(alert, markdown)
        elif alert.kind == DIGEST_KIND:
            for heading, plain, items in sections(alert.body):
                if plain or items:
                    lines.append(f"**{safe(heading)}**" if markdown else heading.upper())
                    lines += [f"- {safe(line)}" for line in plain]
                    lines += [f"- {self._item(item, markdown)}" for item in items]
                    lines.append("")
        else:
            lines += [safe(reason) for reason in alert.reasons if reason]
            now = datetime.now(UTC)
            for item in alert.group[: self.max_list_items]:
                lines.append(f"- {self._item(item, markdown)} — {age(item, now)} ago")
            if alert.people:
                lines.append("For: " + safe(", ".join(p.name or p.key for p in alert.people)))
        return safe(alert.title), "\n".join(lines).strip()

    def _mention_lines(self, alert: Alert, markdown: bool) -> list[str]:
        mention = alert.mention or {}
        safe = markdown_safe if markdown else plain_safe
        bold = (lambda s: f"**{s}**") if markdown else (lambda s: s)
        history = (mention.get("author_history") or {}).get("label", "")
        author = mention.get("author") or "unknown"
        lines = [
            f"{bold('Why:')} {safe(' / '.join(alert.reasons))}",
            f"{bold('Source:')} {safe(mention.get('source', ''))} "
            f"({safe(mention.get('platform', ''))}) · {bold('Author:')} {safe(author)}"
            + (f" ({safe(history)})" if history else ""),
            f"{bold('Language:')} {safe(language_name(mention.get('language', '')))}",
        ]
        if note := language_note(mention.get("language", "")):
            lines.append(safe(note))
        text, spans = snippet(mention, self.max_snippet_chars)
        if markdown:
            quoted = "".join(
                f"**{markdown_safe(piece).strip()}**"
                if matched and piece.strip()
                else markdown_safe(piece)
                for piece, matched in split_spans(text, spans)
            )
            lines.append("> " + quoted.replace("\n", "\n> "))
        else:
            lines += ["", plain_safe(text), ""]
        if url := safe_url(mention.get("url")):
            lines.append(
                f"[Open the post]({url.translate(_LINK_BREAKERS)})" if markdown else f"Open: {url}"
            )
        if alert.people:
            who = ", ".join(p.name or p.key for p in alert.people)
            lines.append(f"Answer within {safe(alert.body.get('reply_within', '?'))}: {safe(who)}")
        mention_id = mention.get("id")
        command = f"`monitor ack {mention_id}`" if markdown else f"monitor ack {mention_id}"
        lines.append(f"State: {safe(mention.get('state', 'open'))} · id {mention_id} · {command}")
        return lines

    def _item(self, item: dict[str, Any], markdown: bool) -> str:
        label = digest_line_text(item, 120)
        suffix = f" (id {item['id']})" if "id" in item else ""
        url = safe_url(item.get("url"))
        if markdown:
            text = markdown_safe(label)
            return (f"[{text}]({url.translate(_LINK_BREAKERS)})" if url else text) + suffix
        return plain_safe(label) + suffix + (f" {url}" if url else "")
