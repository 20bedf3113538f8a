"""One shape for every step: typed config in, check outcomes out, rows written, exit code by the rules.

A step module (see `steps/__init__.py` for the registry) exposes:

    NAME = "train"
    class Config(StepConfig): ...                  # frozen, extra="forbid", cross-field rules validated
    def configure(parser) -> None                  # its own flags for `kaic step NAME`
    def make_config(args, profile) -> Config       # flags and profile -> Config (ConfigError on bad input)
    def run(config, ctx: StepContext) -> list[Outcome]   # the core; I/O only through ctx's clients

`execute_step` wires the real clients, stamps outcomes into rows (catalog level and requirement id,
profile thresholds), stages the rows (Parquet), logs the step to MLflow (tolerating its absence)
and returns the exit code.
"""

from __future__ import annotations

import argparse
import json
import secrets
import sys
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError

from kaic import SUITE_VERSION, catalog, env
from kaic.errors import ConfigError
from kaic.profiles import Profile, load_profile
from kaic.results import Outcome, ResultRow, RunContext, Status, exit_code
from kaic.stores import ObjectStore, ResultSink

STEP_ERROR_CHECK = "step.error"


class StepConfig(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


C = TypeVar("C", bound=StepConfig)


def parse_config(cls: type[C], values: dict[str, Any], source: str) -> C:
    """Validate a step config; the first error becomes a one-line ConfigError naming field and source."""
    try:
        return cls.model_validate(values)
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err["loc"]) or "(config)"
        raise ConfigError(f"{source}: {where}: {err['msg']} (got {err.get('input')!r})") from None


@dataclass
class StepContext:
    """What a step's core may use: the run's identity, the profile, the object store and a work dir."""

    run: RunContext
    profile: Profile
    store: ObjectStore
    kaic_home: Path
    step: str
    suite: str = "quick"
    sink: ResultSink | None = None  # the run's staged rows (the report step reads every step's)
    results_uri: str = ""  # the results dataset (the report step compares the run with its history)

    @property
    def run_dir(self) -> Path:
        return self.kaic_home / "runs" / self.run.run_id

    @property
    def work_dir(self) -> Path:
        d = self.run_dir / "steps" / self.step
        d.mkdir(parents=True, exist_ok=True)
        return d

    def key(self, *parts: str) -> str:
        """Object-store key scoped to this run: runs/<run-id>/<parts...>."""
        return "/".join(("runs", self.run.run_id, *parts))

    def set_fingerprint(self, cluster: str, k8s_version: str, accelerator: str) -> None:
        """Provision records what the platform is; every later row of the run carries it."""
        self.run = self.run.with_fingerprint(cluster, k8s_version, accelerator)
        self.store.put_bytes(self.key("context.json"), json.dumps(self.run.to_json()).encode())

    def log(self, message: str) -> None:
        print(f"[{self.step}] {message}", file=sys.stderr, flush=True)


class StepModule(Protocol):
    NAME: str

    def configure(self, parser: argparse.ArgumentParser) -> None: ...
    def make_config(self, args: argparse.Namespace, profile: Profile) -> StepConfig: ...
    def run(self, config: Any, ctx: StepContext) -> list[Outcome]: ...


def with_image(profile: Profile, image: str | None) -> Profile:
    """The profile with `--image` in place of its image (ConfigError, naming the flag, on a bad reference)."""
    from kaic.images import IMAGE_REF

    if not image:
        return profile
    if not IMAGE_REF.match(image):
        raise ConfigError(f"--image {image!r}: not a container image reference")
    return profile.model_copy(update={"image": image})


def new_run_id() -> str:
    return f"kaic-{datetime.now(UTC):%Y%m%d-%H%M%S}-{secrets.token_hex(3)}"


def add_common_arguments(parser: argparse.ArgumentParser) -> None:
    """Flags every step takes. URIs only: credentials come from the environment (kaic/env.py)."""
    g = parser.add_argument_group("run")
    g.add_argument("--run-id", default=env.KAIC_RUN_ID.get(), help="run id (default: $KAIC_RUN_ID or a new one)")
    g.add_argument("--profile", default=env.KAIC_PROFILE.get(), help="profile name or YAML file (default: local)")
    g.add_argument("--platform", help="platform label for results (default: the profile's)")
    g.add_argument("--suite", choices=("quick", "full"), default="quick")
    g.add_argument("--object-store", help="object store URI (default: profile, then file://$KAIC_HOME/objects)")
    g.add_argument("--results", help="results dataset URI (default: profile, then file://$KAIC_HOME/results)")
    g.add_argument("--mlflow-uri", help="MLflow tracking URI (default: profile, then sqlite:///$KAIC_HOME/mlflow.db)")
    g.add_argument("--image", help="image of the pods the step creates: train workers, probe and serving pods "
                   "(default: the profile's; the workflow passes its own `image` parameter)")


