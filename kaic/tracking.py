"""MLflow tracking: one parent run per workflow run, one child run per step.

Layout (experiment `kaic` unless told otherwise):
  parent run  name = <run-id>, tags kaic.role=workflow, kaic.step=workflow, kaic.status = worst child status
  child run   name = <step>,   tags kaic.role=step, kaic.step=<step>, kaic.status, mlflow.parentRunId
Both carry platform, cluster, k8s_version, accelerator, suite_version and kaic.run_id. The parent is found
again by its tags, so steps running as separate processes share it. Each row with a value is a metric
(`metric_name`: '@' becomes '/'), the step's rows are a Parquet artifact `rows/<step>.parquet`.

MLflow is optional at run time: an unreachable server costs one short probe and one warning line; the
Parquet rows stay complete and `kaic sync RUN` backfills later. mlflow is imported lazily (seconds).
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import re
import sys
import tempfile
import urllib.error
import urllib.request
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from kaic.results import ResultRow, RunContext, Status, counts, run_status

EXPERIMENT = "kaic"
ROLE_WORKFLOW, ROLE_STEP = "workflow", "step"
CONTEXT_TAGS = ("platform", "cluster", "k8s_version", "accelerator", "suite_version")
# MLflow's own settings while kaic talks to it: fail in seconds, not minutes; no run URLs on stdout.
_MLFLOW_ENV = {
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "2",
    "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "20",
    "MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT": "true",
}
_SAFE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._\-]*$")
_METRIC_CHARS = re.compile(r"[^\w./\- :]")


class TrackingUnavailable(Exception):  # noqa: N818 - a condition, not a bug
    """MLflow could not be reached or refused the request."""


def metric_name(row: ResultRow) -> str:
    """MLflow metric name for a row: its metric with '@' -> '/' (allreduce_busbw_gbps@64MiB ->
    allreduce_busbw_gbps/64MiB), characters MLflow forbids -> '_'; the check id when it has no metric."""
    name = (row.metric or row.check_id).replace("@", "/")
    name = _METRIC_CHARS.sub("_", name)
    return "/".join(p for p in name.split("/") if p not in ("", ".", "..")) or "_"


def rows_digest(rows: Sequence[ResultRow]) -> str:
    """A fingerprint of a step's rows: `kaic sync` skips steps whose child run already has it."""
    h = hashlib.sha256()
    for r in sorted(rows, key=lambda r: (r.check_id, r.metric or "", r.recorded_at)):
        h.update(repr((r.check_id, r.metric, r.status.value, r.value, r.recorded_at.isoformat())).encode())
    return h.hexdigest()[:16]


def _ms(ts: datetime) -> int:
    return int(ts.timestamp() * 1000)


def redact(uri: str) -> str:
    return re.sub(r"^([A-Za-z][A-Za-z0-9+.\-]*://)[^/@]*@", r"\1***@", uri)


TRACKING_SCHEMES = ("http", "https", "sqlite", "file", "postgresql", "mysql", "mssql", "databricks")


def check_tracking_uri(uri: str, source: str) -> str:
    """An MLflow tracking URI kaic can use: one of TRACKING_SCHEMES (or a bare local path); else ConfigError."""
    from kaic.errors import ConfigError

    scheme = urlsplit(uri).scheme if "://" in uri or uri.startswith("sqlite:") else ""
    base = scheme.split("+", 1)[0]
    if not uri.strip() or (scheme and base not in TRACKING_SCHEMES):
        raise ConfigError(f"{source} {redact(uri)!r}: not an MLflow tracking URI "
                          f"(expected {', '.join(s + '://' for s in TRACKING_SCHEMES[:3])}... or a path)")
    if base in ("http", "https") and not urlsplit(uri).hostname:
        raise ConfigError(f"{source} {redact(uri)!r}: no host in the URI")
    return uri


INIT_LOCK_TIMEOUT_S = 300.0


