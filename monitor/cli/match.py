"""`monitor match` (try watchlists on text from stdin) and `monitor backtest` (replay stored
mentions against a changed config and show what would have alerted, writing nothing)."""

from __future__ import annotations

import argparse
import sys
import unicodedata
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncConnection

from alerts.rules import RuleContext, decide_new_mention
from monitor.cli.common import CliError, Command, load, run_async, to_json
from monitor.config import Config
from monitor.durations import parse_duration
from monitor.language import detect_language
from monitor.matching import Matcher, MatchInput, WatchlistMatch
from monitor.mention import Mention
from monitor.pipeline import brand_handles, is_tagged
from monitor.store import mentions as mention_store
from monitor.store.engine import create_engine
from monitor.store.tables import mentions

# Stored mentions are replayed in pages of this many rows (bounded memory at any size).
BACKTEST_PAGE = 1000
DEFAULT_SINCE = "7d"
SUMMARY_KEYS = (
    "examined",
    "matched",
    "matched_before",
    "newly_matched",
    "no_longer_matched",
    "would_alert",
    "backfill",
)


def _printable(text: str, limit: int = 80) -> str:
    """One line, control characters shown as spaces: text from the internet must not steer
    the terminal."""
    cleaned = "".join(" " if unicodedata.category(ch)[0] == "C" else ch for ch in text)
    cleaned = " ".join(cleaned.split())
    return cleaned if len(cleaned) <= limit else cleaned[: limit - 1] + "…"


def _check_watchlist(config: Config, name: str | None) -> None:
    names = [w.name for w in config.watchlists]
    if name is not None and name not in names:
        raise CliError(
            f"--watchlist: no watchlist named {name!r}; the config has {', '.join(names)}", 2
        )


# ----------------------------------------------------------------------------- match


def _match_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="one JSON object per input line")
    parser.add_argument("--watchlist", "-w", help="only this watchlist")
    parser.add_argument("--url", default="", help="URL to test site: filters against")
    parser.add_argument("--author", default="", help="author to test author: filters against")
    parser.add_argument("--lang", default=None, help="language (default: detected per line)")


def _match(args: argparse.Namespace) -> int:
    config = load(args)
    _check_watchlist(config, args.watchlist)
    matcher = Matcher.from_config(config.watchlists)
    handles = brand_handles(config)
    out = sys.stdout
    for number, raw in enumerate(sys.stdin, start=1):
        line = raw.rstrip("\r\n")
        language = args.lang if args.lang is not None else detect_language(line)
        item = MatchInput(line, url=args.url, author=args.author, language=language)
        found = matcher.match(item, only=args.watchlist)
        tagged = is_tagged(line, handles)
        if args.json:
            out.write(to_json(_match_json(number, line, language, tagged, found)) + "\n")
        else:
            out.write(_match_text(number, line, language, tagged, found))
        out.flush()
    return 0


def _match_json(
    number: int, line: str, language: str, tagged: bool, found: list[WatchlistMatch]
) -> dict[str, Any]:
    return {
        "line": number,
        "text": line,
        "language": language,
        "tagged": tagged,
        "matches": [
            {
                "watchlist": m.watchlist,
                "terms": m.terms,
                "spans": [list(span) for span in m.spans],
                "highlights": [line[start:end] for start, end in m.spans],
            }
            for m in found
        ],
    }


def _match_text(
    number: int, line: str, language: str, tagged: bool, found: list[WatchlistMatch]
) -> str:
    label = ", ".join(filter(None, [language or "language unknown", "tagged" if tagged else ""]))
    if not found:
        return f"{number} [{label}] no match\n"
    rows = []
    for m in found:
        spans = ", ".join(f'{s}-{e} "{_printable(line[s:e], 40)}"' for s, e in m.spans)
        terms = ", ".join(_printable(t, 40) for t in m.terms) or "(routed, no term)"
        rows.append(
            f"{number} [{label}] {m.watchlist}: {terms}" + (f" at {spans}" if spans else "")
        )
    return "\n".join(rows) + "\n"


# -------------------------------------------------------------------------- backtest


def _backtest_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--since",
        default=DEFAULT_SINCE,
        help=f"replay mentions fetched within this long, e.g. 2d, 12h, or 'all' (default {DEFAULT_SINCE})",
    )
    parser.add_argument("--watchlist", "-w", help="only report this watchlist")
    parser.add_argument("--json", action="store_true", help="JSON Lines, one object per mention")


def _backtest(args: argparse.Namespace) -> int:
    config = load(args)
    _check_watchlist(config, args.watchlist)
    since = None
    if args.since != "all":
        try:
            since = datetime.now(UTC) - parse_duration(args.since)
        except ValueError as exc:
            raise CliError(f"--since: {exc}", exit_code=2) from None
    url = make_url(config.database)
    database = url.database or ""
    on_disk = url.get_backend_name() == "sqlite" and database not in ("", ":memory:")
    if on_disk and not Path(database).expanduser().exists():
        raise CliError(f"database: no database at {database}; nothing to replay")
    report = run_async(_replay(config, since, args.watchlist))
    out = sys.stdout
    header = f"{'id':>6}  {'watchlists':<24} {'change':<18} {'with this config':<40} text\n"
    for entry in report["mentions"]:
        if args.json:
            out.write(to_json(entry) + "\n")
        elif entry["alerts"] or entry["added"] or entry["removed"]:
            out.write(header + _backtest_line(entry))
            header = ""
    summary = report["summary"]
    print(
        f"backtest: {summary['examined']} stored mentions"
        f"{' since ' + since.strftime('%Y-%m-%d %H:%M UTC') if since else ''} against "
        f"{len(config.watchlists)} watchlists: {summary['matched']} match now "
        f"(stored with a match: {summary['matched_before']}), {summary['newly_matched']} newly "
        f"matched, {summary['no_longer_matched']} no longer; {summary['would_alert']} would "
        f"alert ({summary['backfill']} stored as backfill never alert). Nothing was written.",
        file=sys.stderr if args.json else sys.stdout,
    )
    return 0


