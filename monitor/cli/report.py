"""`monitor report [--since D] [--json]`: volumes, share negative, reply times, SLA, overdue."""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime, timedelta

from alerts import metrics
from alerts.digest import headline, sections
from monitor.cli.common import CliError, Command, load, run_async, to_json, with_store
from monitor.durations import format_duration, parse_duration
from monitor.store import Store


def _arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--since", default="7d", help="period to report on, e.g. 1d, 30d (default 7d)"
    )
    parser.add_argument("--json", action="store_true", help="one JSON object")


def _report(args: argparse.Namespace) -> int:
    config = load(args)
    try:
        period = parse_duration(args.since)
    except ValueError as exc:
        raise CliError(f"--since: {exc}", exit_code=2) from None
    now = datetime.now(UTC)

    async def action(store: Store) -> metrics.Report:
        async with store.read() as connection:
            return await metrics.compute(connection, config, now - period, now)

    report = run_async(with_store(config, action))
    out = sys.stdout
    if args.json:
        out.write(to_json(report.as_dict()) + "\n")
        return 0
    data = report.as_dict()
    data["period"] = format_duration(period)
    out.write(f"Report for the last {data['period']}: {headline(report)}\n")
    for heading, lines, items in sections(data):
        if not lines and not items:
            continue
        out.write(f"\n{heading}\n")
        for line in lines:
            out.write(f"  {line}\n")
        for item in items:
            ident = f"#{item['id']:<6} " if "id" in item else ""
            age = (
                f"  ({format_duration(timedelta(seconds=item['age_s']))} old)"
                if "age_s" in item
                else ""
            )
            out.write(f"  {ident}{item['title']}{age}\n")
    return 0


COMMANDS = {
    "report": Command(
        "metrics: mentions per watchlist/source/language, share negative, reply times, SLA, overdue",
        _arguments,
        _report,
    )
}
