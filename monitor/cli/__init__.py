"""`monitor` command line. Each command lives in its own module and registers itself in
``COMMANDS``; every command takes ``-c/--config`` (default $MONITOR_CONFIG, then ./config.yaml).

Exit codes: 0 success, 1 runtime failure, 2 bad config or usage, 141 the reader of the
output went away (`monitor backtest --json | head`), as for any Unix tool killed by SIGPIPE.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence

from monitor import __version__
from monitor.cli import classify, config_cmd, demo, health, match, mentions, report, run
from monitor.cli.common import CliError, Command

# 128 + SIGPIPE: what a shell reports for a tool whose reader closed the pipe.
BROKEN_PIPE_EXIT = 141
COMMANDS: dict[str, Command] = {}
for module in (run, config_cmd, mentions, health, demo, match, classify, report):
    COMMANDS.update(module.COMMANDS)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="monitor",
        description="Brand-mention monitoring daemon: finds mentions, judges them, alerts the person responsible.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, command in COMMANDS.items():
        sub = subparsers.add_parser(name, help=command.help, description=command.help)
        sub.add_argument(
            "-c",
            "--config",
            metavar="PATH",
            default=None,
            help="config file (default: $MONITOR_CONFIG, then ./config.yaml)",
        )
        sub.add_argument("-v", "--verbose", action="store_true", help="debug logging")
        command.arguments(sub)
        sub.set_defaults(handler=command.handler)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        code = int(args.handler(args) or 0)
        sys.stdout.flush()  # a closed pipe shows here, not as "Exception ignored" at exit
        return code
    except CliError as exc:
        print(str(exc), file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        _discard_stdout()
        return BROKEN_PIPE_EXIT
    finally:
        logging.shutdown()


def _discard_stdout() -> None:
    """The reader is gone (`| head`): point stdout at /dev/null so that flushing what is
    still buffered at exit does not raise the same error again as "Exception ignored"."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError):
        pass  # stdout has no file descriptor (tests capture it); nothing will be flushed
