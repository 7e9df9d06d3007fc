"""GitHub issue and pull request search against a local server serving the real recording."""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from aiohttp import web
from sqlalchemy import select

from monitor.daemon import Daemon
from monitor.store import sources as source_store
from monitor.store.tables import mentions
from sources.base import SourceContext
from sources.github import GithubConfig, GithubSource
from tests.conftest import FIXTURES
from tests.helpers.servers import LocalServer

RECORDING = json.loads((FIXTURES / "github" / "search_issues_raw.json").read_text())
SEARCH = next(r for r in RECORDING if r["path"].startswith("/search/issues"))
RECORDED_HEADERS = dict(zip(SEARCH["rawHeaders"][::2], SEARCH["rawHeaders"][1::2], strict=True))
RATE_HEADERS = {k: v for k, v in RECORDED_HEADERS.items() if k.lower().startswith("x-ratelimit")}
ISSUES = SEARCH["response"]["items"]
WATCHLISTS = [{"name": "brand", "query": "sesame -spam", "owner": "priya"}]
TOKEN = "ghp_0000000000000000000000000000000000001"


def pull_request(number: int, title: str, created: str) -> dict[str, Any]:
    """A pull request in the shape search returns it: a recorded issue plus `pull_request`."""
    item = copy.deepcopy(ISSUES[0])
    repo = item["repository_url"].split("/repos/", 1)[1]
    item.update(
        number=number,
        title=title,
        body="Makes the sesame door open again",
        node_id=f"PR_kwDOHrjvNc{number:04d}",
        html_url=f"https://github.com/{repo}/pull/{number}",
        created_at=created,
        pull_request={"html_url": f"https://github.com/{repo}/pull/{number}"},
    )
    return item


class Search:
    """GitHub's /search/issues over a list of items: terms (OR), is:issue|pr, created:>=."""

    def __init__(self, server: LocalServer, items: list[dict[str, Any]]) -> None:
        self.items = list(items)
        self.headers = dict(RATE_HEADERS)
        self.answer: web.Response | None = None
        self.events: list[dict[str, Any]] = []
        self.server = server
        server.route("/search/issues", self.search)

    def calls(self) -> list[Any]:
        return [r for r in self.server.requests if r.path == "/search/issues"]

    async def search(self, request: web.Request) -> web.Response:
        if self.answer is not None:
            return self.answer
        q = request.query["q"]
        kind = re.search(r"is:(issue|pr)", q)
        assert kind, "GitHub wants is:issue or is:pr"
        since = re.search(r"created:>=(\S+)", q)
        terms = [t.strip('"').lower() for t in re.findall(r'"[^"]+"|\w+', q.split(" is:")[0])]
        terms = [t for t in terms if t != "or"]
        found = [
            item
            for item in self.items
            if ("pull_request" in item) == (kind.group(1) == "pr")
            and any(t in f"{item['title']} {item['body']}".lower() for t in terms)
            and (since is None or item["created_at"] >= since.group(1))
        ]
        found.sort(key=lambda item: item["created_at"], reverse=True)
        body = {"total_count": len(found), "incomplete_results": False, "items": found}
        return web.json_response(body, headers=self.headers)


def github_source(server: LocalServer, **extra: Any) -> dict[str, Any]:
    return {"type": "github", "name": "github", "api_url": server.url(""), "every": "1m", **extra}


async def opened(daemon: Daemon) -> Daemon:
    await daemon.open()
    async with daemon.store.begin() as connection:
        for source in daemon.sources.values():
            await source_store.ensure(connection, source.name, source.kind, datetime.now(UTC))
    return daemon


async def health(daemon: Daemon) -> source_store.SourceHealth:
    async with daemon.store.read() as connection:
        (row,) = await source_store.health(connection)
        return row


def test_terms_become_or_groups_within_githubs_limits(make_daemon: Callable[..., Daemon]) -> None:
    config = make_daemon(
        watchlists=[
            {"name": "a", "query": '"acme cloud" OR acmecloud OR a1 OR a2 OR a3 OR a4 -jobs'},
            {"name": "b", "query": 'globex OR initech OR "globex outage" near/3 refund'},
        ]
    ).config
    source = GithubSource(
        "github",
        GithubConfig(type="github"),
        SourceContext(http=None, watchlists=config.watchlists, brand=config.brand),  # type: ignore[arg-type]
    )
    assert source._queries() == [
        '"acme cloud" OR acmecloud OR a1 OR a2 OR a3 OR a4',
        'globex OR initech OR "globex outage" OR refund',
    ]


