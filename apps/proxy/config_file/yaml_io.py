"""Reading and writing config YAML.

Reading refuses duplicate keys: PyYAML would silently keep the last one, and a second ``api_key:``
or ``enabled:`` overriding the first is exactly the kind of mistake config-as-code must catch.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from yaml.constructor import ConstructorError
from yaml.nodes import MappingNode


class _StrictLoader(yaml.SafeLoader):
    def construct_mapping(self, node: MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[object] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if not isinstance(key, str | int | float | bool) or key == "<<":  # unhashable, or a merge
                continue
            if key in seen:
                raise ConstructorError(None, None, f"duplicate key {key!r}", key_node.start_mark)
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


class _IndentedDumper(yaml.SafeDumper):
    """Indents list items under their key, as people write these files by hand."""

    def increase_indent(self, flow: bool = False, indentless: bool = False) -> None:
        super().increase_indent(flow, False)


class YamlFileError(Exception):
    pass


def read_yaml(path: Path) -> object:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise YamlFileError(f"{path}: cannot read: {exc}") from exc
    loader = _StrictLoader(text)
    loader.name = str(path)  # error marks then say which file, not "<unicode string>"
    try:
        return loader.get_single_data()
    except yaml.YAMLError as exc:
        raise YamlFileError(f"{path}: not valid YAML: {exc}") from exc
    finally:
        loader.dispose()


def dump_yaml(data: dict[str, Any]) -> str:
    # Block style, keys in the order given, no line wrapping: diffs between exports stay readable.
    return yaml.dump(
        data, Dumper=_IndentedDumper, sort_keys=False, default_flow_style=False, allow_unicode=True, width=10_000
    )
