"""What the documentation claims about measurements points at something real."""

from __future__ import annotations

import re
import shutil
import subprocess

import pytest

from tests.helpers.process import ROOT


def git(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["git", *args], capture_output=True, text=True, cwd=ROOT, timeout=30, check=False
    )


def test_the_sentiment_benchmarks_cite_a_commit_in_this_history() -> None:
    if shutil.which("git") is None or git("rev-parse", "--git-dir").returncode != 0:
        pytest.skip("not a git checkout")
    if git("rev-parse", "--is-shallow-repository").stdout.strip() == "true":
        pytest.skip("a shallow clone may not hold the commit that was measured")
    text = (ROOT / "BENCHMARKS.md").read_text("utf-8")
    section = text[text.index("\n## Sentiment\n") :].split("\n## ", 2)[1]
    found = re.search(r"\bcommit ([0-9a-f]{7,40})\b(.*?)[,.]", section)
    assert found, "BENCHMARKS.md: the Sentiment section names no commit"
    commit, rest = found.groups()
    rerun = (
        "run `python -m bench.sentiment_eval --data ../shared/sentiment-eval` on a clean, "
        "committed tree and commit BENCHMARKS.md"
    )
    assert "uncommitted" not in rest, f"the numbers were measured on uncommitted changes; {rerun}"
    measured = git("merge-base", "--is-ancestor", commit, "HEAD")
    assert measured.returncode == 0, (
        f"BENCHMARKS.md cites commit {commit}, which is not in this branch's history; {rerun}"
    )
