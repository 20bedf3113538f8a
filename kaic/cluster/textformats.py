"""Parse what people paste from a terminal: `kubectl api-resources` tables, `kubectl get crd` listings,
`kubectl get KIND` listings, `-o custom-columns=` tables and (condensed) `-o yaml` after a `$ ` line.

Each parser is pure: text in, `TextDump` out. `parse_text` picks the format; `TextFormatError` when
it is none of them.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field
from typing import Any

import yaml

from kaic.cluster import ApiResource, Obj, split_group_version
from kaic.cluster.known import Known, by_name

_CRD_ROW = re.compile(r"^([a-z0-9-]+)\.([a-z0-9][a-z0-9.-]*)\s+(\d{4}-\d\d-\d\dT[0-9:]+Z)\s*$")


class TextFormatError(ValueError):
    pass


@dataclass
class TextDump:
    resources: list[ApiResource] = field(default_factory=list)
    groups_covered: set[str] | None = field(default_factory=set)  # api-resources coverage; None: every group
    objects: list[Obj] = field(default_factory=list)
    kinds_covered: set[tuple[str, str]] = field(default_factory=set)  # (group, plural) listed in full


def _split_command(text: str) -> tuple[list[str] | None, list[str]]:
    """('$ kubectl get x' argv, remaining lines); the shell pipe and what follows are kept in argv."""
    lines = text.splitlines()
    while lines and not lines[0].strip():
        lines.pop(0)
    if lines and lines[0].lstrip().startswith("$ "):
        command = lines[0].lstrip()[2:].replace("\\.", "\0")  # keep kubectl's escaped dots through shlex
        try:
            argv = shlex.split(command, posix=True)
        except ValueError:
            argv = command.split()
        return [a.replace("\0", "\\.") for a in argv], lines[1:]
    return None, lines


def _columns(header: str) -> list[tuple[str, int]]:
    """Header words and their start offsets ('CREATED AT' is one column)."""
    header = header.replace("CREATED AT", "CREATED_AT")
    return [(m.group(0), m.start()) for m in re.finditer(r"\S+", header)]


def _table(lines: list[str]) -> list[dict[str, str]]:
    """Rows of a fixed-width kubectl table, split at the header's column offsets."""
    rows = [ln for ln in lines if ln.strip()]
    if not rows:
        return []
    cols = _columns(rows[0])
    out = []
    for line in rows[1:]:
        row = {}
        for i, (name, start) in enumerate(cols):
            end = cols[i + 1][1] if i + 1 < len(cols) else None
            row[name] = line[start:end].strip() if end else line[start:].strip()
        out.append(row)
    return out


def _flag(argv: list[str], name: str) -> str | None:
    for i, a in enumerate(argv):
        if a.startswith(name + "="):
            return a.split("=", 1)[1]
        if a == name and i + 1 < len(argv):
            return argv[i + 1]
    return None


def parse_api_resources(argv: list[str] | None, lines: list[str]) -> TextDump:
    dump = TextDump()
    for row in _table(lines):
        group, version = split_group_version(row["APIVERSION"])
        dump.resources.append(
            ApiResource(group, version, row["KIND"], row["NAME"], row["NAMESPACED"] == "true"))
    group_filter = _flag(argv or [], "--api-group")
    dump.groups_covered = None if group_filter is None else {group_filter}
    return dump


def parse_crd_listing(argv: list[str] | None, lines: list[str]) -> TextDump:
    """`kubectl get crd` (maybe `| grep x`): CRD names and creation times. Only what is listed is known."""
    dump = TextDump()
    for line in lines:
        m = _CRD_ROW.match(line.strip())
        if m:
            plural, group, created = m.groups()
            dump.objects.append({
                "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
                "metadata": {"name": f"{plural}.{group}", "creationTimestamp": created,
                             "annotations": {"kaic.dev/snapshot-source": "kubectl get crd listing"}},
                "spec": {"group": group, "names": {"plural": plural}},
            })
    if argv is not None and "|" not in argv:
        dump.kinds_covered.add(("apiextensions.k8s.io", "customresourcedefinitions"))
    return dump


