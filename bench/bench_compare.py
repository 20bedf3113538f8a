"""Benchmark: `kaic compare`'s core over 1,000,000 result rows against a plain pyarrow group-by.

Data (synthetic, generated here with numpy, seeded): P platforms x R nightly runs x 1000 rows per run,
in the results dataset's own layout and schema (platform=<p>/date=<d>/<run-id>.parquet, zstd; one
file per run). Per run: 16 requirement probe rows, 34 other check rows, 100 directed metrics (all-reduce
sweeps over 25 sizes, serve latency and throughput at 8 concurrencies, 18 scalars) and 850 points of
the loss curve (a metric family without direction, as the train step records it).

Timed, each side by side, `--reps` times (medians reported):
  kaic   what `kaic compare` runs before rendering: load_for_compare(uri) (numeric columns of every
         run, then all columns of each platform's latest run) + compare(table): matrix, ratios,
         regressions (median/MAD over the last 10 runs of every platform and directed metric).
         Rendering is NOT included (timed on its own, once, for information)
  plain  pyarrow.dataset read of the 5 columns it needs + latest run per platform (group_by + filter)
         + group_by(["platform", "metric"]).aggregate(mean value)
and the same two with the data already in memory ("compute only").

    .venv/bin/python bench/bench_compare.py [--platforms 20] [--runs 50] [--reps 5]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
import pyarrow.parquet as pq

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from kaic.compare.core import compare
from kaic.compare.dataset import COLUMNS, NUMERIC_COLUMNS, load_for_compare, load_results, normalize
from kaic.stores.results_dataset import RESULTS_SCHEMA

ROWS_PER_RUN = 1000
REQUIREMENT_CHECKS = (
    ("provision.dra_apis", "dra_support"), ("provision.driver_versions", "driver_runtime_management"),
    ("provision.gpu_sharing", "gpu_sharing"), ("provision.vgpu", "virtualized_accelerator"),
    ("provision.gateway_api", "ai_inference"), ("provision.inference_extension", "advanced_inference_ingress"),
    ("provision.rdma_networking", "high_performance_networking"),
    ("provision.disaggregated_inference", "disaggregated_inference"),
    ("provision.gang_scheduler", "gang_scheduling"), ("provision.cluster_autoscaler", "cluster_autoscaling"),
    ("provision.metrics_apis", "pod_autoscaling"), ("provision.accelerator_exporter", "accelerator_metrics"),
    ("provision.service_monitoring", "ai_service_metrics"), ("provision.device_plugin", "secure_accelerator_access"),
    ("provision.sandbox_runtimes", "workload_sandboxing"), ("provision.ai_operator", "robust_controller"),
)
SIZES = [f"{2 ** i}B" for i in range(10, 35)]  # 25 message sizes, 1 KiB .. 16 GiB
CONCURRENCY = [f"c{2 ** i}" for i in range(8)]
SCALARS = (
    ("train_samples_per_s", 566_000.0), ("train_step_time_ms", 1.81), ("train_mfu", 0.21),
    ("train_loss_final", 0.05), ("holdout_accuracy", 0.97), ("checkpoint_write_mb_per_s", 920.0),
    ("checkpoint_read_mb_per_s", 1220.0), ("data_read_mb_per_s", 800.0), ("serve_time_to_ready_s", 20.0),
    ("serve_error_rate", 0.001), ("teardown_time_s", 30.0), ("reclaim_time_s", 12.0),
    ("pod_time_to_running_s", 9.0), ("tf_holdout_accuracy", 0.96), ("tf_samples_per_s", 300_000.0),
    ("allreduce_busbw_gbps@peak", 400.0), ("serve_rps@peak", 5000.0), ("serve_p50_ms@idle", 1.0),
)


def _metric_plan() -> tuple[list[str], list[str], list[float]]:
    """(check_id, metric, typical value) for the 100 directed metric rows of a run."""
    checks, metrics, values = [], [], []
    for i, size in enumerate(SIZES):
        for family in ("allreduce_busbw_gbps@", "allreduce_algbw_gbps@"):
            checks.append("train.allreduce_busbw")
            metrics.append(family + size)
            values.append(1.0 + 15 * i)
    for c in CONCURRENCY:
        for family, base in (("serve_p50_ms@", 2.0), ("serve_p95_ms@", 5.0), ("serve_p99_ms@", 9.0),
                             ("serve_rps@", 900.0)):
            checks.append("serve.latency" if "ms" in family else "serve.throughput")
            metrics.append(family + c)
            values.append(base)
    for name, value in SCALARS:
        checks.append("train.throughput")
        metrics.append(name)
        values.append(value)
    assert len(metrics) == 100
    return checks, metrics, values


def generate(root: Path, platforms: int, runs: int, seed: int = 1) -> int:
    rng = np.random.default_rng(seed)
    m_checks, m_names, m_values = _metric_plan()
    loss_n = ROWS_PER_RUN - 16 - 34 - 100
    check_ids = ([c for c, _ in REQUIREMENT_CHECKS] + ["step.error"] * 34 + m_checks
                 + ["train.loss_curve"] * loss_n)
    requirement_ids: list[str | None] = ([r for _, r in REQUIREMENT_CHECKS] + [None] * 34 + [None] * 100
                                         + [None] * loss_n)
    metric_names: list[str | None] = [None] * 50 + m_names + [f"loss_curve@{i}" for i in range(loss_n)]
    base_values = np.array([np.nan] * 50 + m_values + list(np.linspace(2.3, 0.1, loss_n)))
    levels = ["MUST"] * 16 + ["MUST"] * 34 + ["INFO"] * (100 + loss_n)
    steps = [c.split(".")[0] for c in check_ids]
    units = [None] * 50 + ["u"] * (100 + loss_n)
    first = datetime(2026, 1, 1, 2, tzinfo=UTC)
    total = 0
    statuses = np.array(["passed", "failed", "skipped"])
    for p in range(platforms):
        platform = f"platform{p:02d}"
        speed = 0.7 + 0.6 * rng.random()
        for r in range(runs):
            started = first + timedelta(days=r)
            run_id = f"kaic-{started:%Y%m%d}-{platform}"
            noise = rng.normal(1.0, 0.02, ROWS_PER_RUN)
            values = base_values * speed * noise
            status = statuses[rng.choice(3, ROWS_PER_RUN, p=[0.9, 0.03, 0.07])]
            n = ROWS_PER_RUN
            table = pa.table({
                "run_id": pa.array([run_id] * n), "suite_version": pa.array(["0.1.0"] * n),
                "started_at": pa.array([started] * n, pa.timestamp("us", tz="UTC")),
                "platform": pa.array([platform] * n), "cluster": pa.array([f"{platform}-c1"] * n),
                "k8s_version": pa.array(["1.35"] * n), "accelerator": pa.array(["NVIDIA H100 80GB HBM3"] * n),
                "step": pa.array(steps), "check_id": pa.array(check_ids),
                "requirement_id": pa.array(requirement_ids, pa.string()), "level": pa.array(levels),
                "status": pa.array(status), "metric": pa.array(metric_names, pa.string()),
                "value": pa.array(values, pa.float64(), mask=np.isnan(values)),
                "unit": pa.array(units, pa.string()), "threshold": pa.nulls(n, pa.string()),
                "message": pa.array([""] * n), "evidence": pa.nulls(n, pa.string()),
                "recorded_at": pa.array([started + timedelta(minutes=30)] * n, pa.timestamp("us", tz="UTC")),
            }).cast(RESULTS_SCHEMA)
            folder = root / f"platform={platform}" / f"date={started:%Y-%m-%d}"
            folder.mkdir(parents=True, exist_ok=True)
            pq.write_table(table, folder / f"{run_id}.parquet", compression="zstd")
            total += n
    return total


def plain_read(root: Path) -> pa.Table:
    part = ds.partitioning(pa.schema([("platform", pa.string()), ("date", pa.date32())]), flavor="hive")
    return ds.dataset(root, format="parquet", partitioning=part).to_table(
        columns=["platform", "run_id", "started_at", "metric", "value"])


def plain_compute(t: pa.Table) -> pa.Table:
    latest = t.group_by("platform").aggregate([("started_at", "max")])
    t = t.join(latest, "platform").filter(pc.field("started_at") == pc.field("started_at_max"))
    t = t.filter(pc.is_valid(t["value"]))
    return t.group_by(["platform", "metric"]).aggregate([("value", "mean")])


def timed(fn: Callable[[], object], reps: int) -> list[float]:
    out = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t0)
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--platforms", type=int, default=20)
    ap.add_argument("--runs", type=int, default=50)
    ap.add_argument("--reps", type=int, default=5)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="kaic-bench-compare-") as tmp:
        root = Path(tmp) / "results"
        t0 = time.perf_counter()
        rows = generate(root, args.platforms, args.runs)
        print(f"generated {rows:,} rows ({args.platforms} platforms x {args.runs} runs x {ROWS_PER_RUN}) "
              f"in {time.perf_counter() - t0:.1f}s; {sum(1 for _ in root.rglob('*.parquet'))} files")
        uri = f"file://{root}"

        # sanity: both sides agree on the latest values
        c = compare(load_for_compare(uri), keep_history=False)
        plain = plain_compute(plain_read(root))
        kaic_values = sum(1 for m in c.metrics for v in m.values.values() if v is not None)
        assert kaic_values == plain.num_rows, (kaic_values, plain.num_rows)
        print(f"check: {plain.num_rows:,} (platform, metric) latest values on both sides; "
              f"{len(c.regressions):,} regression judgements, {len(c.regressed)} flagged; "
              f"{len(c.matrix)} requirements x {len(c.groups)} platforms")

        results = {
            "kaic   read + core": timed(lambda: compare(load_for_compare(uri), keep_history=False), args.reps),
            "plain  read + group-by": timed(lambda: plain_compute(plain_read(root)), args.reps),
        }
        results["info   one-pass read (all columns)"] = timed(lambda: load_results(uri), args.reps)
        table = load_for_compare(uri)
        raw = plain_read(root)
        results["kaic   core (in memory)"] = timed(lambda: compare(table, keep_history=False), args.reps)
        results["plain  group-by (in memory)"] = timed(lambda: plain_compute(raw), args.reps)
        results["kaic   normalize only"] = timed(lambda: normalize(table), args.reps)

        from rich.console import Console

        from kaic.compare.html import render_html
        from kaic.compare.render_text import render_table

        full = compare(load_results(uri))
        results["info   render table"] = timed(
            lambda: render_table(c, Console(file=open("/dev/null", "w"), width=200)), 1)  # noqa: SIM115
        results["info   render HTML (with trends)"] = timed(lambda: render_html(full), 1)

    med = {k: statistics.median(v) for k, v in results.items()}
    print(f"\n{'':34}{'median s':>10}{'min s':>9}   reps")
    for k, v in results.items():
        print(f"{k:34}{med[k]:>10.3f}{min(v):>9.3f}   {len(v)}")
    print(f"\nratio kaic/plain, read + compute: {med['kaic   read + core'] / med['plain  read + group-by']:.2f}x")
    print(f"ratio kaic/plain, compute only:   "
          f"{med['kaic   core (in memory)'] / med['plain  group-by (in memory)']:.2f}x")
    print(f"columns read: kaic {len(NUMERIC_COLUMNS)} for every row + {len(COLUMNS)} for the latest runs, "
          "plain 5")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
