"""Stack Exchange against a local stand-in that, like the real API, always gzips."""

from __future__ import annotations

import gzip
import json
from collections.abc import Callable
from datetime import UTC, datetime, time, timedelta
from typing import Any

import pytest
from aiohttp import web

from monitor.config import Config
from monitor.daemon import Daemon, build_sources
from monitor.replies import poll_replies
from sources.base import Source, SourceContext, SourceState
from sources.http import HttpClient
from sources.stackexchange import site_domain
from tests.helpers.servers import LocalServer
from tests.helpers.source_harness import FIXTURES, build_source, http_client, recorded

__all__ = ["http_client"]

EMPTY = "search_excerpts_empty.json"
PAGES = ["search_excerpts_page1_of_2.json", "search_excerpts_page2_of_2.json"]


def fixture(name: str) -> bytes:
    return (FIXTURES / "stackexchange" / name).read_bytes()


def gzipped(name: str, status: int = 200) -> web.Response:
    return web.Response(
        body=gzip.compress(fixture(name)),
        status=status,
        headers={"Content-Encoding": "gzip", "Content-Type": "application/json; charset=utf-8"},
    )


def serve_search(server: LocalServer, pages_by_term: dict[str, list[str]]) -> None:
    async def handler(request: web.Request) -> web.Response:
        pages = pages_by_term.get(request.query.get("q", ""), [])
        page = int(request.query.get("page", "1")) - 1
        return gzipped(pages[page] if page < len(pages) else EMPTY)

    server.route("/2.3/search/excerpts", handler)


def se_section(server: LocalServer, **extra: Any) -> dict[str, Any]:
    return {
        "type": "stackexchange",
        "name": "stackexchange",
        "every": "1m",
        "api_url": server.url("/2.3"),
        **extra,
    }


def searches(server: LocalServer) -> list[dict[str, str]]:
    return [r.query for r in server.requests if r.path == "/2.3/search/excerpts"]


async def test_first_poll_decompresses_gzip_and_stores_questions_and_answers(
    local_server: LocalServer, make_daemon: Callable[..., Daemon]
) -> None:
    serve_search(local_server, {"acme cloud": PAGES})
    daemon = make_daemon(sources=[se_section(local_server)])
    (outcome,) = await daemon.run_once()
    assert outcome.ok and outcome.stats and (outcome.stats.fetched, outcome.stats.new) == (2, 2)
    asked = searches(local_server)
    assert [q["q"] for q in asked] == ["acme cloud", "acmecloud", "globex"]
    assert asked[0] == {
        "order": "desc",
        "sort": "creation",
        "q": "acme cloud",
        "site": "stackoverflow",
        "pagesize": "100",
        "page": "1",
    }
    assert "gzip" in local_server.requests[0].headers.get("Accept-Encoding", "")

    seen = await recorded(make_daemon, daemon.config, "stackexchange")
    by_key = {m["source_key"]: m for m in seen.mentions}
    answer = by_key["stackexchange:stackoverflow:78601234"]
    assert answer["url"] == "https://stackoverflow.com/a/78601234"
    assert answer["title"] == ""  # the question's title is context, not the answer's words
    assert answer["text"] == (
        "Same here. The Acme Cloud support told me to downgrade & wait, which is not "
        "acceptable for production."
    )
    assert answer["thread_key"] == "stackexchange:stackoverflow:78600001"
    assert (
        answer["extra"]["question_title"] == 'Acme Cloud CLI "deploy" hangs after upgrading to v3'
    )
    question = by_key["stackexchange:stackoverflow:78600001"]
    assert question["url"] == "https://stackoverflow.com/q/78600001"
    assert question["title"] == 'Acme Cloud CLI "deploy" hangs after upgrading to v3'
    assert question["published_at"].replace(tzinfo=UTC) == datetime.fromtimestamp(1718000000, UTC)
    assert seen.health.stats["quota_remaining"] == 290
    assert "limits" not in seen.health.stats  # limits are data of the adapter, not of a run
    mark = seen.state.cursor["marks"]["stackoverflow|acme cloud"]
    assert mark["newest"] == 1718000500


