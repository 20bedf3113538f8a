"""The model every framework trains: a 64 -> hidden -> 10 MLP with ReLU, on pixels scaled by 1/16.

Torch side here (TensorFlow's twin is built in tf_worker.py with the same shapes). Also the
deterministic data order (a function of seed and step only, so a resumed run sees the same batches)
and the parameter fingerprint used to prove bitwise equality.
"""

from __future__ import annotations

import functools
import hashlib
from typing import TYPE_CHECKING, Any

from steps.digits import CLASSES, FEATURES

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt


def build(hidden: int) -> Any:
    import torch

    return torch.nn.Sequential(
        torch.nn.Linear(FEATURES, hidden), torch.nn.ReLU(), torch.nn.Linear(hidden, CLASSES),
    )


def param_count(hidden: int) -> int:
    return FEATURES * hidden + hidden + hidden * CLASSES + CLASSES


def flops_per_sample(hidden: int) -> float:
    """Training FLOPs per sample: 2 per multiply-add forward, twice that backward (the usual 6 x weights)."""
    return 6.0 * (FEATURES * hidden + hidden * CLASSES)


def batch_indices(step: int, n_train: int, batch_size: int, seed: int) -> npt.NDArray[np.int64]:
    """Global batch of `step`: epoch e = step // steps_per_epoch shuffles with seed (seed, e); drop-last."""
    per_epoch = n_train // batch_size
    if per_epoch < 1:
        raise ValueError(f"batch size {batch_size} exceeds the {n_train} training rows")
    epoch, within = divmod(step, per_epoch)
    perm = _permutation(n_train, seed, epoch)
    return perm[within * batch_size:(within + 1) * batch_size]


@functools.lru_cache(maxsize=2)
def _permutation(n: int, seed: int, epoch: int) -> npt.NDArray[np.int64]:
    import numpy as np

    out: npt.NDArray[np.int64] = np.random.default_rng([seed, epoch]).permutation(n).astype(np.int64)
    out.setflags(write=False)
    return out


def rank_slice(indices: npt.NDArray[np.int64], rank: int, world_size: int) -> npt.NDArray[np.int64]:
    """This rank's share of a global batch (strided, equal sizes when world_size divides the batch)."""
    return indices[rank::world_size]


def state_sha256(state: dict[str, Any]) -> str:
    """Fingerprint of a state dict: names, dtypes, shapes and raw bytes of every tensor, in order."""
    h = hashlib.sha256()
    for name, t in state.items():
        arr = t.detach().cpu().contiguous().numpy()
        h.update(f"{name}:{arr.dtype}:{arr.shape};".encode())
        h.update(arr.tobytes())
    return h.hexdigest()


def floats_sha256(values: list[float]) -> str:
    """Fingerprint of a loss curve (exact float64 reprs), for cross-run and cross-platform comparison."""
    return hashlib.sha256(",".join(repr(float(v)) for v in values).encode()).hexdigest()
