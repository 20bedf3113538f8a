"""`kaic snapshot --out DIR`: dump what the provision probes read from a live cluster, for offline use.

Writes `version.json`, `api-resources.txt` (a `kubectl api-resources` table) and one
`<group>_<version>_<plural>.json` List per type in `kaic.cluster.known.READS` that the cluster serves.
Secrets are never read; container `env` values and `last-applied-configuration` annotations are
redacted, `managedFields` dropped. The folder appears whole or not at all.
`kaic step provision --cluster-snapshot DIR` evaluates the READ probes from it.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

from kaic.cluster import ApiResource, ClusterClient, ClusterError, Obj
from kaic.cluster.known import READS
from kaic.errors import ConfigError

REDACTED = "<redacted by kaic snapshot>"


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", required=True, metavar="DIR", help="folder to create (must not exist or be empty)")
    parser.add_argument("--kubeconfig", help="kubeconfig file (default: $KUBECONFIG / ~/.kube/config)")
    parser.add_argument("--context", help="kubeconfig context (default: the current one)")
    parser.add_argument("--in-cluster", action="store_true", help="use the pod's service account")


def redact(obj: Obj) -> Obj:
    """Drop what a snapshot must not carry: env values, last-applied configs, managedFields."""
    meta = obj.get("metadata") or {}
    meta.pop("managedFields", None)
    annotations = meta.get("annotations") or {}
    if "kubectl.kubernetes.io/last-applied-configuration" in annotations:
        annotations["kubectl.kubernetes.io/last-applied-configuration"] = REDACTED
    template = ((obj.get("spec") or {}).get("template") or {}).get("spec") or {}
    for c in (template.get("containers") or []) + (template.get("initContainers") or []):
        for e in c.get("env") or []:
            if "value" in e:
                e["value"] = REDACTED
    return obj


def api_resources_table(resources: list[ApiResource]) -> str:
    rows = [("NAME", "SHORTNAMES", "APIVERSION", "NAMESPACED", "KIND")]
    rows += [(r.plural, "", r.group_version, str(r.namespaced).lower(), r.kind)
             for r in sorted(resources, key=lambda r: (r.group, r.version, r.plural))]
    widths = [max(len(row[i]) for row in rows) + 3 for i in range(4)]
    return "\n".join("".join(c.ljust(w) for c, w in zip(row, widths, strict=False)) + row[4] for row in rows) + "\n"


def dump(client: ClusterClient, out: Path) -> dict[str, Any]:
    """Write the snapshot files into `out` (an existing empty folder); returns a summary."""
    resources = client.api_resources()
    (out / "version.json").write_text(json.dumps({"serverVersion": client.version()}, indent=1))
    (out / "api-resources.txt").write_text(api_resources_table(resources))
    summary: dict[str, Any] = {"types": {}, "errors": {}}
    for known in READS:
        r = known.resource
        versions = sorted(x.version for x in resources if x.group == r.group and x.plural == r.plural)
        if r.group and not versions:
            continue  # not served: api-resources.txt says so
        version = r.version if r.version in versions or not versions else versions[-1]
        gv = known.group_version(version)
        try:
            items = known.read(client, version)
        except ClusterError as exc:
            summary["errors"][f"{gv}/{r.plural}"] = str(exc)
            continue
        name = "_".join(p for p in (r.group, version, r.plural) if p)
        doc = {"apiVersion": "v1", "kind": "List", "items": [redact(o) for o in items]}
        (out / f"{name}.json").write_text(json.dumps(doc, indent=1))
        summary["types"][f"{gv}/{r.plural}"] = len(items)
    if summary["errors"]:
        (out / "snapshot-errors.log").write_text("".join(f"{k}: {v}\n" for k, v in summary["errors"].items()))
    return summary


def run(args: argparse.Namespace) -> int:
    from kaic.cluster import connect

    out = Path(args.out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise ConfigError(f"--out {out}: exists and is not an empty folder")
    client = connect(args.kubeconfig, args.context, args.in_cluster)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        summary = dump(client, tmp)
        if out.exists():
            out.rmdir()
        tmp.rename(out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    for t, n in summary["types"].items():
        print(f"  {n:5d}  {t}")
    for t, e in summary["errors"].items():
        print(f"  error  {t}: {e}", file=sys.stderr)
    print(f"snapshot written to {out} ({len(summary['types'])} types); evaluate it with "
          f"`kaic step provision --cluster-snapshot {out}`")
    return 1 if summary["errors"] else 0
