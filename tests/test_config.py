"""Config loading: validation, env expansion, error messages with file:line path, secrets."""

from __future__ import annotations

import typing
from pathlib import Path

import pytest
from pydantic import BaseModel

from monitor.config import Config, ConfigError, load_config, parse_config
from monitor.envvars import expand_string
from monitor.yaml_lines import load_with_lines
from sources import SOURCES
from sources.base import SourceConfig

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "config.example.yaml"

MINIMAL = """\
brand:
  name: Acme
watchlists:
  - name: brand
    query: acme
"""


def problems(text: str, env: dict[str, str] | None = None) -> list[str]:
    with pytest.raises(ConfigError) as info:
        parse_config(text, "config.yaml", env or {})
    return [str(p) for p in info.value.problems]


def test_example_config_is_valid() -> None:
    config = load_config(EXAMPLE, env={})
    assert config.database == "sqlite+aiosqlite:///./data/monitor.db"
    assert config.watchlists[0].name == "brand"


def test_minimal_config_gets_documented_defaults() -> None:
    config = parse_config(MINIMAL, env={})
    assert config.database == "sqlite+aiosqlite:///./data/monitor.db"
    assert config.watchlists[0].sla.total_seconds() == 3600
    assert config.alerts.enabled_sinks() == {}


def test_typo_in_key_names_line_path_and_suggestion() -> None:
    text = MINIMAL.replace("    query: acme", "    qurey: acme")
    found = problems(text)
    assert "config.yaml:5 watchlists[0].qurey: unknown key 'qurey'; did you mean 'query'?" in found
    assert "config.yaml:4 watchlists[0].query: required key is missing" in found


def test_bad_type_names_line_and_path() -> None:
    text = MINIMAL + "daemon:\n  max_concurrent_sources: lots\n"
    assert problems(text) == [
        "config.yaml:7 daemon.max_concurrent_sources: Input should be a valid integer, "
        "unable to parse string as an integer"
    ]


def test_bad_query_reports_column() -> None:
    text = MINIMAL.replace("query: acme", "query: '\"acme cloud'")
    assert problems(text) == ["config.yaml:5 watchlists[0].query: unbalanced quote at column 1"]


def test_bad_duration_in_source() -> None:
    text = MINIMAL + "sources:\n  - type: rss\n    url: http://x.test/feed\n    every: often\n"
    assert problems(text) == [
        "config.yaml:9 sources[0].every: 'often' is not a duration; write it like 30s, 5m, 1h30m or 2d"
    ]


def test_unknown_source_type_lists_known_types() -> None:
    text = MINIMAL + "sources:\n  - type: rsss\n    url: http://x.test/feed\n"
    (message,) = problems(text)
    assert message.startswith("config.yaml:7 sources[0].type: unknown source type")
    assert "rss" in message


def test_unset_variable_is_an_error_naming_path_and_line() -> None:
    text = MINIMAL + "database: ${MONITOR_DB_URL}\n"
    assert problems(text) == [
        "config.yaml:6 database: environment variable MONITOR_DB_URL is not set "
        "(set it, or write ${MONITOR_DB_URL:-default} for an optional value)"
    ]


def test_variables_expand_after_parsing_so_values_cannot_change_the_shape() -> None:
    hostile = "x\nwatchlists: []\n: {"
    config = parse_config(MINIMAL + "database: ${DB}\n", env={"DB": hostile})
    assert config.database == hostile
    assert len(config.watchlists) == 1


def test_default_and_escape_forms() -> None:
    assert expand_string("${A:-fallback}", {}) == "fallback"
    assert expand_string("${A:-fallback}", {"A": ""}) == "fallback"
    assert expand_string("${A-fallback}", {"A": ""}) == ""
    assert expand_string("cost $${NOT_A_VAR}", {}) == "cost ${NOT_A_VAR}"
    assert expand_string("${A}/${B:-b}", {"A": "a"}) == "a/b"


def test_duplicate_keys_are_rejected() -> None:
    assert problems(MINIMAL + "brand:\n  name: Other\n") == ["config.yaml:6: duplicate key 'brand'"]


def test_invalid_yaml_names_the_line() -> None:
    (message,) = problems(MINIMAL + "daemon: [unclosed\n")
    assert message.startswith("config.yaml:") and "invalid YAML" in message


def test_missing_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(tmp_path / "nope.yaml")
    assert "cannot read the config file" in str(info.value)
    assert "MONITOR_CONFIG" in str(info.value)


def test_cross_reference_errors() -> None:
    text = MINIMAL + "    owner: nobody\n"
    (message,) = problems(text)
    assert "owner 'nobody' is not defined under people:" in message


