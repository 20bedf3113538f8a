"""The Parquet results: per-step shards while a run is going, one file per run in a hive-partitioned dataset.

Layout
  object store:     runs/<run-id>/rows/<step>.parquet                   (stage: rerunning a step replaces it)
  results dataset:  platform=<p>/date=<YYYY-MM-DD>/<run-id>.parquet     (publish: the whole run, atomically)

`date` is the UTC date the run started; partition values are URI-encoded (pyarrow's default for hive).
A run becomes visible in one step: the file is written under a hidden temp name (leading '.', which
pyarrow datasets skip) and renamed (file://), or PUT as one object (s3://). Readable with plain pyarrow:
`pyarrow.dataset.dataset(root, partitioning="hive")`.
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Iterator, Sequence
from datetime import UTC, date, datetime
from enum import Enum
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import pyarrow as pa
import pyarrow.parquet as pq

from kaic.errors import ConfigError
from kaic.results import COLUMNS, ResultRow, row_from_dict
from kaic.stores import ObjectStore
from kaic.stores.objects import arrow_filesystem, check_key

if TYPE_CHECKING:
    import pyarrow.dataset as ds

_TS = pa.timestamp("us", tz="UTC")
_NULLABLE = {"requirement_id", "metric", "value", "unit", "threshold", "evidence"}
_TYPES = {"started_at": _TS, "recorded_at": _TS, "value": pa.float64()}

RESULTS_SCHEMA: pa.Schema = pa.schema(
    [pa.field(c, _TYPES.get(c, pa.string()), nullable=c in _NULLABLE) for c in COLUMNS]
)
# What the dataset adds from the folder names (platform is also a column inside each file).
PARTITIONING_SCHEMA: pa.Schema = pa.schema([pa.field("platform", pa.string()), pa.field("date", pa.date32())])
DATASET_SCHEMA: pa.Schema = RESULTS_SCHEMA.append(pa.field("date", pa.date32()))


def _column(rows: Sequence[ResultRow], name: str) -> list[Any]:
    values: list[Any] = [getattr(r, name) for r in rows]
    if name in ("level", "status"):
        return [v.value if isinstance(v, Enum) else v for v in values]
    if name in ("started_at", "recorded_at"):
        for i, ts in enumerate(values):
            if not isinstance(ts, datetime) or ts.tzinfo is None:
                raise ValueError(f"row {rows[i].check_id!r}: {name} {ts!r} is not a timezone-aware datetime")
    return values


def rows_to_table(rows: Sequence[ResultRow]) -> pa.Table:
    """Rows as a table of RESULTS_SCHEMA (built column by column); naive datetimes are refused."""
    arrays = []
    for f in RESULTS_SCHEMA:
        values = _column(rows, f.name)
        if not f.nullable and any(v is None for v in values):
            bad = next(r for r, v in zip(rows, values, strict=True) if v is None)
            raise ValueError(f"row {bad.check_id!r}: {f.name} is null but the schema requires a value")
        arrays.append(pa.array(values, type=f.type))
    return pa.Table.from_arrays(arrays, schema=RESULTS_SCHEMA)


def table_to_rows(table: pa.Table) -> list[ResultRow]:
    cols = [c for c in RESULTS_SCHEMA.names if c in table.column_names]
    return [row_from_dict(d) for d in table.select(cols).to_pylist()]


def parquet_bytes(table: pa.Table) -> bytes:
    buf = io.BytesIO()
    pq.write_table(table, buf, compression="zstd")
    return buf.getvalue()


def read_parquet_bytes(data: bytes, source: str = "staged rows") -> pa.Table:
    with unreadable_as_config_error(source):
        return pq.read_table(io.BytesIO(data), schema=RESULTS_SCHEMA)


@contextlib.contextmanager
def unreadable_as_config_error(source: str) -> Iterator[None]:
    """A corrupt or foreign Parquet file (bad magic, truncated, wrong schema) is bad input: one line
    naming it, exit 2, never a pyarrow traceback."""
    try:
        yield
    except (pa.ArrowException, OSError) as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise ConfigError(f"{source}: unreadable Parquet: {first[:300]}") from None


def run_partition(table: pa.Table) -> tuple[str, date]:
    """(platform, UTC start date) of a run: taken from its earliest recorded row (provision's, normally)."""
    import pyarrow.compute as pc

    first = int(pc.index(table.column("recorded_at"), pc.min(table.column("recorded_at"))).as_py())
    started: datetime = table.column("started_at")[first].as_py()
    return str(table.column("platform")[first].as_py()), started.astimezone(UTC).date()


def run_key(run_id: str, platform: str, day: date) -> str:
    return check_key(f"platform={quote(platform, safe='')}/date={day.isoformat()}/{run_id}.parquet")


class ParquetResults:
    """`ResultSink` over two object stores: the run store (shards) and the results store (the dataset)."""

    def __init__(self, store: ObjectStore, results_store: ObjectStore) -> None:
        self.store, self.results_store = store, results_store

    @staticmethod
    def shard_key(run_id: str, step: str) -> str:
        return check_key(f"runs/{run_id}/rows/{step}.parquet")

    def stage(self, run_id: str, step: str, rows: Sequence[ResultRow]) -> str:
        key = self.shard_key(run_id, step)
        self.store.put_bytes(key, parquet_bytes(rows_to_table(rows)))
        return self.store.uri(key)

    def staged_tables(self, run_id: str) -> list[pa.Table]:
        prefix = f"runs/{check_key(run_id)}/rows/"
        keys = [k for k in self.store.list(prefix) if k.endswith(".parquet") and "/" not in k[len(prefix):]]
        return [read_parquet_bytes(self.store.get_bytes(k), self.store.uri(k)) for k in keys]

    def staged_table(self, run_id: str) -> pa.Table:
        """All staged rows of a run as one table, steps in the order they ran (by their first recorded_at)."""
        shards = [t for t in self.staged_tables(run_id) if t.num_rows]
        shards.sort(key=lambda t: t.column("recorded_at")[0].as_py())
        return pa.concat_tables(shards) if shards else RESULTS_SCHEMA.empty_table()

    def staged(self, run_id: str) -> list[ResultRow]:
        return table_to_rows(self.staged_table(run_id))

    def publish(self, run_id: str) -> str:
        """The run's staged rows as one file in the dataset (replacing an earlier publish of the same run)."""
        table = self.staged_table(run_id)
        if not table.num_rows:
            raise ConfigError(f"run {run_id!r}: no staged rows under {self.store.uri(f'runs/{run_id}/rows')}")
        key = run_key(run_id, *run_partition(table))
        self.results_store.put_bytes(key, parquet_bytes(table))
        return self.results_store.uri(key)


# --- reading many runs ------------------------------------------------------------------------------


def open_dataset(uri: str, source: str = "--results") -> ds.Dataset:
    """The results dataset at a file:// or s3:// URI (or a folder), with the schema fixed (no inference)."""
    import pyarrow.dataset as ds
    from pyarrow import fs as pafs

    filesystem, root = arrow_filesystem(uri, source)
    try:
        info = filesystem.get_file_info(root)
    except OSError as exc:
        raise ConfigError(f"{source}: results dataset {uri!r}: {str(exc).splitlines()[0]}") from None
    if info.type == pafs.FileType.NotFound and isinstance(filesystem, pafs.LocalFileSystem):
        raise ConfigError(f"{source}: results dataset {uri!r} does not exist")
    if info.type == pafs.FileType.File:
        raise ConfigError(f"{source}: results dataset {uri!r} is a file, not a folder")
    partitioning = ds.partitioning(PARTITIONING_SCHEMA, flavor="hive")
    if info.type == pafs.FileType.NotFound:  # an empty s3 prefix: no runs yet
        return ds.dataset([], schema=DATASET_SCHEMA, format="parquet", filesystem=filesystem)
    return ds.dataset(root, schema=DATASET_SCHEMA, format="parquet", filesystem=filesystem,
                      partitioning=partitioning, ignore_prefixes=[".", "_"])


def read_results(
    uri: str,
    columns: Sequence[str] | None = None,
    filter: ds.Expression | None = None,
    *,
    platforms: Sequence[str] | None = None,
    run_ids: Sequence[str] | None = None,
    since: date | None = None,
    source: str = "--results",
) -> pa.Table:
    """Rows of many runs as one table (RESULTS_SCHEMA plus `date`).

    `columns` projects (only those are read); `platforms` and `since` prune partitions (folders not
    opened); `run_ids` and `filter` (a pyarrow.dataset expression) are pushed down to the scan.
    """
    import pyarrow.dataset as ds

    dataset = open_dataset(uri, source)
    wanted = list(columns) if columns is not None else None
    if wanted is not None:
        unknown = [c for c in wanted if c not in DATASET_SCHEMA.names]
        if unknown:
            known = ", ".join(DATASET_SCHEMA.names)
            raise ConfigError(f"results columns {unknown}: not in the results schema ({known})")
    expr: Any = filter
    for part in (
        ds.field("platform").isin(list(platforms)) if platforms is not None else None,
        ds.field("date") >= since if since is not None else None,
        ds.field("run_id").isin(list(run_ids)) if run_ids is not None else None,
    ):
        if part is not None:
            expr = part if expr is None else expr & part
    with unreadable_as_config_error(f"{source}: results dataset {uri!r}"):
        return dataset.to_table(columns=wanted, filter=expr, use_threads=True)


def rows_for_run(uri: str, run_id: str, source: str = "--results") -> list[ResultRow]:
    """One published run's rows, opening only its file (found by name: <run-id>.parquet)."""
    import pyarrow.dataset as ds

    check_key(run_id)
    dataset = open_dataset(uri, source)
    name = f"{run_id}.parquet"
    files = [f for f in getattr(dataset, "files", []) if f.rsplit("/", 1)[-1] == name]
    if not files:
        return []
    filesystem, root = arrow_filesystem(uri, source)
    partitioning = ds.partitioning(PARTITIONING_SCHEMA, flavor="hive")
    one = ds.dataset(files, schema=DATASET_SCHEMA, format="parquet", filesystem=filesystem,
                     partitioning=partitioning, partition_base_dir=root)
    with unreadable_as_config_error(f"{source}: {files[0]}"):
        return table_to_rows(one.to_table())
