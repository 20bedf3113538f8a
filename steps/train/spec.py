"""What one training worker is told to do: a flat, typed spec that crosses process (and pod) boundaries
as command-line flags. The launcher builds it; `worker.py` / `tf_worker.py` parse it. Pure."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import MISSING, dataclass, fields
from typing import Any

_PARSERS: dict[str, Callable[[str], Any]] = {"int": int, "float": float, "bool": lambda s: bool(int(s))}


@dataclass(frozen=True)
class WorkerSpec:
    store_uri: str  # the object store holding the dataset and receiving results/exports
    dataset_key: str  # Parquet key in that store
    result_key: str  # rank 0 writes its measurements (JSON) here
    checkpoint_uri: str = ""  # "" = no checkpoints
    checkpoint_every: int = 0
    resume: bool = False
    steps: int = 60
    batch_size: int = 64  # global; each of the world's ranks takes batch_size / world_size
    lr: float = 0.01
    hidden: int = 128
    seed: int = 0
    loss_curve_steps: int = 10
    sweep_bytes: str = ""  # comma-separated all-reduce message sizes; "" = no sweep
    sweep_iters: int = 10
    accelerators_per_worker: int = 0
    export_prefix: str = ""  # "" = no model export; else e.g. runs/<id>/model
    pid_dir: str = ""  # local only: each rank writes <pid_dir>/rank-<r>.pid (the launcher's kill check)
    fault_hold_at_step: int = -1  # fault injection: after checkpoint k, hold (<=120 s) so a worker can be killed

    def to_argv(self) -> list[str]:
        out = []
        for f in fields(self):
            v = getattr(self, f.name)
            out += [f"--{f.name.replace('_', '-')}", str(int(v)) if isinstance(v, bool) else str(v)]
        return out

    @staticmethod
    def parser() -> argparse.ArgumentParser:
        p = argparse.ArgumentParser(description="kaic training worker (started by the train step's launcher)")
        for f in fields(WorkerSpec):
            kind: Callable[[str], Any] = _PARSERS.get(str(f.type), str)
            required = f.default is MISSING
            p.add_argument(f"--{f.name.replace('_', '-')}", dest=f.name, type=kind, required=required,
                           default=None if required else f.default)
        return p

    @staticmethod
    def from_argv(argv: list[str]) -> WorkerSpec:
        ns = WorkerSpec.parser().parse_args(argv)
        return WorkerSpec(**vars(ns))

    @property
    def sweep_sizes(self) -> list[int]:
        return [int(s) for s in self.sweep_bytes.split(",") if s.strip()]
