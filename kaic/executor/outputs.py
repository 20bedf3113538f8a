"""Outputs: a pod's output parameters and artifacts from its files, and a steps/DAG template's
outputs from its children (``valueFrom.parameter``/``expression``, artifacts ``from``)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from kaic.executor.artifacts import ArtifactError, save_output
from kaic.executor.expressions import ExpressionError, evaluate_expr, to_text
from kaic.executor.manifest import Template
from kaic.executor.process import PathMap, read_text
from kaic.executor.status import NodeStatus
from kaic.executor.templating import ABSENT, TAG_RE, UnresolvedError, nested, substitute, substitute_any


def output_value(p: Mapping[str, Any], scope: Mapping[str, str]) -> str:
    """One output parameter from ``value``, ``valueFrom.parameter`` or ``valueFrom.expression``,
    falling back to ``valueFrom.default``."""
    vf = p.get("valueFrom") or {}
    try:
        if "value" in p:
            return substitute(to_text(p["value"]), scope)
        if vf.get("parameter") is not None:
            text = to_text(vf["parameter"])
            m = TAG_RE.fullmatch(text.strip())
            if m and scope.get(m.group(1).strip()) == ABSENT:
                raise UnresolvedError(
                    f"output parameter {p.get('name')!r}: {text!r} is an absent optional "
                    "(skipped/omitted node output with no default)"
                )
            return substitute(text, scope)
        if vf.get("expression") is not None:
            value = evaluate_expr(substitute(str(vf["expression"]), scope), nested(scope))
            if value is None:
                raise ExpressionError(f"failed to evaluate expression {vf['expression']!r}")
            return to_text(value)
    except (UnresolvedError, ExpressionError):
        if vf.get("default") is not None:
            return substitute(to_text(vf["default"]), scope)
        raise
    raise UnresolvedError(f"output parameter {p.get('name')!r} has no source")


def collect_pod_outputs(
    tmpl: Template, node: NodeStatus, local: Mapping[str, str], paths: PathMap, store: Path, strict: bool
) -> str | None:
    """Read a finished pod's outputs into ``node``; the first problem when ``strict`` (it then
    fails the node), else whatever could be read."""
    outputs = tmpl.spec.get("outputs") or {}
    scope = dict(local)
    if node.result is not None:
        scope["outputs.result"] = node.result
    if node.exit_code is not None:
        scope["exitCode"] = node.exit_code
    for p in outputs.get("parameters") or []:
        name = str(p["name"])
        vf = p.get("valueFrom") or {}
        try:
            if vf.get("path"):
                try:
                    value = read_text(paths.local(substitute(str(vf["path"]), local))).strip()
                except OSError:
                    if vf.get("default") is None:
                        raise UnresolvedError(f"output parameter {name!r}: {vf['path']} was not written") from None
                    value = substitute(to_text(vf["default"]), local)
            else:
                value = output_value(p, scope)
        except (UnresolvedError, ExpressionError) as exc:
            if strict:
                return str(exc)
            continue
        node.parameters.append({"name": name, "value": value})
    if strict:
        for a in outputs.get("artifacts") or []:
            a = substitute_any(a, local)
            try:
                record = save_output(store, a, paths.local(str(a["path"])), f"{node.id}/{a['name']}")
            except (ArtifactError, OSError) as exc:
                return str(exc)
            if record is not None:
                node.artifacts.append(record)
    return None


def template_outputs(tmpl: Template, node: NodeStatus, local: Mapping[str, str]) -> str | None:
    """A steps/DAG template's outputs from its scope; the first problem, or None."""
    outputs = tmpl.spec.get("outputs") or {}
    for p in outputs.get("parameters") or []:
        try:
            value = output_value(p, local)
        except (UnresolvedError, ExpressionError) as exc:
            return f"output parameter {p.get('name')!r}: {exc}"
        node.parameters.append({"name": str(p["name"]), "value": value})
    for a in outputs.get("artifacts") or []:
        source = a.get("from")
        if source is None:
            continue
        try:
            key = substitute(str(source), local)
        except UnresolvedError as exc:
            if a.get("optional"):
                continue
            return f"output artifact {a.get('name')!r}: {exc}"
        if not key:
            if a.get("optional"):
                continue
            return f"output artifact {a.get('name')!r}: {source} has no artifact"
        node.artifacts.append({"name": str(a["name"]), "key": key, "path": str(a.get("path", ""))})
    return None
