"""A local stand-in for the Slack Web API and the SMTP server, for alert tests."""

from __future__ import annotations

import json
import socket
import ssl
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
class FakeSlack:
    """Records every call; answers like Slack (`ok`, `error`, `ts`); scripted failures.

    ``fail(method, (429, {"Retry-After": "0"}), (500, {}), ("channel_not_found", {}))``
    makes the next calls of ``method`` answer that way, then succeed again."""

    server: LocalServer
    calls: list[SlackCall] = field(default_factory=list)
    script: dict[str, list[tuple[int | str, dict[str, str]]]] = field(default_factory=dict)
    posted: int = 0

    def __post_init__(self) -> None:
        for method in (
            "chat.postMessage",
            "chat.update",
            "auth.test",
            "views.open",
            "apps.connections.open",
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
            return {"ok": True, "channel": "C0ALERTS", "ts": f"1700000000.{self.posted:06d}"}
        if method == "chat.update":
            return {"ok": True, "channel": args.get("channel"), "ts": args.get("ts")}
        if method == "auth.test":
            return {"ok": True, "user_id": "UBOT", "bot_id": "BBOT", "team_id": "T111"}
        if method == "apps.connections.open":
            return {"ok": False, "error": "invalid_auth"}
        return {"ok": True}


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