async def test_incremental_poll_asks_from_the_cursor_without_duplicates(
    local_server: LocalServer,
    make_daemon: Callable[..., Daemon],
    database_url: str,
) -> None:
    serve_search(local_server, {"acme cloud": PAGES})
    daemon = make_daemon(
        database=database_url, sources=[se_section(local_server, query='"acme cloud"')]
    )
    await daemon.run_once()
    local_server.requests.clear()
    serve_search(local_server, {"acme cloud": ["search_excerpts_new_and_overlap.json"]})
    again = make_daemon(config=daemon.config)
    (outcome,) = await again.run_once()
    assert outcome.stats and (outcome.stats.fetched, outcome.stats.new) == (1, 1)
    (query,) = searches(local_server)
    assert query["fromdate"] == str(1718000500 - 15 * 60)
    seen = await recorded(make_daemon, daemon.config, "stackexchange")
    persian = next(m for m in seen.mentions if m["source_key"].endswith(":78600050"))
    assert persian["title"] == "Acme Cloud وب‌هوک‌ها کار نمی‌کنند"
    assert len(seen.mentions) == 3


async def test_later_polls_follow_has_more_up_to_max_pages(
    local_server: LocalServer, make_config: Callable[..., Config], http_client: HttpClient
) -> None:
    serve_search(local_server, {"acme cloud": PAGES})
    state = SourceState(
        cursor={"marks": {"stackoverflow|acme cloud": {"newest": 1717970000, "seen": {}}}},
        first_run=False,
    )
    config = make_config(sources=[se_section(local_server, query='"acme cloud"')])
    result = await build_source(config, http_client).fetch(state)
    assert [m.source_key.rsplit(":", 1)[1] for m in result.mentions] == [
        "78601234",
        "78600001",
        "78590002",
        "78580003",
    ]
    assert [q["page"] for q in searches(local_server)] == ["1", "2"]
    limited = make_config(sources=[se_section(local_server, query='"acme cloud"', max_pages=1)])
    result = await build_source(limited, http_client).fetch(state)
    assert len(result.mentions) == 2 and "more than 1 pages" in result.warnings[0]


async def test_backoff_stops_the_method_and_is_honoured_on_the_next_poll(
    local_server: LocalServer, make_daemon: Callable[..., Daemon]
) -> None:
    serve_search(local_server, {"acme cloud": ["search_excerpts_with_backoff.json"]})
    daemon = make_daemon(sources=[se_section(local_server)])
    before = datetime.now(UTC)
    (outcome,) = await daemon.run_once()
    assert outcome.ok and outcome.stats and outcome.stats.new == 2
    # Two more terms were due, but the API said to leave /search/excerpts alone for 20 s.
    assert len(searches(local_server)) == 1
    seen = await recorded(make_daemon, daemon.config, "stackexchange")
    assert seen.health.next_check_at >= before + timedelta(seconds=20)
    assert "asked for a 20s pause (backoff)" in (seen.health.warning or "")
    assert datetime.fromisoformat(seen.state.cursor["backoff_until"]) >= before + timedelta(
        seconds=20
    )
    # Run early anyway (e.g. `run --once` from cron): it still does not call the method.
    local_server.requests.clear()
    (outcome,) = await make_daemon(config=daemon.config).run_once()
    assert outcome.ok and searches(local_server) == []


async def test_a_spent_daily_quota_waits_for_midnight_utc(
    local_server: LocalServer, make_daemon: Callable[..., Daemon]
) -> None:
    serve_search(local_server, {"acme cloud": ["search_excerpts_quota_spent.json"]})
    daemon = make_daemon(sources=[se_section(local_server)])
    (outcome,) = await daemon.run_once()
    assert outcome.ok and len(searches(local_server)) == 1
    seen = await recorded(make_daemon, daemon.config, "stackexchange")
    midnight = datetime.combine(datetime.now(UTC).date() + timedelta(days=1), time(0), tzinfo=UTC)
    assert seen.health.next_check_at >= midnight
    assert "daily quota nearly spent (0 requests left)" in (seen.health.warning or "")
    assert "an app key raises it to 10,000" in (seen.health.warning or "")


def gzipped_json(data: Any, status: int = 200) -> web.Response:
    return web.Response(
        body=gzip.compress(json.dumps(data).encode()),
        status=status,
        headers={"Content-Encoding": "gzip", "Content-Type": "application/json; charset=utf-8"},
    )


