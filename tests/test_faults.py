"""Faults a real daemon process must live through, reporting each one and losing nothing:
sources that hang, reset, fail or send garbage; Slack and SMTP down, slow or failing on and
off; the database locked by another process; the data directory's disk full."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from sqlalchemy import func, select

from monitor.store import Store, outbox
from monitor.store.tables import mentions
from tests.conftest import base_config_dict, deep_merge
from tests.helpers.fake_slack import FakeSlack, SmtpServer, free_port
from tests.helpers.process import MonitorProcess, run_monitor, write_config
from tests.helpers.servers import LocalServer, rss

COMPLAINT = "Acme Cloud lost my files and support is useless. Awful, terrible, I am furious."


def complaint(i: int, prefix: str = "c") -> dict[str, str]:
    return {
        "id": f"{prefix}-{i}",
        "title": f"Acme Cloud broke again ({prefix} {i})",
        "link": f"https://blog.test/{prefix}/{i}",
        "text": f"{COMPLAINT} Ticket {prefix}{i} has been open for {i + 2} days.",
    }


async def wait_until(predicate: Any, timeout: float = 20.0, what: str = "") -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not await predicate():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.1)


async def count_rows(database: str) -> tuple[int, dict[str, int]]:
    store = await Store.open(database)
    try:
        async with store.read() as connection:
            stored = int(await connection.scalar(select(func.count()).select_from(mentions)) or 0)
            return stored, await outbox.counts(connection)
    finally:
        await store.dispose()


def daemon_config(tmp_path: Path, database: str, **overrides: Any) -> Path:
    config = deep_merge(
        base_config_dict(database),
        {
            "daemon": {"tick": "0.1s", "deliver_every": "0.2s", "source_timeout": "1s"},
            "alerts": {"storm": {"enabled": False}},
            **overrides,
        },
    )
    return write_config(tmp_path / "config.yaml", config)


# ------------------------------------------------------------- sources and sinks failing


@pytest.fixture
def smtp_port() -> int:
    return free_port()


async def test_everything_failing_at_once_is_reported_and_nothing_is_lost(
    tmp_path: Path, local_server: LocalServer, smtp_port: int
) -> None:
    """Six broken sources beside a good one; Slack failing on and off then slow; SMTP down.
    The daemon stays up, `monitor sources` names each problem with a hint, and once the
    sinks are back every alert arrives exactly once."""

    async def hang(_request: web.Request) -> web.Response:
        await asyncio.sleep(30)
        return web.Response(text="too late")

    async def reset(request: web.Request) -> web.Response:
        assert request.transport is not None
        request.transport.abort()
        return web.Response()

    local_server.route("/hang.xml", hang)
    local_server.route("/reset.xml", reset)
    local_server.serve_bytes("/fail.xml", b"oops", status=500, content_type="text/plain")
    local_server.serve_bytes(
        "/limited.xml", b"slow down", status=429, headers={"Retry-After": "120"}
    )
    local_server.serve_bytes("/garbage.xml", os.urandom(5000), content_type="application/xml")
    local_server.serve_bytes("/huge.xml", b"<rss>" + b"x" * 300_000)
    local_server.serve_bytes("/good.xml", rss([]))
    broken = ["hang", "reset", "fail", "limited", "garbage", "huge"]
    slack = FakeSlack(local_server)
    # Down for a while (500s), then a rate limit; later calls get through.
    slack.fail("chat.postMessage", *[(500, {})] * 3, (429, {"Retry-After": "1"}))
    smtp = SmtpServer(tmp_path, port=smtp_port)
    database = f"sqlite+aiosqlite:///{tmp_path / 'monitor.db'}"
    path = daemon_config(
        tmp_path,
        database,
        sources=[
            {"type": "rss", "name": name, "url": local_server.url(f"/{name}.xml"), "every": "1s"}
            for name in [*broken, "good"]
        ],
        http={"max_body_bytes": 100_000, "read_timeout": "1s", "total_timeout": "2s"},
        alerts={
            "console": {"enabled": False},
            "slack": {"token": "xoxb-test", "channel": "#alerts", "api_url": slack.api_url},
            "email": smtp.config(timeout="2s"),
            "backfill_first_poll": True,
            "sink_failures_before_report": 2,
        },
    )
    daemon = await MonitorProcess(tmp_path, "run", "-c", str(path), name="faults").start()
    try:
        await daemon.wait_for_log("started:")
        await daemon.wait_for_log("health:")
        await asyncio.sleep(2.5)  # first polls (the good feed's first poll is backfill)
        local_server.serve_bytes("/good.xml", rss([complaint(i) for i in range(3)]))

        async def failing_everywhere() -> bool:
            stored, statuses = await count_rows(database)
            return stored == 3 and statuses.get("pending", 0) >= 3

        await wait_until(failing_everywhere, what="the complaints stored, their alerts pending")
        code, table, err = await run_monitor(tmp_path, "sources", "-c", str(path))
        assert code == 0, err
        for name in broken:
            row = next((line for line in table.splitlines() if line.startswith(name)), "")
            assert row and " ok " not in row, f"{name} is not reported as failing:\n{table}"
        assert "good" in table
        reasons = ("no answer within", "closed the connection", "HTTP 500", "HTTP 429")
        for reason in (*reasons, "not an RSS", "larger than the 100000-byte cap"):
            assert reason.lower() in table.lower(), f"{reason!r} missing from:\n{table}"
        await daemon.wait_for_log("email")  # the SMTP outage is in the health line
        assert daemon.process is not None and daemon.process.returncode is None

        smtp.start()  # SMTP back
        try:

            async def delivered() -> bool:
                return (await count_rows(database))[1] == {"sent": 6}

            await wait_until(delivered, timeout=40, what="all six alerts sent")
            posted = [c for c in slack.of("chat.postMessage") if "broke again" in str(c.args)]
            titles = sorted(str(c.args).count("broke again") for c in posted)
            assert sum(titles) >= 3 and len(smtp.messages) == 3
            subjects = sorted(str(m["Subject"]) for m in smtp.messages)
            assert len(set(subjects)) == 3, f"an email was sent twice: {subjects}"
        finally:
            smtp.stop()
        daemon.send(signal.SIGTERM)
        assert await daemon.wait(20) == 0
        assert "Traceback" not in daemon.stderr
    finally:
        await daemon.kill()


# --------------------------------------------------------------------- database faults


async def blog_daemon(
    tmp_path: Path, local_server: LocalServer, database: str, name: str
) -> tuple[MonitorProcess, Path]:
    """A real daemon polling one (so far empty) feed every second, past its first poll."""
    local_server.serve_bytes("/feed.xml", rss([]))
    path = daemon_config(
        tmp_path,
        database,
        sources=[
            {"type": "rss", "name": "blog", "url": local_server.url("/feed.xml"), "every": "1s"}
        ],
        alerts={"console": {"enabled": True}, "backfill_first_poll": True},
    )
    daemon = await MonitorProcess(tmp_path, "run", "-c", str(path), name=name).start()
    try:
        await daemon.wait_for_log("health:")
        await asyncio.sleep(1.5)  # the first poll is stored (as backfill)
    except BaseException:
        await daemon.kill()
        raise
    return daemon, path


LOCKER = textwrap.dedent(
    """
    import sqlite3, sys, time
    db = sqlite3.connect(sys.argv[1], isolation_level=None, timeout=30)
    db.execute("BEGIN EXCLUSIVE")
    print("locked", flush=True)
    time.sleep(float(sys.argv[2]))
    db.execute("COMMIT")
    """
)


async def test_a_database_locked_by_another_process_is_reported_and_survived(
    tmp_path: Path, local_server: LocalServer
) -> None:
    database_file = tmp_path / "monitor.db"
    database = f"sqlite+aiosqlite:///{database_file}"
    daemon, path = await blog_daemon(tmp_path, local_server, database, "locked")
    try:
        # Longer than the daemon's 10 s busy timeout: its writes fail, not just wait.
        locker = await asyncio.create_subprocess_exec(
            sys.executable, "-c", LOCKER, str(database_file), "13", stdout=asyncio.subprocess.PIPE
        )
        try:
            assert locker.stdout is not None
            assert (await locker.stdout.readline()).strip() == b"locked"
            local_server.serve_bytes("/feed.xml", rss([complaint(i, "l") for i in range(4)]))
            await daemon.wait_for_log("another process holds a lock on the database", timeout=30)
            assert daemon.process is not None and daemon.process.returncode is None
        finally:
            await asyncio.wait_for(locker.wait(), 30)

        async def stored_all() -> bool:
            return (await count_rows(database))[0] == 4

        await wait_until(stored_all, timeout=30, what="the mentions stored after the lock")
        await daemon.wait_for_log("blog: 4 fetched, 4 matched, 4 new")
        code, out, err = await run_monitor(tmp_path, "healthcheck", "-c", str(path))
        assert code == 0, out + err
        assert "Traceback" not in daemon.stderr and "INSERT INTO" not in daemon.stderr
        daemon.send(signal.SIGTERM)
        assert await daemon.wait(20) == 0
        assert "Traceback" not in daemon.stderr
    finally:
        await daemon.kill()


@pytest.fixture
def small_filesystem(tmp_path: Path) -> Iterator[Path]:
    """A 4 MB tmpfs to fill up; needs permission to mount (root in CI), else skipped."""
    mount_point = tmp_path / "small"
    mount_point.mkdir()
    if sys.platform != "linux" or shutil.which("mount") is None:
        pytest.skip("disk-full test needs Linux mount(8)")
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(mount_point)],
        capture_output=True,
        text=True,
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here ({mounted.stderr.strip()[:120]})")
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", "-l", str(mount_point)], capture_output=True)


async def test_a_full_disk_is_reported_and_nothing_is_lost_once_space_returns(
    tmp_path: Path, local_server: LocalServer, small_filesystem: Path
) -> None:
    database_file = small_filesystem / "monitor.db"
    database = f"sqlite+aiosqlite:///{database_file}"
    daemon, _path = await blog_daemon(tmp_path, local_server, database, "diskfull")
    try:
        filler = small_filesystem / "filler"
        with open(filler, "wb") as handle:  # take every free byte
            try:
                while True:
                    handle.write(b"\0" * 65536)
                    handle.flush()
            except OSError:
                pass
        items = [complaint(i, "d") for i in range(30)]
        local_server.serve_bytes("/feed.xml", rss(items))
        await daemon.wait_for_log("the disk holding the database is full", timeout=30)
        assert daemon.process is not None and daemon.process.returncode is None
        filler.unlink()  # space is back

        async def stored_all() -> bool:
            return (await count_rows(database))[0] == len(items)

        await wait_until(stored_all, timeout=30, what="every mention stored once space returned")
        daemon.send(signal.SIGTERM)
        assert await daemon.wait(20) == 0
        assert "Traceback" not in daemon.stderr
    finally:
        await daemon.kill()
    with sqlite3.connect(database_file) as db:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
