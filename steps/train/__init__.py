"""The `train` step: a launcher. Workers (steps/train/worker.py) do the training; this turns what they
report into check rows.

    kaic step train [--world-size N] [--steps N] [--checkpoint-uri URI] [--checkpoint-every K] [--resume]
                    [--framework torch|tensorflow|both] [--accelerators-per-worker G] [--resume-check ...]

Locally it starts torchrun (gloo on CPU, NCCL on GPUs); on a cluster it applies an Indexed Job +
headless Service or a Kubeflow TrainJob (profile `training.launcher`) and waits with a deadline.
See docs/training.md for the checks, the checkpoint format and the model export contract.
"""

from __future__ import annotations

import argparse
from typing import Literal

from pydantic import Field, model_validator

from kaic.profiles import Profile
from kaic.results import Outcome
from kaic.stepkit import StepConfig, StepContext, parse_config

NAME = "train"

CPU_SWEEP_MAX = 4 << 20
GPU_SWEEP_MAX = 256 << 20


class Config(StepConfig):
    world_size: int = Field(2, ge=1, le=1024)
    steps: int = Field(60, ge=2)
    batch_size: int = Field(64, ge=1)
    lr: float = Field(0.01, gt=0)
    hidden: int = Field(128, ge=1)
    seed: int = 0
    checkpoint_uri: str | None = None  # None: the run's object store, runs/<run-id>/checkpoints
    checkpoint_every: int = Field(20, ge=0)
    resume: bool = False
    framework: Literal["torch", "tensorflow", "both"] = "torch"
    accelerators_per_worker: int = Field(0, ge=0)
    launcher: Literal["local", "job", "trainjob"] = "local"
    resume_check: Literal["off", "restart", "kill"] = "restart"
    sweep_max_bytes: int = Field(CPU_SWEEP_MAX, ge=0)
    sweep_iters: int = Field(10, ge=1)
    loss_curve_steps: int = Field(10, ge=0)
    timeout_s: float = Field(1800, gt=0)
    tf_python: str | None = None  # interpreter for TF workers (KAIC_TF_PYTHON), None: this one

    @model_validator(mode="after")
    def _cross_field(self) -> Config:
        if self.batch_size % self.world_size:
            raise ValueError(f"batch size {self.batch_size} is not a multiple of world size {self.world_size}")
        if self.resume_check != "off" and not 0 < self.checkpoint_every < self.steps:
            raise ValueError(f"the resume check needs 0 < checkpoint-every ({self.checkpoint_every}) < steps "
                             f"({self.steps}); pass --resume-check off otherwise")
        return self

    @property
    def sweep_sizes(self) -> list[int]:
        """1 KiB, 4 KiB, ... (x4) up to sweep_max_bytes."""
        out, size = [], 1024
        while size <= self.sweep_max_bytes:
            out.append(size)
            size *= 4
        return out


def configure(parser: argparse.ArgumentParser) -> None:
    g = parser.add_argument_group("train")
    g.add_argument("--world-size", type=int, help="workers (default: the profile's training.world_size)")
    g.add_argument("--steps", type=int, help="optimizer steps (default: the profile's training.steps)")
    g.add_argument("--batch-size", type=int, default=64, help="global batch size (split across workers)")
    g.add_argument("--lr", type=float, default=0.01, help="Adam learning rate")
    g.add_argument("--seed", type=int, default=0)
    g.add_argument("--checkpoint-uri", help="where checkpoints go (default: <object store>/runs/<run-id>/checkpoints)")
    g.add_argument("--checkpoint-every", type=int, default=20, help="checkpoint every K steps (0: only the last)")
    g.add_argument("--resume", action="store_true", help="continue from the newest valid checkpoint under the URI")
    g.add_argument("--framework", choices=("torch", "tensorflow", "both"),
                   help="default: torch for the quick suite, both for the full suite")
    g.add_argument("--accelerators-per-worker", type=int,
                   help="GPUs per worker (default: the profile's accelerator.per_worker; 0 = CPU, gloo)")
    g.add_argument("--launcher", choices=("local", "job", "trainjob"),
                   help="default: the profile's training.launcher (auto: local without a cluster, else job)")
    g.add_argument("--resume-check", choices=("off", "restart", "kill"),
                   help="prove resume equality: restart from checkpoint k in a new launch, or SIGKILL a worker "
                        "after checkpoint k and resume (default: restart for quick, kill for full)")
    g.add_argument("--sweep-max-bytes", type=int, help="largest all-reduce message (default 4 MiB CPU, 256 MiB GPU)")
    g.add_argument("--sweep-iters", type=int, default=10, help="timed all-reduces per message size")


def make_config(args: argparse.Namespace, profile: Profile) -> Config:
    from kaic import env

    full = getattr(args, "suite", "quick") == "full"
    accel = args.accelerators_per_worker if args.accelerators_per_worker is not None else profile.accelerator.per_worker
    launcher = args.launcher or profile.training.launcher
    if launcher == "auto":
        launcher = "local" if profile.is_local else "job"
    values = {
        "world_size": args.world_size if args.world_size is not None else profile.training.world_size,
        "steps": args.steps if args.steps is not None else profile.training.steps,
        "batch_size": args.batch_size, "lr": args.lr, "seed": args.seed,
        "checkpoint_uri": args.checkpoint_uri, "checkpoint_every": args.checkpoint_every, "resume": args.resume,
        "framework": args.framework or ("both" if full else "torch"),
        "accelerators_per_worker": accel, "launcher": launcher,
        "resume_check": args.resume_check or ("kill" if full else "restart"),
        "sweep_max_bytes": args.sweep_max_bytes if args.sweep_max_bytes is not None
        else (GPU_SWEEP_MAX if accel else CPU_SWEEP_MAX),
        "sweep_iters": args.sweep_iters, "timeout_s": profile.training.timeout_s,
        "tf_python": env.KAIC_TF_PYTHON.get(),
    }
    if args.checkpoint_uri:
        from kaic.stores.objects import parse_uri

        parse_uri(args.checkpoint_uri, "--checkpoint-uri")  # a bad URI fails here, before any work
    return parse_config(Config, values, "kaic step train")


def run(config: Config, ctx: StepContext) -> list[Outcome]:
    from steps.train.core import train_step

    return train_step(config, ctx)
