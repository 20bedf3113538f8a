"""The train step on real GPUs: world size = number of GPUs, NCCL, checks pass, MFU recorded.

A table of tiny named configs (torchtitan style); skips cleanly where torch sees no CUDA device.
"""

from __future__ import annotations

import argparse

import pytest

from kaic import stepkit
from kaic.results import Status
from steps import train

torch = pytest.importorskip("torch")

# Skipped test by test, not the module: the gpu tier then reports each config as skipped with the reason (a
# module-level skip collects nothing, and pytest exits 5, "no tests collected", which CI would call a failure).
pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(),
                                                  reason="no CUDA device: torch.cuda.is_available() is False")]

GPUS = torch.cuda.device_count() if torch.cuda.is_available() else 0

CONFIGS = {
    "nccl-all-gpus": ["--world-size", str(GPUS), "--accelerators-per-worker", "1", "--sweep-max-bytes", str(64 << 20)],
    "nccl-all-gpus-kill-resume": ["--world-size", str(GPUS), "--accelerators-per-worker", "1",
                                  "--sweep-max-bytes", "0", "--resume-check", "kill"],
}


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_train_on_gpus(name: str) -> None:
    if GPUS < 2 and "kill" in name:
        pytest.skip("kill-and-resume needs at least 2 workers (2 GPUs)")
    p = argparse.ArgumentParser()
    stepkit.add_common_arguments(p)
    train.configure(p)
    rows, code = stepkit.execute_step(train, p.parse_args(["--run-id", f"gpu-{name}", *CONFIGS[name]]))
    by = {r.name: r for r in rows}
    assert code == 0, [(r.name, r.message) for r in rows if r.status in (Status.FAILED, Status.ERROR)]
    assert "backend nccl" in by["train.allreduce_correct"].message
    mfu = by["train.throughput[train_mfu]"]
    name_ = torch.cuda.get_device_name(0)
    from steps.train.peaks import peak_flops

    if peak_flops(name_) is None:
        assert mfu.status is Status.SKIPPED
        assert "unknown accelerator" in mfu.message
    else:
        assert mfu.status is Status.PASSED
        assert mfu.value is not None
        assert 0 < mfu.value < 1
