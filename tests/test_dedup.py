"""One record per real-world mention: each rule of the identity chain, then end to end."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import feedparser
import pytest
from sqlalchemy import func, select

from monitor.config import Config
from monitor.dedup import (
    DEDUP_WINDOW,
    DedupIndex,
    Identity,
    author_key,
    candidate_for,
    content_fingerprint,
    core_text,
    identify,
)
from monitor.mention import Mention
from monitor.pipeline import Pipeline
from monitor.store import Store
from monitor.store import mentions as mention_store
from monitor.store import sources as source_store
from monitor.store.tables import mention_keys, mention_matches, sightings
from monitor.textclean import html_to_text
from sources.base import FetchResult
from tests.conftest import FIXTURES

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)

COMPLAINT = "Acme Cloud has been down for 3 hours and support won't answer. Never again."
ARTICLE = (
    "Acme Cloud customers reported a long outage on Monday. Dashboards failed to load for more "
    "than three hours across Europe and Asia, and support queues filled up with angry tickets. "
    "The company said a faulty configuration change was rolled back and promised a full incident "
    "report this week, along with service credits for affected teams on paid plans."
)


def post(key: str, text: str, author: str = "", url: str = "", title: str = "") -> Mention:
    return Mention(source_key=key, url=url, title=title, text=text, author=author)


def identify_against(stored: list[Mention], sighting: Mention) -> Identity:
    index = DedupIndex()
    for mention_id, mention in enumerate(stored, start=1):
        index.add(mention_id, candidate_for(mention))
    return identify(candidate_for(sighting), index)


# ------------------------------------------------------------ one test per rule


def test_rule_1_source_key() -> None:
    stored = post("rss:blog#1", COMPLAINT, url="https://blog.test/a")
    again = post("rss:blog#1", "edited text entirely", url="https://blog.test/moved")
    assert identify_against([stored], again) == Identity(1, "source_key")


@pytest.mark.parametrize(
    "url",
    [
        "https://blog.test/a?utm_source=rss&utm_medium=feed",
        "https://www.google.com/url?rct=j&sa=t&url=https://blog.test/a&ct=ga&usg=x",
        "HTTPS://Blog.Test:443/a#comments",
    ],
)
def test_rule_2_canonical_url(url: str) -> None:
    stored = post("rss:blog#1", "one text", url="https://blog.test/a")
    assert identify_against([stored], post("ga:9", "another text", url=url)) == Identity(
        1, "canonical_url"
    )


def test_rule_3_source_hint() -> None:
    stored = Mention("gnews:1", "https://news.google.com/rss/articles/CBMiAA", dedup_hints=["x|Y"])
    again = Mention("gnews:2", "https://news.google.com/rss/articles/CBMiBB", dedup_hints=["X | y"])
    assert identify_against([stored], again) == Identity(1, "identity_key")


def test_rule_3_headline_without_publisher_suffix() -> None:
    title = "Acme Cloud outage leaves thousands of teams offline"
    stored = post("rss:1", "summary one", url="https://register.test/a", title=title)
    google_news = post(
        "gnews:1",
        "",
        url="https://news.google.com/rss/articles/CBMi",
        title=f"{title} - The Register",
    )
    assert identify_against([stored], google_news) == Identity(1, "identity_key")


def test_rule_3_same_headline_by_two_known_authors_is_two_mentions() -> None:
    title = "Is anyone else having trouble with Acme Cloud today?"
    alice = post("reddit:1", "my dashboard is blank", "alice", "https://reddit.test/1", title)
    bob = post("reddit:2", "cannot log in at all", "bob", "https://reddit.test/2", title)
    assert identify_against([alice], bob) == Identity(None, "new")
    short = post("reddit:3", "x", "carol", "https://reddit.test/3", "Acme Cloud is down")
    assert (
        identify_against([short], post("reddit:4", "y", "", "", "Acme Cloud is down")).rule == "new"
    )


@pytest.mark.parametrize(
    ("text", "author"),
    [
        (COMPLAINT + " #AcmeCloud #outage https://t.co/xyz", "alice.bsky.social"),  # cross-post
        ("RT @alice: " + COMPLAINT, "bob"),  # a retweet is the original author's post
        ("@acmecloud @support " + COMPLAINT + " 😡😡", "@Alice"),  # reply handles, emoji
        (COMPLAINT.upper(), "alice"),
    ],
)
def test_rule_4_cross_post(text: str, author: str) -> None:
    stored = post("mastodon:1", COMPLAINT, "@alice@mastodon.social")
    assert identify_against([stored], post("x:2", text, author)) == Identity(1, "cross_post")


def test_rule_5_near_duplicate_short_post_by_the_same_author() -> None:
    stored = post("mastodon:1", COMPLAINT, "alice")
    edited = "Acme Cloud has been down for 3 hours and support still won't answer. Never again!"
    assert identify_against([stored], post("bsky:1", edited, "alice")) == Identity(
        1, "near_duplicate"
    )


def test_rule_5_near_duplicate_syndicated_article_with_other_byline() -> None:
    stored = post("rss:1", ARTICLE, "Jane Doe", "https://news.test/acme")
    copy = post(
        "rss:2",
        "(Reuters) - " + ARTICLE.replace("Monday", "Monday, the company said") + " Read more.",
        "Reuters Staff",
        "https://wire.test/story/123",
    )
    assert identify_against([stored], copy) == Identity(1, "near_duplicate")


@pytest.mark.parametrize(
    "sighting",
    [
        post("x:1", "Acme Cloud is down again", "bob"),  # the same 5 words, someone else
        post("x:2", COMPLAINT, "bob"),  # the same 14 words, someone else
        post("x:3", "Acme Cloud is down again", ""),  # author unknown: cannot tell
        post(
            "x:4",
            "Globex Storage cut its prices for teams under ten people this week, analysts say, "
            "in a move seen as a response to Acme Cloud's outage on Monday and its promised "
            "credits. Dashboards at Globex loaded normally across Europe and Asia all week, and "
            "the company said it expects more customers to move over before the end of the year.",
            "",
        ),  # another article on the same story
    ],
)
def test_new_when_no_rule_applies(sighting: Mention) -> None:
    stored = [post("m:1", "Acme Cloud is down again", "alice"), post("m:2", COMPLAINT, "alice")]
    stored.append(post("m:3", ARTICLE, "Jane Doe", "https://news.test/acme"))
    assert identify_against(stored, sighting) == Identity(None, "new")


def test_rules_apply_in_order() -> None:
    """A sighting that several rules would link is reported under the first one."""
    stored = post("rss:1", ARTICLE, "Jane", "https://news.test/a", "Acme Cloud outage hits teams")
    again = post("rss:1", ARTICLE, "Jane", "https://news.test/a", "Acme Cloud outage hits teams")
    assert identify_against([stored], again).rule == "source_key"
    again.source_key = "rss:2"
    assert identify_against([stored], again).rule == "canonical_url"
    again.url = "https://elsewhere.test/a"
    again.title = "Acme Cloud outage hits teams all over Europe"
    stored.title = again.title
    assert identify_against([stored], again).rule == "identity_key"


def test_core_text_and_author_forms() -> None:
    words, original = core_text("RT @Bob_1: Acme is down https://t.co/x #acme #fail")
    assert (words, original) == (["acme", "is", "down"], "Bob_1")
    assert author_key("@alice@mastodon.social") == author_key("alice.bsky.social") == "alice"
    assert author_key("Jane Doe") == "janedoe"
    assert content_fingerprint("acme cloud is down again") is None  # too short to compare


# ---------------------------------------------------------------------- end to end


def google_alerts_entry() -> Mention:
    """A real Google Alerts entry: a google.com/url redirect to the article."""
    feed = feedparser.parse(
        (FIXTURES / "match" / "google_alerts_redirect_links.atom.xml").read_bytes()
    )
    entry = next(e for e in feed.entries if "investorplace.com" in e.link)
    return Mention(
        source_key=f"googlealerts:{entry.id}",
        url=entry.link,
        title=html_to_text(entry.title),
        text=html_to_text(entry.content[0].value),
        author=entry.get("author", ""),
    )


def three_sightings() -> dict[str, Mention]:
    alert = google_alerts_entry()
    assert alert.url.startswith("https://www.google.com/url?")
    article = "https://investorplace.com/2019/07/slack-stock-truly-compelling/"
    publisher_feed = Mention(
        source_key="rss:investorplace#p=1055671",
        url=article + "?utm_source=feedburner&utm_medium=rss&utm_campaign=slack",
        title=alert.title,
        text="Slack has a story and the numbers. In the run up to the IPO for Slack Technologies, "
        "much of the coverage centered on the direct listing.",
        author="Luke Lango",
    )
    google_news = Mention(
        source_key="gnews:CBMiSGh0dHBzOi8vaW52ZXN0b3JwbGFjZS5jb20vMjAxOS8wNy9zbGFjay1zdG9jaw",
        url="https://news.google.com/rss/articles/CBMiSGh0dHBzOi8vaW52ZXN0b3JwbGFjZS5jb20vMjAxOS8wNy9zbGFjay1zdG9jaw?oc=5",
        title=f"{alert.title} - InvestorPlace",
        text=f"{alert.title}  InvestorPlace",
        dedup_hints=[f"{alert.title}|InvestorPlace"],
    )
    return {"google-alerts": alert, "publisher-rss": publisher_feed, "google-news": google_news}


async def ingest(pipeline: Pipeline, source: str, items: list[Mention], now: datetime) -> Any:
    async with pipeline.store.begin() as connection:
        await source_store.ensure(connection, source, "rss", now)
    return await pipeline.ingest(
        source,
        FetchResult(items),
        first_run=False,
        next_check_at=now + timedelta(minutes=5),
        now=now,
    )


@pytest.mark.parametrize(
    "order",
    [
        ("google-alerts", "publisher-rss", "google-news"),
        ("google-news", "google-alerts", "publisher-rss"),
        ("publisher-rss", "google-news", "google-alerts"),
    ],
)
async def test_same_article_from_three_sources_is_stored_once_with_three_sightings(
    make_config: Callable[..., Config], database_url: str, order: tuple[str, str, str]
) -> None:
    config = make_config(database=database_url, watchlists=[{"name": "slack", "query": "slack"}])
    store = await Store.open(database_url)
    items = three_sightings()
    try:
        pipeline = Pipeline(store, config)
        for minutes, source in enumerate(order):
            await ingest(pipeline, source, [items[source]], NOW + timedelta(minutes=minutes))
        async with store.read() as connection:
            rows = await mention_store.list_mentions(connection)
            seen = (await connection.execute(select(sightings).order_by(sightings.c.id))).all()
    finally:
        await store.dispose()
    assert len(rows) == 1
    assert rows[0]["source"] == order[0] and rows[0]["watchlists"] == ["slack"]
    assert [s.source for s in seen] == list(order)
    assert {s.mention_id for s in seen} == {rows[0]["id"]}
    assert seen[0].matched_by == "new"
    assert {s.matched_by for s in seen[1:]} <= {"canonical_url", "identity_key"}


async def test_cross_posts_fold_but_two_people_stay_two(
    make_config: Callable[..., Config], database_url: str
) -> None:
    config = make_config(database=database_url)
    store = await Store.open(database_url)
    try:
        pipeline = Pipeline(store, config)
        await ingest(
            pipeline, "mastodon", [post("mastodon:1", COMPLAINT, "@alice@mastodon.social")], NOW
        )
        stats = await ingest(
            pipeline,
            "bluesky",
            [
                post("bsky:1", COMPLAINT + " #AcmeCloud https://t.co/x", "alice.bsky.social"),
                post("bsky:2", COMPLAINT, "bob.bsky.social"),
                post("bsky:3", "Acme Cloud is down again", "carol.bsky.social"),
                post("bsky:4", "Acme Cloud is down again", "dave.bsky.social"),
            ],
            NOW + timedelta(minutes=2),
        )
        assert (stats.new, stats.duplicates) == (3, 1)
        # a week and a day later the same words from the same person are a new incident
        later = NOW + DEDUP_WINDOW + timedelta(days=1)
        again = await ingest(pipeline, "mastodon", [post("mastodon:2", COMPLAINT, "alice")], later)
        assert again.new == 1
        async with store.read() as connection:
            assert await connection.scalar(select(func.count()).select_from(sightings)) == 6
            keys = (await connection.execute(select(mention_keys.c.key))).scalars().all()
    finally:
        await store.dispose()
    assert {k.split(":")[0] for k in keys} >= {"post", "mh"}


async def test_two_watchlists_one_post_one_mention_with_two_matches(
    make_config: Callable[..., Config], database_url: str
) -> None:
    config = make_config(
        database=database_url,
        watchlists=[
            {"name": "brand", "query": '"acme cloud"'},
            {"name": "outages", "query": "acme (down OR outage)"},
        ],
    )
    store = await Store.open(database_url)
    try:
        pipeline = Pipeline(store, config)
        stats = await ingest(pipeline, "mastodon", [post("mastodon:1", COMPLAINT, "alice")], NOW)
        assert (stats.new, stats.alerts) == (1, 1)
        async with store.read() as connection:
            found = (
                await connection.execute(
                    select(mention_matches).order_by(mention_matches.c.watchlist)
                )
            ).all()
    finally:
        await store.dispose()
    assert [(m.watchlist, m.terms) for m in found] == [
        ("brand", ["acme cloud"]),
        ("outages", ["acme", "down"]),
    ]
    assert [COMPLAINT[s:e] for s, e in found[1].spans] == ["Acme", "down"]


def test_identity_is_computed_once_per_sighting() -> None:
    """Every key kind a candidate can carry, for a post that has them all."""
    mention = post(
        "x:1",
        ARTICLE,
        "jane",
        "https://news.test/a?utm_source=x",
        "Acme Cloud outage hits teams in Europe",
    )
    mention.dedup_hints = ["acme outage|News Test"]
    candidate = candidate_for(mention)
    kinds = [key.split(":")[0] for key in candidate.keys]
    assert kinds == ["url", "hint", "title", "post", *["mh"] * 8]
    assert candidate.canonical_url == "https://news.test/a"
    assert candidate.fingerprint is not None and -(2**63) <= candidate.fingerprint < 2**63
    assert len(set(itertools.chain(candidate.keys))) == len(candidate.keys)
