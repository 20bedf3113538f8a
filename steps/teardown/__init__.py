"""The `teardown` step: runs whatever happened (the workflow's onExit), and may run twice.

1. On a cluster, delete every object labelled `kaic.dev/run-id=<run-id>` across the kinds kaic creates
   (`kinds.py`), in every namespace, and wait until none is left (deadline).
2. Locally (and in the teardown pod too), stop every process in the run's registry (`kaic.localproc`):
   SIGTERM to its process group, SIGKILL after a grace period; drop the stale records.
3. Check: no labelled object, no process of the run alive, no registered port still listening
   (`teardown.deleted`, with `teardown_time_s`); accelerators free again as provision recorded them
   (`teardown.capacity_reclaimed`, with `reclaim_time_s`). A refused deletion is a failed check.
4. Teardown runs after the report step (onExit), so once its own rows are staged it renders the run's
   reports again and republishes the run (`finish`): the reports and the results dataset then hold every
   step's rows, teardown's included. Its exit code is its own rows'.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from pydantic import Field

from kaic.cluster import ClusterClient
from kaic.errors import ServiceUnavailable
from kaic.profiles import Profile
from kaic.results import Outcome, Status, exit_code
from kaic.stepkit import StepConfig, StepContext, parse_config

NAME = "teardown"


class Config(StepConfig):
    deadline_s: float = Field(300, gt=0)  # for labelled objects to be gone
    grace_s: float = Field(10, ge=0)  # SIGTERM -> SIGKILL for local processes
    reclaim_timeout_s: float = Field(300, gt=0)  # for accelerators to be free again
    poll_s: float = Field(2, gt=0)


def configure(parser: argparse.ArgumentParser) -> None:
    g = parser.add_argument_group("teardown")
    g.add_argument("--deadline-s", type=float, default=300.0, help="wait for labelled objects to be gone")
    g.add_argument("--grace-s", type=float, default=10.0, help="SIGTERM to SIGKILL, local processes")
    g.add_argument("--reclaim-timeout-s", type=float, default=300.0, help="wait for accelerators to be free")


def make_config(args: argparse.Namespace, profile: Profile) -> Config:
    values = {
        "deadline_s": args.deadline_s,
        "grace_s": args.grace_s,
        "reclaim_timeout_s": args.reclaim_timeout_s,
    }
    return parse_config(Config, values, "kaic step teardown flags")


def finish(config: Config, ctx: StepContext) -> tuple[int, list[Path]]:
    """Reports and the published run include teardown's rows (when other steps of the run left rows)."""
    from steps import report

    assert ctx.sink is not None, "execute_step gives every step the run's result sink"
    staged = ctx.sink.staged(ctx.run.run_id)
    own = [r for r in staged if r.step == NAME]
    if all(r.step in (NAME, report.NAME) for r in staged):
        return exit_code(own), []  # teardown on its own: nothing to report on
    report.render(ctx, staged)
    return exit_code(own), report.publish(ctx)


def run(config: Config, ctx: StepContext) -> list[Outcome]:
    client = None
    if not ctx.profile.is_local:
        from kaic.cluster import connect

        k = ctx.profile.kubernetes
        client = connect(k.kubeconfig, k.context, k.in_cluster)
    return teardown(config, ctx, client)


def teardown(config: Config, ctx: StepContext, client: ClusterClient | None) -> list[Outcome]:
    """The core: local processes always, labelled objects when there is a cluster."""
    from steps.teardown import local

    run_id = ctx.run.run_id
    swept = local.sweep(run_id, ctx.kaic_home, config.grace_s)
    problems = [f"process {n} ({pids}) still alive" for n, pids in swept.alive.items()]
    problems += [f"port {p} still listening" for p in swept.listening]
    done = [f"stopped {n}" for n, ok in swept.stopped.items() if ok]
    elapsed = swept.elapsed_s
    if client is not None:
        from steps.teardown import cluster

        cs = cluster.sweep(client, run_id, config.deadline_s, config.poll_s)
        problems += cs.failures + [f"left: {x}" for x in cs.left]
        done.append(f"{cs.deleted} labelled objects deleted across {len(cs.kinds)} kinds")
        elapsed += cs.elapsed_s
    detail = "; ".join(done) or "nothing of the run was left to stop"
    deleted = Outcome(
        "teardown.deleted",
        Status.FAILED if problems else Status.PASSED,
        "; ".join(problems) if problems else f"nothing of run {run_id} is left ({detail})",
        metric="teardown_time_s",
        value=elapsed,
        unit="s",
    )
    return [deleted, reclaimed(config, ctx, client)]


def _fingerprint(ctx: StepContext) -> dict[str, Any] | None:
    from kaic.stores import ObjectNotFound

    try:
        fp = json.loads(ctx.store.get_bytes(ctx.key("provision", "fingerprint.json")))
    except (ObjectNotFound, FileNotFoundError):
        return None
    return fp if isinstance(fp, dict) else None


def reclaimed(config: Config, ctx: StepContext, client: ClusterClient | None) -> Outcome:
    from steps.teardown import capacity

    check = "teardown.capacity_reclaimed"
    where = ctx.store.uri(ctx.key("provision", "fingerprint.json"))
    try:
        fp = _fingerprint(ctx)
    except ServiceUnavailable as exc:  # teardown runs whatever the store's state
        return Outcome.skipped(check, f"cannot read the provision fingerprint: {exc}")
    if fp is None:
        return Outcome.skipped(
            check, f"no provision fingerprint at {where}: nothing to compare capacity with"
        )
    want = capacity.expected(fp)
    if want is None:
        return Outcome.skipped(
            check,
            f"{where} records no accelerator counts (no 'allocatable' map)",
        )
    if not any(want.values()):
        where_ = "CPU-only machine" if client is None else "cluster"
        return Outcome.skipped(check, f"{where_}: provision saw no free accelerator, so none to reclaim")
    if client is None:
        have = {capacity.LOCAL: float(capacity.local_gpu_count())}
        missing = capacity.shortfall({capacity.LOCAL: sum(want.values())}, have)
        waited = 0.0
    else:
        missing, waited = capacity.wait_cluster(client, ctx.run.run_id, want, config.reclaim_timeout_s, config.poll_s)
    if missing:
        gaps = ", ".join(f"{r}: {h:g} free of {w:g}" for r, (w, h) in missing.items())
        return Outcome(
            check,
            Status.FAILED,
            f"accelerators not back after {waited:.1f}s: {gaps}",
            metric="reclaim_time_s",
            value=waited,
            unit="s",
        )
    total = ", ".join(f"{r}: {w:g}" for r, w in want.items())
    return Outcome(
        check,
        Status.PASSED,
        f"accelerators free again as provision saw them ({total})",
        metric="reclaim_time_s",
        value=waited,
        unit="s",
    )