def _set_path(obj: dict[str, Any], path: str, value: str) -> None:
    """Set `.metadata.labels.nvidia\\.com/gpu\\.count` in a nested dict (kubectl's escaped dots)."""
    parts = [p.replace("\0", ".") for p in path.lstrip(".").replace("\\.", "\0").split(".")]
    cur = obj
    for p in parts[:-1]:
        cur = cur.setdefault(p, {})
    cur[parts[-1]] = value


_VALUE_FLAGS = ("-o", "--output", "-l", "--selector", "-n", "--namespace", "--context", "--kubeconfig")


def _positional(argv: list[str]) -> list[str]:
    """Arguments of `kubectl get` that are not flags or flag values, up to a shell pipe."""
    out, skip = [], False
    for a in argv[2:]:
        if a == "|":
            break
        if skip:
            skip = False
        elif a in _VALUE_FLAGS:
            skip = True
        elif not a.startswith("-"):
            out.append(a)
    return out


def _covers(argv: list[str], group: str, plural: str) -> set[tuple[str, str]]:
    """A listing is complete for its type when it has no name, selector or pipe to filter it."""
    filtered = len(_positional(argv)) > 1 or "|" in argv or any(
        a in ("-l", "--selector") or a.startswith(("-l=", "--selector=")) for a in argv)
    return set() if filtered else {(group, plural)}


def _known_type(argv: list[str]) -> Known:
    args = _positional(argv)
    known = by_name(args[0]) if args else None
    if known is None:
        raise TextFormatError(f"`{' '.join(argv[:3])}`: kaic does not know that resource type")
    return known


def parse_get_listing(argv: list[str], lines: list[str]) -> TextDump:
    """`kubectl get KIND [-o custom-columns=...]`: objects with the fields the table shows."""
    res = _known_type(argv).resource
    spec = _flag(argv, "-o") or _flag(argv, "--output") or ""
    paths: dict[str, str] = {}
    if spec.startswith("custom-columns="):
        for col in spec.split("=", 1)[1].split(","):
            name, _, path = col.partition(":")
            paths[name] = path
    dump = TextDump()
    for row in _table(lines):
        source = {"kaic.dev/snapshot-source": "kubectl get listing"}
        obj: dict[str, Any] = {"apiVersion": res.group_version, "kind": res.kind,
                               "metadata": {"annotations": source}}
        for name, value in row.items():
            if value in ("", "<none>"):
                continue
            if name in paths:
                _set_path(obj, paths[name], value)
            elif name == "NAME":
                obj["metadata"]["name"] = value
            elif name == "NAMESPACE":
                obj["metadata"]["namespace"] = value
        dump.objects.append(obj)
    dump.kinds_covered = _covers(argv, res.group, res.plural)
    return dump


def parse_yaml_output(lines: list[str]) -> list[Obj]:
    """`-o yaml` text, tolerating an author's `...` elisions (lines that are only '...')."""
    kept = [ln for ln in lines if ln.strip() != "..."]
    try:
        docs = [d for d in yaml.safe_load_all("\n".join(kept)) if d]
    except yaml.YAMLError as exc:
        first = str(exc).splitlines()[0]
        raise TextFormatError(f"YAML after the command line does not parse: {first}") from None
    return [d for d in docs if isinstance(d, dict)]


def parse_text(text: str) -> TextDump:
    argv, lines = _split_command(text)
    body = [ln for ln in lines if ln.strip()]
    if not body:
        raise TextFormatError("empty")
    header = body[0]
    verb = argv[1] if argv and len(argv) > 1 else ""
    if verb == "api-resources" or ("APIVERSION" in header and "KIND" in header and "NAMESPACED" in header):
        return parse_api_resources(argv, lines)
    if all(_CRD_ROW.match(ln.strip()) or ln.split() == ["NAME", "CREATED", "AT"] for ln in body):
        return parse_crd_listing(argv, lines)
    if argv and verb == "get":
        output = _flag(argv, "-o") or _flag(argv, "--output") or ""
        if output in ("yaml", "json"):
            res = _known_type(argv).resource
            dump = TextDump(kinds_covered=_covers(argv, res.group, res.plural))
            for doc in parse_yaml_output(lines):  # JSON is YAML
                dump.objects.extend(doc.get("items", [doc]) if str(doc.get("kind", "")).endswith("List")
                                    else [doc])
            return dump
        return parse_get_listing(argv, lines)
    raise TextFormatError("not an api-resources table, a CRD listing or a `$ kubectl get` output")
