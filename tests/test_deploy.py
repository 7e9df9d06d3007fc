"""The deployment recipes give the daemon the time its graceful shutdown may take:
`daemon.shutdown_grace` for running sources, then a few seconds to deliver and close.
A container or service manager that kills it sooner cuts the shutdown short."""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path

import yaml

from monitor.config import DaemonConfig
from monitor.durations import parse_duration

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")
# What a stop may take beyond the grace: cancelled runs get 5 s, then the outbox is
# flushed and the engine disposed.
MARGIN = timedelta(seconds=8)
NEEDED = DaemonConfig().shutdown_grace + MARGIN


def test_docker_run_in_the_readme_waits_long_enough() -> None:
    (command,) = [
        block for block in re.findall(r"```sh\n(.*?)```", README, re.S) if "docker run" in block
    ]
    timeout = re.search(r"--stop-timeout (\d+)", command)
    assert timeout, "docker run needs --stop-timeout: docker kills after 10 s by default"
    assert timedelta(seconds=int(timeout.group(1))) >= NEEDED


def test_the_compose_snippet_in_the_readme_waits_long_enough() -> None:
    (snippet,) = [
        block for block in re.findall(r"```yaml\n(.*?)```", README, re.S) if "services:" in block
    ]
    (service,) = yaml.safe_load(snippet)["services"].values()
    assert parse_duration(service["stop_grace_period"]) >= NEEDED


def test_the_systemd_unit_waits_long_enough() -> None:
    unit = (ROOT / "deploy" / "monitor.service").read_text(encoding="utf-8")
    (seconds,) = re.findall(r"^TimeoutStopSec=(\d+)$", unit, re.M)
    assert timedelta(seconds=int(seconds)) >= NEEDED
