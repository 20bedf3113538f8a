"""`kaic sync RUN`: backfill MLflow from a run's Parquet rows (when MLflow was down during the run).

Rows come from the run's staged shards in the object store, else from the published results dataset.
Idempotent: a step whose child run already holds the same rows (tag kaic.rows_sha) is left alone.
"""

from __future__ import annotations

import argparse
import sys
from collections import defaultdict
from dataclasses import replace
from pathlib import Path

from kaic import env
from kaic.errors import ConfigError
from kaic.results import ResultRow, RunContext


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run_id", metavar="RUN", help="the run id (kaic-YYYYmmdd-HHMMSS-xxxxxx)")
    parser.add_argument("--profile", default=env.KAIC_PROFILE.get(), help="profile (for its stores)")
    parser.add_argument("--object-store", help="object store URI holding runs/<run-id>/rows/")
    parser.add_argument("--results", help="results dataset URI (used when the run has no staged rows)")
    parser.add_argument("--mlflow-uri", help="MLflow tracking URI to write to")
    parser.add_argument("--experiment", default="kaic", help="MLflow experiment (default: kaic)")


def _mlflow_source(args: argparse.Namespace) -> str:
    if args.mlflow_uri:
        return "--mlflow-uri"
    if env.KAIC_MLFLOW_URI.get():
        return env.KAIC_MLFLOW_URI.name
    if env.MLFLOW_TRACKING_URI.get():
        return env.MLFLOW_TRACKING_URI.name
    return "MLflow URI (profile or default)"


def load_rows(run_id: str, object_store: str, results: str) -> tuple[list[ResultRow], str]:
    """The run's rows and where they came from; ConfigError when neither place has the run."""
    from kaic.stores.objects import check_key, open_store
    from kaic.stores.results_dataset import ParquetResults, rows_for_run

    try:
        check_key(run_id)
    except ConfigError:
        raise ConfigError(f"RUN {run_id!r}: not a run id") from None
    store = open_store(object_store, source="--object-store", create=False)
    sink = ParquetResults(store, store)
    rows = sink.staged(run_id)
    if rows:
        return rows, store.uri(f"runs/{run_id}/rows")
    try:
        rows = rows_for_run(results, run_id)
    except ConfigError:
        rows = []  # no results dataset yet: the run is unknown
    if rows:
        return rows, results
    raise ConfigError(
        f"RUN {run_id!r}: unknown run (no rows under {store.uri(f'runs/{run_id}/rows')} nor in {results})"
    )


def publish_outbox(run_id: str, home: Path, object_store: str, results: str) -> None:
    """Row shards an outage left on local disk go to the object store, and the run is published to the
    results dataset again so that it holds them (ServiceUnavailable, exit 1, while the store is down)."""
    from kaic.stores.objects import check_key
    from kaic.stores.resilient import Outbox, open_retrying
    from kaic.stores.results_dataset import ParquetResults

    try:
        check_key(run_id)
    except ConfigError:
        raise ConfigError(f"RUN {run_id!r}: not a run id") from None
    outbox = Outbox(home, run_id)
    if not outbox.pending():
        return
    store = open_retrying(object_store, "--object-store")
    done = outbox.flush(store)
    print(f"kaic sync {run_id}: published {len(done)} row shard(s) kept on local disk during an outage")
    uri = ParquetResults(store, open_retrying(results, "--results")).publish(run_id)
    print(f"kaic sync {run_id}: run republished to {uri}")


def run(args: argparse.Namespace) -> int:
    from kaic.profiles import load_profile
    from kaic.stepkit import Wiring
    from kaic.stores.objects import check_key
    from kaic.tracking import MlflowTracker, TrackingUnavailable

    try:
        check_key(args.run_id)
    except ConfigError:
        raise ConfigError(f"RUN {args.run_id!r}: not a run id") from None
    wiring = Wiring.resolve(args, load_profile(args.profile))  # every URI checked, nothing created
    publish_outbox(args.run_id, wiring.kaic_home, wiring.object_store, wiring.results)
    rows, origin = load_rows(args.run_id, wiring.object_store, wiring.results)
    by_step: dict[str, list[ResultRow]] = defaultdict(list)
    for r in rows:
        by_step[r.step].append(r)
    first = min(rows, key=lambda r: r.recorded_at)
    # Later steps carry the fingerprint provision recorded; take the most complete context.
    fp = max(rows, key=lambda r: (bool(r.cluster), bool(r.k8s_version), bool(r.accelerator)))
    ctx = replace(
        RunContext(first.run_id, first.suite_version, first.started_at, first.platform),
        cluster=fp.cluster, k8s_version=fp.k8s_version, accelerator=fp.accelerator,
    )
    tracker = MlflowTracker(wiring.mlflow_uri, experiment=args.experiment)
    print(f"kaic sync {args.run_id}: {len(rows)} rows from {origin} -> MLflow {tracker.uri_shown}")
    try:
        tracker.connect()
    except TrackingUnavailable as exc:
        where = _mlflow_source(args)
        raise ConfigError(f"{where}: MLflow at {tracker.uri_shown} unreachable ({exc})") from None
    for step, step_rows in by_step.items():
        try:
            logged = tracker.record_step(ctx, step, step_rows, replace=False)
        except Exception as exc:  # MLflow refused mid-way: say so in one line; rerunning resumes
            print(f"  {step}: not logged ({type(exc).__name__}: {str(exc).strip()[:200]})", file=sys.stderr)
            return 1
        if logged.skipped:
            print(f"  {step}: already in MLflow (child run {logged.child_run_id}), nothing logged")
        else:
            print(f"  {step}: logged {len(step_rows)} rows, {logged.metrics} metrics "
                  f"(child run {logged.child_run_id})")
    return 0
