"""Slack sink: chat.postMessage with Block Kit, threads, chat.update; or an incoming webhook.
https://docs.slack.dev/reference/methods/chat.postMessage

With a bot token (``xoxb-``) alerts go to ``channel`` (or a watchlist's ``route.slack``);
escalations and follow-ups reply in the first alert's thread, and the first alert is
edited (chat.update) whenever the mention's state changes. With ``app_token`` (``xapp-``)
the messages carry buttons, handled over Socket Mode by ``alerts.slack_interactive``.
``webhook_url`` alone is the simpler mode: one message per alert, no threads or buttons.

Every message carries metadata with the alert's ``idempotency_key``: when a crash cut an
attempt short, ``send`` first looks for that message in the channel and posts only if it
is not there (``alerts.slack_history``).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import TYPE_CHECKING, Any, ClassVar

from pydantic import SecretStr, model_validator
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_async_handlers import (
    AsyncConnectionErrorRetryHandler,
    AsyncRateLimitErrorRetryHandler,
    AsyncServerErrorRetryHandler,
)
from slack_sdk.http_retry.builtin_interval_calculators import BackoffRetryIntervalCalculator
from slack_sdk.http_retry.request import HttpRequest
from slack_sdk.http_retry.response import HttpResponse
from slack_sdk.http_retry.state import RetryState
from slack_sdk.web.async_client import AsyncWebClient
from slack_sdk.webhook.async_client import AsyncWebhookClient

from alerts.base import Alert, AlertSink, Delivery, SinkConfig, SinkContext
from alerts.digest import DIGEST_KIND
from alerts.slack_blocks import (
    digest_blocks,
    fallback_text,
    group_blocks,
    mention_blocks,
    notice_blocks,
)
from alerts.slack_history import METADATA_EVENT_TYPE, find_posted

if TYPE_CHECKING:
    from alerts.slack_interactive import SlackInteractive
    from monitor.store import Store

log = logging.getLogger(__name__)

# Errors no retry can fix: the operator has to change the config or the Slack app.
PERMANENT_ERRORS = {
    "invalid_auth": "check alerts.slack.token (a bot token starting with xoxb-)",
    "not_authed": "set alerts.slack.token (a bot token starting with xoxb-)",
    "token_revoked": "the token was revoked; reinstall the Slack app and update alerts.slack.token",
    "account_inactive": "the bot user was deactivated; reinstall the Slack app",
    "missing_scope": "add the chat:write scope (see deploy/slack-app-manifest.yaml) and reinstall the app",
    "is_archived": "the channel is archived; pick another in alerts.slack.channel or route.slack",
    "message_not_found": "the alert message was deleted in Slack",
    "cant_update_message": "the message was not posted by this bot",
    "invalid_blocks": "this is a bug in brand-monitor's Block Kit; please report it",
}
NOTICE_ICONS = {
    "escalation": "⏰",
    "source_dark": "🔌",
    "source_recovered": "✅",
    "sink_down": "📭",
    "sink_up": "📬",
}


class ShortRateLimitRetryHandler(AsyncRateLimitErrorRetryHandler):
    """The SDK's 429 handler, for short waits only.

    It sleeps for Retry-After inside the call, but the outbox gives one send
    ``monitor.delivery.SEND_TIMEOUT_S``; a longer wait ends the call so the delivery goes
    back to the outbox with ``retry_after`` and is tried again exactly when Slack said."""

    def __init__(self, max_retry_count: int, max_wait_s: float) -> None:
        super().__init__(max_retry_count=max_retry_count)
        self.max_wait_s = max_wait_s

    async def _can_retry_async(
        self,
        *,
        state: RetryState,
        request: HttpRequest,
        response: HttpResponse | None = None,
        error: Exception | None = None,
    ) -> bool:
        if response is None or response.status_code != 429:
            return False
        wait = _retry_after(response.headers)
        return wait is None or wait.total_seconds() <= self.max_wait_s


class SlackConfig(SinkConfig):
    # Bot token (xoxb-…) of the Slack app; keep it in the environment: ${SLACK_BOT_TOKEN}.
    token: SecretStr | None = None
    # Default channel for alerts (#name or channel id); a watchlist's route.slack overrides it.
    channel: str = ""
    # Slack Web API base URL (change only for a proxy or tests).
    api_url: str = "https://slack.com/api/"
    # App-level token (xapp-…) with connections:write: enables buttons over Socket Mode.
    app_token: SecretStr | None = None
    # Incoming-webhook URL: the simpler mode without a bot (no threads, updates or buttons).
    webhook_url: SecretStr | None = None
    # Retries inside one delivery on 429 (Retry-After up to 5 s; a longer one is waited out
    # in the outbox), 500/503 and connection errors.
    max_retries: int = 3
    # Seconds to wait for Slack to answer one request.
    timeout: int = 15

    @model_validator(mode="after")
    def _one_mode(self) -> SlackConfig:
        has_token = bool(self.token and self.token.get_secret_value())
        has_hook = bool(self.webhook_url and self.webhook_url.get_secret_value())
        if self.enabled and not (has_token or has_hook):
            raise ValueError("set token (and channel) for the bot mode, or webhook_url")
        if self.enabled and has_token and not self.channel:
            raise ValueError("channel is required with a bot token (e.g. '#brand-alerts')")
        return self


class SlackSink(AlertSink):
    # Registry key and config section (`alerts.slack`).
    kind: ClassVar[str] = "slack"
    docs_url: ClassVar[str] = "https://docs.slack.dev/reference/methods/chat.postMessage"
    # Longest Retry-After waited inside one send; a longer one is waited in the outbox.
    max_inline_retry_after_s: ClassVar[float] = 5.0
    Config = SlackConfig
    config: SlackConfig

    def __init__(self, config: SlackConfig, context: SinkContext | None = None) -> None:
        super().__init__(config, context)
        self._client: AsyncWebClient | None = None
        self._webhook: AsyncWebhookClient | None = None
        self._buttons: SlackInteractive | None = None

    @property
    def interactive(self) -> bool:
        return bool(self.config.app_token and self.config.app_token.get_secret_value())

    @property
    def webhook_mode(self) -> bool:
        return not (self.config.token and self.config.token.get_secret_value())

    def retry_handlers(self) -> list[Any]:
        backoff = BackoffRetryIntervalCalculator(backoff_factor=0.5)
        retries = self.config.max_retries
        return [
            ShortRateLimitRetryHandler(retries, self.max_inline_retry_after_s),
            AsyncServerErrorRetryHandler(max_retry_count=retries, interval_calculator=backoff),
            AsyncConnectionErrorRetryHandler(max_retry_count=retries, interval_calculator=backoff),
        ]

    @property
    def client(self) -> AsyncWebClient:
        if self._client is None:
            token = self.config.token.get_secret_value() if self.config.token else None
            self._client = AsyncWebClient(
                token=token,
                base_url=self.config.api_url.rstrip("/") + "/",
                timeout=self.config.timeout,
                retry_handlers=self.retry_handlers(),
            )
        return self._client

    def describe(self) -> str:
        if self.webhook_mode:
            return "slack (incoming webhook)"
        buttons = ", buttons" if self.interactive else ""
        return f"slack ({self.config.channel}{buttons})"

    async def start_interactive(
        self, store: Store, on_change: Callable[[], Awaitable[Any]]
    ) -> None:
        """Buttons over Socket Mode, when both a bot token and an app token are set."""
        if not self.interactive or self.webhook_mode:
            return
        from alerts.slack_interactive import SlackInteractive  # it imports this module

        self._buttons = SlackInteractive(store, self.config, on_change)
        await self._buttons.start()

    async def stop_interactive(self) -> None:
        if self._buttons is not None:
            await self._buttons.stop()
            self._buttons = None

    # ------------------------------------------------------------------------ sending

    def render(self, alert: Alert) -> list[dict[str, Any]]:
        interactive = self.interactive and not self.webhook_mode
        if alert.kind in ("mention", "followup", "update"):
            return mention_blocks(alert, interactive=interactive)
        if alert.kind in ("storm", "batch"):
            return group_blocks(alert)
        if alert.kind == DIGEST_KIND:
            return digest_blocks(alert)
        return notice_blocks(alert, NOTICE_ICONS.get(alert.kind, "ℹ️"))

    async def send(self, alert: Alert) -> Delivery:
        blocks, text = self.render(alert), fallback_text(alert)
        if self.webhook_mode:
            return await self._send_webhook(alert, blocks, text)
        channel = alert.target or self.config.channel
        thread_channel, thread_ts = _split_ref(alert.thread_ref)
        if alert.interrupted_at is not None and alert.idempotency_key:
            found = await find_posted(self.client, alert, thread_channel or channel, thread_ts)
            if found is not None:
                return Delivery(ok=True, provider_id=found)
        arguments: dict[str, Any] = {
            "channel": thread_channel or channel,
            "text": text,
            "blocks": blocks,
            "unfurl_links": False,
            "unfurl_media": False,
            "link_names": False,  # never turn "@here" written in a post into a ping
            "parse": "none",
            "metadata": {
                "event_type": METADATA_EVENT_TYPE,
                "event_payload": {"outbox_id": alert.id, "key": alert.idempotency_key},
            },
        }
        if thread_ts:
            arguments["thread_ts"] = thread_ts
            # the backup hearing about it (step 2+) should also see it in the channel
            arguments["reply_broadcast"] = int(alert.body.get("step", 0)) >= 2
        try:
            response = await self.client.chat_postMessage(**arguments)
        except SlackApiError as exc:
            return self._failure("chat.postMessage", exc, channel)
        except Exception as exc:
            return _transient("chat.postMessage", exc)
        return Delivery(ok=True, provider_id=f"{response['channel']}:{response['ts']}")

    async def update(self, alert: Alert, provider_id: str) -> Delivery:
        channel, ts = _split_ref(provider_id)
        if self.webhook_mode or not ts:
            return Delivery(ok=True, provider_id=provider_id)  # nothing we can edit
        try:
            await self.client.chat_update(
                channel=channel, ts=ts, text=fallback_text(alert), blocks=self.render(alert)
            )
        except SlackApiError as exc:
            return self._failure("chat.update", exc, channel)
        except Exception as exc:
            return _transient("chat.update", exc)
        return Delivery(ok=True, provider_id=provider_id)

    async def _send_webhook(
        self, alert: Alert, blocks: list[dict[str, Any]], text: str
    ) -> Delivery:
        if self._webhook is None:
            assert self.config.webhook_url is not None
            self._webhook = AsyncWebhookClient(
                self.config.webhook_url.get_secret_value(),
                timeout=self.config.timeout,
                retry_handlers=self.retry_handlers(),
            )
        try:
            response = await self._webhook.send(text=text, blocks=blocks, unfurl_links=False)
        except Exception as exc:
            return _transient("incoming webhook", exc)
        if response.status_code == 200:
            return Delivery(ok=True, provider_id=f"webhook-{alert.id}")
        body = (response.body or "")[:200]
        permanent = response.status_code in (400, 403, 404, 410)
        hint = " — check alerts.slack.webhook_url" if permanent else ""
        return Delivery(
            ok=False,
            error=f"slack: incoming webhook failed: HTTP {response.status_code} {body}{hint}",
            permanent=permanent,
            retry_after=_retry_after(response.headers),
        )

    def _failure(self, method: str, exc: SlackApiError, channel: str) -> Delivery:
        response = exc.response
        error = str(response.get("error") or f"HTTP {response.status_code}")
        if error == "not_in_channel":
            return Delivery(
                ok=False,
                error=f"slack: {method} failed: not_in_channel — invite the bot to {channel}",
                retry_after=timedelta(minutes=5),
            )
        if error == "channel_not_found":
            return Delivery(
                ok=False,
                error=f"slack: {method} failed: channel_not_found — check alerts.slack.channel or "
                f"the watchlist's route.slack ({channel}); for a private channel invite the bot",
                permanent=True,
            )
        wait = _retry_after(response.headers)
        if error == "ratelimited" or response.status_code == 429:
            later = (
                f"retrying in {int(wait.total_seconds())}s as Slack asked" if wait else "retrying"
            )
            return Delivery(
                ok=False,
                error=f"slack: {method} failed: rate limited — {later} (Slack takes about one "
                "message per second per channel; alerts.batch groups bursts)",
                retry_after=wait,
            )
        if error in PERMANENT_ERRORS:
            return Delivery(
                ok=False,
                error=f"slack: {method} failed: {error} — {PERMANENT_ERRORS[error]}",
                permanent=True,
            )
        return Delivery(ok=False, error=f"slack: {method} failed: {error}", retry_after=wait)

    async def close(self) -> None:
        for client in (self._client, self._webhook):
            session = getattr(client, "session", None)
            if session is not None and not session.closed:
                await session.close()


def _split_ref(ref: str | None) -> tuple[str, str]:
    """Our provider id for Slack is "<channel id>:<ts>"."""
    if not ref or ":" not in ref:
        return "", ""
    channel, ts = ref.split(":", 1)
    return channel, ts


def _retry_after(headers: Any) -> timedelta | None:
    value = None
    for key in headers or {}:
        if key.lower() == "retry-after":
            value = headers[key]
            break
    if isinstance(value, list):
        value = value[0] if value else None
    try:
        return timedelta(seconds=int(value)) if value is not None else None
    except (TypeError, ValueError):
        return None


def _transient(method: str, exc: Exception) -> Delivery:
    reason = str(exc) or exc.__class__.__name__
    return Delivery(
        ok=False,
        error=f"slack: {method} failed: cannot reach Slack ({reason}) — check the network "
        "and alerts.slack.api_url",
    )
