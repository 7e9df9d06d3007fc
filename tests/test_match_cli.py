"""`monitor match` and `monitor backtest`, run as the real command."""

from __future__ import annotations

import asyncio
import json
import random
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from monitor.config import Config
from monitor.mention import Mention
from monitor.pipeline import Pipeline
from monitor.store import Store
from monitor.store import sources as source_store
from monitor.store.tables import metadata
from sources.base import FetchResult
from tests.conftest import base_config_dict, deep_merge
from tests.helpers.process import ROOT, write_config


def cli(*args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "monitor", *args],
        input=stdin,
        capture_output=True,
        text=True,
        encoding="utf-8",
        cwd=ROOT,
        timeout=60,
        check=False,
    )


def config_file(tmp_path: Path, name: str = "config.yaml", **overrides: Any) -> Path:
    database = f"sqlite+aiosqlite:///{tmp_path / 'monitor.db'}"
    return write_config(tmp_path / name, deep_merge(base_config_dict(database), overrides))


# ----------------------------------------------------------------------------- match

LINES = [
    "Hey @AcmeCloud, where is my refund?",
    "फिर से एक्मे क्लाउड बंद है",
    "অ্যাকমি ক্লাউড আবার বন্ধ",
    "سرویس اكمي كلاود قطع است",
    "the weather is fine",
    "Globex and Acme Cloud both down",
]
WATCHLISTS = [
    {
        "name": "brand",
        "query": '"acme cloud" OR acmecloud OR "एक्मे क्लाउड" OR "অ্যাকমি ক্লাউড" OR "اکمی کلاود"',
    },
    {"name": "competitors", "query": "globex", "kind": "competitor"},
]


def test_match_prints_watchlists_terms_and_spans_per_line(tmp_path: Path) -> None:
    path = config_file(tmp_path, watchlists=WATCHLISTS)
    result = cli("match", "-c", str(path), "--json", stdin="\n".join(LINES) + "\n")
    assert result.returncode == 0, result.stderr
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert [row["line"] for row in rows] == [1, 2, 3, 4, 5, 6]
    summary = [
        (
            row["language"],
            row["tagged"],
            [(m["watchlist"], m["highlights"]) for m in row["matches"]],
        )
        for row in rows
    ]
    assert summary == [
        ("en", True, [("brand", ["AcmeCloud"])]),
        ("hi", False, [("brand", ["एक्मे क्लाउड"])]),
        ("bn", False, [("brand", ["অ্যাকমি ক্লাউড"])]),
        ("fa", False, [("brand", ["اكمي كلاود"])]),  # Arabic-keyboard letters, Persian term
        ("en", False, []),
        ("en", False, [("brand", ["Acme Cloud"]), ("competitors", ["Globex"])]),
    ]
    for row in rows:
        for found in row["matches"]:
            spans = [row["text"][s:e] for s, e in found["spans"]]
            assert spans == found["highlights"]


def test_match_text_output_is_one_readable_line_each(tmp_path: Path) -> None:
    path = config_file(tmp_path, watchlists=WATCHLISTS)
    text = "Acme Cloud is \x1b[31mdown\x07 again for everyone\nnothing\n"
    result = cli("match", "-c", str(path), "--watchlist", "brand", stdin=text)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        '1 [en] brand: acme cloud at 0-10 "Acme Cloud"',
        "2 [language unknown] no match",
    ]
    assert "\x1b" not in result.stdout


def test_match_usage_errors_exit_2(tmp_path: Path) -> None:
    path = config_file(tmp_path, watchlists=WATCHLISTS)
    result = cli("match", "-c", str(path), "--watchlist", "nope", stdin="acme\n")
    assert result.returncode == 2
    assert "no watchlist named 'nope'; the config has brand, competitors" in result.stderr
    broken = config_file(tmp_path, "broken.yaml", watchlists=[{"name": "b", "query": '"acme'}])
    result = cli("match", "-c", str(broken), stdin="acme\n")
    assert result.returncode == 2
    assert "unbalanced quote at column 1" in result.stderr
    assert "Traceback" not in result.stderr


# -------------------------------------------------------------------------- backtest

NOW = datetime.now(UTC).replace(microsecond=0)
STORED = [
    # (source key, text, published hours ago)
    ("rss:1", "Acme Cloud has been down for hours, awful service and terrible support.", 1),
    ("rss:2", "Acme Cloud is hiring: jobs in Berlin, great team, apply now!", 2),
    ("rss:3", "Acme Cloud outage again. I am so angry, worst provider ever.", 3),
    ("rss:4", "Globex storage is down and their support is useless and awful.", 4),
    ("rss:5", "Our team moved from Acme to Globex, terrible migration, broken.", 5),
]


async def seed(config_path: Path, stored: list[tuple[str, str, int]] | None = None) -> Path:
    from monitor.config import load_config

    config: Config = load_config(str(config_path))
    store = await Store.open(config.database)
    try:
        async with store.begin() as connection:
            await source_store.ensure(connection, "blog", "rss", NOW)
        items = [
            Mention(
                key, f"https://blog.test/{key}", text=text, published_at=NOW - timedelta(hours=h)
            )
            for key, text, h in (STORED if stored is None else stored)
        ]
        await Pipeline(store, config).ingest(
            "blog", FetchResult(items), first_run=False, next_check_at=NOW, now=NOW
        )
    finally:
        await store.dispose()
    return Path(config.database.split("///", 1)[1])