def sqlite_path(uri: str) -> Path | None:
    """The database file of a sqlite:/// tracking URI (None for other stores or :memory:)."""
    parts = urlsplit(uri)
    if not parts.scheme.startswith("sqlite") or parts.path in ("", "/", "/:memory:"):
        return None
    return Path(parts.path[1:] if parts.path.startswith("//") else parts.path)


@contextlib.contextmanager
def init_lock(uri: str, timeout_s: float = INIT_LOCK_TIMEOUT_S) -> Iterator[None]:
    """An exclusive file lock beside a sqlite store (``mlflow.db.init.lock`` in KAIC_HOME by default)
    while MLflow opens it: two runs in one home would otherwise race on creating and migrating the
    schema. Other stores (a tracking server) serialize on their own."""
    import fcntl
    import time

    db = sqlite_path(uri)
    if db is None:
        yield
        return
    db.parent.mkdir(parents=True, exist_ok=True)
    with open(db.with_name(db.name + ".init.lock"), "a") as fh:
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise TrackingUnavailable(f"{db}: another process held the MLflow init lock for "
                                              f"{timeout_s:g}s") from None
                time.sleep(0.1)
        try:
            yield
        finally:
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)


def probe(uri: str, timeout: float) -> None:
    """Raise TrackingUnavailable unless an http(s) tracking server answers GET /health with 2xx in time."""
    if urlsplit(uri).scheme not in ("http", "https"):
        return
    try:
        with urllib.request.urlopen(uri.rstrip("/") + "/health", timeout=timeout) as resp:
            code = resp.status
    except urllib.error.HTTPError as exc:
        code = exc.code
    except OSError as exc:
        raise TrackingUnavailable(f"{type(exc).__name__}: {getattr(exc, 'reason', exc)}") from None
    if not 200 <= code < 300:
        raise TrackingUnavailable(f"GET /health answered HTTP {code}: not an MLflow tracking server?")


@contextlib.contextmanager
def _quiet_mlflow() -> Iterator[None]:
    """Small HTTP retries and no migration chatter, only while kaic is calling MLflow."""
    saved = {k: os.environ.get(k) for k in _MLFLOW_ENV}
    os.environ.update(_MLFLOW_ENV)
    loggers = [logging.getLogger(n) for n in ("alembic", "mlflow")]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.WARNING)
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        for lg, level in zip(loggers, levels, strict=True):
            lg.setLevel(level)


@dataclass(frozen=True)
class StepLog:
    """What was logged for one step (printed by `kaic sync`)."""

    step: str
    child_run_id: str
    metrics: int
    skipped: bool  # already in MLflow with the same rows