async def test_a_throttle_violation_is_recorded_until_the_time_it_clears(
    local_server: LocalServer, make_daemon: Callable[..., Daemon]
) -> None:
    local_server.route(
        "/2.3/search/excerpts", lambda _r: _ready(gzipped("throttle_violation_error.json", 400))
    )
    daemon = make_daemon(sources=[se_section(local_server)])
    before = datetime.now(UTC)
    (outcome,) = await daemon.run_once()
    assert outcome.error.startswith(
        "stackexchange: throttled by the API (throttle_violation 502: too many requests from "
        "this IP, more requests available in 84113 seconds) — "
    )
    assert "sources['stackexchange'].key raises the quota" in outcome.error
    seen = await recorded(make_daemon, daemon.config, "stackexchange")
    # "available in 84113 seconds" is the time it clears; nothing is due before then.
    clears = before + timedelta(seconds=84113)
    assert seen.health.retry_after_until is not None
    assert abs((seen.health.retry_after_until - clears).total_seconds()) < 5
    assert seen.health.next_check_at >= seen.health.retry_after_until
    assert seen.health.error_streak == 1 and len(searches(local_server)) == 1


async def test_a_throttle_violation_without_a_time_waits_for_the_daily_reset(
    local_server: LocalServer, make_daemon: Callable[..., Daemon]
) -> None:
    error = {"error_id": 502, "error_name": "throttle_violation", "error_message": "too many"}
    local_server.route("/2.3/search/excerpts", lambda _r: _ready(gzipped_json(error, 400)))
    daemon = make_daemon(sources=[se_section(local_server)])
    (outcome,) = await daemon.run_once()
    assert outcome.error.startswith("stackexchange: throttled by the API")
    seen = await recorded(make_daemon, daemon.config, "stackexchange")
    midnight = datetime.combine(datetime.now(UTC).date() + timedelta(days=1), time(0), tzinfo=UTC)
    assert seen.health.retry_after_until and seen.health.retry_after_until >= midnight


@pytest.mark.parametrize(
    "error",
    [
        {"error_id": 400, "error_name": "bad_parameter", "error_message": "key"},
        {"error_id": 405, "error_name": "key_required", "error_message": "key required"},
        {"error_id": 403, "error_name": "access_denied", "error_message": "denied"},
    ],
    ids=["invalid-key", "key-required", "access-denied"],
)
async def test_a_refused_key_is_permanent_and_names_the_key(
    local_server: LocalServer, make_daemon: Callable[..., Daemon], error: dict[str, Any]
) -> None:
    local_server.route("/2.3/search/excerpts", lambda _r: _ready(gzipped_json(error, 400)))
    secret = "U4DMV*8nvpm3EOpvf69Rxw(("
    daemon = make_daemon(sources=[se_section(local_server, key=secret)])
    before = datetime.now(UTC)
    (outcome,) = await daemon.run_once()
    assert outcome.error.startswith(
        f"stackexchange: the API refused the app key ({error['error_name']} {error['error_id']}:"
    )
    assert "check sources['stackexchange'].key" in outcome.error and secret not in outcome.error
    seen = await recorded(make_daemon, daemon.config, "stackexchange")
    assert seen.health.next_check_at >= before + timedelta(minutes=25)  # permanent backoff


async def test_an_unknown_site_names_the_sites_key(
    local_server: LocalServer, make_daemon: Callable[..., Daemon]
) -> None:
    error = {"error_id": 400, "error_name": "bad_parameter", "error_message": "site is required"}
    local_server.route("/2.3/search/excerpts", lambda _r: _ready(gzipped_json(error, 400)))
    daemon = make_daemon(sources=[se_section(local_server, sites=["nosuchsite"])])
    (outcome,) = await daemon.run_once()
    assert outcome.error.startswith(
        "stackexchange: the API rejected a parameter (bad_parameter 400: site is required) — "
        "check sources['stackexchange'].sites"
    )


