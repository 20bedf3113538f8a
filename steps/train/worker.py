"""One PyTorch training worker (a torchrun process locally, a pod's process on a cluster). Same code everywhere.

    python -m torch.distributed.run --nproc-per-node N ... -m steps.train.worker --store-uri ... (WorkerSpec flags)

Joins the process group (gloo on CPU, NCCL on GPUs), checks all-reduce, sweeps its bandwidth, trains the
MLP with DDP under deterministic settings, checkpoints through kaic.checkpoint (rank 0, manifest last),
resumes from the newest valid checkpoint when asked, evaluates on the holdout set, exports the model
(rank 0) and writes its measurements as JSON to the object store for the launcher.
"""

from __future__ import annotations

import io
import json
import os
import platform
import sys
import time
import warnings
from pathlib import Path
from typing import Any

from kaic import checkpoint
from kaic.stores.objects import open_store
from steps import digits
from steps.train import collectives, export, model, peaks
from steps.train.spec import WorkerSpec

HOLD_LIMIT_S = 120.0  # a fault-injection hold never outlives a lost launcher for long


def _device(spec: WorkerSpec, rank: int) -> Any:
    import torch

    if spec.accelerators_per_worker > 0:
        if not torch.cuda.is_available():
            raise RuntimeError("accelerators requested per worker, but torch.cuda.is_available() is False")
        index = rank % torch.cuda.device_count()
        torch.cuda.set_device(index)
        return torch.device("cuda", index)
    return torch.device("cpu")


def _deterministic(device: Any) -> None:
    import torch

    torch.use_deterministic_algorithms(True)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = False
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False


def versions() -> dict[str, str]:
    import numpy
    import torch

    return {"torch": torch.__version__, "numpy": numpy.__version__, "python": platform.python_version(),
            "cuda": str(torch.version.cuda or "")}


def _state_bytes(net: Any, opt: Any, step: int, spec: WorkerSpec) -> bytes:
    import torch

    buf = io.BytesIO()
    torch.save({"model": net.state_dict(), "optimizer": opt.state_dict(), "step": step,
                "seed": spec.seed}, buf)
    return buf.getvalue()


def _load_state(data: bytes, net: Any, opt: Any) -> int:
    import torch

    state = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    net.load_state_dict(state["model"])
    opt.load_state_dict(state["optimizer"])
    return int(state["step"])


def _mean_over_ranks(values: list[Any], world: int, device: Any) -> list[float]:
    """One all-reduce for the whole loss curve instead of a synchronizing one per step."""
    import torch
    import torch.distributed as dist

    if not values:
        return []
    stacked = torch.stack(values).to(device)
    dist.all_reduce(stacked)
    return [float(v) / world for v in stacked.cpu().tolist()]


