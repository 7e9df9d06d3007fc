"""The shared pieces of the search-API sources: terms, the look-back cursor, error parsing."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from monitor.config import ConfigError, parse_config
from monitor.daemon import Daemon
from sources.base import SourceError, SourceState
from sources.http import HttpClient
from sources.searchkit import Watermark, http_status, parse_json, search_terms_for
from tests.helpers.servers import LocalServer
from tests.helpers.source_harness import build_source, http_client, recorded

__all__ = ["http_client"]


def test_terms_come_from_the_query_key_then_the_fed_watchlist_then_all(
    make_config: Callable[..., Any],
) -> None:
    watchlists = make_config().watchlists
    assert search_terms_for("", None, watchlists) == ["acme cloud", "acmecloud", "globex"]
    assert search_terms_for(None, "competitors", watchlists) == ["globex"]
    # Exclusions are never searched for; the pipeline applies them afterwards.
    assert search_terms_for('"acme cloud" -jobs (refund* OR outage)', None, watchlists) == [
        "acme cloud",
        "refund",
        "outage",
    ]


def test_a_bad_query_key_is_a_config_error_with_its_column() -> None:
    text = (
        "brand: {name: Acme}\nwatchlists: [{name: brand, query: acme}]\n"
        "sources:\n  - type: hackernews\n    query: '\"acme'\n"
    )
    with pytest.raises(ConfigError) as info:
        parse_config(text, env={})
    assert str(info.value) == "config.yaml:5 sources[0].query: unbalanced quote at column 1"


def test_watermark_admits_each_id_once_and_nothing_before_the_overlap() -> None:
    mark = Watermark(overlap_s=100)
    assert mark.first_poll and mark.cutoff is None
    assert mark.admit("a", 1000) and mark.admit("b", 950)
    assert not mark.admit("a", 1000)
    cursor = mark.dump(now=5000)
    assert cursor == {"newest": 1000, "seen": {"a": 1000, "b": 950}}

    again = Watermark.load(cursor, overlap_s=100)
    assert again.cutoff == 900
    assert not again.admit("b", 950)  # seen inside the overlap
    assert not again.admit("old", 899)  # before the window: the platform already showed it
    assert again.admit("late", 990)  # indexed late, still inside the overlap
    assert again.admit("new", 1200)
    assert again.dump(now=5000) == {"newest": 1200, "seen": {"new": 1200}}


def test_watermark_never_runs_ahead_of_the_clock() -> None:
    mark = Watermark(overlap_s=60)
    mark.admit("future", 10_000)
    assert mark.dump(now=2000)["newest"] == 2000
    assert not mark.admit("future", 10_000)


def test_watermark_survives_a_garbled_cursor() -> None:
    for garbage in (None, "x", {"newest": "yesterday"}, {"newest": 5, "seen": [1, 2]}):
        mark = Watermark.load(garbage, overlap_s=10)
        assert mark.admit("a", 1.0)


def test_parse_json_names_the_endpoint_and_shows_the_start_of_the_body() -> None:
    with pytest.raises(SourceError) as info:
        parse_json("hn", b"<html>502 Bad Gateway</html>", "HN Search")
    assert str(info.value).startswith("hn: malformed JSON from HN Search (JSONDecodeError")
    assert "'<html>502 Bad Gateway</html>'" in str(info.value)


def test_http_status_reads_the_status_of_http_layer_errors() -> None:
    assert http_status(SourceError("x", "access denied (HTTP 403)")) == 403
    assert http_status(SourceError("x", "unexpected HTTP 400 Bad Request")) == 400
    assert http_status(SourceError("x", "timed out waiting for the server")) is None


# Watchlists a search cannot ask for: they filter by who and where, with no words.
FILTERS_ONLY = [{"name": "brand", "query": "author:acmecloud OR site:acme.test", "owner": "priya"}]
SEARCH_SOURCES: dict[str, dict[str, Any]] = {
    "hackernews": {"api_url": "{url}"},
    "reddit": {"api_url": "{url}", "client_id": "id", "client_secret": "s", "token_url": "{url}"},
    "mastodon": {"instances": [{"url": "{url}", "access_token": "tok"}]},
    "stackexchange": {"api_url": "{url}"},
    "bluesky": {
        "api_url": "{url}",
        "mode": "search",
        "identifier": "acme.test",
        "app_password": "p",
    },
    "github": {"api_url": "{url}"},
    "youtube": {"api_url": "{url}", "api_key": "key"},
}


@pytest.mark.parametrize("kind", list(SEARCH_SOURCES))
async def test_a_source_with_nothing_to_search_says_so_instead_of_finding_nothing(
    local_server: LocalServer,
    make_config: Callable[..., Any],
    http_client: HttpClient,
    kind: str,
) -> None:
    # Every endpoint points at the local server, so any request at all would be seen.
    text = json.dumps(SEARCH_SOURCES[kind]).replace("{url}", local_server.url("/api"))
    section = {"type": kind, "name": kind, **json.loads(text)}
    config = make_config(watchlists=FILTERS_ONLY, sources=[section])
    cursor = {"kept": "as it was"}
    result = await build_source(config, http_client).fetch(SourceState(cursor=cursor))
    assert local_server.requests == []  # nothing was asked...
    assert result.mentions == [] and result.cursor == cursor
    assert result.degraded and result.degraded.startswith("nothing to search for: ")  # ...said so
    assert f"set sources[{kind!r}].query" in result.degraded


async def test_nothing_to_search_shows_as_degraded_in_health(
    local_server: LocalServer, make_daemon: Callable[..., Daemon]
) -> None:
    section = {"type": "hackernews", "name": "hn", "api_url": local_server.url("/api")}
    daemon = make_daemon(watchlists=FILTERS_ONLY, sources=[section])
    (outcome,) = await daemon.run_once()
    assert outcome.ok
    seen = await recorded(make_daemon, daemon.config, "hn")
    assert seen.health.degraded and "only author:/site:/lang: filters" in seen.health.degraded
