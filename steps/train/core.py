"""The train step's core: pick a launcher, run the workers, turn their reports into outcomes.

Launches (each a full set of workers): `torch` (the main run: checks, sweep, checkpoints, export), then
the resume check: `restart` copies checkpoint k of the main run to a sibling prefix and resumes from it
in a fresh launch; `kill` trains from scratch into that prefix, SIGKILLs a worker once checkpoint k
appears, then resumes. Either must end with parameters bitwise equal to the main run's. `tensorflow`
runs the MultiWorkerMirroredStrategy twin when asked.
"""

from __future__ import annotations

import json
import sys
from dataclasses import replace
from pathlib import Path

from kaic import checkpoint
from kaic.results import Outcome, Status
from kaic.stepkit import StepContext
from kaic.stores import ObjectStore
from kaic.stores.objects import open_store
from steps import digits
from steps.train import Config, outcomes
from steps.train.launch import Launcher, LaunchResult
from steps.train.spec import WorkerSpec


def make_launcher(config: Config, ctx: StepContext, tensorflow: bool = False) -> Launcher:
    from steps.train.local import LocalLauncher, LocalTFLauncher

    if config.launcher == "local":
        if tensorflow:
            return LocalTFLauncher(ctx.run.run_id, ctx.store, ctx.work_dir, config.timeout_s,
                                   python=config.tf_python or sys.executable)
        return LocalLauncher(ctx.run.run_id, ctx.store, ctx.work_dir, config.timeout_s)
    from kaic import cluster
    from steps.train.cluster import ClusterLauncher

    k = ctx.profile.kubernetes
    client = cluster.connect(kubeconfig=k.kubeconfig, context=k.context, in_cluster=k.in_cluster)
    return ClusterLauncher(client, ctx.run.run_id, ctx.profile, ctx.store, config.timeout_s, kind=config.launcher)


def base_spec(config: Config, ctx: StepContext, dataset_key: str, checkpoint_uri: str, name: str) -> WorkerSpec:
    return WorkerSpec(
        store_uri=ctx.store.base_uri, dataset_key=dataset_key, result_key=ctx.key("train", f"{name}.json"),
        checkpoint_uri=checkpoint_uri, checkpoint_every=config.checkpoint_every, steps=config.steps,
        batch_size=config.batch_size, lr=config.lr, hidden=config.hidden, seed=config.seed,
        loss_curve_steps=config.loss_curve_steps, sweep_iters=config.sweep_iters,
        accelerators_per_worker=config.accelerators_per_worker,
    )


def train_step(config: Config, ctx: StepContext, launcher: Launcher | None = None,
               tf_launcher: Launcher | None = None) -> list[Outcome]:
    dataset_key = digits.ensure_uploaded(ctx.store, ctx.run.run_id)
    ck_uri = config.checkpoint_uri or ctx.store.uri(ctx.key("checkpoints"))
    out: list[Outcome] = []
    if config.framework in ("torch", "both"):
        out += torch_run(config, ctx, launcher or make_launcher(config, ctx), dataset_key, ck_uri)
    else:
        out.append(Outcome.skipped("train.workers", f"--framework {config.framework}: PyTorch not run"))
    if config.framework in ("tensorflow", "both"):
        out += tensorflow_run(config, ctx, tf_launcher, dataset_key)
    else:
        out.append(Outcome.skipped("train.tensorflow", "--framework torch: TensorFlow variant not run "
                                   "(--framework both, or the full suite, runs it)"))
    return out


def torch_run(config: Config, ctx: StepContext, launcher: Launcher, dataset_key: str, ck_uri: str) -> list[Outcome]:
    ck_store = open_store(ck_uri, source="--checkpoint-uri")
    if config.resume:  # refuse a corrupt newest checkpoint here, with a clear message, before any launch
        try:
            found = checkpoint.newest(ck_store)
            if found is not None:
                checkpoint.read(ck_store, found.step)
        except checkpoint.CheckpointError as exc:
            return [Outcome("train.checkpoint_read", Status.FAILED, f"--resume refused: {exc}")]
    spec = replace(base_spec(config, ctx, dataset_key, ck_uri, "torch"), resume=config.resume,
                   sweep_bytes=",".join(str(s) for s in config.sweep_sizes), export_prefix=ctx.key("model"))
    ctx.log(f"launching {config.world_size} PyTorch workers ({launcher.kind}); checkpoints to {ck_uri}")
    main = launcher.launch(spec, config.world_size, "torch")
    if not main.ok or main.result is None:
        return [Outcome("train.workers", Status.FAILED, main.message or "no result from rank 0",
                        metric="train_launch_wall_s", value=main.seconds, unit="s")]
    r = main.result
    ctx.store.put_bytes(ctx.key("train", "torch-losses.json"), json.dumps(r.get("losses", [])).encode())
    out = [Outcome.verdict("train.workers", True, f"{config.world_size} workers via {launcher.kind}"
                           + (f", resumed from step {r['resumed_from']['step']}" if r.get("resumed_from") else ""),
                           metric="train_launch_wall_s", value=main.seconds, unit="s", evidence=main.logs[0]
                           if main.logs else None)]
    algo, proto = _nccl(ctx.work_dir) if r.get("backend") == "nccl" else ("", "")
    out += outcomes.torch_outcomes(r, algo, proto)
    out.append(outcomes.checkpoint_write_outcome(r))
    out.append(read_back(ck_store))
    out.append(export_outcome(ctx.store, r))
    out.append(resume_check(config, ctx, launcher, dataset_key, ck_uri, ck_store, r))
    return out


