"""canonical_url: one key for one article, however the link reached us (table-driven)."""

from __future__ import annotations

import pytest

from monitor.urls import canonical_url, google_news_article_url, publisher_domain, unwrap_redirect

# A real pre-2024 Google News token (tests/fixtures/feeds/google_news_top_stories_fr_be_2020.rss.xml).
OLD_NEWS_TOKEN = (
    "CBMiiwFodHRwczovL3d3dy5ydGJmLmJlL2luZm8vc29jaWV0ZS9kZXRhaWxfY29yb25hdmlydXMtZW4tYmVsZ2lxdWUt"
    "MjAwLWNhcy1kZXRlY3Rlcy1hdS10b3RhbC1sYS1jaXJjdWxhdGlvbi1kdS12aXJ1cy1yZXN0ZS1saW1pdGVlP2lkPTEw"
    "NDUwNzkz0gEA"
)
OLD_NEWS_TARGET = (
    "https://www.rtbf.be/info/societe/detail_coronavirus-en-belgique-200-cas-detectes-au-total"
    "-la-circulation-du-virus-reste-limitee?id=10450793"
)
# The shape of a 2024+ token: the protobuf carries an opaque id, not the URL.
OPAQUE_NEWS_TOKEN = "CBMiVkFVX3lxTE1GY2ZhcFRKRlZ0dFZxc0ZQcjRJcHNCV3ZnZ2s0SUpvdUQ5a0lTRE9tQ3ZYQ0Vz"

