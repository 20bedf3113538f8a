"""Write rendered reports: each file atomically (temp file in the same folder, then rename)."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Mapping
from pathlib import Path


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
