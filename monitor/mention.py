"""The values that flow through the pipeline, independent of any source or sink."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any


@dataclass(slots=True)
class Mention:
    """One sighting of a post, article or comment as a source reports it.

    ``source_key`` is the source-native identity, prefixed by platform so keys from
    different platforms never collide (``reddit:t3_abc``, ``rss:<feed>#<guid>``).
    """

    source_key: str
    url: str
    title: str = ""
    text: str = ""
    html: str = ""  # original markup, kept for display; never rendered unescaped
    author: str = ""
    author_url: str = ""
    published_at: datetime | None = None
    thread_key: str = ""  # the conversation this belongs to, for reply detection
    language_hint: str = ""  # a language the platform declared, if any
    watchlist_hint: str = ""  # set when the source feeds exactly one watchlist
    dedup_hints: list[str] = field(default_factory=list)  # extra identities, e.g. title+publisher
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def platform(self) -> str:
        return self.source_key.split(":", 1)[0]

    def match_text(self) -> str:
        """Title and body as one text: the matcher and the classifier see the same thing."""
        if self.title and self.text and not self.text.startswith(self.title):
            return f"{self.title}\n{self.text}"
        return self.text or self.title


@dataclass(slots=True)
class BrandReply:
    """A post by one of the brand's own accounts that answers a thread."""

    thread_key: str
    url: str
    published_at: datetime
    in_reply_to_key: str = ""  # source_key of the message answered, when known
    author: str = ""
