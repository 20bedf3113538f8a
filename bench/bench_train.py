"""Train-step benchmark: kaic's figures side by side with a bare baseline on the same machine, in one run.

    .venv/bin/python bench/bench_train.py [--world-size 2] [--steps 300] [--ckpt-mb 64]

1. training throughput: kaic's worker (steps/train/worker.py under torchrun, no sweep, no checkpoints)
   vs a bare DDP loop (same model, data, batch and world size) in the same kind of torchrun launch;
2. checkpoint write: kaic.checkpoint.write (sha256 + objects + manifest) vs a raw put of the same bytes
   to the same object store;
3. all-reduce bus bandwidth: kaic's sweep (steps/train/collectives.py) vs a bare torch.distributed
   loop, in the same process group, same sizes and iterations.
Ratios are kaic / baseline (aims: >= 0.9, >= 0.9, within 5%). Figures only, never assertions.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

SIZES = (1 << 20, 4 << 20, 16 << 20)
ROUNDS = 5  # alternating bare/kaic all-reduce rounds per size


def bare_worker(out: Path, steps: int, batch: int, iters: int, store_uri: str) -> None:
    """Runs under torchrun: a bare DDP loop, then bare and kaic all-reduce timings."""
    import numpy as np
    import torch
    import torch.distributed as dist

    from kaic.stores.objects import open_store
    from steps import digits
    from steps.train import collectives, model

    dist.init_process_group("gloo")
    torch.set_num_threads(1)
    rank, world = dist.get_rank(), dist.get_world_size()
    data = digits.arrays(open_store(store_uri, source="bench").get_bytes("runs/bench/data/digits.parquet"))
    torch.manual_seed(0)
    net = model.build(128)
    ddp = torch.nn.parallel.DistributedDataParallel(net)
    opt = torch.optim.Adam(net.parameters(), lr=0.01)
    x, y = torch.from_numpy(data.x_train), torch.from_numpy(data.y_train)
    rng = np.random.default_rng(0)
    times = []
    for _ in range(steps):
        t0 = time.perf_counter()
        idx = torch.from_numpy(rng.choice(len(y), batch, replace=False)[rank::world])
        loss = torch.nn.functional.cross_entropy(ddp(x[idx]), y[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
        times.append(time.perf_counter() - t0)
    bare_sps = batch * (steps - 1) / sum(times[1:])

    device = torch.device("cpu")
    bare_bw, kaic_bw = {}, {}
    for size in SIZES:
        # Alternate bare and kaic rounds so drift in machine load hits both, and take each one's median.
        # The bare loop's time is the slowest rank's, as nccl-tests reports it (and as kaic's sweep does).
        bare_t, kaic_t = [], []
        buf = torch.ones(size // 4)
        for _ in range(ROUNDS):
            for _ in range(3):
                dist.all_reduce(buf)
            dist.barrier()
            t0 = time.perf_counter()
            for _ in range(iters):
                dist.all_reduce(buf)
            slowest = torch.tensor([(time.perf_counter() - t0) / iters], dtype=torch.float64)
            dist.all_reduce(slowest, op=dist.ReduceOp.MAX)
            bare_t.append(float(slowest.item()))
            kaic_t.append(collectives.time_allreduce(size, iters, device))
        factor = collectives.bus_factor(world)
        bare_bw[size] = size / statistics.median(bare_t) / 1e9 * factor
        kaic_bw[size] = size / statistics.median(kaic_t) / 1e9 * factor
    if rank == 0:
        out.write_text(json.dumps({"bare_sps": bare_sps, "bare_bw": bare_bw, "kaic_bw": kaic_bw}))
    dist.destroy_process_group()


def checkpoint_bench(store_uri: str, mb: int, repeats: int) -> tuple[float, float]:
    import numpy as np

    from kaic import checkpoint
    from kaic.stores.objects import open_store

    store = open_store(store_uri, source="bench")
    data = np.random.default_rng(0).bytes(mb << 20)
    kaic_s, raw_s = [], []
    for i in range(repeats):  # interleaved, so both see the same page-cache and disk state
        t0 = time.perf_counter()
        store.put_bytes(f"raw/{i}/state.pt", data)
        raw_s.append(time.perf_counter() - t0)
        _, wrote = checkpoint.write(store, i, {"state.pt": data}, world_size=1, framework="bench")
        kaic_s.append(wrote.seconds)
        store.delete(f"raw/{i}/state.pt")
        for key in store.list(checkpoint.step_prefix(i)):
            store.delete(key)
    size = len(data) / 1e6
    return size / statistics.median(kaic_s), size / statistics.median(raw_s)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    p.add_argument("--world-size", type=int, default=2)
    p.add_argument("--steps", type=int, default=300)
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--iters", type=int, default=20)
    p.add_argument("--ckpt-mb", type=int, default=64)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--worker", type=Path, help=argparse.SUPPRESS)
    p.add_argument("--store", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.worker:
        bare_worker(args.worker, args.steps, args.batch, args.iters, args.store)
        return 0

    from kaic.stores.objects import open_store
    from steps import digits
    from steps.train.local import LocalLauncher, free_port, worker_environ
    from steps.train.spec import WorkerSpec

    with tempfile.TemporaryDirectory(prefix="kaic-bench-") as tmp:
        os.environ.setdefault("KAIC_HOME", str(Path(tmp) / "home"))
        store_uri = f"file://{tmp}/objects"
        store = open_store(store_uri, source="bench")
        key = digits.ensure_uploaded(store, "bench")
        spec = WorkerSpec(store_uri, key, "runs/bench/train/kaic.json", steps=args.steps, batch_size=args.batch)
        res = LocalLauncher("bench", store, Path(tmp), 600).launch(spec, args.world_size, "kaic")
        if not res.ok or res.result is None:
            print(f"kaic worker failed: {res.message}", file=sys.stderr)
            return 1
        kaic_sps = float(res.result["samples_per_s"])

        out = Path(tmp) / "bare.json"
        cmd = [sys.executable, "-m", "torch.distributed.run", "--nnodes", "1", "--nproc-per-node",
               str(args.world_size), "--rdzv-backend", "c10d", "--rdzv-endpoint", f"127.0.0.1:{free_port()}",
               str(Path(__file__).resolve()), "--worker", str(out), "--store", store_uri, "--steps", str(args.steps),
               "--batch", str(args.batch), "--iters", str(args.iters)]
        subprocess.run(cmd, check=True, env=worker_environ(os.environ), cwd=ROOT, stdout=subprocess.DEVNULL)
        bare = json.loads(out.read_text())
        ck_kaic, ck_raw = checkpoint_bench(store_uri, args.ckpt_mb, args.repeats)

    rows = [("train samples/s (DDP, gloo)", kaic_sps, bare["bare_sps"], ">= 0.9")]
    rows.append((f"checkpoint write MB/s ({args.ckpt_mb} MiB, file://)", ck_kaic, ck_raw, ">= 0.9"))
    for size in SIZES:
        label = f"all-reduce busbw GB/s @ {size >> 20} MiB"
        rows.append((label, bare["kaic_bw"][str(size)], bare["bare_bw"][str(size)], "0.95..1.05"))
    print(f"world size {args.world_size}, {args.steps} steps of batch {args.batch}, {os.cpu_count()} CPUs")
    print(f"{'figure':<44} {'kaic':>12} {'baseline':>12} {'ratio':>7}  aim")
    for name, k, b, aim in rows:
        print(f"{name:<44} {k:>12.4g} {b:>12.4g} {k / b:>7.3f}  {aim}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
