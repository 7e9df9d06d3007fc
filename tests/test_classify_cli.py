"""`monitor classify`: JSON Lines in, one judgement per line out, same order, bad lines
answered with an error object instead of a crash."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.conftest import base_config_dict
from tests.helpers.process import ROOT, write_config


def classify(lines: list[str], *args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "monitor", "classify", *args],
        input="\n".join(lines) + "\n",
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=60,
        check=False,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT)},
    )


def test_one_object_per_line_in_order_with_errors_inline(tmp_path: Path) -> None:
    lines = [
        json.dumps({"text": "@acme still waiting for my refund, 3 weeks now", "lang": "en"}),
        "{not json",
        json.dumps({"text": "यह फोन बहुत बेकार है"}),
        json.dumps({"id": 7, "text": "অসাধারণ সার্ভিস, অনেক ধন্যবাদ"}),
        json.dumps({"text": 42}),
        "",
        json.dumps({"text": "اصلا نمی‌ارزه", "lang": "FA"}),
        json.dumps(["a list"]),
    ]
    result = classify(lines, cwd=tmp_path)  # no config file there: default backends
    assert result.returncode == 0, result.stderr
    out = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(out) == len(lines)
    assert out[0]["sentiment"] == "negative" and out[0]["needs_reply"] is True
    assert out[0]["backend"].startswith("vader")
    assert set(out[0]["scores"]) == {"negative", "neutral", "positive"}
    assert "not JSON" in out[1]["error"] and out[1]["line"] == 2
    assert (out[2]["language"], out[2]["sentiment"]) == ("hi", "negative")
    assert (out[3]["id"], out[3]["language"], out[3]["sentiment"]) == (7, "bn", "positive")
    assert "string" in out[4]["error"] and out[4]["line"] == 5
    assert out[5] == {"error": "empty line", "line": 6}
    assert (out[6]["language"], out[6]["sentiment"]) == ("fa", "negative")
    assert "error" in out[7]


def test_transformer_config_without_a_model_exits_2(tmp_path: Path) -> None:
    data = base_config_dict(f"sqlite+aiosqlite:///{tmp_path / 'm.db'}")
    data["classify"] = {"backend": "transformer"}
    path = write_config(tmp_path / "config.yaml", data)
    result = classify(['{"text": "hi"}'], "-c", str(path))
    assert result.returncode == 2
    assert "classify.transformer.model_dir is empty" in result.stderr
    assert "Traceback" not in result.stderr


def test_tagged_is_computed_from_the_configs_brand_handles(tmp_path: Path) -> None:
    """With a config, a line that @-mentions brand.accounts is tagged, as in the daemon; a
    question to the brand then needs a reply. Without one, nothing is tagged."""
    path = write_config(
        tmp_path / "config.yaml", base_config_dict(f"sqlite+aiosqlite:///{tmp_path / 'm.db'}")
    )
    lines = [
        json.dumps({"text": "@AcmeCloud is the Frankfurt region live yet?", "lang": "en"}),
        json.dumps({"text": "@globex is the Frankfurt region live yet?", "lang": "en"}),
        json.dumps({"text": "is the Frankfurt region live yet?", "lang": "en", "tagged": True}),
        json.dumps({"text": "hello", "tagged": "yes"}),
    ]
    out = [json.loads(line) for line in classify(lines, "-c", str(path)).stdout.splitlines()]
    assert [o.get("tagged") for o in out[:3]] == [True, False, True]
    assert [o.get("needs_reply") for o in out[:3]] == [True, False, True]
    assert "tagged" in out[3]["error"]

    (tmp_path / "no-config").mkdir()
    without_config = json.loads(classify(lines[:1], cwd=tmp_path / "no-config").stdout)
    assert (without_config["tagged"], without_config["needs_reply"]) == (False, False)
