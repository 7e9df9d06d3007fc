"""`monitor run [--once] [--no-alerts]`."""

from __future__ import annotations

import argparse

from monitor.cli.common import CliError, Command, config_path, load, run_async, setup_logging
from monitor.daemon import Daemon
from monitor.memory import limit_malloc_arenas


def _arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--once",
        action="store_true",
        help="run every source once, deliver alerts, exit (status 1 if any source failed)",
    )
    parser.add_argument(
        "--no-alerts",
        action="store_true",
        help="with --once: store what is found without alerting (seed a new install)",
    )


def _run(args: argparse.Namespace) -> int:
    path = config_path(args)
    config = load(args, path)
    setup_logging(args, config.daemon.log_level, config.secret_values())
    if args.no_alerts and not args.once:
        raise CliError("--no-alerts only makes sense with --once", exit_code=2)
    limit_malloc_arenas()  # before the database and parser threads start
    daemon = Daemon(config, path)
    if args.once:
        outcomes = run_async(daemon.run_once(alerts_enabled=not args.no_alerts))
        failed = [o for o in outcomes if not o.ok]
        for outcome in failed:
            print(f"error: {outcome.error}")
        # Cron mails whatever a failing job prints: any failed source is worth a look.
        return 1 if failed else 0
    return run_async(daemon.run_forever())


COMMANDS = {"run": Command("run the daemon (or every source once with --once)", _arguments, _run)}
