"""Hostile JSON from the social APIs: nulls, wrong types, absurd numbers. One bad item is
skipped with a warning; it never fails the poll, drops the good items, or crashes the daemon."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from aiohttp import web

from monitor.daemon import Daemon
from tests.conftest import FIXTURES
from tests.helpers.feeds import health_of, stored
from tests.helpers.servers import LocalServer
from tests.test_hostile_input import no_adapter_bug

# --------------------------------------------------------------------- hostile JSON


def hostile_variants(valid: dict[str, Any], id_key: str) -> list[dict[str, Any]]:
    """Every top-level field replaced, in turn, by null, the wrong type or an absurd number."""
    variants = []
    replacements: list[Any] = [None, [], {"x": {"y": [1, None]}}, 10**40, -1, True, "x" * 10_000]
    for n, key in enumerate(valid):
        for m, value in enumerate(replacements):
            variant = dict(valid)
            variant[key] = value
            if key != id_key:
                variant[id_key] = f"hostile-{n}-{m}"
            variants.append(variant)
    return variants


def hn_payload() -> tuple[str, list[dict[str, Any]]]:
    page = json.loads((FIXTURES / "hackernews" / "search_by_date_page1_of_2.json").read_text())
    return "objectID", page["hits"]


@pytest.mark.parametrize("float_literal", ["1e400", "-1e400", "NaN"])
async def test_json_of_the_wrong_shape_never_crashes_and_keeps_the_good_items(
    local_server: LocalServer,
    make_daemon: Callable[..., Daemon],
    caplog: pytest.LogCaptureFixture,
    float_literal: str,
) -> None:
    id_key, hits = hn_payload()
    pristine = make_daemon(
        sources=[{"type": "hackernews", "name": "hn", "api_url": local_server.url("/api/v1")}]
    )

    body = {"hits": list(hits), "nbPages": 1, "page": 0}

    async def clean(_request: web.Request) -> web.Response:
        return web.json_response(body)

    local_server.route("/api/v1/search_by_date", clean)
    await pristine.run_once()
    expected = {m["source_key"] for m in (await stored(pristine.config.database)).mentions}
    assert expected, "the fixture should match the brand watchlist"

    hostile = [v for hit in hits for v in hostile_variants(hit, id_key)]
    raw = json.dumps({"hits": [*hits, *hostile], "nbPages": "lots", "page": None})
    raw = raw.replace('"created_at_i": -1', f'"created_at_i": {float_literal}', 1)

    async def bad(_request: web.Request) -> web.Response:
        return web.Response(text=raw, content_type="application/json")

    local_server.route("/api/v1/search_by_date", bad)
    daemon = make_daemon(
        database=pristine.config.database.replace("monitor.db", "hostile.db"),
        sources=[{"type": "hackernews", "name": "hn", "api_url": local_server.url("/api/v1")}],
    )
    (outcome,) = await daemon.run_once()
    no_adapter_bug(caplog)
    found = {m["source_key"] for m in (await stored(daemon.config.database)).mentions}
    if outcome.ok:
        assert expected <= found, "a hostile item made the adapter drop good ones"
    else:
        health = await health_of(daemon.config.database, "hn")
        assert health.last_error and health.last_error.startswith("hn: ")