async def test_first_poll_runs_an_issue_and_a_pr_search_and_stores_both_issues(
    local_server: LocalServer, make_daemon: Callable[..., Daemon], database_url: str
) -> None:
    search = Search(local_server, ISSUES)
    daemon = make_daemon(
        database=database_url, watchlists=WATCHLISTS, sources=[github_source(local_server)]
    )
    (outcome,) = await daemon.run_once()
    assert outcome.ok, outcome.error
    assert outcome.stats is not None and outcome.stats.new == 2
    calls = search.calls()
    assert [c.query["q"] for c in calls] == [
        "sesame is:issue in:title,body",
        "sesame is:pr in:title,body",
    ]
    assert all(c.query["sort"] == "created" and c.query["order"] == "desc" for c in calls)
    assert "Authorization" not in calls[0].headers

    await daemon.open()
    try:
        async with daemon.store.read() as connection:
            rows = (await connection.execute(select(mentions).order_by(mentions.c.id))).all()
        by_key = {row.source_key: row for row in rows}
        doors = by_key["github:I_kwDOHrjvNc5OBUw7"]
        assert doors.title == "The doors don’t open"
        assert doors.text == 'I tried "open sesame" as seen on Wikipedia but no luck!'
        assert doors.author == "octokit-fixture-user-a"
        assert doors.url == doors.thread_key
        assert doors.url.endswith("/tmp-scenario-search-issues-20220719044045959-jlcli/issues/1")
        assert doors.published_at == datetime(2022, 7, 19, 4, 40, 49, tzinfo=UTC)
        assert doors.extra["kind"] == "issue" and doors.extra["number"] == 1
        stats = (await health(daemon)).stats
        assert stats["rate_limit_remaining"] == 29 and stats["rate_limit"] == 30
    finally:
        await daemon.close()


async def test_incremental_poll_asks_from_the_cursor_and_repeats_nothing(
    local_server: LocalServer, make_daemon: Callable[..., Daemon]
) -> None:
    search = Search(local_server, ISSUES)
    daemon = await opened(
        make_daemon(watchlists=WATCHLISTS, sources=[github_source(local_server, token=TOKEN)])
    )
    try:
        source = daemon.sources["github"]
        first = await daemon.runner.run(source)
        assert first.ok and first.stats is not None and first.stats.new == 2
        search.items.append(pull_request(3, "Fix the sesame door", "2022-07-19T04:45:00Z"))
        second = await daemon.runner.run(source)
        assert second.ok and second.stats is not None
        assert (second.stats.fetched, second.stats.new) == (1, 1)
        pr_search = search.calls()[-1]
        # Newest seen: issue 2 at 04:40:52; the cursor overlaps by 10 minutes.
        assert pr_search.query["q"] == "sesame is:pr in:title,body created:>=2022-07-19T04:30:52Z"
        assert pr_search.headers["Authorization"] == f"Bearer {TOKEN}"
        third = await daemon.runner.run(source)
        assert third.ok and third.stats is not None and third.stats.fetched == 0
    finally:
        await daemon.close()


async def test_budget_used_up_waits_for_the_reset_without_skipping_anything(
    local_server: LocalServer, make_daemon: Callable[..., Daemon]
) -> None:
    search = Search(local_server, ISSUES)
    reset = int((datetime.now(UTC) + timedelta(minutes=7)).timestamp())
    search.headers.update({"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": str(reset)})
    daemon = await opened(make_daemon(watchlists=WATCHLISTS, sources=[github_source(local_server)]))
    try:
        outcome = await daemon.runner.run(daemon.sources["github"])
        assert outcome.ok
        assert len(search.calls()) == 1  # the is:pr search waits for the reset
        row = await health(daemon)
        assert row.next_check_at >= datetime.fromtimestamp(reset, UTC) - timedelta(seconds=1)
        assert "1 searches wait for the reset" in (row.warning or "")
        assert "`token` raises the limit" in (row.warning or "")
        async with daemon.store.read() as connection:
            state = await source_store.load(connection, "github")
        assert state.cursor["window"] == {}  # the skipped search will start from scratch too
    finally:
        await daemon.close()


async def test_rate_limit_answers_are_recorded_with_the_time_they_clear(
    local_server: LocalServer, make_daemon: Callable[..., Daemon]
) -> None:
    search = Search(local_server, ISSUES)
    search.answer = web.json_response(
        {"message": "You have exceeded a secondary rate limit."},
        status=403,
        headers={"Retry-After": "90"},
    )
    daemon = make_daemon(watchlists=WATCHLISTS, sources=[github_source(local_server)])
    before = datetime.now(UTC)
    (outcome,) = await daemon.run_once()
    assert not outcome.ok and "rate limited by GitHub (HTTP 403" in outcome.error
    await daemon.open()
    try:
        row = await health(daemon)
        assert row.error_streak == 1 and row.retry_after_until is not None
        assert row.retry_after_until >= before + timedelta(seconds=89)
    finally:
        await daemon.close()

    reset = int((datetime.now(UTC) + timedelta(minutes=20)).timestamp())
    search.answer = web.json_response(
        {"message": "API rate limit exceeded"},
        status=403,
        headers={"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": str(reset)},
    )
    (outcome,) = await make_daemon(config=daemon.config).run_once()
    assert not outcome.ok and "API rate limit exceeded" in outcome.error
    await daemon.open()
    try:
        row = await health(daemon)
        assert row.error_streak == 2 and row.retry_after_until is not None
        assert row.retry_after_until >= datetime.fromtimestamp(reset, UTC) - timedelta(seconds=5)
    finally:
        await daemon.close()


