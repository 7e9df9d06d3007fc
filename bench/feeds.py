"""Feed polling against a peer: `monitor run --once` vs rss2email on the same 200 feeds.

    .venv/bin/python -m bench.feeds [--feeds 200] [--entries 50] [--match-share 1.0]

200 local feeds × 50 entries (``bench.workload.feed``: news/blog items with Google
Alerts-like escaped-HTML snippets in English, Hindi, Bengali and Persian) are served from
a separate process on 127.0.0.1. Each contender runs as its own child process, measured
with ``wait4`` (wall time, user+system CPU, peak RSS):

- ``monitor run --once`` with the 200 feeds as RSS sources, SQLite, and email alerts to
  a local SMTP sink (first poll not held back as backfill, so it alerts as it would on
  any later poll); then the same poll again on a fresh database with the daemon held to
  one CPU, as on a one-vCPU VPS (shown beside it; the target is judged on the first);
- rss2email 3.14 (installed from PyPI into its own virtualenv under ``.bench-cache/``),
  which emails every entry to the same local SMTP sink;
- the parse-only floor: one Python process running ``feedparser.parse`` on the same
  bytes, read from disk (default options), with nothing else.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import socket
import sqlite3
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from bench.report import Section, Target
from bench.workload import BRAND, QUERIES, feed

ROOT = Path(__file__).resolve().parents[1]
CACHE = ROOT / ".bench-cache"
RSS2EMAIL = "rss2email==3.14"
TARGET_WALL_RATIO = 0.5
TARGET_CPU_RATIO = 1.5


@dataclass
class Measured:
    wall_s: float
    cpu_s: float
    peak_rss_mb: float
    returncode: int
    output: str = ""


# Runs the measured command from a small process: a child forked from the (large) benchmark
# process would report the benchmark's own peak RSS as its ru_maxrss, which exec never resets.
LAUNCHER = textwrap.dedent(
    """
    import json, os, resource, subprocess, sys
    if sys.argv[2]:  # the CPUs to run on (the command inherits them)
        os.sched_setaffinity(0, {int(cpu) for cpu in sys.argv[2].split(",")})
    code = subprocess.run(sys.argv[3:]).returncode
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    with open(sys.argv[1], "w") as out:
        json.dump({"cpu": usage.ru_utime + usage.ru_stime, "maxrss_kb": usage.ru_maxrss,
                   "code": code}, out)
    """
)


def measure(
    command: list[str],
    *,
    env: dict[str, str] | None = None,
    cwd: Path = ROOT,
    cpus: set[int] | None = None,
) -> Measured:
    """Run ``command`` and account for exactly that process: wall, CPU, peak RSS; on
    ``cpus`` only, when given."""
    with tempfile.TemporaryDirectory() as scratch:
        report_path = Path(scratch) / "usage.json"
        log_path = Path(scratch) / "output.log"
        with open(log_path, "wb") as log:
            started = time.perf_counter()
            subprocess.run(
                [
                    sys.executable,
                    "-c",
                    LAUNCHER,
                    str(report_path),
                    ",".join(map(str, sorted(cpus or ()))),
                    *command,
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                env={**os.environ, **(env or {})},
                cwd=cwd,
                check=True,
            )
            wall = time.perf_counter() - started
        usage = json.loads(report_path.read_text())
        return Measured(
            wall,
            usage["cpu"],
            usage["maxrss_kb"] / 1024,
            usage["code"],
            log_path.read_text(encoding="utf-8", errors="replace"),
        )


class SmtpSink:
    """A real SMTP server (aiosmtpd) that counts the messages it is given."""

    def __init__(self) -> None:
        from aiosmtpd.controller import Controller

        self.count = 0
        self._lock = threading.Lock()
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.controller = Controller(self, hostname="127.0.0.1", port=self.port)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        with self._lock:
            self.count += 1
        return "250 OK"

    def __enter__(self) -> SmtpSink:
        self.controller.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.controller.stop()

    def take(self) -> int:
        with self._lock:
            count, self.count = self.count, 0
        return count


class FeedServer:
    def __init__(self, folder: Path) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "bench.feed_server", str(folder)],
            stdout=subprocess.PIPE,
            cwd=ROOT,
            text=True,
        )
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        self.port = int(line.rsplit(" ", 1)[-1])

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.port}/{name}"

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(10)


FLOOR_SCRIPT = textwrap.dedent(
    """
    import io, sys
    from pathlib import Path
    import feedparser
    entries = 0
    for path in sorted(Path(sys.argv[1]).glob("*.xml")):
        entries += len(feedparser.parse(io.BytesIO(path.read_bytes())).entries)
    print(entries)
    """
)


def rss2email_venv() -> Path | None:
    """rss2email in its own virtualenv (cached); None when it cannot be installed."""
    venv = CACHE / "rss2email-venv"
    r2e = venv / "bin" / "r2e"
    if r2e.exists():
        return r2e
    CACHE.mkdir(exist_ok=True)
    try:
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run(
            [str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet", RSS2EMAIL],
            check=True,
        )
    except subprocess.CalledProcessError as exc:
        print(f"rss2email could not be installed ({exc}); skipping the peer", file=sys.stderr)
        return None
    return r2e


def rss2email_config(folder: Path, urls: list[str], smtp_port: int) -> Path:
    lines = [
        "[DEFAULT]",
        "from = bench@rss2email.invalid",
        "to = sink@bench.invalid",
        "email-protocol = smtp",
        "smtp-server = 127.0.0.1",
        f"smtp-port = {smtp_port}",
        "smtp-auth = False",
        "smtp-ssl = False",
        "",
    ]
    for index, url in enumerate(urls):
        lines += [f"[feed.feed{index}]", f"url = {url}", ""]
    path = folder / "rss2email.cfg"
    path.write_text("\n".join(lines), encoding="utf-8")
    return path


def monitor_config(folder: Path, urls: list[str], smtp_port: int) -> Path:
    config = {
        "database": f"sqlite+aiosqlite:///{folder / 'monitor.db'}",
        "brand": {"name": BRAND},
        "people": {"owner": {"name": "Owner", "email": "owner@bench.invalid"}},
        "watchlists": [
            {"name": name, "query": query, "owner": "owner"} for name, query in QUERIES.items()
        ],
        "sources": [
            {"type": "rss", "name": f"feed{index}", "url": url, "every": "5m"}
            for index, url in enumerate(urls)
        ],
        "alerts": {
            "backfill_first_poll": False,
            "email": {
                "enabled": True,
                "host": "127.0.0.1",
                "port": smtp_port,
                "security": "none",
                "sender": "monitor@bench.invalid",
                "to": ["owner@bench.invalid"],
            },
        },
    }
    path = folder / "monitor.yaml"
    path.write_text(yaml.safe_dump(config, allow_unicode=True), encoding="utf-8")
    return path


def stored_mentions(folder: Path) -> int:
    with sqlite3.connect(folder / "monitor.db") as connection:
        return connection.execute("SELECT count(*) FROM mentions").fetchone()[0]


def run(feeds: int, entries: int, shares: tuple[float, ...] = (1.0, 0.1)) -> Section:
    """Each share: its own feeds, parse floor and `monitor run --once`. rss2email runs once,
    on the first share's feeds: it emails every entry whatever it says, so its work is the
    same for every share."""
    rows: list[tuple[float, Measured, Measured, int, int]] = []
    one_core: dict[float, Measured | None] = {}
    peer: Measured | None = None
    peer_emails = 0
    size_mb = 0.0
    for share in shares:
        folder = Path(tempfile.mkdtemp(prefix="feeds-bench-"))
        served = folder / "feeds"
        served.mkdir()
        rng = random.Random(5)
        for index in range(feeds):
            (served / f"feed{index}.xml").write_bytes(
                feed(index, entries, match_share=share, rng=rng)
            )
        size_mb = sum(p.stat().st_size for p in served.iterdir()) / 1e6
        server = FeedServer(served)
        urls = [server.url(f"feed{index}.xml") for index in range(feeds)]
        try:
            with SmtpSink() as smtp:
                floor = measure([sys.executable, "-c", FLOOR_SCRIPT, str(served)])
                config = monitor_config(folder, urls, smtp.port)
                ours = measure(
                    [sys.executable, "-m", "monitor", "run", "--once", "-c", str(config)]
                )
                if ours.returncode != 0:
                    raise RuntimeError(f"monitor run --once failed:\n{ours.output[-3000:]}")
                rows.append((share, floor, ours, stored_mentions(folder), smtp.take()))
                one_core[share] = one_core_run(folder, urls, smtp)
                if peer is None and (r2e := rss2email_venv()) is not None:
                    cfg = rss2email_config(folder, urls, smtp.port)
                    data = folder / "rss2email.json"
                    peer = measure([str(r2e), "-c", str(cfg), "-d", str(data), "run"])
                    peer_emails = smtp.take()
        finally:
            server.stop()
    return report(rows, peer, peer_emails, feeds, entries, size_mb, one_core)


def one_core_run(folder: Path, urls: list[str], smtp: SmtpSink) -> Measured | None:
    """The same poll on a fresh database with the daemon held to one CPU, as on a one-vCPU
    VPS: its threads (feed parsing, SQLite) then never hand the GIL across cores."""
    if not hasattr(os, "sched_getaffinity") or len(os.sched_getaffinity(0)) < 2:
        return None
    rerun = folder / "one-core"
    rerun.mkdir()
    config = monitor_config(rerun, urls, smtp.port)
    cpu = min(os.sched_getaffinity(0))
    result = measure(
        [sys.executable, "-m", "monitor", "run", "--once", "-c", str(config)], cpus={cpu}
    )
    smtp.take()
    return result if result.returncode == 0 else None


def report(
    rows: list[tuple[float, Measured, Measured, int, int]],
    peer: Measured | None,
    peer_emails: int,
    feeds: int,
    entries: int,
    size_mb: float,
    one_core: dict[float, Measured | None] | None = None,
) -> Section:
    one_core = one_core or {}
    lines = [
        f"{feeds} feeds × {entries} entries ({feeds * entries:,} entries, about {size_mb:.1f} MB), "
        "served from another process on 127.0.0.1; each run is its own process, measured with "
        "`wait4` (CPU = user + system). Two workloads: every entry mentions a watched term "
        "(a Google Alerts feed), and one in ten does (blogs and news sites watched in full). "
        "`monitor run --once` stores, classifies and alerts by email to a local SMTP server; "
        "rss2email emails every entry to the same server.",
        "",
        "| run | entries mentioning a term | wall (s) | CPU (s) | peak RSS (MB) | result |",
        "|---|---:|---:|---:|---:|---|",
    ]
    for share, floor, ours, stored, emails in rows:
        lines.append(
            f"| parse-only floor (`feedparser.parse` on the same bytes) | {share:.0%} "
            f"| {floor.wall_s:.2f} | {floor.cpu_s:.2f} | {floor.peak_rss_mb:.0f} "
            f"| {floor.output.strip()} entries |"
        )
        lines.append(
            f"| `monitor run --once` | {share:.0%} | {ours.wall_s:.2f} | {ours.cpu_s:.2f} "
            f"| {ours.peak_rss_mb:.0f} | {stored:,} mentions stored, {emails} alert emails |"
        )
        if (pinned := one_core.get(share)) is not None:
            lines.append(
                f"| `monitor run --once`, held to one CPU | {share:.0%} | {pinned.wall_s:.2f} "
                f"| {pinned.cpu_s:.2f} | {pinned.peak_rss_mb:.0f} | the same poll, fresh database |"
            )
    if peer is not None:
        lines.append(
            f"| rss2email 3.14 `r2e run` | any | {peer.wall_s:.2f} | {peer.cpu_s:.2f} "
            f"| {peer.peak_rss_mb:.0f} | {peer_emails:,} emails (exit {peer.returncode}) |"
        )
    lines.append("")
    targets = []
    for share, floor, ours, _stored, _emails in rows:
        cpu_ratio = ours.cpu_s / floor.cpu_s
        targets.append(
            Target(
                f"feed polling, {share:.0%} of entries mentions: CPU vs parse-only floor",
                f"{cpu_ratio:.2f}×",
                f"≤ {TARGET_CPU_RATIO}×",
                cpu_ratio <= TARGET_CPU_RATIO,
            )
        )
        if peer is not None:
            wall_ratio = ours.wall_s / peer.wall_s
            targets.append(
                Target(
                    f"feed polling, {share:.0%} of entries mentions: wall vs rss2email (peer)",
                    f"{wall_ratio:.2f}×",
                    f"≤ {TARGET_WALL_RATIO}×",
                    wall_ratio <= TARGET_WALL_RATIO,
                )
            )
            lines.append(
                f"- {share:.0%} mentions: wall **{wall_ratio:.2f}×** rss2email, CPU "
                f"{ours.cpu_s / peer.cpu_s:.2f}×, peak RSS {ours.peak_rss_mb / peer.peak_rss_mb:.1f}×; "
                f"CPU **{cpu_ratio:.2f}×** the parse-only floor."
            )
        else:
            lines.append(f"- {share:.0%} mentions: CPU **{cpu_ratio:.2f}×** the parse-only floor.")
        if (pinned := one_core.get(share)) is not None:
            lines[-1] += (
                f" Held to one CPU: {pinned.cpu_s / floor.cpu_s:.2f}× the floor (the target is "
                "judged on the unpinned run above)."
            )
    if peer is None:
        targets.append(
            Target("feed polling: wall vs rss2email", "–", f"≤ {TARGET_WALL_RATIO}×", None)
        )
        lines.append("- rss2email could not be installed here, so there is no peer ratio.")
    return Section("2. Feed polling against a peer (rss2email)", lines, targets)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--feeds", type=int, default=200)
    parser.add_argument("--entries", type=int, default=50)
    parser.add_argument("--match-share", type=float, action="append", help="repeatable")
    args = parser.parse_args()
    shares = tuple(args.match_share or (1.0, 0.1))
    print(run(args.feeds, args.entries, shares).markdown())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
