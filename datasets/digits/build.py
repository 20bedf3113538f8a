"""Rebuild the digits dataset and its expectation suite, byte-identically.

    .venv/bin/python datasets/digits/build.py            # rewrite digits.parquet and expectations.json
    .venv/bin/python datasets/digits/build.py --check    # exit 1 if the committed files differ

Source: scikit-learn's bundled copy of the UCI "Optical Recognition of Handwritten Digits"
test set (1,797 8x8 images, pixel values 0..16), read from the installed package, no network.
Split: stratified by label, 20% holdout, seed 20240601 (scikit-learn's train_test_split).
Byte-identical for the same pyarrow and scikit-learn versions (the Parquet footer names the writer).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
PARQUET = HERE / "digits.parquet"
SUITE = HERE / "expectations.json"

SEED = 20240601
HOLDOUT_FRACTION = 0.2
ROWS = 1797
PIXEL_MAX = 16
PIXELS = tuple(f"p{i:02d}" for i in range(64))
COLUMNS = (*PIXELS, "label", "split")


def build_table() -> Any:
    """The dataset as a pyarrow Table: p00..p63 int8, label int8, split string ('train' | 'holdout')."""
    import numpy as np
    import pyarrow as pa
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    data = digits.data.astype(np.int8)
    target = digits.target.astype(np.int8)
    idx = np.arange(len(target))
    _, holdout = train_test_split(idx, test_size=HOLDOUT_FRACTION, stratify=target, random_state=SEED)
    split = np.full(len(target), "train", dtype=object)
    split[np.sort(holdout)] = "holdout"
    arrays = [pa.array(data[:, i], type=pa.int8()) for i in range(64)]
    arrays += [pa.array(target, type=pa.int8()), pa.array(split.tolist(), type=pa.string())]
    return pa.Table.from_arrays(arrays, names=list(COLUMNS))


def write_table(table: Any, path: Path) -> None:
    import pyarrow.parquet as pq

    pq.write_table(table, path, compression="zstd", compression_level=9, write_statistics=True,
                   use_dictionary=["split"], store_schema=False)


def suite_dict() -> dict[str, Any]:
    """The Great Expectations suite, as GE 1.x serializes an ExpectationSuite (built with the real API)."""
    import great_expectations as gx
    import great_expectations.expectations as gxe

    gx.get_context(mode="ephemeral")  # an ExpectationSuite needs an active context
    exps: list[Any] = [
        gxe.ExpectTableColumnsToMatchOrderedList(column_list=list(COLUMNS)),
        gxe.ExpectTableRowCountToEqual(value=ROWS),
        gxe.ExpectColumnValuesToNotBeNull(column="label"),
        gxe.ExpectColumnDistinctValuesToEqualSet(column="label", value_set=list(range(10))),
        # class balance: the label distribution stays close to uniform (digits has 174..183 per class)
        gxe.ExpectColumnKLDivergenceToBeLessThan(
            column="label", partition_object={"values": list(range(10)), "weights": [0.1] * 10}, threshold=0.01),
        gxe.ExpectColumnValuesToBeInSet(column="split", value_set=["train", "holdout"]),
        gxe.ExpectColumnProportionOfNonNullValuesToBeBetween(column="split", min_value=1.0, max_value=1.0),
    ]
    for p in PIXELS:
        exps.append(gxe.ExpectColumnValuesToNotBeNull(column=p))
        exps.append(gxe.ExpectColumnValuesToBeBetween(column=p, min_value=0, max_value=PIXEL_MAX))
    suite = gx.ExpectationSuite(name="digits", expectations=exps)
    out: dict[str, Any] = suite.to_json_dict()
    out["meta"] = {"great_expectations_version": out.get("meta", {}).get("great_expectations_version")}
    return out


def suite_bytes() -> bytes:
    return (json.dumps(suite_dict(), indent=1, sort_keys=True) + "\n").encode()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--check", action="store_true", help="compare with the committed files instead of writing")
    parser.add_argument("--out", type=Path, default=HERE, help="output folder (default: this folder)")
    args = parser.parse_args(argv)
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        parquet = Path(tmp) / PARQUET.name
        write_table(build_table(), parquet)
        built = {PARQUET.name: parquet.read_bytes(), SUITE.name: suite_bytes()}
    if args.check:
        stale = [n for n, b in built.items() if not (args.out / n).is_file() or (args.out / n).read_bytes() != b]
        for n in stale:
            print(f"datasets/digits/{n}: differs from a rebuild (run datasets/digits/build.py)", file=sys.stderr)
        return 1 if stale else 0
    args.out.mkdir(parents=True, exist_ok=True)
    for name, data in built.items():
        (args.out / name).write_bytes(data)
        print(f"wrote {args.out / name} ({len(data)} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
