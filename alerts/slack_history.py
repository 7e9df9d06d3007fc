"""After a crash: find the Slack message an interrupted attempt may already have posted.
https://docs.slack.dev/reference/methods/conversations.history

``SlackSink`` posts every alert with message metadata (``METADATA_EVENT_TYPE``, the
outbox id and ``Alert.idempotency_key``,
https://docs.slack.dev/messaging/message-metadata). When the outbox says a crash cut an
attempt short (``Alert.interrupted_at``), the sink first looks for a message with that key
around the attempt, and posts only if there is none. Reading history needs the
channels:history / groups:history scopes (and channels:read / groups:read to turn a
#name into a channel id); without them the alert is posted again, as before.
"""

from __future__ import annotations

import logging
import re
from datetime import timedelta

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from alerts.base import Alert

# Part of the Slack sink, and logged as it.
log = logging.getLogger("alerts.slack")

# The event_type of the metadata SlackSink puts on every alert.
METADATA_EVENT_TYPE = "brand_monitor_alert"
# Where an interrupted alert can be: its attempt started at Alert.interrupted_at and the
# outbox gives one send 30 s; the margins cover clock skew between this host and Slack.
LOOKUP_BEFORE = timedelta(minutes=2)
LOOKUP_AFTER = timedelta(minutes=3)
# Messages read per history page, and pages read at most, looking for it.
LOOKUP_PAGE_MESSAGES = 15
LOOKUP_MAX_PAGES = 10
# conversations.list pages read at most to turn a #name into a channel id.
CHANNEL_LIST_MAX_PAGES = 20
_CHANNEL_ID = re.compile(r"^[CGD][A-Z0-9]{6,}$")
# What to change when reading history fails (the alert is then posted again).
LOOKUP_HINTS = {
    "missing_scope": "add the channels:history, groups:history, channels:read and groups:read "
    "scopes (deploy/slack-app-manifest.yaml) and reinstall the app",
    "not_in_channel": "invite the bot to the channel",
    "channel_not_found": "use the channel id (C…) in alerts.slack.channel, or invite the bot",
}


async def find_posted(
    client: AsyncWebClient, alert: Alert, channel: str, thread_ts: str
) -> str | None:
    """``channel:ts`` of the message an interrupted attempt already posted, else None.

    Reads the channel's history (the thread's replies for a threaded alert) around the
    interrupted attempt for a message whose metadata carries this alert's key. When
    reading fails, the alert is posted again — at-least-once, as without the look-up —
    and the log says what to change."""
    assert alert.interrupted_at is not None
    window = {
        "oldest": f"{(alert.interrupted_at - LOOKUP_BEFORE).timestamp():.6f}",
        "latest": f"{(alert.interrupted_at + LOOKUP_AFTER).timestamp():.6f}",
        "inclusive": True,
        "include_all_metadata": True,
        "limit": LOOKUP_PAGE_MESSAGES,
    }
    method = "conversations.replies" if thread_ts else "conversations.history"
    try:
        channel_id = await resolve_channel(client, channel)
        cursor = None
        for _page in range(LOOKUP_MAX_PAGES):
            if thread_ts:
                response = await client.conversations_replies(
                    channel=channel_id, ts=thread_ts, cursor=cursor, **window
                )
            else:
                response = await client.conversations_history(
                    channel=channel_id, cursor=cursor, **window
                )
            for message in response.get("messages") or []:
                metadata = message.get("metadata") or {}
                payload = metadata.get("event_payload") or {}
                if (
                    metadata.get("event_type") == METADATA_EVENT_TYPE
                    and payload.get("key") == alert.idempotency_key
                ):
                    log.info(
                        "slack: alert %s was already posted before the restart (ts %s); "
                        "not posting it again",
                        alert.id,
                        message.get("ts"),
                    )
                    return f"{channel_id}:{message['ts']}"
            cursor = (response.get("response_metadata") or {}).get("next_cursor")
            if not response.get("has_more") or not cursor:
                return None
        log.warning(
            "slack: alert %s not found in the %d newest messages around its interrupted "
            "attempt in %s; posting it again, so it may appear twice",
            alert.id,
            LOOKUP_PAGE_MESSAGES * LOOKUP_MAX_PAGES,
            channel,
        )
    except SlackApiError as exc:
        error = str(exc.response.get("error") or f"HTTP {exc.response.status_code}")
        hint = LOOKUP_HINTS.get(error, "")
        log.warning(
            "slack: alert %s may already be in %s from before the restart, but %s failed "
            "(%s%s); posting it again, so it may appear twice",
            alert.id,
            channel,
            method,
            error,
            f" — {hint}" if hint else "",
        )
    except Exception as exc:
        log.warning(
            "slack: alert %s may already be in %s from before the restart, but looking "
            "for it failed (%s); posting it again, so it may appear twice",
            alert.id,
            channel,
            str(exc) or exc.__class__.__name__,
        )
    return None


async def resolve_channel(client: AsyncWebClient, channel: str) -> str:
    """History methods take a channel id, not a #name: resolve it (conversations.list)."""
    name = channel.lstrip("#")
    if _CHANNEL_ID.match(name):
        return name
    cursor = None
    for _page in range(CHANNEL_LIST_MAX_PAGES):
        response = await client.conversations_list(
            types="public_channel,private_channel",
            exclude_archived=True,
            limit=200,
            cursor=cursor,
        )
        for item in response.get("channels") or []:
            if item.get("name") == name:
                return str(item["id"])
        cursor = (response.get("response_metadata") or {}).get("next_cursor")
        if not cursor:
            break
    raise LookupError(f"no channel #{name} is visible to the bot")
