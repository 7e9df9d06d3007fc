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


def test_the_benchmarks_cite_commits_in_this_history() -> None:
    """Every "commit <hash>" in BENCHMARKS.md (the whole run's, the sentiment table's)
    names a commit of this branch, measured on a clean tree."""
    if shutil.which("git") is None or git("rev-parse", "--git-dir").returncode != 0:
        pytest.skip("not a git checkout")
    if git("rev-parse", "--is-shallow-repository").stdout.strip() == "true":
        pytest.skip("a shallow clone may not hold the commit that was measured")
    text = (ROOT / "BENCHMARKS.md").read_text("utf-8")
    assert re.search(r"\n## (?:\d+\. )?Sentiment\n", text), "BENCHMARKS.md has no Sentiment section"
    cited = re.findall(r"\bcommit ([0-9a-f]{7,40})\b(.*?)[,.]", text)
    assert cited, "BENCHMARKS.md names no commit"
    rerun = "run `make bench` on a clean, committed tree and commit BENCHMARKS.md"
    for commit, rest in cited:
        assert "uncommitted" not in rest, f"{commit}: measured on uncommitted changes; {rerun}"
        measured = git("merge-base", "--is-ancestor", commit, "HEAD")
        assert measured.returncode == 0, (
            f"BENCHMARKS.md cites commit {commit}, which is not in this branch's history; {rerun}"
        )
