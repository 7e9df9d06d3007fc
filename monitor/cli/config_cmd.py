"""`monitor check-config [PATH]`."""

from __future__ import annotations

import argparse

from monitor.cli.common import Command, config_path, load


def _arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "path",
        nargs="?",
        help="config file to check (default: -c / $MONITOR_CONFIG / ./config.yaml)",
    )


def _check(args: argparse.Namespace) -> int:
    path = args.path or config_path(args)
    config = load(args, path)
    sinks = ", ".join(config.alerts.enabled_sinks()) or "console (default)"
    enabled = [s for s in config.sources if s.enabled]
    print(
        f"{path}: OK — {len(config.watchlists)} watchlists, "
        f"{len(enabled)} of {len(config.sources)} sources enabled, alerts → {sinks}"
    )
    return 0


COMMANDS = {
    "check-config": Command(
        "validate a config file (exit 2 with file:line path: problem)", _arguments, _check
    )
}
