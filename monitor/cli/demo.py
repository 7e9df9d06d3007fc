"""`monitor demo`: see the product work with no accounts and no internet."""

from __future__ import annotations

import argparse
import sys

from monitor.cli.common import Command, run_async, setup_logging
from monitor.demo import run_demo


def _arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--seconds", type=float, default=15.0, help="how long to run (default 15)")


def _demo(args: argparse.Namespace) -> int:
    setup_logging(args, "WARNING")
    return run_async(run_demo(args.seconds, sys.stdout))


COMMANDS = {
    "demo": Command(
        "run the whole pipeline on bundled sample mentions from a local server", _arguments, _demo
    )
}
