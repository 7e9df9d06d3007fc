"""Email sink against a real aiosmtpd server with STARTTLS and login (trustme certificate)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from alerts.email import EmailConfig, EmailSink, header_safe
from tests.helpers.fake_slack import SmtpServer
from tests.test_slack import alert, hostile_mention


@pytest.fixture
def smtp(tmp_path: Path) -> Iterator[SmtpServer]:
    server = SmtpServer(tmp_path).start()
    yield server
    server.stop()


async def test_starttls_login_multipart_and_inert_content(smtp: SmtpServer) -> None:
    mention = hostile_mention(
        title="Acme Cloud\r\nBcc: victim@evil.test\r\nX-Injected: yes",
        url="javascript:alert(1)",
        text="<img src=x onerror=alert(1)> acme cloud <a href='https://evil.test'>login</a>",
        spans=[],
    )
    sink = EmailSink(EmailConfig(**smtp.config()))
    delivery = await sink.send(alert(mention=mention, people=[]))
    assert (
        delivery.ok and delivery.provider_id and delivery.provider_id.endswith(".bm1@acme.example>")
    )
    (message,) = smtp.messages
    assert smtp.envelopes[0].rcpt_tos == ["support@acme.example"]
    assert message["Bcc"] is None and message["X-Injected"] is None
    assert "\n" not in str(message["Subject"]) and "Bcc: victim" in str(message["Subject"])
    html = message.get_body(("html",)).get_content()
    text = message.get_body(("plain",)).get_content()
    assert "<img" not in html and "&lt;img src=x onerror=alert(1)&gt;" in html
    assert "href='https://evil.test'" not in html and "javascript:" not in html
    assert "acme cloud" in text and "<img" in text  # plain text shows it as written


async def test_escalations_thread_under_the_first_alert(smtp: SmtpServer) -> None:
    sink = EmailSink(EmailConfig(**smtp.config()))
    first = await sink.send(alert())
    assert first.ok and first.provider_id
    second = await sink.send(
        alert(id=2, kind="escalation", title="Unanswered for 1h", thread_ref=first.provider_id)
    )
    assert second.ok
    reply = smtp.messages[1]
    assert reply["In-Reply-To"] == first.provider_id == reply["References"]
    assert str(reply["Subject"]).startswith("Re: [brand-monitor]")


async def test_implicit_tls_on_port_465_style_server(tmp_path: Path) -> None:
    """`security: tls`: TLS from the first byte (no STARTTLS), login inside it."""
    server = SmtpServer(tmp_path, implicit_tls=True).start()
    try:
        sink = EmailSink(EmailConfig(**server.config()))
        assert sink.describe().endswith(", tls)")
        delivery = await sink.send(alert())
        assert delivery.ok, delivery.error
        (message,) = server.messages
        assert message["Message-ID"] == delivery.provider_id
        assert server.envelopes[0].rcpt_tos == ["support@acme.example"]
        # the login happens inside the TLS connection, and is checked
        wrong = EmailSink(EmailConfig(**server.config(password="wrong")))
        assert (await wrong.send(alert())).permanent
        # the same server refuses a client that expects to upgrade a plain connection
        starttls = EmailSink(EmailConfig(**server.config(security="starttls", timeout="2s")))
        refused = await starttls.send(alert())
        assert not refused.ok and "check alerts.email.host, port and security" in refused.error
        assert len(server.messages) == 1
    finally:
        server.stop()


async def test_wrong_password_is_permanent_and_names_the_keys(smtp: SmtpServer) -> None:
    sink = EmailSink(EmailConfig(**smtp.config(password="wrong")))
    delivery = await sink.send(alert())
    assert not delivery.ok and delivery.permanent
    assert "check alerts.email.username and password" in delivery.error
    assert "wrong" not in delivery.error


async def test_untrusted_certificate_is_refused(smtp: SmtpServer) -> None:
    sink = EmailSink(EmailConfig(**smtp.config(ca_file=None)))
    delivery = await sink.send(alert())
    assert not delivery.ok and delivery.permanent and "alerts.email.ca_file" in delivery.error


def test_header_safe_and_config_validation() -> None:
    assert header_safe("a\r\nBcc: x\u2028y\x00z") == "a Bcc: x y z"
    with pytest.raises(ValueError, match="single line"):
        EmailConfig(sender="a@b.test\r\nBcc: c@d.test", to=["x@y.test"])
    with pytest.raises(ValueError, match="line breaks"):
        EmailConfig(sender="a@b.test", to=["x@y.test\nBcc: z@z.test"])
