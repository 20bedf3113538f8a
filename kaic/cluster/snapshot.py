"""`SnapshotCluster`: the read verbs of `ClusterClient` over a dump folder, for offline provision probes.

A snapshot folder holds (any names, any depth):
- `*.json` / `*.yaml` / `*.yml`: one object, a `List` (as `kubectl get KIND -A -o json` writes it) or
  several YAML documents. An empty List names its type by the file name `<group>_<version>_<plural>.json`
  (`v1_nodes.json`, `apps_v1_daemonsets.json`), as `kaic snapshot` writes them.
- `version.json`: `kubectl version -o json` (or the raw `/version` body).
- `*.txt`: `kubectl api-resources` tables (which tell a type that is not served from one with no
  objects), `kubectl get crd` listings, `kubectl get KIND` listings (also `-o custom-columns=`), and
  `$ kubectl get KIND -o yaml` pastes; see `kaic.cluster.textformats`.

What a snapshot does not contain is *unknown*, never *absent*: `covers(group_version, plural)` says
whether the folder lists a type in full, and `groups_covered` whether discovery was dumped for a group
(None: discovery is complete). Write verbs raise `ReadOnlyClusterError`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

from kaic.cluster import ApiResource, ClusterError, Obj, ReadOnlyClusterError, plural_for, split_group_version
from kaic.cluster.known import by_kind
from kaic.cluster.selectors import matcher
from kaic.cluster.textformats import TextFormatError, parse_text
from kaic.errors import ConfigError

_TYPED_NAME = re.compile(r"^(?:(?P<group>[a-z0-9.-]+\.[a-z0-9.-]+|apps|batch|policy|autoscaling)_)?"
                         r"(?P<version>v\d+(?:(?:alpha|beta)\d+)?)_(?P<plural>[a-z0-9-]+)$")


def _json_docs(text: str) -> Iterator[Any]:
    """One JSON document, or several back to back."""
    dec, i, text = json.JSONDecoder(), 0, text.strip()
    while i < len(text):
        doc, end = dec.raw_decode(text, i)
        yield doc
        i = end
        while i < len(text) and text[i].isspace():
            i += 1


class SnapshotCluster:
    """Read-only ClusterClient over a folder written by `kaic snapshot` (or by hand, from kubectl)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        if not self.path.is_dir():
            raise ConfigError(f"--cluster-snapshot {path}: not a directory")
        self._version: dict[str, Any] = {}
        self._table: list[ApiResource] = []
        self.groups_covered: set[str] | None = set()
        self._objects: list[Obj] = []
        self._covered: set[tuple[str, str]] = set()
        self._has_version = False
        for f in sorted(p for p in self.path.rglob("*") if p.is_file()):
            self._load(f)

    # -- loading ---------------------------------------------------------------------------------------
    def _load(self, f: Path) -> None:
        suffix = f.suffix.lower()
        if suffix not in (".json", ".yaml", ".yml", ".txt"):
            return
        try:
            text = f.read_text()
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"cluster snapshot {f}: cannot read ({exc})") from None
        if f.name == "version.json":
            self._load_version(f, text)
        elif suffix == ".txt":
            self._load_text(f, text)
        else:
            self._load_objects(f, text, suffix)

    def _load_version(self, f: Path, text: str) -> None:
        try:
            doc = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ConfigError(f"cluster snapshot {f}: not JSON ({exc})") from None
        self._version = doc.get("serverVersion", doc) if isinstance(doc, dict) else {}
        self._has_version = True

    def _load_text(self, f: Path, text: str) -> None:
        try:
            dump = parse_text(text)
        except TextFormatError as exc:
            raise ConfigError(f"cluster snapshot {f}: {exc}") from None
        self._table.extend(dump.resources)
        if dump.resources:
            if dump.groups_covered is None:
                self.groups_covered = None
            elif self.groups_covered is not None:
                self.groups_covered |= dump.groups_covered
        self._objects.extend(dump.objects)
        self._covered |= dump.kinds_covered

    def _load_objects(self, f: Path, text: str, suffix: str) -> None:
        try:
            docs = list(_json_docs(text)) if suffix == ".json" else list(yaml.safe_load_all(text))
        except (json.JSONDecodeError, yaml.YAMLError) as exc:
            raise ConfigError(f"cluster snapshot {f}: does not parse: {str(exc).splitlines()[0]}") from None
        typed = _TYPED_NAME.match(f.stem)
        if typed:
            group = typed.group("group") or ""
            self._covered.add((group, typed.group("plural")))
        for doc in docs:
            if doc is None:
                continue
            if not isinstance(doc, dict) or "kind" not in doc:
                raise ConfigError(f"cluster snapshot {f}: not a Kubernetes object or List (no 'kind')")
            if str(doc["kind"]).endswith("List") and isinstance(doc.get("items"), list):
                item_kind = str(doc["kind"])[:-4]
                for item in doc["items"]:
                    if isinstance(item, dict):
                        if "kind" not in item and item_kind:
                            item = {"apiVersion": doc.get("apiVersion", "v1"), "kind": item_kind, **item}
                        self._objects.append(item)
            else:
                self._objects.append(doc)

    # -- what it knows -----------------------------------------------------------------------------------
    def _plural(self, obj: Obj) -> tuple[str, str]:
        group, _ = split_group_version(str(obj.get("apiVersion", "")))
        kind = str(obj.get("kind", ""))
        known = by_kind(group, kind)
        if known:
            return group, known.resource.plural
        for r in self._table:
            if r.group == group and r.kind == kind:
                return group, r.plural
        return group, plural_for([], str(obj.get("apiVersion", "")), kind)

    def covers(self, group_version: str, plural: str) -> bool:
        """Whether the folder lists every object of this type (so an empty answer means none). A type that
        the folder's discovery covers but does not serve has no objects, as the live API would answer
        (`kaic snapshot` writes no file for it: api-resources.txt says it is not served)."""
        group, _ = split_group_version(group_version)
        if (group, plural) in self._covered or any(
                self._plural(o) == (group, plural) for o in self._objects if self._is_complete(o)):
            return True
        discovered = self.groups_covered is None or group in self.groups_covered
        return discovered and not any(r.group == group and r.plural == plural for r in self.api_resources())

    @staticmethod
    def _is_complete(obj: Obj) -> bool:
        # objects rebuilt from a filtered listing do not prove the listing was complete
        return "kaic.dev/snapshot-source" not in ((obj.get("metadata") or {}).get("annotations") or {})

    @property
    def has_version(self) -> bool:
        return self._has_version

    # -- ClusterClient read verbs --------------------------------------------------------------------------
    def version(self) -> dict[str, Any]:
        return dict(self._version)

    def api_resources(self) -> list[ApiResource]:
        out = {(r.group, r.version, r.plural): r for r in self._table}
        for o in self._objects:
            if o.get("kind") == "CustomResourceDefinition":
                spec = o.get("spec") or {}
                names = spec.get("names") or {}
                for v in spec.get("versions") or []:
                    if v.get("served", True) and names.get("kind"):
                        r = ApiResource(spec.get("group", ""), v.get("name", ""), names["kind"],
                                        names.get("plural", ""), spec.get("scope") == "Namespaced")
                        out.setdefault((r.group, r.version, r.plural), r)
            group, version = split_group_version(str(o.get("apiVersion", "")))
            if o.get("kind") and version:  # an object of a type proves the type is served
                _, plural = self._plural(o)
                known = by_kind(group, str(o["kind"]))
                namespaced = (known.resource.namespaced if known
                              else bool((o.get("metadata") or {}).get("namespace")))
                out.setdefault((group, version, plural), ApiResource(group, version, str(o["kind"]), plural,
                                                                     namespaced))
        return sorted(out.values(), key=lambda r: (r.group, r.version, r.plural))

    def list(self, group_version: str, plural: str, namespace: str | None = None,
             label_selector: str | None = None) -> list[Obj]:
        """Objects of this type (any version: the API server converts between served versions)."""
        group, _ = split_group_version(group_version)
        try:
            match = matcher(label_selector)
        except ValueError as exc:
            raise ClusterError(str(exc)) from None
        out = []
        for o in self._objects:
            meta = o.get("metadata") or {}
            if self._plural(o) != (group, plural):
                continue
            if namespace is not None and meta.get("namespace") != namespace:
                continue
            if match({str(k): str(v) for k, v in (meta.get("labels") or {}).items()}):
                out.append(o)
        return out

    def get(self, group_version: str, plural: str, name: str, namespace: str | None = None) -> Obj | None:
        for o in self.list(group_version, plural, namespace):
            if (o.get("metadata") or {}).get("name") == name:
                return o
        return None

    def pod_logs(self, name: str, namespace: str) -> str:
        raise ClusterError(f"snapshot {self.path} holds no pod logs (pod {namespace}/{name})")

    def pod_proxy_get(self, name: str, namespace: str, port: int, path: str) -> str:
        raise ClusterError(f"snapshot {self.path} cannot reach pods (pod {namespace}/{name}:{port}{path})")

    # -- write verbs: a snapshot is read-only ----------------------------------------------------------------
    def _read_only(self, verb: str) -> ReadOnlyClusterError:
        return ReadOnlyClusterError(f"{verb}: cluster snapshot {self.path} is read-only")

    def create(self, obj: Obj) -> Obj:
        raise self._read_only("create")

    def apply(self, obj: Obj) -> Obj:
        raise self._read_only("apply")

    def delete(self, group_version: str, plural: str, name: str, namespace: str | None = None) -> None:
        raise self._read_only("delete")

    def delete_collection(self, group_version: str, plural: str, namespace: str | None,
                          label_selector: str) -> None:
        raise self._read_only("delete_collection")