@dataclass(frozen=True)
class Wiring:
    """Resolved locations for a run: flags win over the profile, the profile over defaults."""

    kaic_home: Path
    object_store: str
    results: str
    mlflow_uri: str

    @staticmethod
    def resolve(args: argparse.Namespace, profile: Profile) -> Wiring:
        """Every location, each checked (ConfigError naming it); nothing is created here."""
        from kaic.stores.objects import parse_uri
        from kaic.tracking import check_tracking_uri

        local = profile.is_local
        wiring = Wiring(
            kaic_home=env.kaic_home(),
            object_store=args.object_store or env.KAIC_OBJECT_STORE.get()
            or (None if local else profile.storage.object_store) or env.object_store_uri(),
            results=args.results or env.KAIC_RESULTS.get()
            or (None if local else profile.storage.results) or env.results_uri(),
            mlflow_uri=args.mlflow_uri or env.KAIC_MLFLOW_URI.get() or env.MLFLOW_TRACKING_URI.get()
            or (None if local else profile.endpoints.mlflow_uri) or env.mlflow_uri(),
        )
        if wiring.kaic_home.exists() and not wiring.kaic_home.is_dir():
            raise ConfigError(f"KAIC_HOME {wiring.kaic_home}: not writable (exists and is not a folder)")
        parse_uri(wiring.object_store, "--object-store" if args.object_store else "object store URI")
        parse_uri(wiring.results, "--results" if args.results else "results URI")
        check_tracking_uri(wiring.mlflow_uri, "--mlflow-uri" if args.mlflow_uri else "MLflow URI")
        return wiring


def ensure_kaic_home() -> Path:
    home = env.kaic_home()
    try:
        (home / "runs").mkdir(parents=True, exist_ok=True)
        probe = home / "runs" / f".write-test-{secrets.token_hex(4)}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise ConfigError(f"KAIC_HOME {home}: not writable ({exc.strerror or exc})") from None
    return home


def load_context(store: ObjectStore, run_id: str, platform: str) -> RunContext:
    """The run's shared context (written by provision), or a fresh one for a step run on its own."""
    from kaic.stores import ObjectNotFound

    try:
        return RunContext.from_json(json.loads(store.get_bytes(f"runs/{run_id}/context.json")))
    except (ObjectNotFound, FileNotFoundError):
        return RunContext(run_id, SUITE_VERSION, datetime.now(UTC), platform)


def stamp(outcomes: Sequence[Outcome], ctx: RunContext, step: str, profile: Profile) -> list[ResultRow]:
    """Outcomes -> rows: catalog level and requirement id, and the profile's thresholds applied."""
    version = catalog.level_version(ctx.k8s_version)
    rows = []
    for o in outcomes:
        spec = catalog.check(o.check_id)
        status, threshold, message = o.status, o.threshold, o.message
        # A profile threshold judges the check that declares the metric, not a row that merely names it
        # (report.regression reports on other checks' metrics).
        declared = o.metric is not None and any(m.matches(o.metric) for m in spec.metrics)
        if declared and o.metric is not None and o.value is not None and status is Status.PASSED:
            for t in profile.thresholds_for(o.metric):
                threshold = str(t)
                if not t.holds(o.value):
                    status = Status.FAILED
                    message = f"{o.metric} = {o.value:g} does not meet {t}" + (f"; {message}" if message else "")
        rows.append(ResultRow(
            run_id=ctx.run_id, suite_version=ctx.suite_version, started_at=ctx.started_at, platform=ctx.platform,
            cluster=ctx.cluster, k8s_version=ctx.k8s_version, accelerator=ctx.accelerator, step=step,
            check_id=o.check_id, requirement_id=spec.requirement_id,
            level=catalog.level_of(spec, version),
            status=status, metric=o.metric, value=o.value, unit=o.unit, threshold=threshold, message=message,
            evidence=o.evidence,
        ))
    return rows


