"""`monitor mentions`, and the workflow commands `ack`, `answer`, `resolve`, `ignore`, `reopen`."""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy.ext.asyncio import AsyncConnection

from alerts.text import safe_url
from monitor.cli.common import CliError, Command, actor, load, run_async, to_json, with_store
from monitor.durations import parse_duration
from monitor.store import Store
from monitor.store import mentions as mention_store
from monitor.store.tables import MENTION_STATES

PUBLIC_FIELDS = (
    "id",
    "source",
    "platform",
    "url",
    "title",
    "text",
    "author",
    "published_at",
    "fetched_at",
    "language",
    "sentiment",
    "sentiment_score",
    "needs_reply",
    "tagged",
    "state",
    "state_by",
    "state_at",
    "watchlists",
    "backfill",
)


def _since(value: str) -> datetime:
    """``--since``: a duration back from now (1d, 6h) or an ISO date or time; one without
    a zone is UTC, as every time the daemon stores."""
    try:
        return datetime.now(UTC) - parse_duration(value)
    except ValueError:
        pass
    try:
        moment = datetime.fromisoformat(value.strip())
    except ValueError:
        raise CliError(
            f"--since: {value!r} is neither a duration (1d, 6h) nor an ISO date or time "
            "(2026-12-06, 2026-12-06T09:30, 2026-12-06T09:30+05:30)",
            exit_code=2,
        ) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _list_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--state", choices=MENTION_STATES, help="only mentions in this state")
    parser.add_argument("--watchlist", "-w", help="only mentions matching this watchlist")
    parser.add_argument(
        "--since",
        help="only mentions fetched within this long (1d, 6h) or since this ISO date or time "
        "(2026-12-06, 2026-12-06T09:30; UTC unless it has a zone)",
    )
    parser.add_argument("--limit", type=int, default=None, help="at most this many (newest first)")
    parser.add_argument("--json", action="store_true", help="JSON Lines, one object per mention")


async def listing(
    connection: AsyncConnection,
    *,
    state: str | None = None,
    watchlist: str | None = None,
    since: datetime | None = None,
    limit: int | None = None,
) -> list[dict[str, Any]]:
    """What `monitor mentions` shows: only the public columns are read."""
    return await mention_store.list_mentions(
        connection,
        state=state,
        watchlist=watchlist,
        since=since,
        limit=limit,
        columns=[name for name in PUBLIC_FIELDS if name != "watchlists"],
    )


def _list(args: argparse.Namespace) -> int:
    config = load(args)
    since = _since(args.since) if args.since else None

    async def action(store: Store) -> list[dict[str, Any]]:
        async with store.read() as connection:
            return await listing(
                connection,
                state=args.state,
                watchlist=args.watchlist,
                since=since,
                limit=args.limit,
            )

    rows = run_async(with_store(config, action))
    out = sys.stdout
    for row in rows:
        public = {key: row.get(key) for key in PUBLIC_FIELDS}
        if args.json:
            out.write(to_json(public) + "\n")
        else:
            text = " ".join((row["title"] or row["text"]).split())[:70]
            out.write(
                f"{row['id']:>6}  {row['state']:<12} {row['sentiment']:<8} "
                f"{'reply' if row['needs_reply'] else '     '}  {row['language'] or '--':<3} "
                f"{row['source'][:14]:<14} {text}\n"
            )
    if not rows and not args.json:
        print("no mentions match", file=sys.stderr)
    return 0


def _state_command(
    state: str, help_text: str, *, reason: bool = False, link: bool = False
) -> Command:
    def arguments(parser: argparse.ArgumentParser) -> None:
        parser.add_argument("id", type=int, help="mention id (see `monitor mentions`)")
        if reason:
            parser.add_argument("--reason", required=True, help="why (kept in the event log)")
        if link:
            parser.add_argument("--link", help="URL of the reply")

    def handler(args: argparse.Namespace) -> int:
        config = load(args)
        answer_url = _reply_link(getattr(args, "link", None))

        async def action(store: Store) -> dict[str, Any]:
            async with store.begin() as connection:
                try:
                    return await mention_store.set_state(
                        connection,
                        args.id,
                        state,
                        actor=actor(),
                        now=datetime.now(UTC),
                        reason=getattr(args, "reason", "") or "",
                        answer_url=answer_url,
                    )
                except mention_store.StateChangeError as exc:
                    raise CliError(str(exc)) from None

        change = run_async(with_store(config, action))
        print(f"mention {args.id}: {change['from']} → {change['to']}")
        return 0

    return Command(help_text, arguments, handler)


def _reply_link(link: str | None) -> str | None:
    """The reply's address, shown as a link in Slack and email: http(s) only."""
    if link is None:
        return None
    safe = safe_url(link)
    if safe is None or not urlsplit(safe).netloc:
        raise CliError(
            f"monitor answer: --link {link!r} is not an http(s) URL; give the address of the reply, "
            "e.g. https://mastodon.social/@acme/112233",
            exit_code=2,
        )
    return safe


COMMANDS = {
    "mentions": Command("list stored mentions", _list_arguments, _list),
    "ack": _state_command("acknowledged", "acknowledge a mention (stops escalation)"),
    "answer": _state_command("answered", "mark a mention answered", link=True),
    "resolve": _state_command("resolved", "mark a mention resolved"),
    "ignore": _state_command(
        "ignored", "mark a mention not relevant (kept, never deleted)", reason=True
    ),
    "reopen": _state_command("open", "reopen a mention"),
}
