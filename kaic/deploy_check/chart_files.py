"""The chart embeds `kaic compile`'s output (files/workflows/); this tells when that copy is stale."""

from __future__ import annotations

import difflib
from pathlib import Path

WORKFLOWS = Path("files") / "workflows"


def compiled() -> dict[str, str]:
    """{filename: text} exactly as `kaic compile` (default profile, no flags) writes them."""
    import argparse

    from kaic.argo.cli import DEFAULT_PROFILE, load
    from pipelines.manifests import compile_manifests

    args = argparse.Namespace(profile=DEFAULT_PROFILE, image=None, suite=None, cron=None, timezone=None)
    _, config = load(args)
    return {m.filename: m.text for m in compile_manifests(config)}


def stale(chart: Path, expected: dict[str, str] | None = None) -> list[str]:
    """Unified-diff lines for every file that differs, is missing, or is extra; [] when current."""
    want = compiled() if expected is None else expected
    folder = chart / WORKFLOWS
    have = {p.name: p.read_text() for p in sorted(folder.glob("*.yaml"))} if folder.is_dir() else {}
    out: list[str] = []
    for name in sorted(set(want) | set(have)):
        a, b = have.get(name), want.get(name)
        if a == b:
            continue
        if b is None:
            out.append(f"{folder / name}: not produced by `kaic compile` (remove it)")
            continue
        out += difflib.unified_diff((a or "").splitlines(keepends=True), b.splitlines(keepends=True),
                                    f"{folder / name} (chart copy)" if a is not None else "/dev/null",
                                    f"kaic compile: {name}")
    return out
