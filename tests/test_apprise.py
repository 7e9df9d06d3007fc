"""Apprise sink against a real local endpoint (Apprise's json:// service → aiohttp)."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from alerts import SINKS
from alerts.apprise import ZWSP, AppriseConfig, AppriseSink
from monitor.config import ConfigError, load_config
from monitor.daemon import Daemon
from tests.conftest import base_config_dict, deep_merge
from tests.helpers.process import ROOT, write_config
from tests.helpers.servers import LocalServer, rss
from tests.test_slack import HOSTILE, alert, hostile_mention

MARKDOWN_ATTACKS = (
    " @everyone @here [click me](javascript:alert(1)) ![pixel](https://tracker.test/p.png) "
    "**shout** # heading `code`"
)


class Endpoint:
    """A service Apprise posts to: json://… answered by a local aiohttp route."""

    def __init__(self, server: LocalServer, path: str, *, status: int = 200) -> None:
        self.server, self.path, self.status = server, path, status
        self.received: list[dict[str, Any]] = []
        server.route(path, self._handle)

    async def _handle(self, request: web.Request) -> web.Response:
        self.received.append(await request.json())
        return web.json_response({}, status=self.status)

    def url(self, credentials: str = "") -> str:
        host = self.server.base_url.removeprefix("http://")
        return f"json://{credentials}{host}{self.path}"


def sink(*urls: str, **config: Any) -> AppriseSink:
    return AppriseSink(AppriseConfig(urls=list(urls), **config))


def test_the_sink_is_registered_by_its_key() -> None:
    assert SINKS["apprise"] is AppriseSink


async def test_markdown_notification_is_inert_and_pings_nobody(local_server: LocalServer) -> None:
    endpoint = Endpoint(local_server, "/notify")
    mention = hostile_mention(text=HOSTILE + MARKDOWN_ATTACKS)
    delivery = await sink(endpoint.url()).send(alert(mention=mention))
    assert delivery.ok and delivery.provider_id == "apprise-1"
    (sent,) = endpoint.received
    assert sent["title"] == "Negative mention on rss (brand)"
    message = sent["message"]
    for ping in ("@everyone", "@here", "<@U0BOSS>", "<!channel>", "<!here>", "\u202e"):
        assert ping not in message, ping
    assert f"@{ZWSP}everyone" in message and f"\\<@{ZWSP}U0BOSS\\>" in message
    # no link, image, emphasis, heading or markup from the post
    assert "[click me](javascript:" not in message and "![pixel](" not in message
    assert "\\[click me\\](javascript:alert(1))" in message
    assert "\\*\\*shout\\*\\*" in message and "\\# heading" in message
    assert "\\<script\\>" in message and "<script>" not in message
    # our own formatting and link stay
    assert "**acme cloud**" in message and "**Why:** negative 0.93 / needs reply" in message
    assert "[Open the post](https://blog.test/x%7C%3C!channel%3E)" in message
    assert "javascript:alert(1))" not in message.split("Open the post")[1]
    assert "written in Hindi" in message and "Answer within 1h: Priya" in message


async def test_text_format_for_plain_services(local_server: LocalServer) -> None:
    endpoint = Endpoint(local_server, "/sms")
    delivery = await sink(endpoint.url(), body_format="text").send(
        alert(mention=hostile_mention(text=HOSTILE + MARKDOWN_ATTACKS))
    )
    assert delivery.ok
    message = endpoint.received[0]["message"]
    assert "@everyone" not in message and "<!channel>" not in message
    assert "**" not in message.replace("**shout**", "")  # only the post's own asterisks
    assert "Open: https://blog.test/x%7C%3C!channel%3E" in message
    assert "monitor ack 7" in message


async def test_a_failing_service_is_retried_alone_and_its_secret_never_shown(
    local_server: LocalServer,
) -> None:
    good = Endpoint(local_server, "/good")
    bad = Endpoint(local_server, "/bad", status=500)
    apprise_sink = sink(good.url(), bad.url("bot:hunter2@"))
    first = await apprise_sink.send(alert())
    assert not first.ok and not first.permanent
    assert first.error.startswith("apprise: urls[1] (json://bot:****@127.0.0.1:")
    assert "did not accept the notification — check that URL" in first.error
    assert "hunter2" not in first.error + apprise_sink.describe()
    assert "hunter2" not in repr(apprise_sink.config)

    bad.status = 200  # the service is back
    second = await apprise_sink.send(alert())
    assert second.ok
    assert (len(good.received), len(bad.received)) == (1, 2)  # the good one got it once


