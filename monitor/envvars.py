"""``${VAR}`` / ``${VAR:-default}`` / ``${VAR-default}`` expansion inside parsed config values.

Expansion runs on the parsed YAML tree, string by string, never on the file text:
a value containing a colon, a quote or a newline cannot change the document's shape.
``$${`` stands for a literal ``${``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from monitor.yaml_lines import Path

_REFERENCE = re.compile(r"\$\$\{|\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?-)([^}]*))?\}")


class UnsetVariable(Exception):
    def __init__(self, path: Path, name: str) -> None:
        super().__init__(name)
        self.path = path
        self.name = name


def expand_string(value: str, env: Mapping[str, str], path: Path = ()) -> str:
    def replace(match: re.Match[str]) -> str:
        if match.group(0) == "$${":
            return "${"
        name, operator, default = match.group(1), match.group(2), match.group(3)
        current = env.get(name)
        if operator == ":-" and not current:
            return default or ""
        if operator == "-" and current is None:
            return default or ""
        if current is None:
            raise UnsetVariable(path, name)
        return current

    return _REFERENCE.sub(replace, value)


def expand_tree(
    data: Any, env: Mapping[str, str], path: Path = ()
) -> tuple[Any, list[UnsetVariable]]:
    """Expand every string in ``data``; collect every unset variable instead of stopping at one."""
    problems: list[UnsetVariable] = []

    def walk(node: Any, here: Path) -> Any:
        if isinstance(node, str):
            try:
                return expand_string(node, env, here)
            except UnsetVariable as exc:
                problems.append(exc)
                return node
        if isinstance(node, dict):
            return {key: walk(value, (*here, key)) for key, value in node.items()}
        if isinstance(node, list):
            return [walk(item, (*here, index)) for index, item in enumerate(node)]
        return node

    return walk(data, path), problems