def _nccl(work_dir: Path) -> tuple[str, str]:
    from steps.train.collectives import nccl_algo_proto

    logs = sorted(work_dir.glob("*.nccl.*.log"))
    return nccl_algo_proto({}, logs[0] if logs else None)


def read_back(ck_store: ObjectStore) -> Outcome:
    """Read the newest checkpoint back, verifying every checksum: `checkpoint_read_mb_per_s`."""
    try:
        found = checkpoint.newest(ck_store)
        if found is None:
            return Outcome("train.checkpoint_read", Status.FAILED, f"no checkpoint under {ck_store.base_uri}")
        manifest, _, read = checkpoint.read(ck_store, found.step)
    except checkpoint.CheckpointError as exc:
        return Outcome("train.checkpoint_read", Status.FAILED, str(exc), metric="checkpoint_read_mb_per_s")
    return Outcome("train.checkpoint_read", Status.PASSED,
                   f"step {manifest.step}: {len(manifest.objects)} object(s), {read.nbytes} bytes, sha256 verified",
                   metric="checkpoint_read_mb_per_s", value=read.mb_per_s, unit="MB/s",
                   evidence=ck_store.uri(f"{checkpoint.step_prefix(manifest.step)}/{checkpoint.MANIFEST}"))


def export_outcome(store: ObjectStore, r: dict[str, object]) -> Outcome:
    uris = r.get("export")
    if not isinstance(uris, dict):
        return Outcome("train.model_export", Status.FAILED, "rank 0 reported no export")
    base = store.base_uri.rstrip("/") + "/"
    missing = [u for u in uris.values() if not store.exists(str(u)[len(base):])]
    if missing:
        return Outcome("train.model_export", Status.FAILED, f"missing: {', '.join(map(str, missing))}")
    return Outcome("train.model_export", Status.PASSED,
                   "model.pt (TorchScript), model.json, holdout_predictions.parquet",
                   evidence=str(uris.get("meta")))


def resume_check(config: Config, ctx: StepContext, launcher: Launcher, dataset_key: str, ck_uri: str,
                 ck_store: ObjectStore, reference: dict[str, object]) -> Outcome:
    if config.resume_check == "off":
        return Outcome.skipped("train.resume", "--resume-check off")
    if reference.get("resumed_from"):
        return Outcome.skipped("train.resume", "the main run itself resumed (--resume): no uninterrupted reference")
    k = config.checkpoint_every
    probe_uri = ck_uri.rstrip("/") + "-resume-check"
    probe_store = open_store(probe_uri, source="--checkpoint-uri")
    for key in probe_store.list(""):  # a clean prefix: resume must find exactly what this check put there
        probe_store.delete(key)
    spec = base_spec(config, ctx, dataset_key, probe_uri, "resume")
    if config.resume_check == "kill":
        ctx.log(f"resume check: training from scratch, killing a worker after checkpoint {k}")
        killed = launcher.launch(replace(spec, result_key=ctx.key("train", "killed.json"), fault_hold_at_step=k),
                                 config.world_size, "killed", kill_after_checkpoint=k)
        if not killed.killed:
            return Outcome("train.resume", Status.ERROR, f"no worker was killed after checkpoint {k}: "
                           f"{killed.message or 'the run finished first'}")
        if killed.ok:
            return Outcome("train.resume", Status.ERROR, f"{killed.killed}, yet the launch reported success")
    else:
        _, objects, _ = checkpoint.read(ck_store, k)
        manifest = checkpoint.read_manifest(ck_store, k)
        checkpoint.write(probe_store, k, objects, world_size=manifest.world_size, framework=manifest.framework,
                         versions=manifest.versions, extra=manifest.extra)
    ctx.log(f"resume check: resuming from checkpoint {k} ({config.resume_check})")
    resumed: LaunchResult = launcher.launch(replace(spec, resume=True), config.world_size, "resumed")
    return outcomes.resume_outcome(reference, resumed, config.resume_check, k)


def tensorflow_run(config: Config, ctx: StepContext, launcher: Launcher | None, dataset_key: str) -> list[Outcome]:
    if launcher is None:
        if config.launcher != "local":
            return [Outcome.skipped("train.tensorflow", f"the TensorFlow variant runs with the local launcher only; "
                                    f"launcher {config.launcher} not supported for it yet")]
        from steps.train.local import tf_python_ready

        why = tf_python_ready(config.tf_python or sys.executable)
        if why:
            return [Outcome.skipped("train.tensorflow", why)]
        launcher = make_launcher(config, ctx, tensorflow=True)
    spec = base_spec(config, ctx, dataset_key, "", "tensorflow")
    ctx.log(f"launching {config.world_size} TensorFlow workers (MultiWorkerMirroredStrategy)")
    res = launcher.launch(spec, config.world_size, "tensorflow")
    if not res.ok or res.result is None:
        return [Outcome("train.tensorflow", Status.FAILED, res.message or "no result from the chief")]
    threshold = next(((t.op, t.value) for t in ctx.profile.thresholds_for("holdout_accuracy")), None)
    return outcomes.tf_outcomes(res.result, threshold)