def train(spec: WorkerSpec) -> dict[str, Any]:
    import torch
    import torch.distributed as dist

    rank, world = dist.get_rank(), dist.get_world_size()
    device = _device(spec, rank)
    store = open_store(spec.store_uri, source="worker --store-uri")
    data = digits.arrays(store.get_bytes(spec.dataset_key))
    result: dict[str, Any] = {"framework": "torch", "backend": dist.get_backend(), "world_size": world,
                              "device": device.type, "versions": versions()}
    cpu_name = platform.processor() or "cpu"
    result["device_name"] = torch.cuda.get_device_name(device) if device.type == "cuda" else cpu_name

    ok, detail = collectives.check_allreduce(device)
    result["allreduce"] = {"correct": ok, "detail": detail}
    if spec.sweep_sizes:
        result["busbw"] = [p.to_json() for p in collectives.sweep(spec.sweep_sizes, spec.sweep_iters, device)]

    torch.manual_seed(spec.seed)
    net = model.build(spec.hidden).to(device)
    opt = torch.optim.Adam(net.parameters(), lr=spec.lr)
    ck_store = open_store(spec.checkpoint_uri, source="--checkpoint-uri") if spec.checkpoint_uri else None
    start = 0
    if spec.resume and ck_store is not None:
        found = checkpoint.newest(ck_store)
        if found is not None:
            _, objects, read = checkpoint.read(ck_store, found.step)  # refuses a corrupt one
            start = _load_state(objects["state.pt"], net, opt)
            result["resumed_from"] = {"step": start, "bytes": read.nbytes, "seconds": read.seconds,
                                      "uri": ck_store.uri(checkpoint.step_prefix(start))}
    ddp = torch.nn.parallel.DistributedDataParallel(net, device_ids=[device.index] if device.type == "cuda" else None)
    x_train = torch.from_numpy(data.x_train).to(device)
    y_train = torch.from_numpy(data.y_train).to(device)

    local_losses: list[Any] = []  # this rank's losses; averaged over ranks once, after training
    step_times: list[float] = []
    writes: list[dict[str, Any]] = []
    for step in range(start, spec.steps):
        t0 = time.perf_counter()
        idx = torch.from_numpy(model.rank_slice(
            model.batch_indices(step, len(data.y_train), spec.batch_size, spec.seed), rank, world)).to(device)
        loss = torch.nn.functional.cross_entropy(ddp(x_train[idx]), y_train[idx])
        opt.zero_grad(set_to_none=True)
        loss.backward()  # type: ignore[no-untyped-call]
        opt.step()
        local_losses.append(loss.detach())
        step_times.append(time.perf_counter() - t0)
        done = step + 1
        due = done == spec.steps or (spec.checkpoint_every and done % spec.checkpoint_every == 0)
        if ck_store is not None and due:
            if rank == 0:
                _, wrote = checkpoint.write(
                    ck_store, done, {"state.pt": _state_bytes(net, opt, done, spec)}, world_size=world,
                    framework="pytorch", versions=versions(),
                    extra={"seed": spec.seed, "batch_size": spec.batch_size, "lr": spec.lr, "hidden": spec.hidden})
                writes.append({"step": done, "bytes": wrote.nbytes, "seconds": wrote.seconds,
                               "uri": ck_store.uri(checkpoint.step_prefix(done))})
            dist.barrier()
        if done == spec.fault_hold_at_step:
            dist.barrier()
            time.sleep(HOLD_LIMIT_S)  # the launcher SIGKILLs a worker now; surviving ranks are torn down

    losses = _mean_over_ranks(local_losses, world, device)
    timed = step_times[1:] or step_times
    result.update({
        "start_step": start, "steps": spec.steps, "batch_size": spec.batch_size,
        "losses": losses, "loss_curve": losses[: spec.loss_curve_steps] if start == 0 else [],
        "step_time_ms": 1000 * sorted(timed)[len(timed) // 2] if timed else None,
        "samples_per_s": spec.batch_size * len(timed) / sum(timed) if timed else None,  # global batch
        "flops_per_sample": model.flops_per_sample(spec.hidden),
        "checkpoints": writes,
        "param_sha256": model.state_sha256(net.state_dict()),
    })
    if device.type == "cuda":
        peak = peaks.peak_flops(result["device_name"], "fp32")
        result["peak_flops"] = peak
        if peak and result["samples_per_s"]:
            result["mfu"] = peaks.mfu(result["samples_per_s"], result["flops_per_sample"], peak, world)
    if rank == 0:
        holdout = export.holdout_eval(net, data)
        result["holdout_accuracy"] = holdout.accuracy
        if spec.export_prefix:
            result["export"] = export.write(store, spec.export_prefix, net, holdout, versions())
    return result


def main(argv: list[str] | None = None) -> int:
    import torch
    import torch.distributed as dist

    from kaic.localproc import die_with_parent

    die_with_parent()  # a worker never outlives its torchrun agent (no orphans after a SIGKILL)
    spec = WorkerSpec.from_argv(list(sys.argv[1:] if argv is None else argv))
    backend = "nccl" if spec.accelerators_per_worker > 0 and torch.cuda.is_available() else "gloo"
    dist.init_process_group(backend)
    rank = dist.get_rank()
    if spec.pid_dir:
        Path(spec.pid_dir).mkdir(parents=True, exist_ok=True)
        (Path(spec.pid_dir) / f"rank-{rank}.pid").write_text(str(os.getpid()))
    torch.set_num_threads(1)  # N workers share the machine's cores; also keeps CPU reductions in one order
    _deterministic(torch.device("cuda" if backend == "nccl" else "cpu"))
    warnings.filterwarnings("ignore", category=DeprecationWarning, module="torch")
    try:
        result = train(spec)
        if rank == 0:
            open_store(spec.store_uri, source="worker --store-uri").put_bytes(
                spec.result_key, json.dumps(result, indent=1, default=float).encode())
    finally:
        dist.destroy_process_group()
    return 0


if __name__ == "__main__":
    sys.exit(main())