class MlflowTracker:
    """`Tracker` over any MLflow tracking URI (sqlite:///..., http://..., file:...)."""

    def __init__(self, uri: str, experiment: str = EXPERIMENT, probe_timeout: float = 2.5) -> None:
        self.uri, self.experiment, self.probe_timeout = uri, experiment, probe_timeout
        self._client: Any = None
        self._experiment_id: str | None = None

    def __repr__(self) -> str:
        return f"MlflowTracker({self.uri_shown!r}, experiment={self.experiment!r})"

    @property
    def uri_shown(self) -> str:
        return redact(self.uri)

    # --- the Tracker protocol: never raises, says False when MLflow was not written -----------------

    def log_step(
        self, ctx: RunContext, step: str, rows: Sequence[ResultRow], artifacts: Sequence[Path] = ()
    ) -> bool:
        try:
            self.record_step(ctx, step, rows, artifacts, replace=True)
            return True
        except Exception as exc:  # MLflow is optional at run time: warn once, keep the rows
            self._warn(exc, ctx.run_id)
            return False

    def log_artifacts(self, ctx: RunContext, paths: Sequence[Path]) -> bool:
        """Reports and other files of the whole run, on the parent run under `reports/`."""
        try:
            with _quiet_mlflow():
                self.connect()
                parent = self.parent_run(ctx)
                for p in paths:
                    if p.is_dir():
                        self._client.log_artifacts(parent, str(p), artifact_path=f"reports/{p.name}")
                    else:
                        self._client.log_artifact(parent, str(p), artifact_path="reports")
            return True
        except Exception as exc:
            self._warn(exc, ctx.run_id)
            return False

    def _warn(self, exc: Exception, run_id: str) -> None:
        why = (str(exc).strip().splitlines() or [""])[0][:200]
        print(f"kaic: warning: MLflow at {redact(self.uri)} not written ({type(exc).__name__}: {why}); "
              f"rows are complete in Parquet, backfill with `kaic sync {run_id}`",
              file=sys.stderr, flush=True)

    # --- the work (raises) ------------------------------------------------------------------------

    def connect(self) -> None:
        if self._client is not None:
            return
        probe(self.uri, self.probe_timeout)
        from mlflow.tracking import MlflowClient

        with init_lock(self.uri):  # one process at a time creates or migrates a local database
            self._client = MlflowClient(tracking_uri=self.uri)
            self._experiment_id = self._ensure_experiment()

    def _ensure_experiment(self) -> str:
        from mlflow.exceptions import MlflowException

        exp = self._client.get_experiment_by_name(self.experiment)
        if exp is not None:
            if exp.lifecycle_stage == "deleted":
                self._client.restore_experiment(exp.experiment_id)
            return str(exp.experiment_id)
        try:
            root = self._artifact_root()
            return str(self._client.create_experiment(self.experiment, artifact_location=root))
        except MlflowException:  # another step process created it a moment ago
            exp = self._client.get_experiment_by_name(self.experiment)
            if exp is None:
                raise
            return str(exp.experiment_id)

    def _artifact_root(self) -> str | None:
        """For a local sqlite store, artifacts go next to the database (…/mlartifacts), not ./mlruns."""
        parts = urlsplit(self.uri)
        if parts.scheme == "sqlite" and parts.path not in ("", "/", "/:memory:"):
            db = Path(parts.path[1:] if parts.path.startswith("//") else parts.path)
            return (db.parent / "mlartifacts").resolve().as_uri()
        return None

    def _search(self, tags: dict[str, str]) -> list[Any]:
        """Active runs of the experiment with all these tags, oldest first."""
        for v in tags.values():
            if not _SAFE_ID.match(v):
                raise ValueError(f"tag value {v!r}: not a plain id")
        where = " AND ".join(f"tags.`{k}` = '{v}'" for k, v in tags.items())
        runs = self._client.search_runs([self._experiment_id], filter_string=where, max_results=1000,
                                        order_by=["attributes.start_time ASC"])
        return sorted(runs, key=lambda r: (r.info.start_time or 0, r.info.run_id))

    def _context_tags(self, ctx: RunContext) -> dict[str, str]:
        return {**{t: str(getattr(ctx, t) or "") for t in CONTEXT_TAGS}, "kaic.run_id": ctx.run_id}

    def parent_run(self, ctx: RunContext) -> str:
        """The workflow run's parent, created once; concurrent creators converge on the oldest one."""
        wanted = {"kaic.run_id": ctx.run_id, "kaic.role": ROLE_WORKFLOW}
        found = self._search(wanted)
        if not found:
            tags = {**self._context_tags(ctx), "kaic.role": ROLE_WORKFLOW, "kaic.step": ROLE_WORKFLOW,
                    "kaic.status": Status.PASSED.value}
            mine = self._client.create_run(self._experiment_id, start_time=_ms(ctx.started_at), tags=tags,
                                           run_name=ctx.run_id).info.run_id
            found = self._search(wanted)
            for extra in found[1:]:
                if extra.info.run_id == mine:
                    self._client.delete_run(mine)
        parent = str(found[0].info.run_id)
        # Provision fills in the fingerprint after the parent may exist: keep the context tags current.
        have = found[0].data.tags
        news = {k: v for k, v in self._context_tags(ctx).items() if v and have.get(k) != v}
        if news:
            self._client.log_batch(parent, tags=_tags(news))
        return parent

    def child_runs(self, run_id: str, step: str | None = None) -> list[Any]:
        tags = {"kaic.run_id": run_id, "kaic.role": ROLE_STEP}
        if step is not None:
            tags["kaic.step"] = step
        return self._search(tags)

    def record_step(
        self, ctx: RunContext, step: str, rows: Sequence[ResultRow], artifacts: Sequence[Path] = (),
        *, replace: bool,
    ) -> StepLog:
        """Log one step as a child run. An existing child for the step is replaced (a rerun) when
        `replace`, else kept when it holds the same rows (what makes `kaic sync` idempotent)."""
        from mlflow.entities import Metric

        with _quiet_mlflow():
            self.connect()
            parent = self.parent_run(ctx)
            digest = rows_digest(rows)
            existing = self.child_runs(ctx.run_id, step)
            if not replace and existing and existing[-1].data.tags.get("kaic.rows_sha") == digest:
                kept = existing[-1]
                return StepLog(step, kept.info.run_id, len(kept.data.metrics), skipped=True)
            status = run_status(rows)
            tags = {**self._context_tags(ctx), "kaic.role": ROLE_STEP, "kaic.step": step,
                    "kaic.status": status.value, "kaic.rows": str(len(rows)), "kaic.rows_sha": digest,
                    "mlflow.parentRunId": parent}
            start = min((r.recorded_at for r in rows), default=None)
            child = self._client.create_run(self._experiment_id, tags=tags, run_name=step,
                                            start_time=_ms(start) if start else None).info.run_id
            metrics = [Metric(metric_name(r), float(r.value), _ms(r.recorded_at), 0)
                       for r in rows if r.value is not None]
            metrics += [Metric(f"checks/{k}", float(v), _ms(start) if start else 0, 0)
                        for k, v in counts(rows).items()]
            for i in range(0, len(metrics), 1000):  # MLflow's batch limit
                self._client.log_batch(child, metrics=metrics[i:i + 1000])
            self._log_rows_artifact(child, step, rows)
            for p in artifacts:
                self._client.log_artifact(child, str(p))
            end = max((r.recorded_at for r in rows), default=None)
            self._client.set_terminated(child, "FINISHED" if status is Status.PASSED else "FAILED",
                                        end_time=_ms(end) if end else None)
            for old in existing:  # a rerun replaces the step's earlier child (soft delete: recoverable)
                self._client.delete_run(old.info.run_id)
            self._update_parent(ctx.run_id, parent)
            return StepLog(step, child, len(metrics), skipped=False)

    def _log_rows_artifact(self, child: str, step: str, rows: Sequence[ResultRow]) -> None:
        from kaic.stores.results_dataset import parquet_bytes, rows_to_table

        with tempfile.TemporaryDirectory(prefix="kaic-mlflow-") as tmp:
            path = Path(tmp) / f"{step}.parquet"
            path.write_bytes(parquet_bytes(rows_to_table(rows)))
            self._client.log_artifact(child, str(path), artifact_path="rows")

    def _update_parent(self, run_id: str, parent: str) -> None:
        """The parent's status is derived from its children: failed > error > passed."""
        statuses = {c.data.tags.get("kaic.status") for c in self.child_runs(run_id)}
        worst = next((s for s in (Status.FAILED, Status.ERROR) if s.value in statuses), Status.PASSED)
        self._client.log_batch(parent, tags=_tags({"kaic.status": worst.value}))
        self._client.set_terminated(parent, "FINISHED" if worst is Status.PASSED else "FAILED")


def _tags(d: dict[str, str]) -> list[Any]:
    from mlflow.entities import RunTag

    return [RunTag(k, v) for k, v in d.items()]
