"""Email sink: one multipart (text + HTML) message per alert over SMTP with aiosmtplib.
https://aiosmtplib.readthedocs.io/en/stable/

STARTTLS (port 587) by default, implicit TLS (465) or none (a relay on localhost).
Escalations carry In-Reply-To/References pointing at the first alert's Message-ID, so
mail clients show them as one conversation. Mention text is untrusted: headers are
stripped of line breaks and control characters, and HTML is fully escaped.
"""

from __future__ import annotations

import asyncio
import html
import ssl
import unicodedata
from datetime import UTC, datetime, timedelta
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from typing import Any, ClassVar, Literal

import aiosmtplib
from pydantic import Field, SecretStr, field_validator, model_validator

from alerts.base import Alert, AlertSink, Delivery, SinkConfig
from alerts.context import author_note, signal_notes, stored_signals
from alerts.digest import DIGEST_KIND, sections
from alerts.text import (
    STATE_ICONS,
    age,
    digest_line_text,
    language_name,
    language_note,
    safe_url,
    snippet,
    split_spans,
    terminal_safe,
)
from monitor.durations import Duration

SUBJECT_LIMIT = 180


class EmailConfig(SinkConfig):
    # SMTP server host name.
    host: str = "localhost"
    # SMTP port: 587 for STARTTLS, 465 for TLS, 25 for a local relay.
    port: int = 587
    # starttls (upgrade after connecting), tls (encrypted from the start) or none.
    security: Literal["starttls", "tls", "none"] = "starttls"
    # SMTP login, if the server needs one.
    username: str | None = None
    # SMTP password; keep it in the environment: ${SMTP_PASSWORD}.
    password: SecretStr | None = None
    # The From address, e.g. "Brand monitor <alerts@acme.example>".
    sender: str = ""
    # Who receives alerts (a watchlist's route.email and the people told are added).
    to: list[str] = Field(default_factory=list)
    # A CA bundle to trust besides the system's (a private relay's certificate).
    ca_file: str | None = None
    # Time allowed for connecting and for each SMTP command.
    timeout: Duration = Field(default=timedelta(seconds=30))
    # Put in front of every subject, to filter on.
    subject_prefix: str = "[brand-monitor]"

    @field_validator("sender", "subject_prefix")
    @classmethod
    def _one_line(cls, value: str) -> str:
        if any(ch in value for ch in "\r\n"):
            raise ValueError("must be a single line")
        return value

    @field_validator("to")
    @classmethod
    def _addresses(cls, value: list[str]) -> list[str]:
        for address in value:
            _parse_address(address)
        return value

    @model_validator(mode="after")
    def _complete(self) -> EmailConfig:
        if self.enabled and not self.sender:
            raise ValueError("sender is required, e.g. 'Brand monitor <alerts@acme.example>'")
        if self.sender:
            _parse_address(self.sender)
        return self


def _parse_address(text: str) -> Address:
    if any(unicodedata.category(ch) in ("Cc", "Zl", "Zp") for ch in text):
        raise ValueError(f"{text!r}: an address cannot contain line breaks")
    name, _, rest = text.rpartition("<")
    addr = rest.rstrip(">").strip() if rest.endswith(">") else text.strip()
    if "@" not in addr or " " in addr:
        raise ValueError(f"{text!r} is not an email address")
    username, domain = addr.rsplit("@", 1)
    return Address(display_name=name.strip().strip('"'), username=username, domain=domain)


def message_id(alert: Alert, domain: str) -> str:
    """The same Message-ID every time this alert is sent: a repeat after a crash (the one
    duplicate at-least-once delivery allows) is the same message to mail clients, and many
    keep only one copy."""
    if not alert.idempotency_key:  # an alert built outside the outbox
        return make_msgid(idstring=f"bm{alert.id}", domain=domain)
    return f"<brand-monitor.{alert.idempotency_key}@{domain}>"


def header_safe(text: str, limit: int = SUBJECT_LIMIT) -> str:
    """One line of printable text: CR, LF and every other control character become spaces."""
    cleaned = "".join(
        " " if unicodedata.category(ch) in ("Cc", "Cf", "Zl", "Zp") else ch for ch in text
    )
    cleaned = " ".join(cleaned.split())
    return cleaned if len(cleaned) <= limit else cleaned[: limit - 1] + "…"


