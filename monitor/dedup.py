"""One record per real-world mention.

``identify`` is the single place that decides whether a sighting is a mention we already
have; its docstring is the identity chain. ``candidate_for`` computes everything the chain
compares (canonical URL, identity keys, content sketch) once per sighting, and the pipeline
pre-fetches the stored identities for a whole batch into a ``DedupIndex`` (one indexed
``IN`` lookup on ``mention_keys``), so the chain itself does no I/O.

Near-duplicate content is judged on the *core text*: normalised words, without a leading
``RT @user:``, reply @handles, URLs, a trailing block of #hashtags/@handles, emoji and
punctuation. Two rules use it:

- the same core text (3+ words) by the same author is one post, however many platforms or
  retweets carried it (``post:`` key = author + text);
- texts of 8+ words with the same figures whose word and word-pair sets are similar
  (estimated Jaccard ≥ ``MIN_SIMILARITY``) are one mention when the author is the same or
  the text is article-length (``ARTICLE_WORDS``+ words: syndicated copies carry other bylines). MinHash
  over those sets gives 8 LSH band keys (``mh:``) to find candidates by index, and a 64-bit
  one-bit-per-hash sketch (``mentions.fingerprint``) to estimate the similarity.

Two different people writing the same five words are therefore two mentions.
"""

from __future__ import annotations

import hashlib
import itertools
import random
import re
import zlib
from dataclasses import dataclass, field
from datetime import timedelta

import numpy as np

from monitor.mention import Mention
from monitor.normalize import fold_case, words
from monitor.urls import canonical_url

# Near-duplicate texts whose titles share less than this (Jaccard) are different items.
MIN_TITLE_OVERLAP = 0.5
# How far back title, text and near-duplicate keys are compared (URLs and source keys: forever).
DEDUP_WINDOW = timedelta(days=7)
MIN_WORDS_FOR_TITLE_KEY = 6
MIN_WORDS_FOR_POST_KEY = 3
MIN_WORDS_FOR_SKETCH = 8
ARTICLE_WORDS = 40
MAX_SKETCH_WORDS = 300  # longer texts are compared on their first 300 words
NUM_HASHES = 64
BANDS = 8
ROWS_PER_BAND = 4
MIN_SIMILARITY = 0.6
# One-bit sketches of two sets with Jaccard J differ in (1 - J) / 2 of their bits.
MAX_SKETCH_DISTANCE = int(NUM_HASHES * (1 - MIN_SIMILARITY) / 2)

# MinHash permutations as multiply-shift hashes h(x) = (a·x + b mod 2^64) >> 32 with odd a:
# vectorised over all shingles at once. Fixed seed: sketches are stored and compared across
# restarts.
_rng = random.Random(20261123)
_A = np.array([[_rng.getrandbits(64) | 1] for _ in range(NUM_HASHES)], dtype=np.uint64)
_B = np.array([[_rng.getrandbits(64)] for _ in range(NUM_HASHES)], dtype=np.uint64)
_SHIFT = np.uint64(32)
_SECOND_SEED = 0x9E3779B9

_RETWEET = re.compile(r"^\s*RT\s+@([^\s:]+):?\s*", re.IGNORECASE)
_LEADING_HANDLES = re.compile(r"^(?:\s*@[^\s]+)+\s*")
_URL = re.compile(r"https?://\S+|www\.\S+")
_PUBLISHER_SUFFIX = re.compile(r"\s+[-–—|]\s+([^-–—|]{1,60})$")


@dataclass(slots=True)
class Candidate:
    mention: Mention
    canonical_url: str
    fingerprint: int | None  # 64-bit one-bit MinHash sketch, signed (a BIGINT column)
    keys: list[str] = field(default_factory=list)  # url / hint / title / post / mh identities
    author: str = ""  # author_key() of who wrote the text (the original poster of an RT)
    core_words: int = 0


@dataclass(slots=True)
class Identity:
    mention_id: int | None
    rule: str  # source_key | canonical_url | identity_key | cross_post | near_duplicate | new


@dataclass(frozen=True, slots=True)
class KeyHit:
    """A stored mention that has a given identity key."""

    mention_id: int
    fingerprint: int | None
    author: str  # author_key() of the stored mention's author
    title: frozenset[str] = frozenset()  # title_words() of the stored mention