def _backtest_line(entry: dict[str, Any]) -> str:
    changes = [f"+{w}" for w in entry["added"]] + [f"-{w}" for w in entry["removed"]]
    alert = (
        "would alert "
        + ", ".join(sorted({a["sink"] for a in entry["alerts"]}))
        + f" ({'; '.join(entry['alerts'][0]['reasons'])})"
        if entry["alerts"]
        else "no alert"
    )
    watchlists = ",".join(entry["watchlists"]) or "(none)"
    return (
        f"{entry['id']:>6}  {watchlists:<24} {' '.join(changes) or '=':<18} {alert:<40} "
        f"{_printable(entry['text'], 60)}\n"
    )


async def _replay(config: Config, since: datetime | None, only: str | None) -> dict[str, Any]:
    engine = create_engine(config.database)
    try:
        async with engine.connect() as connection:
            return await _replay_rows(connection, config, since, only)
    except SQLAlchemyError as exc:
        raise CliError(
            f"database: cannot read stored mentions ({exc.__class__.__name__}: "
            f"{str(exc).splitlines()[0]}); check `database:` and run the daemon once to migrate it"
        ) from None
    finally:
        await engine.dispose()


async def _replay_rows(
    connection: AsyncConnection, config: Config, since: datetime | None, only: str | None
) -> dict[str, Any]:
    matcher = Matcher.from_config(config.watchlists)
    watchlists = {w.name: w for w in config.watchlists}
    routed = {s.name: s.watchlist for s in config.sources if s.watchlist}
    context = RuleContext(config, list(config.alerts.active_sinks()), datetime.now(UTC))
    entries: list[dict[str, Any]] = []
    counts: Counter[str] = Counter()
    last_id = 0
    while True:
        query = select(mentions).where(mentions.c.id > last_id).order_by(mentions.c.id)
        if since is not None:
            query = query.where(mentions.c.fetched_at >= since)
        rows = (await connection.execute(query.limit(BACKTEST_PAGE))).all()
        if not rows:
            break
        last_id = rows[-1].id
        before = await mention_store.watchlists_of(connection, [row.id for row in rows])
        for row in rows:
            stored = mention_store.as_dict(row, before.get(row.id, []))
            entry = _replay_one(stored, matcher, watchlists, routed, context)
            if only is not None and only not in entry["watchlists"] + stored["watchlists"]:
                continue
            counts["examined"] += 1
            counts["matched"] += bool(entry["watchlists"])
            counts["matched_before"] += bool(stored["watchlists"])
            counts["newly_matched"] += bool(entry["watchlists"]) and not stored["watchlists"]
            counts["no_longer_matched"] += bool(stored["watchlists"]) and not entry["watchlists"]
            counts["would_alert"] += bool(entry["alerts"])
            counts["backfill"] += bool(stored["backfill"])
            entries.append(entry)
    summary = {key: counts[key] for key in SUMMARY_KEYS}
    return {"mentions": entries, "summary": summary}


def _replay_one(
    stored: dict[str, Any],
    matcher: Matcher,
    watchlists: dict[str, Any],
    routed: dict[str, str],
    context: RuleContext,
) -> dict[str, Any]:
    mention = Mention(
        source_key=stored["source_key"],
        url=stored["url"],
        title=stored["title"],
        text=stored["text"],
        author=stored["author"],
    )
    text = mention.match_text()
    language = stored["language"] or detect_language(text)
    found = matcher.match(MatchInput(text, stored["url"], stored["author"], language))
    names = [m.watchlist for m in found]
    hint = routed.get(stored["source"])
    if hint and hint not in names:
        names.append(hint)
    row = {**stored, "watchlists": names}
    decided = decide_new_mention(row, [watchlists[n] for n in names], context) if names else []
    return {
        "id": stored["id"],
        "source": stored["source"],
        "published_at": stored["published_at"],
        "language": language,
        "sentiment": stored["sentiment"],
        "needs_reply": stored["needs_reply"],
        "backfill": stored["backfill"],
        "text": text,
        "watchlists_before": stored["watchlists"],
        "watchlists": names,
        "added": [n for n in names if n not in stored["watchlists"]],
        "removed": [n for n in stored["watchlists"] if n not in names],
        "matches": [{"watchlist": m.watchlist, "terms": m.terms, "spans": m.spans} for m in found],
        "alerts": [
            {
                "sink": item.sink,
                "target": item.target,
                "reasons": item.payload.get("reasons", []),
                "people": item.payload.get("people", []),
            }
            for item in decided
        ],
    }


COMMANDS = {
    "match": Command(
        "print which watchlists and terms match each line of standard input",
        _match_arguments,
        _match,
    ),
    "backtest": Command(
        "replay stored mentions against this config's watchlists and rules; show what would "
        "have alerted (writes nothing)",
        _backtest_arguments,
        _backtest,
    ),
}
