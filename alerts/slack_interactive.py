"""Slack buttons on alert messages, over Socket Mode (no public URL needed on a VPS).
https://docs.slack.dev/tools/bolt-python/concepts/socket-mode

Acknowledge, Assign to me, Mark answered (a small dialog takes the reply link), Resolve,
Not relevant, and a "Wrong sentiment" menu. Every press is recorded with the Slack
member id and time in the events log (``slack:U123``); the alert message is redrawn
by the next ``message_updates`` pass, which ``after_change`` triggers at once.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

from slack_bolt.async_app import AsyncApp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient
from sqlalchemy import insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from alerts.slack import SlackConfig
from alerts.slack_blocks import BUTTONS, SENTIMENT_SELECT
from alerts.text import safe_url
from monitor.store import Store, events
from monitor.store import mentions as mention_store
from monitor.store.tables import corrections, mentions

log = logging.getLogger(__name__)

ANSWER_DIALOG = "bm_answered_dialog"
# Longest wait for the Socket Mode connection at start-up.
CONNECT_TIMEOUT_S = 15.0
LINK_BLOCK, LINK_INPUT = "reply_link", "url"
SENTIMENTS = ("negative", "neutral", "positive")


async def record_correction(
    connection: AsyncConnection,
    mention_id: int,
    field: str,
    new_value: str,
    actor: str,
    now: datetime,
) -> None:
    """A person's correction of a judgement: a ``corrections`` row, the mention updated,
    and an event. Prefers the classifier's own implementation when it is installed."""
    try:
        from monitor.classify.corrections import (  # type: ignore[import-not-found]
            record_correction as classifier_record,
        )
    except ImportError:
        classifier_record = None
    if classifier_record is not None:
        await classifier_record(connection, mention_id, field, new_value, actor, now)
        return
    row = (await connection.execute(select(mentions).where(mentions.c.id == mention_id))).first()
    if row is None:
        raise mention_store.StateChangeError(f"no mention with id {mention_id}")
    old_value = str(getattr(row, field))
    await connection.execute(
        insert(corrections).values(
            mention_id=mention_id,
            field=field,
            old_value=old_value,
            new_value=new_value,
            text=row.text or row.title,
            language=row.language,
            actor=actor,
            at=now,
        )
    )
    await connection.execute(
        update(mentions).where(mentions.c.id == mention_id).values({field: new_value})
    )
    await events.record(
        connection,
        "corrected",
        actor,
        mention_id=mention_id,
        at=now,
        data={"field": field, "from": old_value, "to": new_value},
    )


