"""Which executor owns a run, and closing the runs whose executor died.

While a run executes, ``runs/<name>/executor.json`` names its executor (pid and create time); it is
removed when the run ends. A run whose ``executor.json`` is still there but whose executor is gone was
killed (SIGKILL, OOM, power): `close_dead_runs` gives its ``status.json`` a final phase (Failed, with
the reason) so nothing reads it as still Running, and the node processes it left are reaped by
:func:`kaic.localproc.reap_orphans` (the executor's guard normally got them already).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import psutil

from kaic import localproc
from kaic.errors import ConfigError
from kaic.executor.status import now_iso
from kaic.safeload import load_json_file

OWNER_FILE = "executor.json"
DIED_MESSAGE = "the executor stopped without finishing (killed?); closed by a later kaic command"


def claim(run_dir: Path) -> Path:
    pid, created = localproc.owner()
    path = run_dir / OWNER_FILE
    path.write_text(json.dumps({"pid": pid, "create_time": created}), encoding="utf-8")
    return path


def release(run_dir: Path) -> None:
    (run_dir / OWNER_FILE).unlink(missing_ok=True)


def owner_alive(path: Path) -> bool:
    try:
        d = load_json_file(path, expect=dict)
        p = psutil.Process(int(d["pid"]))
        return abs(p.create_time() - float(d["create_time"])) < 0.01 and localproc.running(p)
    except (ConfigError, KeyError, ValueError, TypeError, psutil.Error):
        return False


def close_dead_runs(home: Path) -> list[str]:
    """Give every run whose executor died a final status; one line per run closed."""
    lines = []
    for owner in sorted((home / "runs").glob(f"*/{OWNER_FILE}")):
        if owner_alive(owner):
            continue
        run_dir = owner.parent
        status_path = run_dir / "status.json"
        try:
            status = load_json_file(status_path, expect=dict)
        except ConfigError:
            owner.unlink(missing_ok=True)
            continue
        if _close(status):
            tmp = run_dir / ".status.json.tmp"
            tmp.write_text(json.dumps(status, indent=1), encoding="utf-8")
            tmp.replace(status_path)
            lines.append(f"run {run_dir.name}: its executor died; status set to Failed ({status_path})")
        owner.unlink(missing_ok=True)
    return lines


def _close(doc: dict[str, Any]) -> bool:
    status = doc.get("status")
    if not isinstance(status, dict) or status.get("phase") not in ("Running", "Pending"):
        return False
    stamp = now_iso()
    status.update(phase="Failed", message=DIED_MESSAGE, finishedAt=stamp)
    for node in (status.get("nodes") or {}).values():
        if isinstance(node, dict) and node.get("phase") in ("Running", "Pending"):
            node.update(phase="Failed", message=DIED_MESSAGE, finishedAt=stamp)
    return True
