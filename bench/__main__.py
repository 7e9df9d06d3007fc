"""`make bench`: run every benchmark and write BENCHMARKS.md.

    .venv/bin/python -m bench [--only pipeline,feeds,latency,memory,store,sentiment] [--quick]

Each benchmark builds its workload locally and serves it from loopback servers; none
touches the internet except rss2email's one-time install from PyPI (benchmark 2). The
sentiment evaluation reads the dev sets in place from ``$MONITOR_SENTIMENT_EVAL`` or
``../shared/sentiment-eval`` and is skipped, with the reason, where they are missing.
``--quick`` shrinks every workload (for trying the harness, not for the record: it does
not write BENCHMARKS.md).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from bench import feeds, latency, memory, pipeline, store_scale
from bench.report import ROOT, Section, git_commit, machine

DEFAULT_CORPUS = Path(
    os.environ.get("MONITOR_SENTIMENT_EVAL", ROOT.parent / "shared" / "sentiment-eval")
)


def sentiment_section() -> Section:
    """`bench/sentiment_eval.py` in its own process (it measures the classifier's memory)."""
    if not DEFAULT_CORPUS.is_dir():
        return Section(
            "5. Sentiment",
            [
                f"Skipped: the labelled dev sets are not at `{DEFAULT_CORPUS}` (set MONITOR_SENTIMENT_EVAL)."
            ],
        )
    result = subprocess.run(
        [sys.executable, "-m", "bench.sentiment_eval", "--no-write", "--data", str(DEFAULT_CORPUS)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=True,
    )
    body = result.stdout.split("## Sentiment", 1)[-1]
    lines = body.strip("\n").splitlines()
    return Section("5. Sentiment", lines)


def plan(quick: bool) -> dict[str, Callable[[], Section]]:
    return {
        "pipeline": lambda: pipeline.run(DEFAULT_CORPUS, 1_500 if quick else 4_000),
        "feeds": lambda: feeds.run(20 if quick else 200, 50),
        "latency": lambda: latency.run(5 if quick else 20),
        "memory": lambda: memory.run(20_000 if quick else 500_000, 0.05),
        "store": lambda: store_scale.run(50_000 if quick else 1_000_000),
        "sentiment": sentiment_section,
    }


def summary(sections: list[Section]) -> list[str]:
    lines = ["| figure | measured | target | |", "|---|---:|---|---|"]
    for section in sections:
        for target in section.targets:
            lines.append(
                f"| {target.figure} | {target.measured} | {target.target} | {target.verdict} |"
            )
    return lines


def document(sections: list[Section], total_s: float) -> str:
    head = [
        "# Benchmarks",
        "",
        f"Written by `make bench` on {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, commit {git_commit()}, "
        f"{machine()}; the whole run took {total_s / 60:.1f} minutes. Every workload is generated "
        "locally and served from loopback servers (see each module in `bench/`). Unit tests "
        "never time anything; these figures are the record.",
        "",
        "## Targets at a glance",
        "",
        *summary(sections),
        "",
    ]
    return "\n".join(head) + "\n" + "\n".join(section.markdown() for section in sections)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", help="comma-separated subset of: " + ", ".join(plan(False)))
    parser.add_argument("--quick", action="store_true", help="small workloads; no BENCHMARKS.md")
    args = parser.parse_args()
    chosen = plan(args.quick)
    if args.only:
        wanted = [name.strip() for name in args.only.split(",")]
        unknown = set(wanted) - set(chosen)
        if unknown:
            parser.error(f"unknown benchmark(s): {', '.join(sorted(unknown))}")
        chosen = {name: chosen[name] for name in wanted}
    started = time.monotonic()
    sections = []
    for name, bench in chosen.items():
        print(f"== {name}", flush=True)
        begun = time.monotonic()
        section = bench()
        section.seconds = time.monotonic() - begun
        print(section.markdown(), flush=True)
        print(f"({name}: {section.seconds:.0f} s)", flush=True)
        sections.append(section)
    total = time.monotonic() - started
    if args.quick or args.only:
        print("(a partial or --quick run: BENCHMARKS.md left as it is)")
        return 0
    (ROOT / "BENCHMARKS.md").write_text(document(sections, total), encoding="utf-8")
    print(f"wrote BENCHMARKS.md ({total / 60:.1f} minutes)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
