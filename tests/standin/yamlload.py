"""Reading the config as Go's yaml.v3 does: YAML 1.2 booleans, lines kept for messages."""

from __future__ import annotations

import json
import re
import subprocess
from datetime import date, datetime
from pathlib import Path
from typing import Any

import yaml

from .console import fail, os_error


class YamlMap(dict[str, Any]):
    """A mapping that remembers each key's line, for yaml.v3-style messages."""

    def __init__(self) -> None:
        super().__init__()
        self.lines: dict[str, int] = {}


class YamlSeq(list[Any]):
    """A sequence that remembers each item's line."""

    def __init__(self) -> None:
        super().__init__()
        self.lines: list[int] = []


class _Loader(yaml.SafeLoader):
    """SafeLoader with YAML 1.2 booleans, as in Go's yaml.v3: ``on``/``yes`` stay strings."""


_BOOL_TAG = "tag:yaml.org,2002:bool"
_Loader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != _BOOL_TAG]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_Loader.add_implicit_resolver(
    _BOOL_TAG, re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)


def _scalar_key(loader: _Loader, node: yaml.Node) -> str:
    key = loader.construct_object(node, deep=True)
    if isinstance(key, bool):
        return "true" if key else "false"
    return "" if key is None else str(key)


def _construct_map(loader: _Loader, node: yaml.MappingNode) -> YamlMap:
    loader.flatten_mapping(node)
    data = YamlMap()
    for key_node, value_node in node.value:
        key = _scalar_key(loader, key_node)
        line = key_node.start_mark.line + 1
        if key in data.lines:
            fail(
                f"failed parsing config file: yaml: line {line}: mapping key "
                f'"{key}" already defined at line {data.lines[key]}'
            )
        data[key] = loader.construct_object(value_node, deep=True)
        data.lines[key] = line
    return data


def _construct_seq(loader: _Loader, node: yaml.SequenceNode) -> YamlSeq:
    data = YamlSeq()
    for item in node.value:
        data.append(loader.construct_object(item, deep=True))
        data.lines.append(item.start_mark.line + 1)
    return data


_Loader.add_constructor("tag:yaml.org,2002:map", _construct_map)
_Loader.add_constructor("tag:yaml.org,2002:seq", _construct_seq)


def load_config(path: str, goyaml: str = "") -> YamlMap:
    """The config as tbot reads it. ``goyaml``: a build of tests/goyaml (STANDIN_TBOT_GOYAML),
    to read it with Go's yaml.v3 first, tbot's own parser, and fail as tbot does."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        fail(f"failed to open file: {path}: open {path}: {os_error(exc)}")
    go_document = _read_with_yaml_v3(goyaml, path) if goyaml else None
    try:
        data = yaml.load(text, Loader=_Loader)  # noqa: S506 - _Loader is a SafeLoader
    except yaml.YAMLError as exc:
        fail(f"failed parsing config file version: yaml: {' '.join(str(exc).split())}")
    if goyaml and json.loads(json.dumps(data, default=str)) != go_document:
        # Not tbot's behaviour: the stand-in itself would be reading the file wrong.
        fail("tbot stand-in: PyYAML and Go's yaml.v3 read this config differently")
    if data is None:
        fail("failed parsing config file version: EOF")
    if not isinstance(data, YamlMap):
        fail(
            "failed parsing config file version: yaml: unmarshal errors:  "
            f"line 1: cannot unmarshal {tag(data)} into struct {{ Version config.Version }}"
        )
    return data


def _read_with_yaml_v3(goyaml: str, path: str) -> Any:
    done = subprocess.run([goyaml, path], capture_output=True, text=True, timeout=60, check=False)
    if done.returncode != 0:
        fail(f"tbot stand-in: {goyaml} failed: {done.stderr.strip()}")
    parsed = json.loads(done.stdout)
    if "error" in parsed:  # yaml.v3's own message, "yaml: ...", as tbot prints it
        fail(f"failed parsing config file version: {' '.join(parsed['error'].split())}")
    return parsed.get("document")


def tag(value: object) -> str:
    """yaml.v3 names a value by its tag, and shows scalars too."""
    match value:
        case bool():
            return f"!!bool `{'true' if value else 'false'}`"
        case int():
            return f"!!int `{value}`"
        case float():
            return f"!!float `{value}`"
        case str():
            return f"!!str `{value}`"
        case dict():
            return "!!map"
        case list():
            return "!!seq"
        case datetime() | date():
            return f"!!timestamp `{value}`"
        case None:
            return "!!null"
        case _:
            return f"!!{type(value).__name__}"
