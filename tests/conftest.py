"""Shared test fixtures and the tier rule: every test module sits in a tier folder and carries
exactly that tier's marker (`pytestmark = pytest.mark.unit`, ...); collection fails otherwise."""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
TIERS = ("unit", "integration", "e2e", "gpu", "faults")


def shared_path(*parts: str) -> Path:
    """A path under ../shared/, or a clean skip where that folder is absent (a user's fresh clone)."""
    path = SHARED.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"{path} is absent: ../shared/ (fixtures and references) is only beside developer checkouts")
    return path


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        rel = Path(str(item.fspath)).resolve().relative_to(ROOT / "tests")
        folder = rel.parts[0] if len(rel.parts) > 1 else ""
        marks = {m.name for m in item.iter_markers() if m.name in TIERS}
        if folder not in TIERS or marks != {folder}:
            raise pytest.UsageError(
                f"{rel}: a test lives in tests/<tier>/ and carries exactly that tier's marker "
                f"(folder {folder!r}, markers {sorted(marks)})"
            )


@pytest.fixture(autouse=True)
def kaic_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every test gets its own KAIC_HOME, and MLflow points at a sqlite file under it."""
    home = tmp_path / "kaic-home"
    monkeypatch.setenv("KAIC_HOME", str(home))
    for var in ("KAIC_MLFLOW_URI", "MLFLOW_TRACKING_URI", "KAIC_OBJECT_STORE", "KAIC_RESULTS", "KAIC_RUN_ID",
                "KAIC_S3_ENDPOINT", "KAIC_PROFILE"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("KAIC_MLFLOW_URI", f"sqlite:///{home / 'mlflow.db'}")
    return home
