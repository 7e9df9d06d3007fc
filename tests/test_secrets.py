"""Secrets never print: config.example.yaml loaded with every secret set to a known value,
then everything the operator sees — repr, config errors, `check-config`, the daemon's
log — searched for those values. The database password counts as a secret too."""

from __future__ import annotations

import argparse
import logging
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from sqlalchemy.engine import make_url

from monitor.cli.common import setup_logging
from monitor.config import ConfigError, load_config, parse_config
from tests.helpers.fake_slack import FakeSlack, free_port
from tests.helpers.process import ROOT, MonitorProcess
from tests.helpers.servers import LocalServer

EXAMPLE = ROOT / "config.example.yaml"
# Every ${VAR} of the example that lands in a SecretStr.
SECRET_VARS = (
    "APPRISE_URL",
    "BLUESKY_APP_PASSWORD",
    "GITHUB_TOKEN",
    "MASTODON_SOCIAL_TOKEN",
    "REDDIT_CLIENT_SECRET",
    "SLACK_APP_TOKEN",
    "SLACK_BOT_TOKEN",
    "SLACK_WEBHOOK_URL",
    "SMTP_PASSWORD",
    "STACKEXCHANGE_KEY",
    "YOUTUBE_API_KEY",
)
DB_PASSWORD = "PGSECRET-db-7Qx"


def secret_env(database: str | None = None) -> dict[str, str]:
    env = {name: f"sekrit-{name.lower().replace('_', '-')}-7Qx" for name in SECRET_VARS}
    env["APPRISE_URL"] = "json://127.0.0.1:9/sekrit-apprise-url-7Qx"  # the whole URL is secret
    env["MONITOR_DATABASE"] = (
        database or f"postgresql+asyncpg://monitor:{DB_PASSWORD}@127.0.0.1:1/monitor"
    )
    return env


SECRETS = [secret_env()[name] for name in SECRET_VARS] + [DB_PASSWORD]


def leaked(text: str) -> list[str]:
    return [secret for secret in SECRETS if secret in text]


def test_the_example_with_every_secret_set_shows_none_of_them() -> None:
    config = load_config(EXAMPLE, env=secret_env())
    assert sorted(config.secret_values()) == sorted(SECRETS)  # each one is known as secret
    assert DB_PASSWORD in config.database  # the engine still gets the real URL
    for shown in (repr(config), str(config), config.model_dump_json(), repr(config.alerts)):
        assert leaked(shown) == []
    assert "monitor:***@127.0.0.1" in repr(config)


def broken_example() -> str:
    """The example with mistakes in the sections that hold secrets."""
    text = EXAMPLE.read_text(encoding="utf-8")
    for old, new in (
        ("    enabled: false\n    # Bot token", "    enabled: true\n    # Bot token"),
        ('    channel: "#brand-alerts"', '    chanel: "#brand-alerts"'),
        ("    port: 587\n", "    port: lots\n"),
        ("  - type: github\n", "  - type: github\n    tokn: ${GITHUB_TOKEN}\n"),
    ):
        assert old in text, old
        text = text.replace(old, new, 1)
    return text


def test_config_errors_in_sections_with_secrets_show_none_of_them() -> None:
    with pytest.raises(ConfigError) as info:
        parse_config(broken_example(), "config.yaml", secret_env())
    message = str(info.value)
    assert "alerts.slack.chanel: unknown key 'chanel'" in message
    assert "alerts.email.port" in message and ".tokn: unknown key" in message
    assert leaked(message) == []


def cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "monitor", *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**os.environ, **env},
        timeout=60,
        check=False,
    )


def test_check_config_shows_no_secret(tmp_path: Path) -> None:
    result = cli("check-config", str(EXAMPLE), env=secret_env())
    assert result.returncode == 0, result.stderr
    assert "OK" in result.stdout
    assert leaked(result.stdout + result.stderr) == []

    broken = tmp_path / "broken.yaml"
    broken.write_text(broken_example(), encoding="utf-8")
    result = cli("check-config", str(broken), env=secret_env())
    assert result.returncode == 2 and "chanel" in result.stderr
    assert leaked(result.stdout + result.stderr) == []


def local_example(server: LocalServer, slack: FakeSlack, tmp_path: Path) -> Path:
    """The example with every source enabled and every endpoint on localhost."""
    data: dict[str, Any] = yaml.safe_load(EXAMPLE.read_text(encoding="utf-8"))

    def localise(node: Any) -> Any:
        if isinstance(node, dict):
            return {key: localise(value) for key, value in node.items()}
        if isinstance(node, list):
            return [localise(value) for value in node]
        if isinstance(node, str) and node.startswith(("https://", "http://", "wss://")):
            scheme = "ws" if node.startswith("wss") else "http"
            return f"{scheme}://127.0.0.1:{server.base_url.rsplit(':', 1)[1]}/nowhere"
        return node

    data["sources"] = [{**localise(s), "enabled": True} for s in data["sources"]]
    data["alerts"]["slack"].update(enabled=True, api_url=slack.api_url)
    data["alerts"]["email"].update(
        enabled=True, host="127.0.0.1", port=free_port(), security="none"
    )
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return path


async def test_the_running_daemon_logs_no_secret(
    tmp_path: Path, local_server: LocalServer, database_url: str
) -> None:
    """Every adapter is built and describes itself in the `started:` line; every source
    polls once (and fails against localhost); Slack's buttons try to connect."""
    if make_url(database_url).get_backend_name() == "postgresql":
        # PostgreSQL's test server trusts local connections: the password is only carried.
        database_url = make_url(database_url).set(password=DB_PASSWORD).render_as_string(False)
    slack = FakeSlack(local_server)
    path = local_example(local_server, slack, tmp_path)
    daemon = await MonitorProcess(
        tmp_path, "run", "-c", str(path), env=secret_env(database_url)
    ).start()
    try:
        await daemon.wait_for_log("started:")
        await daemon.wait_for_log("health:")
        daemon.send(signal.SIGTERM)
        assert await daemon.wait(30) == 0
    finally:
        await daemon.kill()
    (started,) = [line for line in daemon.stderr.splitlines() if "started:" in line]
    assert "github (github, with token)" in started and "slack (#brand-alerts, buttons)" in started
    if DB_PASSWORD in database_url:
        assert ":***@" in started
    assert leaked(daemon.stderr + daemon.stdout) == []
    assert slack.of("apps.connections.open"), "the app token was never used"


def test_the_log_masks_secrets_that_third_party_code_prints(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """What a library logs (an URL with a key in it, an exception message) is masked too."""
    config = load_config(EXAMPLE, env=secret_env())
    token = secret_env()["YOUTUBE_API_KEY"]
    root = logging.getLogger()
    saved = (root.handlers[:], root.level)
    setup_logging(argparse.Namespace(verbose=False), "INFO", config.secret_values())
    try:
        library = logging.getLogger("aiohttp.client")
        library.warning("GET https://www.googleapis.com/youtube/v3/search?key=%s failed", token)
        try:
            raise RuntimeError(f"connection to db failed: password {DB_PASSWORD} rejected")
        except RuntimeError:
            library.exception("gave up")
    finally:
        for handler in root.handlers:
            handler.close()
        root.handlers[:], _ = saved
        root.setLevel(saved[1])
    err = capsys.readouterr().err
    assert "search?key=*** failed" in err
    assert "password *** rejected" in err and "Traceback" in err
    assert leaked(err) == []
