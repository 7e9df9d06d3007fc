"""House rules that keep adapters pluggable, checked on the code itself.

STYLE: "the core never special-cases a built-in adapter" — built-in sources and sinks
are wired exactly as a third party's would be, through the registries and the public
interfaces (``SinkContext``, ``AlertSink.start_interactive``, ``Source``)."""

from __future__ import annotations

import ast
import asyncio
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from alerts import SINKS
from monitor.daemon import Daemon
from sources import SOURCES
from tests.helpers.fake_slack import FakeSlack
from tests.helpers.servers import LocalServer

CORE = Path(__file__).resolve().parent.parent / "monitor"
# The modules of built-in adapters, and their helpers (alerts.slack_blocks, ...).
BUILT_IN = {cls.__module__ for cls in [*SINKS.values(), *SOURCES.values()]}


def core_trees() -> Iterator[tuple[str, ast.Module]]:
    for path in sorted(CORE.rglob("*.py")):
        if "migrations" not in path.parts:
            yield str(path.relative_to(CORE.parent)), ast.parse(path.read_text("utf-8"))


def test_the_core_imports_no_built_in_adapter() -> None:
    found = []
    for where, tree in core_trees():
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module, *(f"{node.module}.{a.name}" for a in node.names)]
            elif isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            for name in names:
                if any(name == m or name.startswith((f"{m}_", f"{m}.")) for m in BUILT_IN):
                    found.append(f"{where}:{node.lineno} imports {name}")
    assert not found, "\n".join(found)


def test_the_core_names_no_built_in_adapter_kind() -> None:
    """`if kind == "console"` or `or ["console"]` in the core is a special case."""
    kinds = set(SINKS) | set(SOURCES)
    found = [
        f"{where}:{node.lineno} {node.value!r}"
        for where, tree in core_trees()
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant) and node.value in kinds
    ]
    assert not found, "\n".join(found)


async def test_the_daemon_starts_and_stops_a_sinks_interactive_side_through_the_hook(
    local_server: LocalServer,
    make_daemon: Callable[..., Daemon],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Slack's buttons start with the daemon (Socket Mode asks apps.connections.open) and
    never with `run --once`; a refused app token is reported and does not hold up the
    start (the SDK alone would retry it forever)."""
    slack = FakeSlack(local_server)
    slack_config = {
        "token": "xoxb-test",
        "app_token": "xapp-test",
        "channel": "#brand-alerts",
        "api_url": slack.api_url,
    }
    once = make_daemon(alerts={"slack": slack_config})
    await once.run_once()
    assert slack.of("apps.connections.open") == []

    daemon = make_daemon(alerts={"slack": slack_config})
    async with asyncio.timeout(10):
        await daemon.start()
    try:
        assert len(slack.of("apps.connections.open")) == 1
        assert "buttons unavailable, Socket Mode did not connect (invalid_auth)" in caplog.text
        assert await daemon.reload() is False  # no config file: the buttons are left alone
    finally:
        await daemon.shutdown()
    assert len(slack.of("apps.connections.open")) == 1
