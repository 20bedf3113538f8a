"""Keep one accelerator busy for a bounded time, then idle: the load behind the HPA probe's metric.

`python -m kaic.hardware.burn --seconds N` multiplies two square matrices on `cuda:0` back to back for N
seconds (the device's utilization near 100%, what DCGM_FI_DEV_GPU_UTIL reports), then sleeps until it is
killed (`--idle-s` bounds that), so its pod stays Running with an idle device. Exit 1 when the device
cannot be used, 2 on bad input.
"""

from __future__ import annotations

import argparse
import re
import sys
import time


def burn(seconds: float, device: str, size: int) -> int:
    """Matrix products on `device` for `seconds`; how many were done."""
    import torch

    a = torch.randn(size, size, device=device)
    b = torch.randn(size, size, device=device)
    done, end = 0, time.monotonic() + seconds
    while time.monotonic() < end:
        for _ in range(8):
            torch.mm(a, b)
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        done += 8
    return done


def _positive(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more: {text!r}")
    return value


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m kaic.hardware.burn", description=__doc__.splitlines()[0])
    p.add_argument("--seconds", type=_positive, required=True, help="how long to keep the device busy")
    p.add_argument("--device", default="cuda", help="torch device (default cuda: the pod's first accelerator)")
    p.add_argument("--size", type=int, default=4096, help="matrix side (default 4096)")
    p.add_argument("--idle-s", type=_positive, default=None, help="idle this long, then exit (default: forever)")
    args = p.parse_args(argv)
    if args.size < 1:
        p.error(f"--size must be 1 or more (got {args.size})")
    if not re.fullmatch(r"cpu|cuda(:\d+)?", args.device):
        p.error(f"--device must be cpu, cuda or cuda:N (got {args.device!r})")
    import torch

    if args.device.startswith("cuda") and not torch.cuda.is_available():
        print(f"burn: device {args.device} is not available (torch sees no CUDA device)", file=sys.stderr)
        return 1
    began = time.monotonic()
    done = burn(args.seconds, args.device, args.size)
    print(f"burn: {done} products of {args.size}x{args.size} on {args.device} in {time.monotonic() - began:.1f}s; "
          "idle now", flush=True)
    if args.idle_s is None:
        while True:
            time.sleep(3600)
    time.sleep(args.idle_s)
    return 0


if __name__ == "__main__":
    sys.exit(main())
