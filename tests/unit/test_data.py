"""The digits dataset: byte-identical rebuild, its GE suite, and the data step's verdicts."""

from __future__ import annotations

import importlib.util
import io
import json
from pathlib import Path
from types import ModuleType

import pytest

from kaic.results import Status
from steps import data as data_step
from steps import digits

pytestmark = pytest.mark.unit


def _build() -> ModuleType:
    spec = importlib.util.spec_from_file_location("digits_build", digits.SOURCE_DIR / "build.py")
    assert spec
    assert spec.loader
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_rebuild_is_byte_identical(tmp_path: Path) -> None:
    build = _build()
    assert build.main(["--out", str(tmp_path)]) == 0
    for name in (digits.PARQUET, digits.SUITE):
        assert (tmp_path / name).read_bytes() == (digits.SOURCE_DIR / name).read_bytes(), name


def test_split_is_stratified_and_complete() -> None:
    a = digits.arrays((digits.SOURCE_DIR / digits.PARQUET).read_bytes())
    assert len(a.y_train) + len(a.y_holdout) == 1797
    assert len(a.y_holdout) == 360
    assert a.x_train.max() <= 1.0
    assert a.x_train.min() >= 0.0
    for label in range(10):  # each class is ~20% holdout
        share = (a.y_holdout == label).sum() / ((a.y_holdout == label).sum() + (a.y_train == label).sum())
        assert 0.17 < share < 0.23


def _suite() -> dict:  # type: ignore[type-arg]
    return json.loads((digits.SOURCE_DIR / digits.SUITE).read_text())  # type: ignore[no-any-return]


def test_committed_dataset_meets_its_suite() -> None:
    result = data_step.validate((digits.SOURCE_DIR / digits.PARQUET).read_bytes(), _suite())
    rows = data_step.expectation_outcomes(result, "file:///x")
    assert result["success"] is True
    assert len(rows) == len(_suite()["expectations"]) == 135
    assert {r.status for r in rows} == {Status.PASSED}


def test_out_of_range_pixel_fails_its_expectation() -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pq.read_table(digits.SOURCE_DIR / digits.PARQUET)
    p05 = table.column("p05").to_pylist()
    p05[7] = 17
    table = table.set_column(table.schema.get_field_index("p05"), "p05", pa.array(p05, type=pa.int8()))
    buf = io.BytesIO()
    pq.write_table(table, buf)
    rows = data_step.expectation_outcomes(data_step.validate(buf.getvalue(), _suite()), "file:///x")
    failed = [r for r in rows if r.status is Status.FAILED]
    assert len(failed) == 1
    assert "expect_column_values_to_be_between(p05): NOT met" in failed[0].message
    assert "unexpected_count=1" in failed[0].message


def test_no_results_is_an_error() -> None:
    rows = data_step.expectation_outcomes({"results": []}, "file:///x")
    assert [r.status for r in rows] == [Status.ERROR]
