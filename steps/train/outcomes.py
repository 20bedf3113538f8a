"""Rank 0's measurements (JSON) -> check outcomes. Pure: no I/O, so every verdict is unit-testable."""

from __future__ import annotations

from typing import Any

from kaic.results import Outcome, Status
from steps.train import collectives
from steps.train.launch import LaunchResult
from steps.train.model import floats_sha256


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f} ms"


def torch_outcomes(r: dict[str, Any], algo: str = "", proto: str = "") -> list[Outcome]:
    out: list[Outcome] = []
    backend = f"backend {r.get('backend')} on {r.get('world_size')} x {r.get('device_name') or r.get('device')}"
    ar = r.get("allreduce", {})
    out.append(Outcome.verdict("train.allreduce_correct", bool(ar.get("correct")),
                               f"{ar.get('detail', '')}; {backend}"))
    nccl = f"; NCCL algorithm {algo or 'unknown'}, protocol {proto or 'unknown'}" if r.get("backend") == "nccl" else ""
    for p in r.get("busbw", []):
        label = collectives.size_label(int(p["nbytes"]))
        note = f"{backend}; {_ms(p['time_s'])} per all-reduce{nccl}"
        for family in ("busbw", "algbw"):
            out.append(Outcome.measured("train.allreduce_busbw", f"allreduce_{family}_gbps@{label}",
                                        p[f"{family}_gbps"], "GB/s", note))
    if r.get("samples_per_s"):
        out.append(Outcome.measured("train.throughput", "train_samples_per_s", r["samples_per_s"], "samples/s",
                                    f"global batch {r.get('batch_size')}, {backend}"))
    if r.get("step_time_ms"):
        out.append(Outcome.measured("train.throughput", "train_step_time_ms", r["step_time_ms"], "ms", "median step"))
    out.append(mfu_outcome(r))
    out += loss_outcomes(r.get("losses", []), "train.loss_decreases", "train_loss_final")
    curve = r.get("loss_curve", [])
    for k, v in enumerate(curve):
        out.append(Outcome.measured("train.loss_curve", f"loss_curve@step{k}", v, "loss"))
    if curve:
        out.append(Outcome("train.loss_curve", Status.PASSED,
                           f"sha256 of the first {len(curve)} losses {floats_sha256(curve)} "
                           "(deterministic algorithms, seed, fixed data order; "
                           f"torch {r.get('versions', {}).get('torch')})"))
    if r.get("holdout_accuracy") is not None:
        out.append(Outcome.measured("train.holdout_accuracy", "holdout_accuracy", r["holdout_accuracy"], "ratio",
                                    "rank 0, exported TorchScript on CPU"))
    return out


def mfu_outcome(r: dict[str, Any]) -> Outcome:
    if r.get("device") != "cuda":
        return Outcome("train.throughput", Status.SKIPPED, "MFU is measured on GPUs only (workers ran on CPU)",
                       metric="train_mfu")
    if r.get("mfu") is None:
        return Outcome("train.throughput", Status.SKIPPED,
                       f"unknown accelerator {r.get('device_name')!r}: no peak FLOP/s in steps/train/peaks.py",
                       metric="train_mfu")
    return Outcome.measured("train.throughput", "train_mfu", r["mfu"], "ratio",
                            f"fp32 model FLOPs vs peak {r.get('peak_flops', 0) / 1e12:g} TFLOP/s "
                            f"x {r.get('world_size')}")


def loss_outcomes(losses: list[float], check_id: str, metric: str, window: int = 5) -> list[Outcome]:
    """Loss decreases: the mean of the last `window` losses is below the mean of the first `window`."""
    if len(losses) < 2:
        return [Outcome(check_id, Status.ERROR, f"only {len(losses)} loss value(s) recorded", metric=metric)]
    w = max(1, min(window, len(losses) // 2))
    first, last = sum(losses[:w]) / w, sum(losses[-w:]) / w
    return [Outcome.verdict(check_id, last < first, f"mean loss of the last {w} steps {last:.4f} vs the first {w} "
                            f"{first:.4f}", metric=metric, value=losses[-1], unit="loss")]


def checkpoint_write_outcome(r: dict[str, Any]) -> Outcome:
    writes = r.get("checkpoints", [])
    if not writes:
        return Outcome("train.checkpoint_write", Status.FAILED, "no checkpoint was written",
                       metric="checkpoint_write_mb_per_s")
    nbytes, secs = sum(w["bytes"] for w in writes), sum(w["seconds"] for w in writes)
    return Outcome("train.checkpoint_write", Status.PASSED,
                   f"{len(writes)} checkpoints of {writes[-1]['bytes']} bytes, manifest last",
                   metric="checkpoint_write_mb_per_s", value=nbytes / 1e6 / max(secs, 1e-9), unit="MB/s",
                   evidence=writes[-1]["uri"])


def resume_outcome(reference: dict[str, Any], resumed: LaunchResult, mode: str, k: int) -> Outcome:
    if not resumed.ok or resumed.result is None:
        return Outcome("train.resume", Status.FAILED, f"resumed run failed: {resumed.message}")
    got = resumed.result
    start = got.get("resumed_from", {}).get("step")
    if start != k:
        return Outcome("train.resume", Status.FAILED, f"resumed run started from step {start}, expected {k}")
    same = got.get("param_sha256") == reference.get("param_sha256")
    how = "after SIGKILL of a worker" if mode == "kill" else "in a fresh launch"
    return Outcome.verdict(
        "train.resume", same,
        f"resumed from checkpoint step {k} {how}; final parameters sha256 "
        f"{'equal' if same else 'DIFFER'}: {got.get('param_sha256', '')[:16]}… vs uninterrupted "
        f"{reference.get('param_sha256', '')[:16]}…", evidence=got.get("resumed_from", {}).get("uri"))


def tf_outcomes(r: dict[str, Any], accuracy_threshold: tuple[str, float] | None) -> list[Outcome]:
    out = []
    acc = r.get("holdout_accuracy")
    if acc is not None:
        if accuracy_threshold is None:
            out.append(Outcome.measured("train.tensorflow", "tf_holdout_accuracy", acc, "ratio"))
        else:
            op, value = accuracy_threshold
            ok = acc >= value if op == ">=" else acc > value
            out.append(Outcome.verdict("train.tensorflow", ok, f"TensorFlow {r.get('tf_version')}, "
                                       f"{r.get('world_size')} workers, MultiWorkerMirroredStrategy",
                                       metric="tf_holdout_accuracy", value=acc, unit="ratio",
                                       threshold=f"tf_holdout_accuracy {op} {value:g}"))
    if r.get("samples_per_s"):
        out.append(Outcome.measured("train.tensorflow", "tf_samples_per_s", r["samples_per_s"], "samples/s"))
    out += loss_outcomes(r.get("losses", []), "train.tensorflow", "tf_train_loss_final")
    return out
