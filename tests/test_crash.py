"""SIGKILL in the middle of a run, then restart: nothing lost, nothing sent twice but the
one alert that was in flight (the documented at-least-once window)."""

from __future__ import annotations

import asyncio
import random
import re
import signal
from collections import Counter
from pathlib import Path

import pytest
from sqlalchemy import func, select

from monitor.store import Store, outbox
from monitor.store.tables import mentions
from tests.conftest import base_config_dict, deep_merge
from tests.helpers.process import MonitorProcess, run_monitor, write_config
from tests.helpers.servers import LocalServer, rss

ITEMS = 150
ALERT_ID = re.compile(r"^id:\s+(\d+)", re.MULTILINE)
COMPLAINT = "Acme Cloud deleted my project and support is useless. Awful, terrible, I am furious."


def complaint(i: int) -> str:
    """Distinct complaints (identical texts would rightly be folded into one mention)."""
    words = random.Random(i).sample(VOCABULARY, 8)
    return f"{COMPLAINT} {' '.join(words)}"


VOCABULARY = [
    *("invoice", "billing", "outage", "login", "dashboard", "export", "backup", "restore"),
    *("latency", "region", "migration", "api", "webhook", "quota", "storage", "bucket"),
    *("upload", "download", "refund", "upgrade", "downgrade", "plan", "seat", "admin"),
    *("token", "password", "reset", "email", "phone", "chat", "ticket", "escalation"),
]


def alerted_ids(*outputs: str) -> Counter[int]:
    return Counter(int(m) for text in outputs for m in ALERT_ID.findall(text))


async def crash_and_recover(
    tmp_path: Path, local_server: LocalServer, *, after_alerts: int, extra_delay_s: float = 0.0
) -> None:
    """Kill once ``after_alerts`` alerts were printed (0: as soon as the daemon started)."""
    items = [
        {
            "id": f"c-{i}",
            "title": f"Acme Cloud problem {i}",
            "link": f"https://blog.test/{i}",
            "text": complaint(i),
        }
        for i in range(ITEMS)
    ]
    local_server.serve_bytes("/feed", rss(items))
    database = f"sqlite+aiosqlite:///{tmp_path / 'monitor.db'}"
    config = deep_merge(
        base_config_dict(database),
        {
            "sources": [
                {"type": "rss", "name": "blog", "url": local_server.url("/feed"), "every": "0.5s"}
            ],
            "daemon": {"tick": "0.1s", "deliver_every": "0.05s"},
            # One alert per mention, so every alert can be accounted for individually.
            "alerts": {"storm": {"enabled": False}, "batch": {"max_alerts": ITEMS}},
        },
    )
    path = write_config(tmp_path / "config.yaml", config)

    first = await MonitorProcess(tmp_path, "run", "-c", str(path), name="killed").start()
    try:
        await first.wait_for_log("started:")
        # Another process's output: there is no event to wait on, so poll it.
        while sum(alerted_ids(first.stdout).values()) < after_alerts:  # noqa: ASYNC110
            await asyncio.sleep(0.005)
        await asyncio.sleep(extra_delay_s)
        first.send(signal.SIGKILL)
        assert await first.wait(10) == -signal.SIGKILL
    finally:
        await first.kill()

    code, recovered_out, recovered_err = await run_monitor(
        tmp_path, "run", "--once", "-c", str(path)
    )
    assert code == 0, recovered_err
    assert "Traceback" not in recovered_err

    store = await Store.open(database)
    try:
        async with store.read() as connection:
            stored = await connection.scalar(select(func.count()).select_from(mentions))
            statuses = await outbox.counts(connection)
    finally:
        await store.dispose()

    assert stored == ITEMS, "a mention the feed served was lost"
    assert statuses == {"sent": ITEMS}, f"alerts left undelivered: {statuses}"
    delivered = alerted_ids(first.stdout, recovered_out)
    assert set(delivered) == set(range(1, ITEMS + 1)), "an alert was never delivered"
    repeats = [mention_id for mention_id, count in delivered.items() if count > 1]
    assert len(repeats) <= 1 and all(delivered[m] == 2 for m in repeats), (
        f"alerts repeated: {repeats}"
    )


@pytest.mark.parametrize(
    ("after_alerts", "extra_delay_s"),
    [(0, 0.1), (1, 0.0), (40, 0.003)],
    ids=["during-first-poll", "after-first-alert", "mid-delivery"],
)
async def test_sigkill_mid_run_loses_nothing(
    tmp_path: Path, local_server: LocalServer, after_alerts: int, extra_delay_s: float
) -> None:
    await crash_and_recover(
        tmp_path, local_server, after_alerts=after_alerts, extra_delay_s=extra_delay_s
    )


@pytest.mark.stress
@pytest.mark.timeout(600)
@pytest.mark.parametrize("iteration", range(20))
async def test_sigkill_at_random_points_stress(
    tmp_path: Path, local_server: LocalServer, iteration: int
) -> None:
    rng = random.Random(iteration)
    await crash_and_recover(
        tmp_path,
        local_server,
        after_alerts=rng.randrange(0, ITEMS),
        extra_delay_s=rng.uniform(0, 0.05),
    )
