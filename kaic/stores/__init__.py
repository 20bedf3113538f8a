"""Narrow seams for storage: objects, result rows, tracking. Real and fake classes satisfy the same Protocols.

- `ObjectStore`: string URIs and keys (so `s3://` survives), `file://` and `s3://` backends.
- `ResultSink`: the Parquet results dataset (hive-partitioned, atomic per run).
- `Tracker`: MLflow (parent run per workflow run, child run per step).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Protocol, runtime_checkable

from kaic.results import ResultRow, RunContext


@runtime_checkable
class ObjectStore(Protocol):
    """Keys are '/'-separated relative strings; `uri(key)` gives the full URI of an object."""

    @property
    def base_uri(self) -> str: ...  # the store's own URI (a plain attribute satisfies this too)

    def uri(self, key: str) -> str: ...
    def put_bytes(self, key: str, data: bytes) -> None: ...  # atomic: readers see all or nothing
    def get_bytes(self, key: str) -> bytes: ...  # KeyError-like ObjectNotFound when absent
    def put_file(self, key: str, path: Path) -> None: ...
    def get_file(self, key: str, path: Path) -> None: ...
    def exists(self, key: str) -> bool: ...
    def list(self, prefix: str = "") -> list[str]: ...  # keys under prefix, sorted, recursive
    def delete(self, key: str) -> None: ...  # no error when absent (idempotent)


class ObjectNotFound(KeyError):  # noqa: N818 - reads as what it is; a KeyError for callers
    pass


@runtime_checkable
class ResultSink(Protocol):
    def stage(self, run_id: str, step: str, rows: Sequence[ResultRow]) -> str: ...  # a step's shard; its URI
    def staged(self, run_id: str) -> list[ResultRow]: ...  # all staged rows of a run
    def publish(self, run_id: str) -> str: ...  # the run's rows into the dataset, atomically; returns URI


@runtime_checkable
class Tracker(Protocol):
    def log_step(
        self, ctx: RunContext, step: str, rows: Sequence[ResultRow], artifacts: Sequence[Path] = ()
    ) -> bool:
        """Log one step as a child run of the workflow run; False (and a warning) if MLflow is unreachable."""
        ...