class SlackInteractive:
    """The bolt app behind the buttons; ``dispatch`` is what Socket Mode calls."""

    def __init__(
        self,
        store: Store,
        config: SlackConfig,
        after_change: Callable[[], Awaitable[Any]] | None = None,
    ) -> None:
        self.store = store
        self.config = config
        self.after_change = after_change
        self._tasks: set[asyncio.Task[Any]] = set()
        self._handler: Any = None
        token = config.token.get_secret_value() if config.token else None
        self.client = AsyncWebClient(token=token, base_url=config.api_url.rstrip("/") + "/")
        self.app = AsyncApp(
            client=self.client,
            request_verification_enabled=False,  # Socket Mode: Slack authenticated the socket
            process_before_response=True,
            logger=log,
        )
        self._register()

    def _register(self) -> None:
        for action_id, (_label, state) in BUTTONS.items():
            if action_id == "bm_assign":
                self.app.action(action_id)(self._assign)
            elif action_id == "bm_answered":
                self.app.action(action_id)(self._open_answer_dialog)
            else:
                self.app.action(action_id)(self._state_handler(state))
        self.app.action(SENTIMENT_SELECT)(self._wrong_sentiment)
        self.app.view(ANSWER_DIALOG)(self._answer_submitted)

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        """Connect over Socket Mode; a failure is logged and buttons stay inactive."""
        from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler

        assert self.config.app_token is not None
        handler = AsyncSocketModeHandler(
            self.app, self.config.app_token.get_secret_value(), web_client=self.client
        )
        try:
            # Ask for the socket URL first: the SDK's connect() retries a refused token
            # forever, which would hold up the daemon's start for good.
            handler.client.wss_uri = await handler.client.issue_new_wss_url()
            await asyncio.wait_for(handler.connect_async(), timeout=CONNECT_TIMEOUT_S)
        except Exception as exc:
            log.error(
                "slack: buttons unavailable, Socket Mode did not connect (%s) — check "
                "alerts.slack.app_token (xapp-…, connections:write) and that Socket Mode is "
                "on in the app settings",
                _reason(exc),
            )
            await handler.close_async()
            return
        self._handler = handler

    async def stop(self) -> None:
        if self._handler is not None:
            await self._handler.close_async()
            self._handler = None
        await self.idle()

    async def idle(self) -> None:
        """Wait for the message redraws started by button presses."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def dispatch(self, payload: dict[str, Any]) -> int:
        """Handle one interaction payload as Socket Mode delivers it; return the HTTP-like status."""
        from slack_bolt.request.async_request import AsyncBoltRequest

        response = await self.app.async_dispatch(AsyncBoltRequest(body=payload, mode="socket_mode"))
        return response.status

    # ------------------------------------------------------------------- handlers

    def _state_handler(self, state: str) -> Callable[..., Awaitable[None]]:
        async def handle(ack: Any, body: dict[str, Any], action: dict[str, Any]) -> None:
            await ack()
            reason = "not relevant (Slack)" if state == "ignored" else ""
            await self._change(body, action["value"], state, reason=reason)

        return handle

    async def _change(
        self,
        body: dict[str, Any],
        value: str,
        state: str,
        *,
        reason: str = "",
        answer_url: str | None = None,
    ) -> None:
        actor = _actor(body)
        try:
            async with self.store.begin() as connection:
                await mention_store.set_state(
                    connection,
                    int(value),
                    state,
                    actor=actor,
                    now=datetime.now(UTC),
                    reason=reason,
                    answer_url=answer_url,
                )
        except (ValueError, mention_store.StateChangeError) as exc:
            log.warning("slack: button %s by %s ignored: %s", state, actor, exc)
            return
        self._changed()

    async def _assign(self, ack: Any, body: dict[str, Any], action: dict[str, Any]) -> None:
        await ack()
        actor, now = _actor(body), datetime.now(UTC)
        mention_id = int(action["value"])
        async with self.store.begin() as connection:
            row = await mention_store.get(connection, mention_id)
            if row is None:
                log.warning("slack: assign by %s ignored: no mention %s", actor, mention_id)
                return
            await connection.execute(
                update(mentions).where(mentions.c.id == mention_id).values(assignee=actor)
            )
            await events.record(
                connection,
                "assigned",
                actor,
                mention_id=mention_id,
                at=now,
                data={"from": row["assignee"], "to": actor},
            )
            if row["state"] == "open":  # taking it on stops the escalation ladder
                await mention_store.set_state(
                    connection, mention_id, "acknowledged", actor=actor, now=now
                )
        self._changed()

    async def _open_answer_dialog(
        self, ack: Any, body: dict[str, Any], action: dict[str, Any], client: AsyncWebClient
    ) -> None:
        await ack()
        await client.views_open(
            trigger_id=body["trigger_id"],
            view={
                "type": "modal",
                "callback_id": ANSWER_DIALOG,
                "private_metadata": str(int(action["value"])),
                "title": {"type": "plain_text", "text": "Mark answered"},
                "submit": {"type": "plain_text", "text": "Answered"},
                "close": {"type": "plain_text", "text": "Cancel"},
                "blocks": [
                    {
                        "type": "input",
                        "block_id": LINK_BLOCK,
                        "optional": True,
                        "label": {"type": "plain_text", "text": "Link to the reply (optional)"},
                        "element": {"type": "url_text_input", "action_id": LINK_INPUT},
                    }
                ],
            },
        )

    async def _answer_submitted(self, ack: Any, body: dict[str, Any], view: dict[str, Any]) -> None:
        values = view.get("state", {}).get("values", {})
        link = (values.get(LINK_BLOCK, {}).get(LINK_INPUT, {}) or {}).get("value") or None
        if link and safe_url(link) is None:
            await ack(response_action="errors", errors={LINK_BLOCK: "Use an http(s) link"})
            return
        await ack()
        await self._change(body, view["private_metadata"], "answered", answer_url=link)

    async def _wrong_sentiment(
        self, ack: Any, body: dict[str, Any], action: dict[str, Any]
    ) -> None:
        await ack()
        value = (action.get("selected_option") or {}).get("value", "")
        mention_id, _, label = value.partition(":")
        if label not in SENTIMENTS or not mention_id.isdigit():
            log.warning("slack: unexpected sentiment choice %r", value)
            return
        async with self.store.begin() as connection:
            await record_correction(
                connection, int(mention_id), "sentiment", label, _actor(body), datetime.now(UTC)
            )
        self._changed()

    def _changed(self) -> None:
        if self.after_change is None:
            return
        task = asyncio.create_task(self.after_change())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)


def _actor(body: dict[str, Any]) -> str:
    user = body.get("user") or {}
    return f"slack:{user.get('id', 'unknown')}"


def _reason(exc: Exception) -> str:
    """Slack's error code when Slack answered (invalid_auth, ...), else the first line."""
    if isinstance(exc, SlackApiError):
        return str(exc.response.get("error") or exc.response.status_code)
    text = str(exc).strip()
    return text.splitlines()[0] if text else exc.__class__.__name__
