"""A tiny digits model in the train step's export format, for tests, the benchmark and trying serve alone.

The export contract (written by train, read by serve), under `runs/<run-id>/model/`:
- `model.pt`: TorchScript, CPU, eval mode; input float32 [batch, 64] already scaled; output logits [batch, 10]
- `model.json`: {"name": "digits", "input_shape": [64], "input_scale": 16.0, "classes": 10, "framework": ...}
- `holdout_predictions.parquet`: row (int), features (list<float32>, scaled), label, predicted (int),
  logits (list<float32>): what the training side predicted for each holdout row.

`write_tiny_model(dir)` trains a 64-32-10 MLP for a few hundred full-batch steps on
`sklearn.datasets.load_digits()` (seconds on a CPU) and writes the three files.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

MODEL_FILES = ("model.pt", "model.json", "holdout_predictions.parquet")


def write_tiny_model(out: Path, steps: int = 150, holdout: int = 360, seed: int = 0) -> Path:
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq
    import torch
    from sklearn.datasets import load_digits

    torch.manual_seed(seed)
    digits = load_digits()
    scale = 16.0
    x = torch.tensor(digits.data / scale, dtype=torch.float32)
    y = torch.tensor(digits.target, dtype=torch.long)
    perm = torch.randperm(len(y), generator=torch.Generator().manual_seed(seed))
    test, train = perm[:holdout], perm[holdout:]
    net = torch.nn.Sequential(torch.nn.Linear(64, 32), torch.nn.ReLU(), torch.nn.Linear(32, 10))
    opt = torch.optim.Adam(net.parameters(), lr=0.01)
    for _ in range(steps):
        opt.zero_grad()
        torch.nn.functional.cross_entropy(net(x[train]), y[train]).backward()  # type: ignore[no-untyped-call]
        opt.step()
    net.eval()
    out.mkdir(parents=True, exist_ok=True)
    with warnings.catch_warnings():  # torch 2.13 deprecates TorchScript; the export contract still uses it
        warnings.simplefilter("ignore", DeprecationWarning)
        scripted = torch.jit.script(net)
    scripted.save(str(out / "model.pt"))  # type: ignore[no-untyped-call]
    with torch.inference_mode():
        logits = scripted(x[test]).numpy()
    meta = {
        "name": "digits",
        "input_shape": [64],
        "input_scale": scale,
        "classes": 10,
        "framework": "pytorch",
        "format": "torchscript",
    }
    (out / "model.json").write_text(json.dumps(meta, indent=1))
    feats = x[test].numpy()
    table = pa.table(
        {
            "row": pa.array(test.numpy().astype(np.int64)),
            "features": pa.array(list(feats), type=pa.list_(pa.float32())),
            "label": pa.array(y[test].numpy().astype(np.int64)),
            "predicted": pa.array(logits.argmax(axis=1).astype(np.int64)),
            "logits": pa.array(list(logits), type=pa.list_(pa.float32())),
        }
    )
    pq.write_table(table, out / "holdout_predictions.parquet")
    return out
