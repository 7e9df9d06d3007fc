"""Slack Block Kit for each kind of alert, with everything from a mention escaped.

Slack's mrkdwn turns ``<!channel>``, ``<@U123>`` and ``<http://x|label>`` into pings and
disguised links; escaping ``&``, ``<`` and ``>`` makes them plain text. Links we add
ourselves go through ``safe_url`` so a URL cannot close the ``<…|…>`` it sits in.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from alerts.base import Alert
from alerts.context import author_note, signal_notes, stored_signals
from alerts.text import (
    STATE_ICONS,
    actor_member,
    age,
    digest_line_text,
    language_name,
    language_note,
    safe_url,
    slack_member,
    snippet,
    split_spans,
    terminal_safe,
)

SECTION_LIMIT = 2900  # Slack allows 3000 characters per section text
FALLBACK_LIMIT = 300

# action_id of each button → (label, the mention state it sets or "" for a dialog/select)
BUTTONS = {
    "bm_ack": ("Acknowledge", "acknowledged"),
    "bm_assign": ("Assign to me", ""),
    "bm_answered": ("Mark answered…", "answered"),
    "bm_resolve": ("Resolve", "resolved"),
    "bm_ignore": ("Not relevant", "ignored"),
}
SENTIMENT_SELECT = "bm_sentiment"


def escape(text: Any) -> str:
    """Untrusted text → inert mrkdwn: no pings, no links, no control characters."""
    cleaned = terminal_safe(str(text))
    return cleaned.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def link(url: str | None, label: str) -> str:
    safe = safe_url(url)
    return f"<{safe}|{escape(label)}>" if safe else ""


def person(p: Any) -> str:
    member = slack_member(p.slack)
    return f"<@{member}>" if member else escape(p.name or p.key)


def people_line(alert: Alert) -> str:
    return " ".join(person(p) for p in alert.people)


def highlighted_snippet(mention: dict[str, Any], limit: int = 600) -> str:
    text, spans = snippet(mention, limit)
    out = []
    for piece, matched in split_spans(text, spans):
        escaped = escape(piece)
        out.append(f"*{escaped.strip()}*" if matched and escaped.strip() else escaped)
    return ">" + "".join(out).replace("\n", "\n>")


def _section(text: str) -> dict[str, Any]:
    if len(text) > SECTION_LIMIT:
        text = text[: SECTION_LIMIT - 1] + "…"
    return {"type": "section", "text": {"type": "mrkdwn", "text": text}}


def _context(*parts: str) -> dict[str, Any]:
    return {
        "type": "context",
        "elements": [{"type": "mrkdwn", "text": p[:SECTION_LIMIT]} for p in parts if p],
    }


def state_line(mention: dict[str, Any]) -> str:
    state = mention.get("state", "open")
    icon = STATE_ICONS.get(state, "")
    if state == "open":
        return f"{icon} *open*"
    actor = mention.get("state_by", "")
    member = actor_member(actor)
    who = f"<@{member}>" if member else escape(actor)
    when = mention.get("state_at")
    at = f" at {when.astimezone(UTC):%H:%M} UTC" if isinstance(when, datetime) else ""
    extra = ""
    answer = safe_url(mention.get("answer_url"))
    if state == "answered" and answer:
        extra = f" — <{answer}|reply>"
    assignee = mention.get("assignee")
    if assignee:
        assigned = actor_member(assignee)
        extra += f" · assigned to {f'<@{assigned}>' if assigned else escape(assignee)}"
    return f"{icon} *{state}* by {who}{at}{extra}"


def mention_blocks(alert: Alert, *, interactive: bool) -> list[dict[str, Any]]:
    mention = alert.mention or {}
    signals = stored_signals(mention)
    history = author_note(signals)
    author = escape(mention.get("author") or "unknown")
    author_link = link(mention.get("author_url"), mention.get("author") or "")
    fields = [
        f"*Source*\n{escape(mention.get('source', ''))} ({escape(mention.get('platform', ''))})",
        f"*Author*\n{author_link or author}" + (f" · {escape(history)}" if history else ""),
        f"*Why*\n{escape(' / '.join(alert.reasons))}",
        f"*Language*\n{escape(language_name(mention.get('language', '')))}",
    ]
    blocks: list[dict[str, Any]] = [
        _section(f"*{escape(alert.title)}*"),
        {"type": "section", "fields": [{"type": "mrkdwn", "text": f} for f in fields]},
        _section(highlighted_snippet(mention)),
    ]
    notes = signal_notes(signals)
    if notes:  # context for whoever answers; the alert itself went out as usual
        blocks.append(_context("🔎 " + escape(" · ".join(notes))))
    note = language_note(mention.get("language", ""))
    owner = people_line(alert)
    open_link = link(mention.get("url"), "Open the post ↗")
    blocks.append(
        _context(
            open_link,
            f"🌐 {escape(note)}" if note else "",
            f"answer within {escape(alert.body.get('reply_within', ''))}: {owner}" if owner else "",
            f"id {mention.get('id')} · `monitor ack {mention.get('id')}`",
        )
    )
    blocks.append(_context(state_line(mention)))
    if interactive and mention.get("state") not in ("resolved", "ignored"):
        blocks.append(action_block(int(mention.get("id", 0))))
    return blocks


def action_block(mention_id: int) -> dict[str, Any]:
    elements: list[dict[str, Any]] = [
        {
            "type": "button",
            "action_id": action_id,
            "text": {"type": "plain_text", "text": label},
            "value": str(mention_id),
            **({"style": "primary"} if action_id == "bm_ack" else {}),
        }
        for action_id, (label, _state) in BUTTONS.items()
    ]
    elements.append(
        {
            "type": "static_select",
            "action_id": SENTIMENT_SELECT,
            "placeholder": {"type": "plain_text", "text": "Wrong sentiment"},
            "options": [
                {
                    "text": {"type": "plain_text", "text": f"It is {label}"},
                    "value": f"{mention_id}:{label}",
                }
                for label in ("negative", "neutral", "positive")
            ],
        }
    )
    return {"type": "actions", "block_id": f"mention:{mention_id}", "elements": elements}


def group_blocks(alert: Alert) -> list[dict[str, Any]]:
    """Storm and batch alerts: one message listing the mentions."""
    now = datetime.now(UTC)
    lines = []
    for item in alert.group:
        label = digest_line_text(item, 120)
        target = link(item.get("url"), label) or escape(label)
        lines.append(
            f"• {target} — {escape(item.get('author') or '?')}, {age(item, now)} ago "
            f"(id {item.get('id')})"
        )
    listed = alert.body.get("mention_ids", [])
    total = int(alert.body.get("mention_count") or len(listed) or len(alert.group))
    more = total - len(alert.group)
    if more > 0:
        lines.append(f"…and {more} more: `monitor mentions --state open`")
    blocks = [
        _section(f"*{escape(alert.title)}*"),
        _section(escape(" / ".join(alert.reasons))),
        _section("\n".join(lines) or "(no mentions)"),
    ]
    if alert.people:
        blocks.append(_context(people_line(alert)))
    return blocks


def notice_blocks(alert: Alert, icon: str) -> list[dict[str, Any]]:
    """Escalations, source and sink conditions: a title, reasons and who to tell."""
    parts = [f"{icon} *{escape(alert.title)}*"]
    parts += [escape(reason) for reason in alert.reasons if reason]
    if alert.people:
        parts.append(people_line(alert))
    return [_section("\n".join(parts))]


def fallback_text(alert: Alert) -> str:
    """Notification text: the title and the start of the mention, escaped like the rest."""
    text = alert.title
    if alert.mention:
        text += ": " + digest_line_text(alert.mention, FALLBACK_LIMIT)
    if alert.kind == "escalation" and alert.people:
        return f"{escape(text)} {people_line(alert)}"
    return escape(text)


def digest_blocks(alert: Alert) -> list[dict[str, Any]]:
    from alerts.digest import sections

    blocks = [_section(f"📊 *{escape(alert.title)}*")]
    for heading, lines, items in sections(alert.body):
        if not lines and not items:
            continue
        text = [f"*{escape(heading)}*", *(f"• {escape(line)}" for line in lines)]
        for item in items:
            label = digest_line_text(item, 120)
            target = link(item.get("url"), label) or escape(label)
            suffix = f" (id {item['id']})" if "id" in item else ""
            text.append(f"• {target}{suffix}")
        blocks.append(_section("\n".join(text)))
    return blocks[:50]
