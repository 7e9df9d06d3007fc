"""The command line: exit codes, messages without tracebacks, JSON output, workflow commands."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from monitor.cli import main
from monitor.config import load_config
from monitor.store import Store
from monitor.store import mentions as mention_store
from tests.conftest import base_config_dict, deep_merge
from tests.helpers.process import ROOT, write_config


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "monitor", *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
        check=False,
    )


def test_check_config_accepts_the_example() -> None:
    result = cli("check-config", "config.example.yaml")
    assert result.returncode == 0, result.stderr
    assert "OK" in result.stdout


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        (
            lambda t: t.replace("    query: acme", "    qurey: acme"),
            "config.yaml:5 watchlists[0].qurey: unknown key 'qurey'",
        ),
        (
            lambda t: t + "daemon:\n  tick: soon\n",
            "config.yaml:7 daemon.tick: 'soon' is not a duration",
        ),
        (
            lambda t: t + "database: ${UNSET_FOR_THIS_TEST}\n",
            "config.yaml:6 database: environment variable UNSET_FOR_THIS_TEST is not set",
        ),
    ],
    ids=["typo", "bad-type", "unset-var"],
)
def test_check_config_errors_exit_2_with_location_and_no_traceback(
    tmp_path: Path, edit: object, expected: str
) -> None:
    text = "brand:\n  name: Acme\nwatchlists:\n  - name: brand\n    query: acme\n"
    path = tmp_path / "config.yaml"
    path.write_text(edit(text))  # type: ignore[operator]
    result = cli("check-config", str(path))
    assert result.returncode == 2
    assert expected.replace("config.yaml", str(path)) in result.stderr
    assert "Traceback" not in result.stderr + result.stdout


def test_missing_config_file_exits_2(tmp_path: Path) -> None:
    result = cli("mentions", "-c", str(tmp_path / "absent.yaml"))
    assert result.returncode == 2 and "cannot read the config file" in result.stderr


def test_config_defaults_to_env_var(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_config(
        tmp_path / "elsewhere.yaml",
        base_config_dict(f"sqlite+aiosqlite:///{tmp_path / 'db.sqlite'}"),
    )
    monkeypatch.setenv("MONITOR_CONFIG", str(path))
    assert main(["check-config"]) == 0
    assert str(path) in capsys.readouterr().out


def test_demo_shows_alerts_and_dedups(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo", "--seconds", "9"]) == 0
    out = capsys.readouterr().out
    assert out.count("━━ MENTION ━━") >= 3
    assert "Charged twice" in out  # a post that appeared while the demo ran
    stored = out.split("Stored ", 1)[1]
    titles = [line for line in stored.splitlines() if line.strip().startswith("#")]
    assert len(titles) == len({t.split("]", 1)[1] for t in titles}), "a mention was stored twice"
    assert {"hi", "bn", "fa", "en"} <= {line.split()[1] for line in titles}


@pytest.fixture
def stored_config(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Path:
    """A database holding two mentions, made by a real `run --once` against a local feed."""
    import asyncio

    from tests.helpers.servers import LocalServer, rss

    items = [
        {
            "id": "1",
            "title": "Acme Cloud outage",
            "link": "https://a.test/1",
            "text": "acme cloud is down again, awful",
        },
        {
            "id": "2",
            "title": "Globex launch",
            "link": "https://a.test/2",
            "text": "globex launched a thing",
        },
    ]

    async def seed() -> Path:
        server = await LocalServer().start()
        server.serve_bytes("/feed", rss(items))
        data = deep_merge(
            base_config_dict(f"sqlite+aiosqlite:///{tmp_path / 'db.sqlite'}"),
            {"sources": [{"type": "rss", "name": "blog", "url": server.url("/feed")}]},
        )
        path = write_config(tmp_path / "config.yaml", data)
        import io

        from monitor.config import load_config
        from monitor.daemon import Daemon

        await Daemon(load_config(path), console_stream=io.StringIO()).run_once()
        await server.stop()
        return path

    path = asyncio.run(seed())
    capsys.readouterr()
    return path


def test_mentions_json_lines_have_the_documented_fields(
    stored_config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["mentions", "-c", str(stored_config), "--json", "--since", "1d"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert len(rows) == 2
    required = {
        "id",
        "source",
        "url",
        "title",
        "text",
        "author",
        "published_at",
        "language",
        "sentiment",
        "needs_reply",
        "state",
        "watchlists",
    }
    assert all(required <= row.keys() for row in rows)
    assert {tuple(r["watchlists"]) for r in rows} == {("brand",), ("competitors",)}

    assert main(["mentions", "-c", str(stored_config), "--json", "--watchlist", "competitors"]) == 0
    (only,) = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert only["title"] == "Globex launch"


def test_workflow_commands_change_state_and_log_who(
    stored_config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["ack", "-c", str(stored_config), "1"]) == 0
    assert "open → acknowledged" in capsys.readouterr().out
    assert main(["ignore", "-c", str(stored_config), "2", "--reason", "not about us"]) == 0
    capsys.readouterr()
    assert main(["mentions", "-c", str(stored_config), "--json", "--state", "ignored"]) == 0
    (row,) = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert row["id"] == 2 and row["state_by"].startswith("cli")
    assert main(["resolve", "-c", str(stored_config), "99"]) == 1
    assert "no mention with id 99" in capsys.readouterr().err


def test_answer_link_must_be_http_and_a_refused_link_changes_nothing(
    stored_config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    async def mention_one() -> dict[str, Any]:
        store = await Store.open(load_config(stored_config).database)
        try:
            async with store.read() as connection:
                row = await mention_store.get(connection, 1)
        finally:
            await store.dispose()
        assert row is not None
        return row

    for bad in ("javascript:alert(1)", "data:text/html,<b>x</b>", "/relative", "https://"):
        assert main(["answer", "-c", str(stored_config), "1", "--link", bad]) == 2
        err = capsys.readouterr().err
        assert f"monitor answer: --link {bad!r} is not an http(s) URL" in err
    row = asyncio.run(mention_one())
    assert (row["state"], row["answer_url"]) == ("open", None)

    link = "https://m.test/@acme/9?q=<x>"
    assert main(["answer", "-c", str(stored_config), "1", "--link", link]) == 0
    assert "open → answered" in capsys.readouterr().out
    row = asyncio.run(mention_one())
    assert (row["state"], row["answer_url"]) == ("answered", "https://m.test/@acme/9?q=%3Cx%3E")
