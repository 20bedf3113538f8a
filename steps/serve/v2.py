"""The Open Inference (V2) protocol, as kaic speaks it: pure request/response helpers, no I/O.

Request:  POST /v2/models/<name>/infer  {"inputs": [{"name", "shape", "datatype": "FP32", "data"}]}
Response: {"model_name", "outputs": [{"name": "logits", "shape": [n, classes], "datatype": "FP32", "data"}]}
`data` is the row-major flattened tensor, as the protocol allows.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

INPUT_NAME = "input-0"
OUTPUT_NAME = "logits"


def infer_path(model: str) -> str:
    return f"/v2/models/{model}/infer"


def ready_path(model: str) -> str:
    return f"/v2/models/{model}/ready"


SERVER_READY_PATH = "/v2/health/ready"
METRICS_PATH = "/metrics"


def infer_body(rows: Sequence[Sequence[float]], width: int) -> bytes:
    """A V2 request for a batch of feature rows (each `width` floats, already scaled)."""
    flat: list[float] = []
    for r in rows:
        if len(r) != width:
            raise ValueError(f"feature row has {len(r)} values, the model takes {width}")
        flat.extend(float(x) for x in r)
    doc = {"inputs": [{"name": INPUT_NAME, "shape": [len(rows), width], "datatype": "FP32", "data": flat}]}
    return json.dumps(doc, separators=(",", ":")).encode()


def parse_logits(body: bytes | dict[str, Any]) -> list[list[float]]:
    """The `logits` output of a V2 response as rows; ValueError when the response is not one."""
    doc = json.loads(body) if isinstance(body, bytes | bytearray) else body
    outputs = doc.get("outputs") if isinstance(doc, dict) else None
    if not outputs:
        raise ValueError(f"not a V2 inference response: {str(doc)[:200]}")
    out = next((o for o in outputs if o.get("name") == OUTPUT_NAME), outputs[0])
    shape, data = out.get("shape"), out.get("data")
    if not isinstance(shape, list) or len(shape) != 2 or not isinstance(data, list):
        raise ValueError(f"V2 output {out.get('name')!r}: expected a 2-d tensor, got shape {shape}")
    n, k = int(shape[0]), int(shape[1])
    if len(data) != n * k:
        raise ValueError(f"V2 output {out.get('name')!r}: shape {shape} but {len(data)} values")
    return [[float(x) for x in data[i * k : (i + 1) * k]] for i in range(n)]


def argmax(row: Sequence[float]) -> int:
    return max(range(len(row)), key=row.__getitem__)