CASES = [
    # (why, input, canonical)
    ("scheme and host lower-cased", "HTTP://Example.COM/A/b", "http://example.com/A/b"),
    ("default http port dropped", "http://example.com:80/a", "http://example.com/a"),
    ("default https port dropped", "https://example.com:443/a", "https://example.com/a"),
    ("other ports kept", "https://example.com:8443/a", "https://example.com:8443/a"),
    ("fragment dropped", "https://x.test/a#comments", "https://x.test/a"),
    ("query sorted", "https://x.test/a?b=2&a=1&c=3", "https://x.test/a?a=1&b=2&c=3"),
    ("empty path is /", "https://x.test", "https://x.test/"),
    ("empty query dropped", "https://x.test/a?", "https://x.test/a"),
    ("credentials never kept", "https://user:secret@x.test/a", "https://x.test/a"),
    ("trailing dot of host", "https://x.test./a", "https://x.test/a"),
    ("percent-encoding upper-cased", "https://x.test/caf%c3%a9", "https://x.test/caf%C3%A9"),
    ("unreserved characters decoded", "https://x.test/a?q=%7e", "https://x.test/a?q=~"),
    (
        "raw unicode path encoded",
        "https://x.test/किताब",
        "https://x.test/%E0%A4%95%E0%A4%BF%E0%A4%A4%E0%A4%BE%E0%A4%AC",
    ),
    ("IDN host to punycode", "https://bücher.de/a", "https://xn--bcher-kva.de/a"),
    ("IPv6 host keeps brackets", "http://[::1]:8080/feed", "http://[::1]:8080/feed"),
    ("utm_* dropped", "https://x.test/a?utm_source=tw&utm_medium=s&id=3", "https://x.test/a?id=3"),
    ("tracking names any case", "https://x.test/a?UTM_Campaign=x&FBCLID=y", "https://x.test/a"),
    ("fbclid", "https://x.test/a?fbclid=IwAR0abc", "https://x.test/a"),
    ("gclid", "https://x.test/a?gclid=Cj0K&p=1", "https://x.test/a?p=1"),
    ("mailchimp mc_cid/mc_eid", "https://x.test/a?mc_cid=1&mc_eid=2", "https://x.test/a"),
    ("ref", "https://x.test/a?ref=producthunt", "https://x.test/a"),
    ("igshid", "https://www.instagram.com/p/Cx/?igshid=MzRl", "https://www.instagram.com/p/Cx/"),
    (
        "meaningful params kept",
        "https://x.test/watch?v=abc&t=10",
        "https://x.test/watch?t=10&v=abc",
    ),
    (
        "Google redirect unwrapped (Google Alerts link)",
        "https://www.google.com/url?rct=j&sa=t&url=https://www.vox.com/2019/7/10/20688476/recode&ct=ga&cd=CAIy&usg=AFQ",
        "https://www.vox.com/2019/7/10/20688476/recode",
    ),
    (
        "encoded & inside the target survives",
        "https://www.google.com/url?url=https%3A%2F%2Fx.test%2Fa%3Fp%3D1%26q%3D2&sa=t",
        "https://x.test/a?p=1&q=2",
    ),
    (
        "country Google domains too",
        "https://www.google.co.uk/url?q=https://x.test/a&sa=U",
        "https://x.test/a",
    ),
    (
        "target's own tracking removed after unwrapping",
        "https://www.google.com/url?url=https://x.test/a%3Futm_source%3Dalerts",
        "https://x.test/a",
    ),
    (
        "redirect inside a redirect",
        "https://l.facebook.com/l.php?u=https%3A%2F%2Fwww.google.com%2Furl%3Furl%3Dhttps%253A%252F%252Fx.test%252Fb",
        "https://x.test/b",
    ),
    (
        "old Google News token decoded offline",
        f"https://news.google.com/__i/rss/rd/articles/{OLD_NEWS_TOKEN}?oc=5",
        OLD_NEWS_TARGET,
    ),
    (
        "old token under /rss/articles too",
        f"https://news.google.com/rss/articles/{OLD_NEWS_TOKEN}?oc=5",
        OLD_NEWS_TARGET,
    ),
    (
        "opaque Google News token left as is",
        f"https://news.google.com/rss/articles/{OPAQUE_NEWS_TOKEN}?oc=5&hl=en-US",
        f"https://news.google.com/rss/articles/{OPAQUE_NEWS_TOKEN}?hl=en-US&oc=5",
    ),
    ("t.co left as is", "https://t.co/AbC123", "https://t.co/AbC123"),
    (
        "google search is not a redirect",
        "https://www.google.com/search?q=https://x.test",
        "https://www.google.com/search?q=https%3A%2F%2Fx.test",
    ),
    (
        "redirect to a non-http target left alone",
        "https://www.google.com/url?q=javascript:alert(1)",
        "https://www.google.com/url?q=javascript%3Aalert%281%29",
    ),
    ("not http(s)", "mailto:press@acme.example", ""),
    ("javascript", "javascript:alert(1)", ""),
    ("no host", "https:///a", ""),
    ("bad port", "https://x.test:99999/a", ""),
    ("empty", "", ""),
]


@pytest.mark.parametrize(("why", "url", "expected"), CASES, ids=[c[0] for c in CASES])
def test_canonical_url(why: str, url: str, expected: str) -> None:
    assert canonical_url(url) == expected


def test_canonical_url_is_idempotent() -> None:
    for _why, url, expected in CASES:
        assert canonical_url(expected) == expected or expected == "", url


def test_unwrap_stops_after_max_depth() -> None:
    url = "https://x.test/end"
    for _ in range(5):
        url = f"https://www.google.com/url?url={url.replace('%', '%25').replace('&', '%26').replace('?', '%3F')}"
    assert unwrap_redirect(url, max_depth=2).startswith("https://www.google.com/url")
    assert unwrap_redirect(url, max_depth=5) == "https://x.test/end"


@pytest.mark.parametrize(
    "token",
    ["", "not base64 at all!", "AAAA", OPAQUE_NEWS_TOKEN, OLD_NEWS_TOKEN[:40]],
)
def test_google_news_tokens_that_cannot_be_decoded(token: str) -> None:
    assert google_news_article_url(token) is None


@pytest.mark.parametrize(
    ("url", "domain"),
    [
        ("https://www.Example.com/a", "example.com"),
        ("https://news.example.co.uk/", "news.example.co.uk"),
        ("not a url", ""),
    ],
)
def test_publisher_domain(url: str, domain: str) -> None:
    assert publisher_domain(url) == domain