@dataclass(slots=True)
class DedupIndex:
    by_source_key: dict[str, int] = field(default_factory=dict)
    by_canonical_url: dict[str, int] = field(default_factory=dict)
    by_key: dict[str, list[KeyHit]] = field(default_factory=dict)

    def add(self, mention_id: int, candidate: Candidate) -> None:
        """Make a just-stored mention (or sighting) findable by the rest of the batch."""
        self.by_source_key.setdefault(candidate.mention.source_key, mention_id)
        if candidate.canonical_url:
            self.by_canonical_url.setdefault(candidate.canonical_url, mention_id)
        hit = KeyHit(
            mention_id,
            candidate.fingerprint,
            author_key(candidate.mention.author),
            title_words(candidate.mention.title),
        )
        for key in candidate.keys:
            self.by_key.setdefault(key, []).append(hit)


def identify(candidate: Candidate, index: DedupIndex) -> Identity:
    """Decide which stored mention, if any, this sighting is. First rule that hits wins:

    1. ``source_key`` — the same source reported the same item before;
    2. ``canonical_url`` — the same article reached us through another feed or redirector
       (tracking parameters, Google redirect links, any URL a sighting of it had);
    3. ``identity_key`` — a source's own hint (e.g. Google News' title+publisher), or the
       same headline of 6+ words (a trailing " - Publisher" ignored) when the authors do not
       contradict each other (either unknown, or the same);
    4. ``cross_post`` — the same core text of 3+ words by the same author (retweets count as
       the original author's), within ``DEDUP_WINDOW``;
    5. ``near_duplicate`` — similar core text of 8+ words within ``DEDUP_WINDOW``, by the same
       author or of article length.
    """
    mention = candidate.mention
    if (found := index.by_source_key.get(mention.source_key)) is not None:
        return Identity(found, "source_key")
    if candidate.canonical_url and (
        (found := index.by_canonical_url.get(candidate.canonical_url)) is not None
    ):
        return Identity(found, "canonical_url")
    for key in candidate.keys:
        hits = index.by_key.get(key, [])
        if key.startswith("hint:") and hits:
            return Identity(hits[0].mention_id, "identity_key")
        if key.startswith("title:"):
            for hit in hits:
                if not hit.author or not candidate.author or hit.author == candidate.author:
                    return Identity(hit.mention_id, "identity_key")
    for key in candidate.keys:
        if key.startswith("post:") and (hits := index.by_key.get(key)):
            return Identity(hits[0].mention_id, "cross_post")
    if candidate.fingerprint is not None:
        for key in candidate.keys:
            if not key.startswith("mh:"):
                continue
            for hit in index.by_key.get(key, []):
                if _near_duplicate(candidate, hit):
                    return Identity(hit.mention_id, "near_duplicate")
    return Identity(None, "new")


def _near_duplicate(candidate: Candidate, hit: KeyHit) -> bool:
    if hit.fingerprint is None or candidate.fingerprint is None:
        return False
    if hamming(hit.fingerprint, candidate.fingerprint) > MAX_SKETCH_DISTANCE:
        return False
    title = title_words(candidate.mention.title)
    if title and hit.title and len(title & hit.title) < MIN_TITLE_OVERLAP * len(title | hit.title):
        return False  # two videos or posts under one boilerplate description, different titles
    same_author = bool(candidate.author) and hit.author == candidate.author
    return same_author or candidate.core_words >= ARTICLE_WORDS


def title_words(title: str) -> frozenset[str]:
    return frozenset(words(title)) if title else frozenset()


# --------------------------------------------------------------------------- features


def candidate_for(mention: Mention, url: str | None = None) -> Candidate:
    """Everything ``identify`` compares about one sighting."""
    canonical = canonical_url(mention.url) if url is None else url
    text = mention.match_text()
    core, original_author = core_text(text)
    author = author_key(original_author or mention.author)
    signature = minhash(core) if len(core) >= MIN_WORDS_FOR_SKETCH else None
    fingerprint = sketch(signature) if signature else None
    keys = [f"url:{_digest(canonical)}"] if canonical else []
    keys += [
        f"hint:{_digest(' '.join(words(hint)))}" for hint in mention.dedup_hints if words(hint)
    ]
    keys += [f"title:{_digest(' '.join(title))}" for title in headline_variants(mention.title)]
    if author and len(core) >= MIN_WORDS_FOR_POST_KEY:
        keys.append(f"post:{_digest(author + '|' + ' '.join(core))}")
    if signature:
        keys += band_keys(signature, figures(core))
    return Candidate(mention, canonical, fingerprint, list(dict.fromkeys(keys)), author, len(core))


