"""Prediction parity: the served model must predict exactly what the training side predicted.

Every holdout row is sent (in batches) and the served argmax must equal the training side's
`predicted` for every row. Logits are compared too, |served - trained| <= atol + rtol * |trained|
elementwise, with atol = rtol = 1e-3 by default: the same TorchScript file on a CPU differs only by
float32 summation order (batch size, GEMM blocking), about 1e-6 relative on 64-wide dot products,
while a training side that computed its predictions on a GPU with TF32 matmuls (10-bit mantissa) can
differ by up to about 1e-3 relative. A larger gap means a different model or different input scaling.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from steps.serve.v2 import argmax


@dataclass(frozen=True)
class Holdout:
    rows: list[int]
    features: list[list[float]]
    predicted: list[int]
    logits: list[list[float]]

    def __len__(self) -> int:
        return len(self.rows)


@dataclass(frozen=True)
class ParityReport:
    rows: int
    mismatched_rows: list[int]  # holdout `row` ids whose served argmax differs
    max_abs_diff: float
    logits_within_tolerance: bool

    @property
    def ok(self) -> bool:
        return self.rows > 0 and not self.mismatched_rows and self.logits_within_tolerance

    def message(self, rtol: float, atol: float) -> str:
        head = (
            f"{self.rows - len(self.mismatched_rows)}/{self.rows} served predictions equal the training "
            f"side's; max |logit diff| {self.max_abs_diff:.3g} (tolerance {atol:g} + {rtol:g}·|logit|)"
        )
        if self.mismatched_rows:
            head += f"; mismatched rows {self.mismatched_rows[:10]}"
        if not self.logits_within_tolerance:
            head += "; logits outside tolerance"
        return head


def compare(holdout: Holdout, served: Sequence[Sequence[float]], rtol: float, atol: float) -> ParityReport:
    if len(served) != len(holdout):
        raise ValueError(f"{len(served)} served rows for {len(holdout)} holdout rows")
    mismatched: list[int] = []
    max_diff, within = 0.0, True
    for row, pred, want, got in zip(holdout.rows, holdout.predicted, holdout.logits, served, strict=True):
        if argmax(got) != pred:
            mismatched.append(row)
        if len(got) != len(want):
            within = False
            continue
        for g, w in zip(got, want, strict=True):
            d = abs(g - w)
            max_diff = max(max_diff, d)
            if d > atol + rtol * abs(w):
                within = False
    return ParityReport(len(holdout), mismatched, max_diff, within)


def read_holdout(path: str) -> Holdout:
    import pyarrow.parquet as pq

    t = pq.read_table(path, columns=["row", "features", "predicted", "logits"]).to_pydict()
    return Holdout([int(r) for r in t["row"]], t["features"], [int(p) for p in t["predicted"]], t["logits"])