class EmailSink(AlertSink):
    # Registry key and config section (`alerts.email`).
    kind: ClassVar[str] = "email"
    docs_url: ClassVar[str] = "https://aiosmtplib.readthedocs.io/en/stable/"
    Config = EmailConfig
    config: EmailConfig

    def describe(self) -> str:
        login = f"{self.config.username}@" if self.config.username else ""
        return f"email ({login}{self.config.host}:{self.config.port}, {self.config.security})"

    def recipients(self, alert: Alert) -> list[str]:
        routed = [a.strip() for a in alert.target.split(",") if a.strip()] if alert.target else []
        people = [p.email for p in alert.people if p.email]
        return list(dict.fromkeys(routed or self.config.to)) + [
            p for p in dict.fromkeys(people) if p not in (routed or self.config.to)
        ]

    def build(self, alert: Alert) -> EmailMessage:
        sender = _parse_address(self.config.sender)
        message = EmailMessage()
        subject = f"{self.config.subject_prefix} {self.subject(alert)}".strip()
        message["Subject"] = header_safe(("Re: " if alert.thread_ref else "") + subject)
        message["From"] = sender
        message["To"] = ", ".join(self.recipients(alert))
        message["Date"] = format_datetime(datetime.now(UTC))
        message["Message-ID"] = message_id(alert, sender.domain)
        if alert.thread_ref:
            message["In-Reply-To"] = alert.thread_ref
            message["References"] = alert.thread_ref
        message["Auto-Submitted"] = "auto-generated"
        message.set_content(render_text(alert))
        message.add_alternative(render_html(alert), subtype="html")
        return message

    @staticmethod
    def subject(alert: Alert) -> str:
        if alert.kind in ("mention", "followup") and alert.mention:
            return f"{alert.title}: {digest_line_text(alert.mention, 80)}"
        return alert.title

    async def send(self, alert: Alert) -> Delivery:
        if alert.kind == "update":
            return Delivery(ok=True)  # mail cannot be edited; the digest shows the state
        if not self.recipients(alert):
            return Delivery(
                ok=False,
                error="email: no recipient — set alerts.email.to or a watchlist's route.email",
                permanent=True,
            )
        message = self.build(alert)
        try:
            await aiosmtplib.send(
                message,
                hostname=self.config.host,
                port=self.config.port,
                username=self.config.username or None,
                password=self.config.password.get_secret_value() if self.config.password else None,
                use_tls=self.config.security == "tls",
                start_tls=self.config.security == "starttls",
                tls_context=self._tls_context(),
                timeout=self.config.timeout.total_seconds(),
            )
        except aiosmtplib.SMTPAuthenticationError as exc:
            return self._failed(
                f"login refused ({exc.code}) — check alerts.email.username and password",
                permanent=True,
            )
        except aiosmtplib.SMTPRecipientsRefused as exc:
            refused = ", ".join(r.recipient for r in exc.recipients)
            return self._failed(f"recipients refused: {refused} — check alerts.email.to", True)
        except aiosmtplib.SMTPSenderRefused as exc:
            return self._failed(
                f"sender {exc.sender} refused ({exc.code}) — check alerts.email.sender", True
            )
        except ssl.SSLCertVerificationError as exc:
            # asyncio closes the socket of a failed TLS handshake on the next loop turn;
            # give it that turn so the socket is not left half-closed (a ResourceWarning).
            await asyncio.sleep(0)
            await asyncio.sleep(0)
            return self._failed(
                f"the server's certificate is not trusted ({exc.verify_message}) — check "
                "alerts.email.host, or set alerts.email.ca_file for a private CA",
                permanent=True,
            )
        except aiosmtplib.SMTPResponseException as exc:
            return self._failed(f"server said {exc.code} {exc.message}", exc.code >= 500)
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
            return self._failed(
                f"cannot reach {self.config.host}:{self.config.port} ({exc.__class__.__name__}: "
                f"{exc}) — check alerts.email.host, port and security",
                permanent=False,
            )
        return Delivery(ok=True, provider_id=str(message["Message-ID"]))

    def _tls_context(self) -> ssl.SSLContext | None:
        if self.config.security == "none":
            return None
        context = ssl.create_default_context()
        if self.config.ca_file:
            context.load_verify_locations(cafile=self.config.ca_file)
        return context

    def _failed(self, reason: str, permanent: bool) -> Delivery:
        return Delivery(ok=False, error=f"email: sending failed: {reason}", permanent=permanent)


# ---------------------------------------------------------------------------- rendering