def core_text(text: str) -> tuple[list[str], str]:
    """The words that carry a post's content, and the original author if it is a retweet."""
    original = ""
    if match := _RETWEET.match(text):
        original = match.group(1)
        text = text[match.end() :]
    text = _LEADING_HANDLES.sub(" ", _URL.sub(" ", text))
    parts = text.split()
    while parts and parts[-1][0] in "#@＃＠":
        parts.pop()  # a trailing block of #tags and @handles
    return words(" ".join(parts)), original


def author_key(author: str) -> str:
    """A comparable form of an author across platforms: `@alice@mastodon.social`,
    `alice.bsky.social`, `@Alice` → `alice`; display names keep only letters and digits."""
    handle = fold_case(author.strip()).lstrip("@").split("@")[0]
    if "." in handle and " " not in handle:
        handle = handle.split(".")[0]
    return "".join(ch for ch in handle if ch.isalnum())


def headline_variants(title: str) -> list[list[str]]:
    """The headline's words, and without a trailing " - Publisher" (Google News adds one)."""
    variants = []
    full = words(title)
    if len(full) >= MIN_WORDS_FOR_TITLE_KEY:
        variants.append(full)
    if match := _PUBLISHER_SUFFIX.search(title.strip()):
        shorter = words(title.strip()[: match.start()])
        publisher = words(match.group(1))
        if len(shorter) >= MIN_WORDS_FOR_TITLE_KEY and 0 < len(publisher) <= 5:
            variants.append(shorter)
    return variants


def _shingles(core: list[str]) -> np.ndarray:
    """64-bit hashes of the text's words and word pairs (two CRC-32s: stable across runs)."""
    core = core[:MAX_SKETCH_WORDS]
    grams = {*core, *(f"{a} {b}" for a, b in itertools.pairwise(core))}
    values = []
    for gram in grams:
        data = gram.encode("utf-8", "replace")
        values.append(zlib.crc32(data) << 32 | zlib.crc32(data, _SECOND_SEED))
    return np.array(values, dtype=np.uint64)


def minhash(core: list[str]) -> list[int]:
    """MinHash signature of the text's word and word-pair set."""
    hashed = (_A * _shingles(core) + _B) >> _SHIFT  # uint64 arithmetic wraps: mod 2^64
    return [int(value) for value in hashed.min(axis=1)]


def sketch(signature: list[int]) -> int:
    """The lowest bit of each MinHash value, as a signed 64-bit integer (fits a BIGINT)."""
    unsigned = sum((value & 1) << i for i, value in enumerate(signature))
    return unsigned - (1 << 64) if unsigned >= 1 << 63 else unsigned


def figures(core: list[str]) -> list[str]:
    """The numbers in a text: a daily bulletin or an order update from a template differs
    from yesterday's only in them, and is a different mention."""
    return sorted({word for word in core[:MAX_SKETCH_WORDS] if word.isdecimal()})


def band_keys(signature: list[int], numbers: list[str] | None = None) -> list[str]:
    """LSH bands: texts with Jaccard similarity J (and the same figures) share at least one
    with probability 1 - (1 - J^4)^8 (0.67 at J=0.6, 0.98 at J=0.8)."""
    keys = []
    for band in range(BANDS):
        rows = signature[band * ROWS_PER_BAND : (band + 1) * ROWS_PER_BAND]
        digest = hashlib.blake2b(repr((rows, numbers or [])).encode(), digest_size=8).hexdigest()
        keys.append(f"mh:{band}:{digest}")
    return keys


def hamming(a: int, b: int) -> int:
    return ((a ^ b) & ((1 << 64) - 1)).bit_count()


def _digest(text: str) -> str:
    return hashlib.blake2b(text.encode("utf-8", "replace"), digest_size=12).hexdigest()


# Kept for callers that compute a fingerprint on its own (tests, tools).
def content_fingerprint(text: str) -> int | None:
    core, _ = core_text(text)
    return sketch(minhash(core)) if len(core) >= MIN_WORDS_FOR_SKETCH else None