async def test_access_denied_names_the_key_and_never_prints_it(
    local_server: LocalServer, make_daemon: Callable[..., Daemon]
) -> None:
    local_server.serve_bytes("/2.3/search/excerpts", b"{}", status=403)
    secret = "U4DMV*8nvpm3EOpvf69Rxw(("
    daemon = make_daemon(sources=[se_section(local_server, key=secret)])
    (outcome,) = await daemon.run_once()
    assert outcome.error.startswith("stackexchange: access denied (HTTP 403)")
    assert "check sources['stackexchange'].key" in outcome.error
    assert searches(local_server)[0]["key"] == secret

    # Errors that quote the URL (a 404 does) never carry the key.
    moved = make_daemon(
        sources=[se_section(local_server, key=secret, api_url=local_server.url("/gone"))]
    )
    (outcome,) = await moved.run_once()
    assert "not found (HTTP 404)" in outcome.error
    assert secret not in outcome.error
    seen = await recorded(make_daemon, moved.config, "stackexchange")
    assert secret not in (seen.health.last_error or "")


async def test_malformed_json_is_a_clear_error(
    local_server: LocalServer, make_daemon: Callable[..., Daemon]
) -> None:
    # Labelled gzip, as the API always sends: what fails is the JSON inside, not the gzip.
    local_server.route(
        "/2.3/search/excerpts",
        lambda _r: _ready(
            web.Response(
                body=gzip.compress(b'{"items": [}'),
                headers={"Content-Encoding": "gzip", "Content-Type": "application/json"},
            )
        ),
    )
    daemon = make_daemon(sources=[se_section(local_server)])
    (outcome,) = await daemon.run_once()
    assert outcome.error.startswith(
        "stackexchange: malformed JSON from Stack Exchange /search/excerpts (JSONDecodeError: "
        "Expecting value: line 1 column 12 (char 11); body starts '{\"items\": [}')"
    )


async def test_an_empty_result_is_a_successful_poll(
    local_server: LocalServer, make_daemon: Callable[..., Daemon]
) -> None:
    serve_search(local_server, {})
    daemon = make_daemon(sources=[se_section(local_server, sites=["stackoverflow", "unix"])])
    (outcome,) = await daemon.run_once()
    assert outcome.ok and outcome.stats and outcome.stats.fetched == 0
    assert sorted({q["site"] for q in searches(local_server)}) == ["stackoverflow", "unix"]


async def test_replies_list_answers_and_comments_by_question(
    local_server: LocalServer, make_config: Callable[..., Config], http_client: HttpClient
) -> None:
    for path, name in (
        ("/2.3/users/9990001/answers", "user_answers.json"),
        ("/2.3/users/9990001/comments", "user_comments.json"),
        ("/2.3/answers/78590002;78601234", "answers_by_ids.json"),
    ):
        local_server.route(path, lambda _r, name=name: _ready(gzipped(name)))
    source = build_source(make_config(sources=[se_section(local_server)]), http_client)
    since = datetime.fromtimestamp(1718001000, UTC)
    replies = await source.replies("stackoverflow:9990001", since)
    assert [(r.thread_key, r.in_reply_to_key, r.url) for r in replies] == [
        (
            "stackexchange:stackoverflow:78600001",
            "stackexchange:stackoverflow:78600001",
            "https://stackoverflow.com/a/78601300",
        ),
        (
            "stackexchange:stackoverflow:78600001",  # a comment on an answer: its question
            "stackexchange:stackoverflow:78601234",
            "https://stackoverflow.com/posts/comments/138500001",
        ),
        (
            "stackexchange:stackoverflow:78590002",
            "stackexchange:stackoverflow:78590002",
            "https://stackoverflow.com/posts/comments/138500000",
        ),
    ]
    assert replies[0].author == "Acme Cloud Support"
    answers_request = next(r for r in local_server.requests if r.path.endswith("/answers"))
    assert answers_request.query["fromdate"] == "1718001000"
    # The thread key is the one the mentions of that question and its answers carry.
    item = json.loads(fixture(PAGES[0]))["items"][0]
    mention = source.item_to_mention(item, "stackoverflow")  # type: ignore[attr-defined]
    assert mention.thread_key == replies[0].thread_key


async def test_the_daily_quota_sets_the_poll_interval(
    make_config: Callable[..., Config], http_client: HttpClient
) -> None:
    http = http_client
    no_key = build_source(make_config(sources=[{"type": "stackexchange", "every": "1m"}]), http)
    # 3 terms x 1 site per poll, 80 % of 300 requests a day: one poll every 18 minutes.
    assert no_key.interval == timedelta(minutes=18)
    assert no_key.limits()["interval_from_quota_s"] == 18 * 60
    keyed = build_source(
        make_config(sources=[{"type": "stackexchange", "every": "1m", "key": "k"}]), http
    )
    assert keyed.interval == timedelta(minutes=1)


