"""Recorded result rows for platforms where no cluster is available here (the comparison's test data).

What is recorded, and from where:
- requirement rows (one provision check per CNCF requirement): the status each vendor declared in its
  real CNCF AI Conformance submission, ../shared/reference/cncf-ai-conformance/submissions/
  v1.35-{eks,gke,aks}.PRODUCT.yaml ("Implemented" -> passed, "N/A" -> skipped);
- metric magnitudes: the H100 reference figures in ../shared/README.md (small CNN on 8x8 digits,
  566k samples/s; about 21% MFU; torch.save 0.92 GB/s write, 1.22 GB/s read; 8 x 80 GB H100s,
  driver 580.159.04 from ../shared/fixtures/nvidia);
- synthetic, and said so: the spread between platforms (PLATFORMS' `speed`) and the nightly noise
  (seeded Gaussian, 1.5% of the value), and `regress` to seed a regression on purpose.

Rows are real `ResultRow`s stamped with the catalog's levels; `write_dataset` writes them in the
results dataset's layout (with kaic's own writer where it has landed).
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow as pa
import yaml

from kaic import SUITE_VERSION, catalog
from kaic.results import COLUMNS, Level, ResultRow, Status, row_to_dict
from tests.conftest import shared_path

H100 = "NVIDIA H100 80GB HBM3"
DRIVER = "580.159.04"  # ../shared/fixtures/nvidia
# H100 reference figures (../shared/README.md)
SAMPLES_PER_S = 566_000.0  # small CNN on 8x8 digits, batch 1024
BATCH = 1024
MFU = 0.21
CKPT_WRITE_MB_S = 920.0
CKPT_READ_MB_S = 1220.0


@dataclass(frozen=True)
class Platform:
    name: str
    cluster: str
    k8s_version: str
    submission: str  # file under the submissions folder
    speed: float  # synthetic spread between platforms


PLATFORMS: tuple[Platform, ...] = (
    Platform("eks", "eks-p5-use1", "1.35", "v1.35-eks.PRODUCT.yaml", 1.00),
    Platform("gke", "gke-a3-usc1", "1.35", "v1.35-gke.PRODUCT.yaml", 0.96),
    Platform("aks", "aks-ndh100-weu", "1.35", "v1.35-aks.PRODUCT.yaml", 0.92),
)
FIRST_NIGHT = datetime(2026, 3, 1, 2, 0, tzinfo=UTC)


def submission_statuses(file: str) -> dict[str, str]:
    """requirement id -> status declared in a real vendor submission."""
    data = yaml.safe_load(shared_path("reference", "cncf-ai-conformance", "submissions", file).read_text())
    out = {}
    for items in data["spec"].values():
        for item in items:
            out[item["id"]] = str(item["status"]).strip()
    return out


def nightly_rows(platform: Platform, nights: int = 12, seed: int = 7,
                 regress: dict[str, float] | None = None) -> list[ResultRow]:
    """`nights` nightly runs of one platform; `regress` multiplies metrics of the LAST run only."""
    rng = random.Random(f"{seed}-{platform.name}")
    statuses = submission_statuses(platform.submission)
    rows: list[ResultRow] = []
    for night in range(nights):
        started = FIRST_NIGHT + timedelta(days=night)
        run_id = f"kaic-{started:%Y%m%d-%H%M%S}-{platform.name}"
        factor = dict(regress or {}) if night == nights - 1 else {}

        def noisy(metric: str, value: float, rng: random.Random = rng,
                  factor: dict[str, float] = factor) -> float:
            return value * rng.gauss(1.0, 0.015) * factor.get(metric, 1.0)

        def row(check_id: str, status: Status, message: str = "", metric: str | None = None,
                value: float | None = None, unit: str | None = None, evidence: str | None = None,
                started: datetime = started, run_id: str = run_id) -> ResultRow:
            spec = catalog.check(check_id)
            return ResultRow(
                run_id=run_id, suite_version=SUITE_VERSION, started_at=started, platform=platform.name,
                cluster=platform.cluster, k8s_version=platform.k8s_version, accelerator=H100, step=spec.step,
                check_id=check_id, requirement_id=spec.requirement_id,
                level=catalog.level_of(spec, platform.k8s_version), status=status, metric=metric, value=value,
                unit=unit, message=message, evidence=evidence, recorded_at=started + timedelta(minutes=20),
            )

        rows.append(row("provision.fingerprint", Status.PASSED,
                        f"{platform.cluster} Kubernetes {platform.k8s_version}"))
        evidence = json.dumps({"product": H100, "count": 8, "memory_gib": 80, "driver": DRIVER})
        rows.append(row("provision.accelerators", Status.PASSED, f"8 x {H100}", "accelerator_count", 8.0,
                        "devices", evidence=evidence))
        for req, status in statuses.items():
            probe = next(c for c in catalog.checks_for(req) if c.step == "provision")
            ok = status.lower() == "implemented"
            rows.append(row(probe.check_id, Status.PASSED if ok else Status.SKIPPED,
                            f"vendor submission {platform.submission}: {status}"))
        samples = noisy("train_samples_per_s", SAMPLES_PER_S * platform.speed)
        rows.append(row("train.throughput", Status.PASSED, metric="train_samples_per_s", value=samples,
                        unit="samples/s"))
        step_ms = 1000.0 * BATCH / SAMPLES_PER_S / platform.speed
        rows.append(row("train.throughput", Status.PASSED, metric="train_step_time_ms",
                        value=noisy("train_step_time_ms", step_ms), unit="ms"))
        rows.append(row("train.throughput", Status.PASSED, metric="train_mfu",
                        value=noisy("train_mfu", MFU * platform.speed), unit="ratio"))
        for check_id, metric, mb_s in (
            ("train.checkpoint_write", "checkpoint_write_mb_per_s", CKPT_WRITE_MB_S),
            ("train.checkpoint_read", "checkpoint_read_mb_per_s", CKPT_READ_MB_S),
        ):
            value = noisy(metric, mb_s * platform.speed)
            rows.append(row(check_id, Status.PASSED, metric=metric, value=value, unit="MB/s"))
    return rows


def recorded_rows(nights: int = 12, regress: dict[str, dict[str, float]] | None = None) -> list[ResultRow]:
    """All three recorded platforms; `regress` is platform -> {metric: factor} for the last night."""
    out: list[ResultRow] = []
    for p in PLATFORMS:
        out.extend(nightly_rows(p, nights, regress=(regress or {}).get(p.name)))
    return out


def rows_table(rows: Sequence[ResultRow]) -> pa.Table:
    """Rows in the dataset's schema (the columns of kaic.results.COLUMNS)."""
    ts = pa.timestamp("us", tz="UTC")
    types = {"started_at": ts, "recorded_at": ts, "value": pa.float64()}
    data = [row_to_dict(r) for r in rows]
    return pa.table({c: pa.array([d[c] for d in data], types.get(c, pa.string())) for c in COLUMNS})


def write_dataset(root: Path, rows: Iterable[ResultRow]) -> Path:
    """Publish rows run by run with kaic's own writer (ParquetResults): the dataset's real layout,
    platform=<p>/date=<YYYY-MM-DD>/<run-id>.parquet under `root`."""
    from kaic.stores.objects import open_store
    from kaic.stores.results_dataset import ParquetResults

    root.mkdir(parents=True, exist_ok=True)
    sink = ParquetResults(open_store(f"file://{root.parent / (root.name + '-staging')}", source="test"),
                          open_store(f"file://{root}", source="test"))
    by_run: dict[str, list[ResultRow]] = {}
    for r in rows:
        by_run.setdefault(r.run_id, []).append(r)
    for run_id, run_rows in by_run.items():
        sink.stage(run_id, "recorded", run_rows)
        sink.publish(run_id)
    return root


__all__ = ["PLATFORMS", "Level", "nightly_rows", "recorded_rows", "rows_table", "write_dataset"]