async def test_groups_digest_and_notices_render(local_server: LocalServer) -> None:
    endpoint = Endpoint(local_server, "/n")
    apprise_sink = sink(endpoint.url())
    storm = alert(
        kind="storm",
        title="Storm on brand: 52 negative mentions in 1h",
        reasons=["52 negative in 1h"],
        mention=None,
        group=[{**hostile_mention(), "title": "@everyone look [x](javascript:1)"}],
    )
    assert (await apprise_sink.send(storm)).ok
    message = endpoint.received[0]["message"]
    assert message.startswith("52 negative in 1h\n- [")
    assert f"@{ZWSP}everyone look \\[x\\](javascript:1)" in message
    assert "(id 7)" in message and "For: Priya" in message


async def test_run_once_delivers_through_apprise_from_config(
    local_server: LocalServer, make_daemon: Callable[..., Daemon]
) -> None:
    endpoint = Endpoint(local_server, "/hook")
    local_server.serve_bytes(
        "/feed",
        rss(
            [
                {
                    "id": "1",
                    "title": "Acme Cloud outage",
                    "link": "https://a.test/1",
                    "text": "Acme Cloud is down again and support ignores us. Awful, terrible.",
                }
            ]
        ),
    )
    daemon = make_daemon(
        sources=[{"type": "rss", "name": "blog", "url": local_server.url("/feed")}],
        alerts={"console": {"enabled": False}, "apprise": {"urls": [endpoint.url()]}},
    )
    assert daemon.config.alerts.enabled_sinks().keys() == {"apprise"}
    await daemon.run_once()
    (sent,) = endpoint.received
    assert sent["title"].startswith("Negative mention on rss")
    assert "> **Acme Cloud** outage" in sent["message"]
    assert "[Open the post](https://a.test/1)" in sent["message"]


def write(tmp_path: Path, apprise: dict[str, Any]) -> Path:
    data = deep_merge(
        base_config_dict("sqlite+aiosqlite:///x.db"), {"alerts": {"apprise": apprise}}
    )
    return write_config(tmp_path / "config.yaml", data)


@pytest.mark.parametrize(
    ("section", "expected"),
    [
        ({"urls": []}, "alerts.apprise: urls: give at least one Apprise URL"),
        ({"urls": [""]}, "urls[0] is empty — is its environment variable set?"),
        (
            {"urls": ["json://127.0.0.1/ok", "nosuchservice://token@x"]},
            "urls[1]: Apprise does not understand this URL (nosuchservice://…)",
        ),
    ],
    ids=["no-urls", "empty-url", "unknown-scheme"],
)
def test_config_errors_say_which_url(tmp_path: Path, section: dict, expected: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(write(tmp_path, section))
    assert expected in str(caught.value)
    assert "token@x" not in str(caught.value)


# Runs the real CLI in a Python where `import apprise` fails, as without the extra.
WITHOUT_APPRISE = (
    "import sys; sys.modules['apprise'] = None; "
    "from monitor.cli import main; sys.exit(main(['check-config', sys.argv[1]]))"
)


def test_configured_without_the_package_is_a_clear_config_error(tmp_path: Path) -> None:
    enabled = write(tmp_path, {"urls": ["json://127.0.0.1/hook"]})
    result = subprocess.run(
        [sys.executable, "-c", WITHOUT_APPRISE, str(enabled)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2, result.stderr
    assert "alerts: apprise: the Apprise sink needs the apprise package" in result.stderr
    assert "pip install 'brand-monitor[apprise]'" in result.stderr
    assert "Traceback" not in result.stderr

    disabled = write(tmp_path, {"enabled": False, "urls": ["json://127.0.0.1/hook"]})
    result = subprocess.run(
        [sys.executable, "-c", WITHOUT_APPRISE, str(disabled)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "OK" in result.stdout