async def test_bad_credentials_name_the_token_key_and_never_show_it(
    local_server: LocalServer, make_daemon: Callable[..., Daemon]
) -> None:
    search = Search(local_server, ISSUES)
    search.answer = web.json_response({"message": "Bad credentials"}, status=401)
    daemon = make_daemon(watchlists=WATCHLISTS, sources=[github_source(local_server, token=TOKEN)])
    (outcome,) = await daemon.run_once()
    assert not outcome.ok
    assert outcome.error.startswith("github: access denied (HTTP 401: Bad credentials)")
    assert "check `token` of this source" in outcome.error
    assert TOKEN not in outcome.error and TOKEN not in daemon.sources["github"].describe()


async def test_malformed_json_and_validation_errors_are_clear(
    local_server: LocalServer, make_daemon: Callable[..., Daemon]
) -> None:
    search = Search(local_server, ISSUES)
    search.answer = web.Response(text='{"items": [', content_type="application/json")
    daemon = make_daemon(watchlists=WATCHLISTS, sources=[github_source(local_server)])
    (outcome,) = await daemon.run_once()
    assert not outcome.ok
    assert outcome.error.startswith("github: malformed JSON from the search API")

    search.answer = web.json_response(
        {"message": "Validation Failed", "errors": [{"code": "invalid"}]}, status=422
    )
    (outcome,) = await make_daemon(config=daemon.config).run_once()
    assert "GitHub rejected the search (HTTP 422: Validation Failed)" in outcome.error
    assert "check `query`/`qualifiers`" in outcome.error


async def test_an_empty_result_is_fine(
    local_server: LocalServer, make_daemon: Callable[..., Daemon]
) -> None:
    Search(local_server, [])
    daemon = make_daemon(watchlists=WATCHLISTS, sources=[github_source(local_server)])
    (outcome,) = await daemon.run_once()
    assert outcome.ok and outcome.stats is not None and outcome.stats.fetched == 0


async def test_replies_are_the_accounts_issue_comments_in_the_same_threads(
    local_server: LocalServer, make_daemon: Callable[..., Daemon]
) -> None:
    """Events in the documented `IssueCommentEvent` shape (constructed, see SOURCES.md)."""
    Search(local_server, ISSUES)
    issue = ISSUES[1]

    def event(kind: str, login: str, created: str, **payload: Any) -> dict[str, Any]:
        return {
            "id": "1",
            "type": kind,
            "actor": {"login": login},
            "payload": payload,
            "created_at": created,
        }

    comment = {
        "html_url": issue["html_url"] + "#issuecomment-1",
        "user": {"login": "acme-support"},
        "created_at": "2022-07-19T05:00:00Z",
        "body": "Thanks, we are looking into it.",
    }
    events = [
        event(
            "IssueCommentEvent",
            "acme-support",
            "2022-07-19T05:00:00Z",
            action="created",
            issue=issue,
            comment=comment,
        ),
        event("IssuesEvent", "acme-support", "2022-07-19T05:01:00Z", action="closed", issue=issue),
        event(
            "IssueCommentEvent",
            "acme-support",
            "2022-07-01T00:00:00Z",
            action="created",
            issue=issue,
            comment={**comment, "created_at": "2022-07-01T00:00:00Z"},
        ),
    ]

    async def public_events(_request: web.Request) -> web.Response:
        return web.json_response(events)

    local_server.route("/users/acme-support/events/public", public_events)
    daemon = make_daemon(watchlists=WATCHLISTS, sources=[github_source(local_server)])
    (outcome,) = await daemon.run_once()
    assert outcome.ok
    await daemon.open()
    try:
        source = daemon.sources["github"]
        replies = await source.replies("acme-support", since=datetime(2022, 7, 18, tzinfo=UTC))
        async with daemon.store.read() as connection:
            stored = (
                await connection.execute(
                    select(mentions.c.thread_key).where(
                        mentions.c.source_key == f"github:{issue['node_id']}"
                    )
                )
            ).scalar_one()
        assert [(r.thread_key, r.url, r.author) for r in replies] == [
            (stored, comment["html_url"], "acme-support")
        ]
        assert replies[0].in_reply_to_key == f"github:{issue['node_id']}"
    finally:
        await daemon.close()
