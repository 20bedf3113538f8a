"""The model export contract the serve step consumes (docs/training.md, "Model export contract").

Under `runs/<run-id>/model/` rank 0 writes:
- `model.pt`: TorchScript (torch.jit.script), CPU, eval mode; input float32 [batch, 64] = pixels / 16,
  output logits float32 [batch, 10].
- `model.json`: {"name": "digits", "input_shape": [64], "input_scale": 16.0, "classes": 10,
  "framework": "pytorch", "torch_version": ..., "format": "torchscript", "files": {...}}.
- `holdout_predictions.parquet`: row int64 (row number in digits.parquet), features list<float32> (64,
  already scaled), label int64, predicted int64, logits list<float32> (10) — computed by the exported
  TorchScript module itself on CPU, so a server loading model.pt must reproduce them.
"""

from __future__ import annotations

import io
import json
import warnings
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from kaic.stores import ObjectStore
from steps.digits import CLASSES, FEATURES, INPUT_SCALE, Arrays

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

MODEL = "model.pt"
META = "model.json"
PREDICTIONS = "holdout_predictions.parquet"


@dataclass(frozen=True)
class Holdout:
    scripted: Any  # torch.jit.ScriptModule on CPU, eval mode
    rows: npt.NDArray[np.int64]
    features: npt.NDArray[np.float32]
    labels: npt.NDArray[np.int64]
    logits: npt.NDArray[np.float32]

    @property
    def predicted(self) -> npt.NDArray[np.int64]:
        out: npt.NDArray[np.int64] = self.logits.argmax(axis=1).astype("int64")
        return out

    @property
    def accuracy(self) -> float:
        return float((self.predicted == self.labels).mean())


def script(net: Any) -> Any:
    """A CPU, eval-mode TorchScript copy of `net` (the training module is left as it was)."""
    import copy

    import torch

    cpu = copy.deepcopy(net).cpu().eval()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # jit is deprecated upstream, still the contract
        return torch.jit.script(cpu)


def holdout_eval(net: Any, data: Arrays) -> Holdout:
    import torch

    scripted = script(net)
    with torch.no_grad():
        logits = scripted(torch.from_numpy(data.x_holdout)).numpy()
    return Holdout(scripted, data.holdout_rows, data.x_holdout, data.y_holdout, logits)


def metadata(torch_version: str) -> dict[str, Any]:
    return {"name": "digits", "input_shape": [FEATURES], "input_scale": INPUT_SCALE, "classes": CLASSES,
            "framework": "pytorch", "torch_version": torch_version, "format": "torchscript",
            "input_dtype": "float32", "output": "logits",
            "files": {"model": MODEL, "predictions": PREDICTIONS}}


def predictions_parquet(h: Holdout) -> bytes:
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.table({
        "row": pa.array(h.rows, type=pa.int64()),
        "features": pa.array([r.tolist() for r in h.features], type=pa.list_(pa.float32())),
        "label": pa.array(h.labels, type=pa.int64()),
        "predicted": pa.array(h.predicted, type=pa.int64()),
        "logits": pa.array([r.tolist() for r in h.logits], type=pa.list_(pa.float32())),
    })
    buf = io.BytesIO()
    pq.write_table(table, buf)
    return buf.getvalue()


def write(store: ObjectStore, prefix: str, net: Any, holdout: Holdout, versions: dict[str, str]) -> dict[str, str]:
    """Write model.pt, holdout_predictions.parquet, then model.json (last: its presence means complete)."""
    import torch

    buf = io.BytesIO()
    torch.jit.save(holdout.scripted, buf)
    keys = {"model": f"{prefix}/{MODEL}", "predictions": f"{prefix}/{PREDICTIONS}", "meta": f"{prefix}/{META}"}
    store.put_bytes(keys["model"], buf.getvalue())
    store.put_bytes(keys["predictions"], predictions_parquet(holdout))
    store.put_bytes(keys["meta"], json.dumps(metadata(versions["torch"]), indent=1).encode())
    return {k: store.uri(v) for k, v in keys.items()}
