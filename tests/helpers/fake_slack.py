"""A local stand-in for the Slack Web API and the SMTP server, for alert tests."""

from __future__ import annotations

import json
import socket
import ssl
import time
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

from aiohttp import web

from tests.helpers.servers import LocalServer


@dataclass
class SlackCall:
    method: str
    args: dict[str, Any]
    raw: bytes


@dataclass
class PostedMessage:
    channel: str
    ts: str
    text: str
    thread_ts: str | None
    metadata: dict[str, Any] | None
    # When the fake received it. ``ts`` values keep a fixed, readable epoch
    # (1700000000.000001, ...), so the history methods' oldest/latest are compared with
    # this instead: the real post time, which is what a real Slack ts encodes.
    posted_at: float


@dataclass
class FakeSlack:
    """Records every call; answers like Slack (`ok`, `error`, `ts`); scripted failures.

    ``fail(method, (429, {"Retry-After": "0"}), (500, {}), ("channel_not_found", {}))``
    makes the next calls of ``method`` answer that way, then succeed again.

    Posted messages are kept: conversations.history and conversations.replies page through
    them newest first, within oldest/latest, with metadata only when asked for it
    (``include_all_metadata``), as Slack does; conversations.list knows one channel,
    ``#<channel_name>`` = C0ALERTS, where every message lands."""

    server: LocalServer
    calls: list[SlackCall] = field(default_factory=list)
    script: dict[str, list[tuple[int | str, dict[str, str]]]] = field(default_factory=dict)
    posted: int = 0
    messages: list[PostedMessage] = field(default_factory=list)
    channel_name: str = "brand-alerts"

    def __post_init__(self) -> None:
        for method in (
            "chat.postMessage",
            "chat.update",
            "auth.test",
            "views.open",
            "apps.connections.open",
            "conversations.history",
            "conversations.replies",
            "conversations.list",
        ):
            self.server.route(f"/api/{method}", self._handler(method))

    @property
    def api_url(self) -> str:
        return self.server.url("/api/")

    def fail(self, method: str, *answers: tuple[int | str, dict[str, str]]) -> None:
        self.script.setdefault(method, []).extend(answers)

    def of(self, method: str) -> list[SlackCall]:
        return [c for c in self.calls if c.method == method]

    def _handler(self, method: str) -> Any:
        async def handle(request: web.Request) -> web.Response:
            raw = await request.read()
            if request.content_type == "application/json":
                args = json.loads(raw or b"{}")
            else:
                args = dict(parse_qsl(raw.decode()))
            args = {**request.query, **args}  # the history methods are GETs
            self.calls.append(SlackCall(method, args, raw))
            queued = self.script.get(method) or []
            if queued:
                status, headers = queued.pop(0)
                if isinstance(status, str):
                    return web.json_response({"ok": False, "error": status})
                return web.json_response(
                    {"ok": False, "error": "ratelimited" if status == 429 else "internal_error"},
                    status=status,
                    headers=headers,
                )
            return web.json_response(self._answer(method, args))

        return handle

    def _answer(self, method: str, args: dict[str, Any]) -> dict[str, Any]:
        if method == "chat.postMessage":
            self.posted += 1
            ts = f"1700000000.{self.posted:06d}"
            metadata = args.get("metadata")
            self.messages.append(
                PostedMessage(
                    "C0ALERTS",
                    ts,
                    str(args.get("text", "")),
                    args.get("thread_ts"),
                    json.loads(metadata) if isinstance(metadata, str) else metadata,
                    time.time(),
                )
            )
            return {"ok": True, "channel": "C0ALERTS", "ts": ts}
        if method in ("conversations.history", "conversations.replies"):
            return self._history(method, args)
        if method == "conversations.list":
            return {
                "ok": True,
                "channels": [{"id": "C0ALERTS", "name": self.channel_name, "is_private": False}],
                "response_metadata": {"next_cursor": ""},
            }
        if method == "chat.update":
            return {"ok": True, "channel": args.get("channel"), "ts": args.get("ts")}
        if method == "auth.test":
            return {"ok": True, "user_id": "UBOT", "bot_id": "BBOT", "team_id": "T111"}
        if method == "apps.connections.open":
            return {"ok": False, "error": "invalid_auth"}
        return {"ok": True}

    def _history(self, method: str, args: dict[str, Any]) -> dict[str, Any]:
        if not str(args.get("channel", "")).startswith("C"):
            return {"ok": False, "error": "channel_not_found"}  # a #name is not an id
        inclusive = args.get("inclusive") in ("1", "true", True)
        oldest = float(args.get("oldest") or 0)
        latest = float(args.get("latest") or time.time() + 1)
        found = [
            m
            for m in self.messages
            if m.channel == args["channel"]
            and (oldest <= m.posted_at <= latest if inclusive else oldest < m.posted_at < latest)
            and (
                m.thread_ts is None
                if method == "conversations.history"
                else args.get("ts") in (m.thread_ts, m.ts)
            )
        ]
        found.sort(key=lambda m: m.posted_at, reverse=True)
        start = int(args.get("cursor") or 0)
        limit = int(args.get("limit") or 100)
        page = found[start : start + limit]
        more = start + limit < len(found)
        with_metadata = args.get("include_all_metadata") in ("1", "true", True)
        return {
            "ok": True,
            "messages": [
                {"type": "message", "ts": m.ts, "text": m.text}
                | ({"metadata": m.metadata} if with_metadata and m.metadata else {})
                for m in page
            ],
            "has_more": more,
            "response_metadata": {"next_cursor": str(start + limit) if more else ""},
        }


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class SmtpServer:
    """A real aiosmtpd server on localhost with STARTTLS (trustme certificate) and login;
    ``implicit_tls=True`` speaks TLS from the first byte instead, like port 465."""

    def __init__(self, tmp: Path, port: int | None = None, *, implicit_tls: bool = False) -> None:
        import trustme

        self.port = port or free_port()
        self.implicit_tls = implicit_tls
        self.messages: list[EmailMessage] = []
        self.envelopes: list[Any] = []
        ca = trustme.CA()
        cert = ca.issue_cert("127.0.0.1", "localhost")
        self.ca_file = str(tmp / "smtp-ca.pem")
        ca.cert_pem.write_to_path(self.ca_file)
        self.tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        cert.configure_cert(self.tls)
        self.controller: Any = None

    def start(self) -> SmtpServer:
        from aiosmtpd.controller import Controller
        from aiosmtpd.smtp import AuthResult

        server = self

        class Handler:
            async def handle_DATA(self, _server: Any, _session: Any, envelope: Any) -> str:
                server.envelopes.append(envelope)
                server.messages.append(
                    message_from_bytes(envelope.original_content, policy=policy.default)  # type: ignore[arg-type]
                )
                return "250 OK"

        def authenticator(
            _server: Any, _session: Any, _envelope: Any, _mechanism: str, login: Any
        ) -> AuthResult:
            ok = getattr(login, "login", None) == b"alerts" and login.password == b"s3cret"
            return AuthResult(success=ok, handled=False)

        # aiosmtpd counts only STARTTLS as TLS for AUTH; with implicit TLS the whole
        # connection is encrypted, so AUTH is offered without that check.
        tls: dict[str, Any] = (
            {"ssl_context": self.tls, "auth_require_tls": False}
            if self.implicit_tls
            else {"tls_context": self.tls, "require_starttls": True, "auth_require_tls": True}
        )
        self.controller = Controller(
            Handler(), hostname="127.0.0.1", port=self.port, authenticator=authenticator, **tls
        )
        self.controller.start()
        return self

    def stop(self) -> None:
        if self.controller is not None:
            self.controller.stop()
            self.controller = None

    def config(self, **overrides: Any) -> dict[str, Any]:
        return {
            "host": "127.0.0.1",
            "port": self.port,
            "security": "tls" if self.implicit_tls else "starttls",
            "username": "alerts",
            "password": "s3cret",
            "sender": "Brand monitor <alerts@acme.example>",
            "to": ["support@acme.example"],
            "ca_file": self.ca_file,
            "timeout": "5s",
            **overrides,
        }
