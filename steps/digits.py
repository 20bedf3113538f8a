"""The digits dataset as steps see it: where the committed files are, where they go in the object store,
and how a worker turns the Parquet bytes into scaled arrays.

The data step uploads `datasets/digits/{digits.parquet,expectations.json}` to `runs/<run-id>/data/`;
train (locally or in pods) reads the Parquet from there. The same scaling (pixels / INPUT_SCALE) is used
in training, in the exported model's contract and in the holdout predictions the serve step compares.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from kaic import env
from kaic.stores import ObjectNotFound, ObjectStore

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

# The repository's datasets/ folder, or $KAIC_DATASETS where the code is installed without it (the images).
SOURCE_DIR = Path(env.KAIC_DATASETS.get() or Path(__file__).resolve().parents[1] / "datasets") / "digits"
PARQUET = "digits.parquet"
SUITE = "expectations.json"
DATA_DIR = "data"  # under runs/<run-id>/
INPUT_SCALE = 16.0  # pixel values are 0..16; models see pixel / 16
FEATURES = 64
CLASSES = 10
PIXELS = tuple(f"p{i:02d}" for i in range(FEATURES))


def data_key(run_id: str, name: str = PARQUET) -> str:
    return f"runs/{run_id}/{DATA_DIR}/{name}"


def upload(store: ObjectStore, run_id: str, source_dir: Path = SOURCE_DIR) -> list[str]:
    """Copy the committed dataset and suite into the run's data prefix; returns the keys written."""
    keys = []
    for name in (PARQUET, SUITE):
        path = source_dir / name
        if not path.is_file():
            raise FileNotFoundError(f"{path}: dataset file missing (rebuild with datasets/digits/build.py)")
        key = data_key(run_id, name)
        store.put_file(key, path)
        keys.append(key)
    return keys


def ensure_uploaded(store: ObjectStore, run_id: str, source_dir: Path = SOURCE_DIR) -> str:
    """The run's Parquet key, uploading the committed files first when the data step has not."""
    key = data_key(run_id)
    if not store.exists(key):
        upload(store, run_id, source_dir)
    return key


def read_bytes(store: ObjectStore, key: str) -> bytes:
    try:
        return store.get_bytes(key)
    except (ObjectNotFound, FileNotFoundError):
        raise FileNotFoundError(f"dataset {store.uri(key)} is absent (run the data step first)") from None


@dataclass(frozen=True)
class Arrays:
    """Scaled float32 features and int64 labels, split as committed; `holdout_rows` are Parquet row numbers."""

    x_train: npt.NDArray[np.float32]
    y_train: npt.NDArray[np.int64]
    x_holdout: npt.NDArray[np.float32]
    y_holdout: npt.NDArray[np.int64]
    holdout_rows: npt.NDArray[np.int64]


def arrays(parquet: bytes) -> Arrays:
    import numpy as np
    import pyarrow.parquet as pq

    table = pq.read_table(io.BytesIO(parquet))
    x = np.stack([table.column(p).to_numpy().astype(np.float32) for p in PIXELS], axis=1) / np.float32(INPUT_SCALE)
    y = table.column("label").to_numpy().astype(np.int64)
    holdout = np.asarray(table.column("split").to_pylist()) == "holdout"
    rows = np.arange(len(y), dtype=np.int64)
    return Arrays(x[~holdout], y[~holdout], x[holdout], y[holdout], rows[holdout])
