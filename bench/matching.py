"""Watchlist matching throughput at 10 / 100 / 1,000 / 10,000 terms.

    .venv/bin/python bench/matching.py [--corpus ../shared/sentiment-eval] [--mentions 5000]

Texts: real posts in English, Hindi, Bengali and Persian from the dev sets in --corpus (read
in place, never copied), or generated text when that folder is missing. Terms: 10 per
watchlist, like `"t1 t2" OR t3 OR ... OR t8* OR t9 OR t10 -t11`; four in five are invented
brand-like names (rarely present, as real brand terms are), one in five a mid-frequency word
of the corpus (so texts do hit terms and boolean queries are evaluated). The last column is
the design this replaces, every watchlist's query evaluated on every mention. Prints a
Markdown table.
"""

from __future__ import annotations

import argparse
import csv
import random
import statistics
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

from monitor.matching import Matcher, MatchInput
from monitor.normalize import words

SIZES = (10, 100, 1_000, 10_000)
TERMS_PER_WATCHLIST = 10


def load_corpus(folder: Path, limit: int, rng: random.Random) -> list[str]:
    texts: list[str] = []
    for path in sorted(folder.glob("*.tsv")):
        with path.open(encoding="utf-8") as handle:
            texts += [
                row["text"]
                for row in csv.DictReader(handle, delimiter="\t", quoting=csv.QUOTE_NONE)
            ]
    if not texts:
        alphabet = "abcdefghijklmnopqrstuvwxyz"
        vocabulary = ["".join(rng.choices(alphabet, k=rng.randint(2, 9))) for _ in range(5000)]
        texts = [" ".join(rng.choices(vocabulary, k=rng.randint(5, 60))) for _ in range(limit)]
    rng.shuffle(texts)
    return texts[:limit]


def make_watchlists(
    count: int, vocabulary: list[str], rng: random.Random
) -> list[tuple[str, str, list[str]]]:
    used: set[str] = set()

    def term() -> str:
        while True:
            if rng.random() < 0.2:
                word = rng.choice(vocabulary)
            else:
                word = "".join(rng.choices("bcdfghklmnprstvz", k=4)) + rng.choice(
                    ["ly", "io", "ex"]
                )
            if word not in used:
                used.add(word)
                return word

    lists = []
    for index in range(max(1, count // TERMS_PER_WATCHLIST)):
        t = [term() for _ in range(TERMS_PER_WATCHLIST + 1)]  # two of them form a phrase
        query = (
            f'"{t[0]} {t[1]}" OR '
            + " OR ".join(t[2:7])
            + f" OR {t[7]}* OR {t[8]} OR {t[9]} -{t[10]}"
        )
        lists.append((f"w{index}", query, []))
    return lists


class CountingMatcher(Matcher):
    """Counts watchlist queries evaluated (roots only), to show the candidate filtering."""

    def __init__(self, watchlists: Any) -> None:
        super().__init__(watchlists)
        self.roots = {id(w.query) for w in self.watchlists}
        self.evaluated = 0

    def _evaluate(self, node: Any, doc: Any, hits: Any, found: Any) -> bool:
        if id(node) in self.roots:
            self.evaluated += 1
        return super()._evaluate(node, doc, hits, found)


def run(texts: list[str], size: int, vocabulary: list[str], rounds: int) -> dict[str, float]:
    rng = random.Random(size)
    lists = make_watchlists(size, vocabulary, rng)
    started = time.perf_counter()
    matcher = CountingMatcher(lists)
    build_s = time.perf_counter() - started
    items = [MatchInput(text) for text in texts]
    for item in items[:200]:
        matcher.match(item)  # warm the caches
    rates = []
    matched = 0
    for _ in range(rounds):
        matcher.evaluated = 0
        started = time.perf_counter()
        matched = sum(bool(matcher.match(item)) for item in items)
        rates.append(len(items) / (time.perf_counter() - started))
    # The design this replaces: every watchlist's query evaluated on every mention.
    separate = [Matcher([watchlist]) for watchlist in lists]
    sample = items[: max(20, 20_000 // len(lists))]
    started = time.perf_counter()
    for item in sample:
        for one in separate:
            one.match(item)
    per_watchlist_rate = len(sample) / (time.perf_counter() - started)
    return {
        "per_watchlist_rate": per_watchlist_rate,
        "terms": matcher.term_count,
        "watchlists": len(lists),
        "build_ms": build_s * 1000,
        "rate": statistics.median(rates),
        "evaluated": matcher.evaluated / len(items),
        "matched": matched / len(items),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", type=Path, default=Path("../shared/sentiment-eval"))
    parser.add_argument("--mentions", type=int, default=5000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    rng = random.Random(7)
    texts = load_corpus(args.corpus, args.mentions, rng)
    counts = Counter(w for text in texts for w in set(words(text)))
    ranked = [w for w, _ in counts.most_common() if len(w) > 2]
    vocabulary = ranked[100:3000] or ranked
    chars = statistics.mean(len(t) for t in texts)
    print(
        f"{len(texts)} texts, mean {chars:.0f} characters, from {args.corpus if counts else 'generator'}"
    )
    print()
    print(
        "| terms | watchlists | build | mentions/s | queries evaluated per mention | share matched "
        "| mentions/s evaluating every watchlist |"
    )
    print("|---:|---:|---:|---:|---:|---:|---:|")
    for size in SIZES:
        r = run(texts, size, vocabulary, args.rounds)
        print(
            f"| {r['terms']:,} | {r['watchlists']:,} | {r['build_ms']:.0f} ms | {r['rate']:,.0f} "
            f"| {r['evaluated']:.2f} | {r['matched']:.1%} | {r['per_watchlist_rate']:,.0f} |"
        )
        sys.stdout.flush()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
