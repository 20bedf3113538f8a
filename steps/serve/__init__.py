"""The `serve` step: serve the exported model with KServe and measure it over the V2 protocol.

Locally, KServe's ModelServer runs as a registered process on a free loopback port (`local.py`); on a
cluster, an InferenceService is created and waited on (`cluster.py`, builders in `isvc.py`). Either way
the step then checks prediction parity against the training side, drives a closed-loop load test at
each concurrency level (`loadgen.py`), and checks that the server's Prometheus metrics counted it
(`prom.py`). A run without an exported model gets every serve row `skipped`, naming the missing object
(train's own rows already say why it failed). See docs/serving.md.
"""

from __future__ import annotations

import argparse

from pydantic import Field, field_validator

from kaic.errors import ConfigError
from kaic.profiles import Profile
from kaic.results import Outcome, Status
from kaic.stepkit import StepConfig, StepContext, parse_config

NAME = "serve"


class Config(StepConfig):
    model_key: str | None = None  # object-store prefix of the exported model (default runs/<run-id>/model)
    concurrency: tuple[int, ...] = (1, 4, 16)
    warmup_s: float = Field(1.0, ge=0)
    duration_s: float = Field(3.0, gt=0)
    ready_timeout_s: float = Field(600, gt=0)
    request_timeout_s: float = Field(10, gt=0)
    max_requests: int = Field(1_000_000, ge=1)  # per level, on top of the duration bound
    batch: int = Field(1, ge=1)  # holdout rows per load-test request
    parity_batch: int = Field(32, ge=1)
    parity_rtol: float = Field(1e-3, ge=0)
    parity_atol: float = Field(1e-3, ge=0)
    workers: int = Field(1, ge=1)  # server processes; >1 splits /metrics across processes
    threads: int = Field(1, ge=1)  # torch threads per server process
    deployment_mode: str = "RawDeployment"

    @field_validator("concurrency")
    @classmethod
    def _levels(cls, v: tuple[int, ...]) -> tuple[int, ...]:
        if not v or any(c < 1 for c in v) or len(set(v)) != len(v):
            raise ValueError("needs distinct levels, each at least 1")
        return v


def _levels(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(x) for x in text.split(",") if x.strip())
    except ValueError:
        raise ConfigError(f"--concurrency {text!r}: expected comma-separated integers, e.g. 1,4,16") from None


def configure(parser: argparse.ArgumentParser) -> None:
    g = parser.add_argument_group("serve")
    g.add_argument("--model-key", help="object-store prefix of the model (default runs/<run-id>/model)")
    g.add_argument(
        "--concurrency", help="load-test levels, e.g. 1,4,16 (default: profile serving.concurrency)"
    )
    g.add_argument("--warmup-s", type=float, help="warm-up per level (default: profile serving.warmup_s)")
    g.add_argument(
        "--duration-s", type=float, help="measured time per level (default: profile serving.duration_s)"
    )
    g.add_argument(
        "--ready-timeout-s", type=float, help="deadline for the server to be Ready (default: profile)"
    )
    g.add_argument("--request-timeout-s", type=float, default=10.0)
    g.add_argument("--max-requests", type=int, default=1_000_000, help="per-level request cap")
    g.add_argument("--batch", type=int, default=1, help="rows per load-test request")
    g.add_argument("--workers", type=int, default=1, help="model server processes")
    g.add_argument("--threads", type=int, default=1, help="torch threads per server process")
    g.add_argument(
        "--deployment-mode",
        default="RawDeployment",
        help="KServe deployment mode annotation on a cluster (RawDeployment, Standard, Serverless)",
    )


def make_config(args: argparse.Namespace, profile: Profile) -> Config:
    s = profile.serving
    values = {
        "model_key": args.model_key,
        "concurrency": _levels(args.concurrency) if args.concurrency else s.concurrency,
        "warmup_s": s.warmup_s if args.warmup_s is None else args.warmup_s,
        "duration_s": s.duration_s if args.duration_s is None else args.duration_s,
        "ready_timeout_s": s.timeout_s if args.ready_timeout_s is None else args.ready_timeout_s,
        "request_timeout_s": args.request_timeout_s,
        "max_requests": args.max_requests,
        "batch": args.batch,
        "workers": args.workers,
        "threads": args.threads,
        "deployment_mode": args.deployment_mode,
    }
    return parse_config(Config, values, "kaic step serve (flags and profile serving)")


def run(config: Config, ctx: StepContext) -> list[Outcome]:
    from steps.serve.exercise import LoadPlan, not_run
    from steps.serve.export import ModelMissingError, fetch_model

    prefix = config.model_key or ctx.key("model")
    try:
        model = fetch_model(ctx.store, prefix, ctx.work_dir / "model")
    except ModelMissingError as exc:
        return [
            Outcome.skipped("serve.ready", str(exc)),
            Outcome.skipped("serve.gateway_route", str(exc)),
            *not_run(str(exc)),
        ]
    ctx.log(f"model {model.name!r} ({model.width} features) from {ctx.store.uri(prefix)}")
    plan = LoadPlan(
        config.concurrency,
        config.warmup_s,
        config.duration_s,
        config.request_timeout_s,
        config.max_requests,
        config.batch,
        config.parity_batch,
        config.parity_rtol,
        config.parity_atol,
    )
    if ctx.profile.is_local:
        from steps.serve.local import serve_locally

        local = serve_locally(
            model,
            plan,
            run_id=ctx.run.run_id,
            home=ctx.kaic_home,
            work_dir=ctx.work_dir,
            ready_timeout_s=config.ready_timeout_s,
            workers=config.workers,
            threads=config.threads,
            log=ctx.log,
        )
        return [*local, Outcome.skipped(
            "serve.metrics_collected",
            "local platform: no monitoring system collects metrics here (serve.service_metrics shows the "
            "server exposes them; a cluster's Prometheus must collect them for ai_service_metrics)",
        )]
    storage_uri = ctx.store.uri(prefix)
    if storage_uri.startswith("file://"):
        reason = (
            f"model at {storage_uri}: a file:// object store is not reachable from KServe's storage "
            "initializer; configure an s3:// object store for cluster profiles"
        )
        return [
            Outcome("serve.ready", Status.ERROR, reason),
            Outcome.skipped("serve.gateway_route", reason),
            *not_run(reason),
        ]
    from kaic.cluster import connect
    from steps.serve.cluster import ClusterServing, serve_on_cluster

    k = ctx.profile.kubernetes
    client = connect(k.kubeconfig, k.context, k.in_cluster)
    cfg = ClusterServing(
        k.namespace,
        ctx.run.run_id,
        storage_uri,
        config.ready_timeout_s,
        config.deployment_mode,
        config.workers,
        config.threads,
    )
    return serve_on_cluster(client, model, plan, cfg, ctx.profile, ctx.log)
