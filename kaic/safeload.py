"""The one bounded loader for every YAML or JSON file kaic reads (workflows, profiles, status, records).

Limits, each refused with one :class:`ConfigError` line naming the source:

- size: at most ``max_bytes`` (16 MiB by default), checked before parsing;
- text: UTF-8 without NUL bytes (a binary file is refused, not parsed);
- depth: at most ``max_depth`` nested collections (YAML and JSON);
- aliases: the document *as expanded* may hold at most ``max_nodes`` nodes. An alias bomb (a
  "billion laughs" of anchors referring to anchors) is a small graph that expands exponentially;
  its expanded size is counted on the composed node graph (memoized per node), so it is refused in
  milliseconds before anything walks, copies or serializes it.

    doc = load_yaml_file(path, source=str(path))      # one document, any type
    docs = load_yaml_all(text, source="workflow.yaml")
    data = load_json_file(path, source="status.json", expect=dict)
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from kaic.errors import ConfigError

MAX_BYTES = 16 * 1024 * 1024
MAX_DEPTH = 64
MAX_NODES = 200_000


@dataclass(frozen=True)
class Limits:
    max_bytes: int = MAX_BYTES
    max_depth: int = MAX_DEPTH
    max_nodes: int = MAX_NODES


DEFAULT = Limits()


class _LimitExceededError(Exception):
    pass


def read_text(path: Path, source: str, limits: Limits = DEFAULT) -> str:
    """A file's text within the size limit, UTF-8 and free of NUL bytes."""
    try:
        if path.is_dir():
            raise ConfigError(f"{source}: {path} is a directory, not a file")
        with open(path, "rb") as fh:
            data = fh.read(limits.max_bytes + 1)
    except OSError as exc:
        raise ConfigError(f"{source}: cannot read {path}: {exc.strerror or exc}") from None
    return decode(data, source, limits)


def decode(data: bytes, source: str, limits: Limits = DEFAULT) -> str:
    if len(data) > limits.max_bytes:
        raise ConfigError(f"{source}: larger than {limits.max_bytes} bytes: refused")
    if b"\x00" in data:
        raise ConfigError(f"{source}: binary content (NUL bytes), not a text file")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{source}: not UTF-8 text (byte {exc.start})") from None


# --- YAML -------------------------------------------------------------------------------------------


class _BoundedLoader(yaml.SafeLoader):
    """SafeLoader that refuses deep nesting while composing and huge expansions before constructing."""

    limits: Limits = DEFAULT

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._depth = 0

    def compose_node(self, parent: yaml.Node | None, index: Any) -> yaml.Node | None:
        self._depth += 1
        try:
            if self._depth > self.limits.max_depth:
                raise _LimitExceededError(f"nested deeper than {self.limits.max_depth} levels")
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1


def expanded_size(node: yaml.Node, limit: int) -> int:
    """Nodes in the document once every alias is expanded; raises _LimitExceededError past ``limit``."""
    memo: dict[int, int] = {}

    def size(n: yaml.Node) -> int:
        key = id(n)
        if key in memo:
            return memo[key]
        total = 1
        if isinstance(n, yaml.MappingNode):
            for k, v in n.value:
                total += size(k) + size(v)
                if total > limit:
                    break
        elif isinstance(n, yaml.SequenceNode):
            for v in n.value:
                total += size(v)
                if total > limit:
                    break
        if total > limit:
            raise _LimitExceededError(f"expands to more than {limit} nodes (aliases)")
        memo[key] = total
        return total

    return size(node)


def _yaml_error(exc: yaml.YAMLError, source: str) -> ConfigError:
    mark = getattr(exc, "problem_mark", None)
    where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
    problem = getattr(exc, "problem", None) or (str(exc).splitlines() or ["invalid"])[0]
    return ConfigError(f"{source}: invalid YAML: {where}{problem}")


def load_yaml_all(text: str, source: str, limits: Limits = DEFAULT) -> list[Any]:
    """Every document of a YAML stream (None documents kept), within the limits."""
    if len(text) > limits.max_bytes:
        raise ConfigError(f"{source}: larger than {limits.max_bytes} bytes: refused")
    if "\x00" in text:
        raise ConfigError(f"{source}: binary content (NUL bytes), not a text file")
    loader_cls = type("Loader", (_BoundedLoader,), {"limits": limits})
    loader = loader_cls(text)
    docs: list[Any] = []
    budget = limits.max_nodes
    try:
        while loader.check_node():
            node = loader.get_node()
            if node is None:
                docs.append(None)
                continue
            budget -= expanded_size(node, budget)
            docs.append(loader.construct_document(node))
    except _LimitExceededError as exc:
        raise ConfigError(f"{source}: refused: {exc}") from None
    except yaml.YAMLError as exc:
        raise _yaml_error(exc, source) from None
    except RecursionError:
        raise ConfigError(f"{source}: refused: nested too deeply") from None
    except (ValueError, TypeError, OverflowError) as exc:  # e.g. a timestamp or number out of range
        raise ConfigError(f"{source}: invalid YAML value: {str(exc).splitlines()[0] if str(exc) else exc}") from None
    finally:
        loader.dispose()
    return docs


def load_yaml(text: str, source: str, limits: Limits = DEFAULT) -> Any:
    """Exactly one YAML document (an empty stream is None)."""
    docs = load_yaml_all(text, source, limits)
    if len(docs) > 1:
        raise ConfigError(f"{source}: expected one YAML document, found {len(docs)}")
    return docs[0] if docs else None


def load_yaml_file(path: Path, source: str | None = None, limits: Limits = DEFAULT) -> Any:
    src = source or str(path)
    return load_yaml(read_text(path, src, limits), src, limits)


# --- JSON -------------------------------------------------------------------------------------------


def _check_depth(value: Any, limit: int) -> None:
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        v, depth = stack.pop()
        if isinstance(v, dict | list):
            if depth > limit:
                raise _LimitExceededError(f"nested deeper than {limit} levels")
            stack.extend((c, depth + 1) for c in (v.values() if isinstance(v, dict) else v))


def load_json(text: str | bytes, source: str, limits: Limits = DEFAULT, expect: type | None = None) -> Any:
    """One JSON value within the limits; ``expect`` (dict or list) refuses any other top-level type."""
    if isinstance(text, bytes):
        text = decode(text, source, limits)
    elif len(text) > limits.max_bytes:
        raise ConfigError(f"{source}: larger than {limits.max_bytes} bytes: refused")
    try:
        value = json.loads(text)
        _check_depth(value, limits.max_depth)
    except _LimitExceededError as exc:
        raise ConfigError(f"{source}: refused: {exc}") from None
    except RecursionError:
        raise ConfigError(f"{source}: refused: nested too deeply") from None
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{source}: invalid JSON: line {exc.lineno}, column {exc.colno}: {exc.msg}") from None
    if expect is not None and not isinstance(value, expect):
        raise ConfigError(f"{source}: expected a JSON {_kind(expect)}, got {_kind(type(value))}")
    return value


def load_json_file(path: Path, source: str | None = None, limits: Limits = DEFAULT,
                   expect: type | None = None) -> Any:
    src = source or str(path)
    return load_json(read_text(path, src, limits), src, limits, expect)


def _kind(t: type) -> str:
    names: dict[type, str] = {dict: "object", list: "array", str: "string", int: "number", float: "number",
                              bool: "boolean", type(None): "null"}
    return names.get(t, t.__name__)