def test_sources_get_unique_default_names() -> None:
    text = (
        MINIMAL
        + "sources:\n  - {type: rss, url: 'http://a.test/'}\n  - {type: rss, url: 'http://b.test/'}\n"
    )
    config = parse_config(text, env={})
    assert [s.name for s in config.sources] == ["rss-1", "rss-2"]


def test_line_map_follows_yaml_structure() -> None:
    _data, lines = load_with_lines("a:\n  b:\n    - x\n    - y: 1\n")
    assert lines[("a",)] == 1
    assert lines[("a", "b", 1)] == 4
    assert lines[("a", "b", 1, "y")] == 4


# ---------------------------------------------------------------- the example documents itself


def _model_paths(model: type[BaseModel], prefix: str = "") -> tuple[set[str], set[str]]:
    """Dotted paths of every field (``people.*.email`` for maps), and the map fields."""
    paths: set[str] = set()
    maps: set[str] = set()
    for name, field in model.model_fields.items():
        path = f"{prefix}{name}"
        paths.add(path)
        annotation = field.annotation
        if typing.get_origin(annotation) is dict:
            maps.add(path)
            path += ".*"
        for nested in _nested_models(annotation):
            sub_paths, sub_maps = _model_paths(nested, f"{path}.")
            paths |= sub_paths
            maps |= sub_maps
    return paths, maps


def _nested_models(annotation: typing.Any) -> list[type[BaseModel]]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    return [model for arg in typing.get_args(annotation) for model in _nested_models(arg)]


def _example_paths(value: typing.Any, maps: set[str], prefix: str = "") -> set[str]:
    paths: set[str] = set()
    if isinstance(value, dict):
        for key, child in value.items():
            segment = "*" if prefix.rstrip(".") in maps else key
            path = f"{prefix}{segment}"
            paths.add(path)
            paths |= _example_paths(child, maps, f"{path}.")
    elif isinstance(value, list):
        for item in value:
            paths |= _example_paths(item, maps, prefix)
    return paths


def test_every_config_field_appears_in_the_example() -> None:
    """A new config key (of the core or any sink) must be in config.example.yaml; source
    keys are checked per type below."""
    expected, maps = _model_paths(Config)
    data, _ = load_with_lines(EXAMPLE.read_text(encoding="utf-8"))
    documented = _example_paths(data, {m for m in maps})
    missing = sorted(
        p for p in expected - documented if not p.endswith(".*") and not p.startswith("sources.")
    )
    assert not missing, f"config.example.yaml does not document: {missing}"


def test_every_source_types_keys_appear_in_its_own_example_entries() -> None:
    """Keys every source has (type, name, enabled, every, watchlist) may be documented on
    any entry; each type's own keys on an entry of that type: `api_url` in the github
    entry does not excuse its absence from the youtube one."""
    data, _ = load_with_lines(EXAMPLE.read_text(encoding="utf-8"))
    entries: dict[str, list[dict[str, typing.Any]]] = {}
    for entry in data["sources"]:
        entries.setdefault(entry["type"], []).append(entry)
    common, _ = _model_paths(SourceConfig)
    missing = {}
    for kind, source in SOURCES.items():
        assert kind in entries, f"config.example.yaml has no `type: {kind}` source"
        expected, maps = _model_paths(source.Config)
        documented = set().union(*(_example_paths(entry, maps) for entry in entries[kind]))
        gaps = sorted(p for p in expected - common - documented if not p.endswith(".*"))
        if gaps:
            missing[kind] = gaps
    everywhere = set().union(*(_example_paths(entry, set()) for entry in data["sources"]))
    if common - everywhere:
        missing["(every source)"] = sorted(common - everywhere)
    assert not missing, f"config.example.yaml does not document, per source type: {missing}"


def test_every_example_key_has_a_comment() -> None:
    """Each key has a comment line above it (repeated list entries reuse the first one's)."""
    lines = EXAMPLE.read_text(encoding="utf-8").splitlines()
    documented: set[tuple[int, str]] = set()
    undocumented = []
    for number, line in enumerate(lines):
        stripped = line.strip().removeprefix("- ")
        if not stripped or stripped.startswith("#") or stripped.startswith("{"):
            continue
        key = stripped.split(":", 1)[0]
        if ":" not in stripped or not key.replace("_", "").isalnum():
            continue
        indent = len(line) - len(line.lstrip(" -"))
        if number and lines[number - 1].strip().startswith("#"):
            documented.add((indent, key))
        elif (indent, key) not in documented:
            undocumented.append(f"{number + 1}: {line.strip()}")
    assert not undocumented, "keys without a comment above them:\n" + "\n".join(undocumented)
