"""`monitor check-config [PATH]`."""

from __future__ import annotations

import argparse
import sys
from datetime import timedelta
from pathlib import Path

from monitor.cli.common import Command, config_path, load
from monitor.cli.health import _adapters
from monitor.config import Config
from monitor.durations import format_duration
from monitor.yaml_lines import YamlError, load_with_lines


def _arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "path",
        nargs="?",
        help="config file to check (default: -c / $MONITOR_CONFIG / ./config.yaml)",
    )


def _check(args: argparse.Namespace) -> int:
    path = args.path or config_path(args)
    config = load(args, path)
    for warning in interval_warnings(config, path):
        print(warning, file=sys.stderr)
    sinks = ", ".join(config.alerts.enabled_sinks()) or "console (default)"
    enabled = [s for s in config.sources if s.enabled]
    print(
        f"{path}: OK — {len(config.watchlists)} watchlists, "
        f"{len(enabled)} of {len(config.sources)} sources enabled, alerts → {sinks}"
    )
    return 0


def interval_warnings(config: Config, path: str) -> list[str]:
    """Sources with ``every`` below their adapter's ``min_interval_s``: the daemon raises it
    to that floor without a word, so say it here (a server on this machine, where the
    floor does not apply, gets no warning)."""
    try:
        _data, lines = load_with_lines(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, YamlError):
        lines = {}
    adapters = _adapters(config)
    warnings = []
    for index, section in enumerate(config.sources):
        adapter = adapters.get(section.name)
        if adapter is None:
            continue
        floor = timedelta(seconds=adapter.min_interval_s)
        if not section.every < floor <= adapter.interval:
            continue
        line = lines.get(("sources", index, "every")) or lines.get(("sources", index), 0)
        warnings.append(
            f"{path}:{line} sources[{index}].every: warning: {format_duration(section.every)} "
            f"is below the {section.type} adapter's minimum of {format_duration(floor)}; "
            f"{section.name} will be polled every {format_duration(adapter.interval)}"
        )
    return warnings


COMMANDS = {
    "check-config": Command(
        "validate a config file (exit 2 with file:line path: problem)", _arguments, _check
    )
}
