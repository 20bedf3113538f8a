"""The one place `kaic compare` reads the results dataset: URI in, a normalized pyarrow Table out.

Reading is kaic.stores.results_dataset.read_results (projection and partition pruning); this module
only fixes the types the comparison relies on.

Normalized means: the columns the comparison needs, strings as plain `string` (hive partitions come
back dictionary-encoded), `started_at` as a UTC timestamp and `value` as float64, so the pure core in
`kaic.compare.core` never has to care where the rows came from.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date

import pyarrow as pa
import pyarrow.compute as pc

from kaic.errors import ConfigError

# What the comparison reads (`threshold` and `recorded_at` stay on disk).
STRING_COLUMNS: tuple[str, ...] = (
    "run_id", "suite_version", "platform", "cluster", "k8s_version", "accelerator", "step", "check_id",
    "requirement_id", "level", "status", "metric", "unit", "message", "evidence",
)
COLUMNS: tuple[str, ...] = (*STRING_COLUMNS, "started_at", "value")
TS = pa.timestamp("us", tz="UTC")


def load_results(uri: str, source: str = "--results", since: date | None = None,
                 platforms: Sequence[str] | None = None) -> pa.Table:
    """Every row of the dataset at `uri` (a folder, file:// or s3://), normalized; ConfigError when absent
    or empty. `since` and `platforms` prune partitions before reading (the core filters rows itself)."""
    from kaic.stores.results_dataset import read_results

    table = read_results(uri, columns=list(COLUMNS), since=since, platforms=platforms, source=source)
    if table.num_rows == 0:
        when = f" since {since}" if since else ""
        raise ConfigError(f"{source}: results dataset {uri!r} has no rows{when}")
    return normalize(table)


# Read for every row; the other (text) columns only for each group's latest run, the one place the
# comparison uses them (matrix, statuses, run metadata, driver): see load_for_compare.
NUMERIC_COLUMNS: tuple[str, ...] = ("run_id", "started_at", "platform", "check_id", "metric", "value", "unit")
REQUIRED = ("run_id", "platform", "started_at", "check_id")


def load_for_compare(uri: str, source: str = "--results", since: date | None = None,
                     by: str = "platform") -> pa.Table:
    """The rows `kaic.compare.core.compare` needs, read in two passes: the numeric columns of every run,
    then every column of each group's latest run (found by file name, <run-id>.parquet). Rows of the
    older runs carry nulls in the text columns, which the core reads for latest runs only. Same answer
    as `load_results`, a third of the bytes decoded."""
    from kaic.compare.core import latest_run_ids
    from kaic.stores.results_dataset import read_results

    columns = list(dict.fromkeys((*NUMERIC_COLUMNS, by)))
    numeric = read_results(uri, columns=columns, since=since, source=source)
    if numeric.num_rows == 0:
        when = f" since {since}" if since else ""
        raise ConfigError(f"{source}: results dataset {uri!r} has no rows{when}")
    numeric = normalize(numeric)
    latest = latest_run_ids(numeric, by)
    full = _read_runs(uri, latest, source)
    if full.num_rows == 0:  # not laid out as <run-id>.parquet: read everything
        return load_results(uri, source, since)
    older = _without_runs(numeric, latest)
    # One contiguous table: the core filters it several times, and filtering 1,000 small chunks costs
    # about twice what one copy and contiguous filters do.
    return pa.concat_tables([older, normalize(full)]).combine_chunks()


def _without_runs(table: pa.Table, run_ids: Sequence[str]) -> pa.Table:
    """`table` less the rows of `run_ids`. Each file holds one run, so a scanned batch is usually one run:
    such batches are kept or dropped whole (no copy); a mixed batch is filtered row by row."""
    drop = set(run_ids)
    value_set = pa.array(sorted(drop), pa.string())
    kept = []
    for batch in table.to_batches():
        ids = batch.column("run_id")
        if len(ids) == 0:
            continue
        first = ids[0].as_py()
        if pc.all(pc.equal(ids, first)).as_py():
            if first not in drop:
                kept.append(batch)
        else:
            kept.append(batch.filter(pc.invert(pc.is_in(ids, value_set=value_set))))
    return pa.Table.from_batches(kept, schema=table.schema)


def _read_runs(uri: str, run_ids: Sequence[str], source: str) -> pa.Table:
    import pyarrow.parquet as pq

    from kaic.stores.objects import arrow_filesystem
    from kaic.stores.results_dataset import open_dataset

    names = {f"{r}.parquet" for r in run_ids}
    files = [f for f in getattr(open_dataset(uri, source), "files", []) if f.rsplit("/", 1)[-1] in names]
    if not files:
        return pa.table({})
    filesystem, _ = arrow_filesystem(uri, source)
    from kaic.stores.results_dataset import unreadable_as_config_error

    tables = []
    for f in files:
        with unreadable_as_config_error(f"{source}: {f}"):
            tables.append(pq.read_table(f, filesystem=filesystem, columns=[c for c in COLUMNS if c != "date"]))
    return pa.concat_tables(tables, promote_options="permissive")


def normalize(table: pa.Table) -> pa.Table:
    """Project and cast to the comparison's schema; absent optional columns become nulls."""
    arrays: list[pa.Array | pa.ChunkedArray] = []
    for name in COLUMNS:
        want = TS if name == "started_at" else pa.float64() if name == "value" else pa.string()
        if name not in table.column_names:
            if name in REQUIRED:
                raise ConfigError(f"results dataset: required column {name!r} is missing")
            arrays.append(pa.nulls(table.num_rows, want))
            continue
        col = table.column(name)
        if pa.types.is_dictionary(col.type):
            col = col.cast(col.type.value_type)
        if name == "started_at" and pa.types.is_timestamp(col.type) and col.type.tz is None:
            col = pc.assume_timezone(col, "UTC")
        arrays.append(col.cast(want))
    return pa.Table.from_arrays(arrays, names=list(COLUMNS))