def _mention_lines(alert: Alert) -> list[tuple[str, str]]:
    """(label, untrusted value) rows describing the mention."""
    mention = alert.mention or {}
    signals = stored_signals(mention)
    history = author_note(signals)
    author = (mention.get("author") or "unknown") + (f" ({history})" if history else "")
    rows = [
        ("Why", " / ".join(alert.reasons)),
        ("Source", f"{mention.get('source', '')} ({mention.get('platform', '')})"),
        ("Author", author),
        ("Language", language_name(mention.get("language", ""))),
    ]
    notes = signal_notes(signals)
    if notes:
        rows.append(("Signals", "; ".join(notes) + " (context only)"))
    note = language_note(mention.get("language", ""))
    if note:
        rows.append(("Note", note))
    state = mention.get("state", "open")
    rows.append(("State", f"{state} (by {mention.get('state_by', '')})"))
    if alert.people:
        rows.append(
            (
                "Answer",
                f"within {alert.body.get('reply_within', '?')}: "
                + ", ".join(p.name or p.key for p in alert.people),
            )
        )
    return rows


def render_text(alert: Alert) -> str:
    lines = [terminal_safe(alert.title), ""]
    if alert.kind in ("mention", "followup") and alert.mention:
        mention = alert.mention
        lines += [f"{label}: {terminal_safe(value)}" for label, value in _mention_lines(alert)]
        text, _spans = snippet(mention, 1200)
        lines += ["", text, ""]
        url = safe_url(mention.get("url"))
        if url:
            lines.append(f"Open: {url}")
        lines.append(
            f"Mention id {mention.get('id')}: monitor ack {mention.get('id')} / "
            f"monitor answer {mention.get('id')} --link URL"
        )
    elif alert.kind == DIGEST_KIND:
        for heading, plain, items in sections(alert.body):
            if plain or items:
                lines += [heading, "-" * len(heading)]
                lines += [f"- {line}" for line in plain]
                lines += [f"- {_item_text(item)}" for item in items]
                lines.append("")
    else:
        lines += [terminal_safe(r) for r in alert.reasons if r]
        lines += [f"- {_item_text(item)}" for item in _group_items(alert)]
        if alert.people:
            lines.append("For: " + ", ".join(p.name or p.key for p in alert.people))
    return "\n".join(lines).rstrip() + "\n"


def render_html(alert: Alert) -> str:
    e = html.escape
    parts = [f"<h2>{e(terminal_safe(alert.title))}</h2>"]
    if alert.kind in ("mention", "followup") and alert.mention:
        mention = alert.mention
        rows = "".join(
            f"<tr><th align='left'>{e(label)}</th><td>{e(terminal_safe(value))}</td></tr>"
            for label, value in _mention_lines(alert)
        )
        parts.append(f"<table>{rows}</table>")
        text, spans = snippet(mention, 1200)
        quoted = "".join(
            f"<b>{e(piece)}</b>" if matched else e(piece)
            for piece, matched in split_spans(text, spans)
        ).replace("\n", "<br>")
        parts.append(f"<blockquote>{quoted}</blockquote>")
        url = safe_url(mention.get("url"))
        if url:
            parts.append(f'<p><a href="{e(url)}">Open the post</a></p>')
        parts.append(
            f"<p>{STATE_ICONS.get(mention.get('state', 'open'), '')} Mention id "
            f"{e(str(mention.get('id')))}: <code>monitor ack {e(str(mention.get('id')))}</code></p>"
        )
    elif alert.kind == DIGEST_KIND:
        for heading, plain, items in sections(alert.body):
            if plain or items:
                parts.append(f"<h3>{e(heading)}</h3><ul>")
                parts += [f"<li>{e(line)}</li>" for line in plain]
                parts += [f"<li>{_item_html(item)}</li>" for item in items]
                parts.append("</ul>")
    else:
        parts += [f"<p>{e(terminal_safe(r))}</p>" for r in alert.reasons if r]
        items = _group_items(alert)
        if items:
            parts.append("<ul>" + "".join(f"<li>{_item_html(i)}</li>" for i in items) + "</ul>")
        if alert.people:
            parts.append(f"<p>For: {e(', '.join(p.name or p.key for p in alert.people))}</p>")
    return "<!doctype html><html><body>" + "".join(parts) + "</body></html>"


def _group_items(alert: Alert) -> list[dict[str, Any]]:
    now = datetime.now(UTC)
    return [
        {**item, "title": f"{digest_line_text(item, 120)} — {age(item, now)} ago"}
        for item in alert.group
    ]


def _item_text(item: dict[str, Any]) -> str:
    text = digest_line_text(item, 160)
    url = safe_url(item.get("url"))
    suffix = f" (id {item['id']})" if "id" in item else ""
    return f"{text}{suffix}" + (f" <{url}>" if url else "")


def _item_html(item: dict[str, Any]) -> str:
    e = html.escape
    text = e(digest_line_text(item, 160))
    url = safe_url(item.get("url"))
    suffix = f" (id {item['id']})" if "id" in item else ""
    return (f'<a href="{e(url)}">{text}</a>' if url else text) + e(suffix)