async def table_contents(database: Path) -> dict[str, Any]:
    store = await Store.open(f"sqlite+aiosqlite:///{database}")
    try:
        async with store.read() as connection:
            return {
                table.name: (
                    await connection.scalar(select(func.count()).select_from(table)),
                    [tuple(row) for row in (await connection.execute(select(table))).all()],
                )
                for table in metadata.sorted_tables
            }
    finally:
        await store.dispose()


async def test_backtest_shows_what_a_changed_config_would_alert_and_writes_nothing(
    tmp_path: Path,
) -> None:
    old = config_file(
        tmp_path,
        "old.yaml",
        watchlists=[
            {"name": "brand", "query": "acme"},
            {"name": "competitors", "query": "globex useless", "kind": "competitor"},
        ],
    )
    database = await seed(old)
    before = await table_contents(database)
    changed = config_file(
        tmp_path,
        "new.yaml",
        watchlists=[
            {"name": "brand", "query": '"acme cloud" -jobs', "owner": "priya"},
            {"name": "competitors", "query": "globex", "kind": "competitor"},
        ],
    )
    result = cli("backtest", "-c", str(changed), "--since", "all", "--json")
    assert result.returncode == 0, result.stderr
    entries = {e["text"][:12]: e for e in map(json.loads, result.stdout.splitlines())}
    brief = {
        key: (e["watchlists_before"], e["watchlists"], [a["sink"] for a in e["alerts"]])
        for key, e in entries.items()
    }
    assert brief == {
        "Acme Cloud h": (["brand"], ["brand"], ["console"]),
        "Acme Cloud i": (["brand"], [], []),  # the jobs post no longer matches
        "Acme Cloud o": (["brand"], ["brand"], ["console"]),
        "Globex stora": (["competitors"], ["competitors"], []),  # competitor: digest only
        "Our team mov": (["brand"], ["competitors"], []),  # "acme" alone no longer counts
    }
    assert entries["Acme Cloud h"]["alerts"][0]["people"] == ["priya"]
    assert "5 stored mentions" in result.stderr and "2 would alert" in result.stderr
    assert "Nothing was written" in result.stderr
    assert await table_contents(database) == before


async def test_backtest_text_report_lists_changes_and_alerts(tmp_path: Path) -> None:
    old = config_file(tmp_path, "old.yaml", watchlists=[{"name": "brand", "query": "acme"}])
    await seed(old)
    changed = config_file(tmp_path, "new.yaml", watchlists=[{"name": "brand", "query": "outage"}])
    result = cli("backtest", "-c", str(changed), "--since", "1d")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert any("-brand" in line and "no alert" in line and "hiring" in line for line in lines)
    assert any("would alert console (negative" in line and "outage" in line for line in lines)
    assert lines[-1].startswith("backtest: 4 stored mentions since ")  # all the old config kept


def test_backtest_piped_into_head_exits_quietly(tmp_path: Path) -> None:
    """`monitor backtest --json | head -1`: the reader leaves early, the command must stop
    without a traceback, like any Unix tool killed by SIGPIPE."""
    path = config_file(tmp_path, watchlists=[{"name": "brand", "query": "acme"}])
    words = [
        "outage",
        "refund",
        "login",
        "billing",
        "invoice",
        "region",
        "backup",
        "latency",
        "dashboard",
        "api",
        "storage",
        "support",
        "ticket",
        "account",
        "password",
        "console",
        "bucket",
        "network",
        "disk",
        "quota",
        "upgrade",
        "plan",
    ]
    texts = [  # distinct enough that dedup keeps them apart: 60 entries, well over a pipe buffer
        "Acme Cloud " + " ".join(random.Random(i).choices(words, k=300)) for i in range(60)
    ]
    asyncio.run(seed(path, [(f"rss:{i}", text, 1) for i, text in enumerate(texts)]))
    process = subprocess.Popen(
        [sys.executable, "-m", "monitor", "backtest", "-c", str(path), "--since", "all", "--json"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=ROOT,
    )
    assert process.stdout is not None and process.stderr is not None
    first = process.stdout.readline()  # more than a pipe buffer is waiting behind it
    process.stdout.close()
    stderr = process.stderr.read().decode()
    process.stderr.close()
    assert process.wait(timeout=60) == 141, stderr
    assert json.loads(first)["id"] == 1
    assert len(first) * 59 > 100_000  # beyond the pipe and stdout buffers: still writing
    assert "Traceback" not in stderr and "BrokenPipeError" not in stderr, stderr


def test_backtest_errors(tmp_path: Path) -> None:
    path = config_file(tmp_path)
    result = cli("backtest", "-c", str(path))
    assert result.returncode == 1
    assert "database: no database at" in result.stderr
    result = cli("backtest", "-c", str(path), "--since", "soon")
    assert result.returncode == 2 and "--since:" in result.stderr
