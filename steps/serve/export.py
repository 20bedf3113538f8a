"""Fetch the model the train step exported (`runs/<run-id>/model/`) into the serve step's work dir."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from kaic.stores import ObjectStore
from steps.serve.model_server import read_model_meta
from steps.serve.parity import Holdout, read_holdout

REQUIRED = ("model.pt", "model.json")
HOLDOUT = "holdout_predictions.parquet"


@dataclass(frozen=True)
class ExportedModel:
    dir: Path
    name: str
    width: int  # features per row
    holdout: Holdout | None  # None when train wrote no holdout predictions


class ModelMissingError(Exception):
    """The run has no exported model (train failed or did not run)."""


def fetch_model(store: ObjectStore, prefix: str, dest: Path) -> ExportedModel:
    missing = [f for f in REQUIRED if not store.exists(f"{prefix}/{f}")]
    if missing:
        raise ModelMissingError(
            f"no exported model: {', '.join(store.uri(f'{prefix}/{f}') for f in missing)} "
            "absent (the train step did not export one)"
        )
    dest.mkdir(parents=True, exist_ok=True)
    for f in (*REQUIRED, HOLDOUT):
        if f in REQUIRED or store.exists(f"{prefix}/{f}"):
            store.get_file(f"{prefix}/{f}", dest / f)
    meta = read_model_meta(dest)
    holdout = read_holdout(str(dest / HOLDOUT)) if (dest / HOLDOUT).is_file() else None
    return ExportedModel(dest, str(meta["name"]), int(meta["input_shape"][0]), holdout)