async def test_replies_wait_while_the_apis_backoff_holds(
    local_server: LocalServer, make_daemon: Callable[..., Daemon]
) -> None:
    """A `backoff` comes with a successful answer, so nothing is failing — but listing
    replies calls the same API and must rest too."""
    serve_search(local_server, {"acme cloud": ["search_excerpts_with_backoff.json"]})
    for path, name in (
        ("/2.3/users/9990001/answers", "user_answers.json"),
        ("/2.3/users/9990001/comments", "user_comments.json"),
        ("/2.3/answers/78590002;78601234", "answers_by_ids.json"),
    ):
        local_server.route(path, lambda _r, name=name: _ready(gzipped(name)))
    brand = {"name": "Acme Cloud", "accounts": {"stackexchange": "stackoverflow:9990001"}}
    daemon = make_daemon(brand=brand, sources=[se_section(local_server)])
    await daemon.run_once()  # the answer says: backoff 20 s
    daemon = make_daemon(config=daemon.config)
    await daemon.open()

    def reply_calls() -> int:
        return sum(1 for r in local_server.requests if r.path.startswith("/2.3/users/"))

    try:
        now = datetime.now(UTC)
        await poll_replies(daemon.store, daemon.sources, daemon.config, now=now)
        assert reply_calls() == 0
        await poll_replies(
            daemon.store, daemon.sources, daemon.config, now=now + timedelta(seconds=30)
        )
        assert reply_calls() == 2  # answers and comments (plus their questions)
    finally:
        await daemon.close()


def test_replies_and_other_sources_on_the_same_quota_are_budgeted(
    make_config: Callable[..., Config], caplog: pytest.LogCaptureFixture
) -> None:
    """Keyless, 3 terms a poll, 80 % of 300 requests a day = 240 to plan on (18 min alone)."""
    plain = {"type": "stackexchange", "every": "1m"}

    def built(sources: list[dict[str, Any]], **extra: Any) -> dict[str, Source]:
        config = make_config(sources=sources, **extra)
        context = SourceContext(http=None, watchlists=config.watchlists, brand=config.brand)  # type: ignore[arg-type]
        return build_sources(config, context)

    # Brand replies, hourly, up to 3 requests each: 72 a day set aside ⇒ 168 for polls.
    brand = {"name": "Acme Cloud", "accounts": {"stackexchange": "stackoverflow:9990001"}}
    (alone,) = built([plain], brand=brand).values()
    assert alone.limits()["reply_requests_per_day"] == 72
    assert alone.interval == timedelta(seconds=86_400 * 3 / 168)
    # Two keyless sources on this machine spend one per-IP quota: 120 a day each.
    with caplog.at_level("WARNING", logger="monitor"):
        pair = built([{**plain, "name": "so"}, {**plain, "name": "su", "sites": ["superuser"]}])
    assert [s.interval for s in pair.values()] == [timedelta(minutes=36)] * 2
    assert [s.limits()["budget_shared_by"] for s in pair.values()] == [2, 2]
    (note,) = [r.getMessage() for r in caplog.records if "share one budget" in r.getMessage()]
    assert note.startswith("budget: sources so, su share one budget (Stack Exchange daily quota")
    assert "each plans on 1/2 of it" in note
    # A source with an app key draws on another quota.
    mixed = built([{**plain, "name": "so"}, {**plain, "name": "keyed", "key": "k"}])
    assert [s.budget_sharers for s in mixed.values()] == [1, 1]
    assert mixed["so"].interval == timedelta(minutes=18)


def test_site_names_map_to_their_domains() -> None:
    assert site_domain("stackoverflow") == "stackoverflow.com"
    assert site_domain("ru.stackoverflow") == "ru.stackoverflow.com"
    assert site_domain("unix") == "unix.stackexchange.com"
    assert site_domain("mathoverflow") == "mathoverflow.net"
    assert site_domain("superuser.com") == "superuser.com"


async def _ready(response: web.Response) -> web.Response:
    return response
