"""Command-line details: `check-config` warns about intervals the daemon will raise,
`mentions --since` takes a duration or an ISO date, `run --once` exit codes."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from monitor.cli import main
from monitor.config import load_config
from monitor.daemon import Daemon
from tests.conftest import base_config_dict, deep_merge
from tests.helpers.process import ROOT, run_monitor, write_config
from tests.helpers.servers import LocalServer, rss


def config_with_sources(tmp_path: Path, sources: list[dict[str, Any]]) -> Path:
    data = deep_merge(
        base_config_dict(f"sqlite+aiosqlite:///{tmp_path / 'monitor.db'}"), {"sources": sources}
    )
    return write_config(tmp_path / "config.yaml", data)


def test_check_config_warns_about_an_interval_below_the_adapters_minimum(
    tmp_path: Path,
) -> None:
    path = config_with_sources(
        tmp_path,
        [
            {"type": "github", "name": "code", "every": "1s"},
            {"type": "rss", "name": "blog", "url": "https://blog.example/feed", "every": "10m"},
            # A server on this machine is polled as often as asked: no warning.
            {"type": "rss", "name": "local", "url": "http://127.0.0.1:9/feed", "every": "1s"},
        ],
    )
    result = subprocess.run(
        [sys.executable, "-m", "monitor", "check-config", str(path)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0 and "OK" in result.stdout
    lines = result.stderr.splitlines()
    line = next(n for n, text in enumerate(path.read_text().splitlines(), 1) if "every: 1s" in text)
    assert lines == [
        f"{path}:{line} sources[0].every: warning: 1s is below the github adapter's minimum "
        "of 1m; code will be polled every 1m"
    ], result.stderr


@pytest.fixture
def stored(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Path:
    """A database holding two mentions fetched just now."""
    import asyncio

    items = [
        {
            "id": str(i),
            "title": f"Acme Cloud down {i}",
            "link": f"https://a.test/{i}",
            "text": f"acme cloud is down again {i}",
        }
        for i in range(2)
    ]

    async def seed() -> Path:
        server = await LocalServer().start()
        try:
            server.serve_bytes("/feed", rss(items))
            path = config_with_sources(
                tmp_path, [{"type": "rss", "name": "blog", "url": server.url("/feed")}]
            )
            await Daemon(load_config(path), console_stream=io.StringIO()).run_once()
        finally:
            await server.stop()
        return path

    path = asyncio.run(seed())
    capsys.readouterr()
    return path


@pytest.mark.parametrize(
    ("since", "count"),
    [
        ("1h", 2),
        ("2000-01-01", 2),
        ("2000-01-01T09:30", 2),
        ("2000-01-01T09:30:00+05:30", 2),
        ("2999-12-31", 0),
        ("2999-12-31T23:59Z", 0),
    ],
)
def test_mentions_since_takes_a_duration_or_an_iso_date_or_time(
    stored: Path, capsys: pytest.CaptureFixture[str], since: str, count: int
) -> None:
    assert main(["mentions", "-c", str(stored), "--json", "--since", since]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert len(rows) == count


def test_mentions_since_explains_what_it_takes(
    stored: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["mentions", "-c", str(stored), "--since", "last tuesday"]) == 2
    err = capsys.readouterr().err
    assert "--since: 'last tuesday' is neither a duration (1d, 6h) nor an ISO date" in err


async def test_run_once_exits_0_when_every_source_worked_and_1_when_one_failed(
    tmp_path: Path, local_server: LocalServer
) -> None:
    local_server.serve_bytes("/feed", rss([]))
    good = {"type": "rss", "name": "good", "url": local_server.url("/feed")}
    path = config_with_sources(tmp_path, [good])
    code, out, err = await run_monitor(tmp_path, "run", "--once", "-c", str(path))
    assert code == 0, err
    assert "error:" not in out

    gone = {"type": "rss", "name": "gone", "url": local_server.url("/gone")}
    path = config_with_sources(tmp_path, [good, gone])
    code, out, err = await run_monitor(tmp_path, "run", "--once", "-c", str(path))
    assert code == 1
    assert out.splitlines() == [
        f"error: gone: not found (HTTP 404) at {local_server.url('/gone')} — check the URL in "
        "the config; the feed or endpoint may have moved"
    ]
    assert "Traceback" not in err
