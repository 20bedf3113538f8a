"""Write rendered reports: each file atomically (temp file in the same folder, then rename)."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path

from kaic.reports import product, render
from kaic.reports.model import Report, default_k8s_version
from kaic.results import ResultRow


def write_atomic(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    tmp = Path(name)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        tmp.replace(path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise


def write_all(out_dir: Path, files: Mapping[str, bytes]) -> list[Path]:
    """Write every file under `out_dir`; returns their absolute paths, in the given order."""
    paths = []
    for name, data in files.items():
        path = (out_dir / name).resolve()
        write_atomic(path, data)
        paths.append(path)
    return paths


def write_reports(
    rows: Sequence[ResultRow], out_dir: Path, formats: Sequence[str] = ("all",),
    k8s_version: str | None = None, template: tuple[str, str] | None = None, evidence_base: str | None = None,
    metadata: Mapping[str, str] | None = None,
) -> tuple[Report, list[Path]]:
    """Render every requested format in memory, then write them (bad input writes nothing).

    `k8s_version` defaults to the template's, then the run's cluster version, then 1.35; a template
    for another version than an explicit `k8s_version` is bad input.
    """
    if template is not None:
        k8s_version = product.template_version(*template, wanted=k8s_version)
    report = Report.build(rows, k8s_version or default_k8s_version(rows))
    out_dir = out_dir.resolve()
    files = render(report, formats, out_dir, template, evidence_base, metadata)
    return report, write_all(out_dir, files)
