"""The chart's values: merged the way helm merges them, validated against values.schema.json."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import yaml

Values = dict[str, Any]


def merge(base: Values, override: Values) -> Values:
    """Helm's coalescing: maps merge key by key, lists and scalars replace, a null deletes the key."""
    out = copy.deepcopy(base)
    for key, value in override.items():
        if value is None:
            out.pop(key, None)
        elif isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def read_yaml(path: Path) -> Values:
    doc = yaml.safe_load(path.read_text()) or {}
    if not isinstance(doc, dict):
        raise ValueError(f"{path}: top level is {type(doc).__name__}, not a mapping")
    return doc


def override_files(chart: Path) -> list[Path]:
    """The ci/*-values.yaml files (chart-testing's convention), each installed over values.yaml."""
    return sorted((chart / "ci").glob("*-values.yaml"))


def effective(chart: Path, override: Path | None = None) -> Values:
    base = read_yaml(chart / "values.yaml")
    return merge(base, read_yaml(override)) if override else base


def schema(chart: Path) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads((chart / "values.schema.json").read_text())
    return doc


def problems(values: Values, values_schema: dict[str, Any]) -> list[str]:
    """`path: message` for every schema violation (draft 2020-12, as helm 3.18+ checks it)."""
    from jsonschema import Draft202012Validator

    Draft202012Validator.check_schema(values_schema)
    validator = Draft202012Validator(values_schema)
    return sorted(f"{'.'.join(str(p) for p in e.absolute_path) or '(top)'}: {e.message}"
                  for e in validator.iter_errors(values))