def guarded(step: str, core: Callable[[], list[Outcome]]) -> list[Outcome]:
    """Run a step core; a crash becomes an error row (and a traceback on stderr), never a lost run."""
    from kaic.errors import ServiceUnavailable

    try:
        return core()
    except ConfigError:
        raise
    except ServiceUnavailable as exc:  # an outage, said in one line: no traceback to read
        print(f"[{step}] {exc}", file=sys.stderr, flush=True)
        return [Outcome(STEP_ERROR_CHECK, Status.ERROR, f"{step} could not finish: {exc}")]
    except Exception as exc:  # the whole point: record it and go on to write rows
        traceback.print_exc()
        return [Outcome(STEP_ERROR_CHECK, Status.ERROR, f"{step} crashed: {type(exc).__name__}: {exc}")]


def execute_step(module: StepModule, args: argparse.Namespace) -> tuple[list[ResultRow], int]:
    """Parse, wire real clients, run the core, write rows and log to MLflow. Returns (rows, exit code).

    Rows go to local disk first (the run's outbox), then to the object store with retries: an outage
    costs the step its exit code (1), never its rows; a later step or `kaic sync RUN` publishes them."""
    from kaic.errors import ServiceUnavailable
    from kaic.stores.resilient import Outbox, open_retrying
    from kaic.stores.results_dataset import ParquetResults, parquet_bytes, rows_to_table
    from kaic.tracking import MlflowTracker

    profile = with_image(load_profile(args.profile), getattr(args, "image", None))
    config = module.make_config(args, profile)  # bad input fails here, before any work
    wiring = Wiring.resolve(args, profile)
    ensure_kaic_home()
    store = open_retrying(wiring.object_store, source="--object-store")
    results_store = open_retrying(wiring.results, source="--results")
    run_id = args.run_id or new_run_id()
    outbox = Outbox(wiring.kaic_home, run_id)
    platform = args.platform or profile.platform
    try:
        context = replace(load_context(store, run_id, platform), platform=platform)
    except ServiceUnavailable as exc:
        print(f"[{module.NAME}] {exc}; the run's context is not known, using a fresh one", file=sys.stderr)
        context = RunContext(run_id, SUITE_VERSION, datetime.now(UTC), platform)
    sink = ParquetResults(store, results_store)
    ctx = StepContext(context, profile, store, wiring.kaic_home, module.NAME, args.suite, sink, wiring.results)
    started = time.monotonic()
    ctx.log(f"run {run_id} · profile {profile.name} · platform {platform}")
    _flush(outbox, store, ctx)  # what an outage left behind earlier in the run
    outcomes = guarded(module.NAME, lambda: module.run(config, ctx))
    rows = stamp(outcomes, ctx.run, module.NAME, profile)
    key = ParquetResults.shard_key(run_id, module.NAME)
    local = outbox.put(key, parquet_bytes(rows_to_table(rows)))
    published = _flush(outbox, store, ctx)
    where = store.uri(key) if published else str(local)
    ctx.log(f"{len(rows)} rows staged at {where} in {time.monotonic() - started:.1f}s")
    # Optional hook, after staging, for a step that acts on the whole run (report): its exit code and the
    # run-wide files to log on the MLflow parent run.
    finish = getattr(module, "finish", None)
    code, artifacts = exit_code(rows), []
    if finish is not None:
        try:
            code, artifacts = finish(config, ctx)
        except ServiceUnavailable as exc:
            ctx.log(f"{module.NAME}: run-wide work not done: {exc}")
            code = max(code, 1)
    if not published:
        code = max(code, 1)
    tracker = MlflowTracker(wiring.mlflow_uri)
    tracker.log_step(ctx.run, module.NAME, rows)
    if artifacts:
        tracker.log_artifacts(ctx.run, artifacts)
    print_rows(rows)
    return rows, code


def _flush(outbox: Any, store: ObjectStore, ctx: StepContext) -> bool:
    """Publish the run's outbox; False (and one line saying where the rows wait) during an outage."""
    from kaic.errors import ServiceUnavailable

    if not outbox.pending():
        return True
    try:
        outbox.flush(store)
        return True
    except ServiceUnavailable as exc:
        left = outbox.pending()
        ctx.log(f"{exc}; {len(left)} row shard(s) kept on local disk at {outbox.root} until the store "
                f"is back (a later step, or `kaic sync {ctx.run.run_id}`, publishes them)")
        return False


def print_rows(rows: Sequence[ResultRow]) -> None:
    marks = {"passed": "PASS", "failed": "FAIL", "skipped": "skip", "error": "ERR "}
    for r in rows:
        value = f" = {r.value:g} {r.unit or ''}".rstrip() if r.value is not None else ""
        req = f" ({r.requirement_id})" if r.requirement_id else ""
        msg = f" — {r.message}" if r.message else ""
        print(f"  {marks[r.status.value]} {r.level.value:<6} {r.name}{req}{value}{msg}")
