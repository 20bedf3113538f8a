"""The data step end to end: upload to the object store, read back, GE validation, rows, MLflow."""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

import pytest

from kaic import stepkit
from kaic.results import Status
from steps import data, digits

pytestmark = pytest.mark.integration


def _args(extra: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser()
    stepkit.add_common_arguments(p)
    data.configure(p)
    return p.parse_args(extra)


def test_data_step_passes_and_leaves_the_dataset_for_train(kaic_home: Path) -> None:
    rows, code = stepkit.execute_step(data, _args(["--run-id", "d-ok"]))
    assert code == 0
    expectations = [r for r in rows if r.check_id == "data.expectations"]
    assert len(expectations) == 135
    assert {r.status for r in expectations} == {Status.PASSED}
    [tput] = [r for r in rows if r.check_id == "data.read_throughput"]
    assert tput.metric == "data_read_mb_per_s"
    assert tput.value
    assert tput.value > 0
    run = kaic_home / "objects" / "runs" / "d-ok" / "data"
    assert (run / "digits.parquet").read_bytes() == (digits.SOURCE_DIR / digits.PARQUET).read_bytes()
    assert json.loads((run / "validation.json").read_text())["success"] is True


def test_a_bad_dataset_fails_the_step_with_the_ge_result_saved(kaic_home: Path, tmp_path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    bad = tmp_path / "bad"
    bad.mkdir()
    shutil.copy(digits.SOURCE_DIR / digits.SUITE, bad / digits.SUITE)
    table = pq.read_table(digits.SOURCE_DIR / digits.PARQUET).slice(0, 1000)  # rows missing
    pq.write_table(table.set_column(64, "label", pa.array([3] * 1000, type=pa.int8())), bad / digits.PARQUET)
    rows, code = stepkit.execute_step(data, _args(["--run-id", "d-bad", "--dataset-dir", str(bad)]))
    assert code == 1
    failed = {r.message.split(":")[0] for r in rows if r.status is Status.FAILED}
    assert {"expect_table_row_count_to_equal", "expect_column_distinct_values_to_equal_set(label)",
            "expect_column_kl_divergence_to_be_less_than(label)"} <= failed
    saved = kaic_home / "objects" / "runs" / "d-bad" / "data" / "validation.json"
    assert json.loads(saved.read_text())["success"] is False
    assert all(r.evidence and r.evidence.endswith("validation.json") for r in rows if r.check_id == "data.expectations")


def test_missing_dataset_dir_is_a_config_error(tmp_path: Path) -> None:
    from kaic.errors import ConfigError
    from kaic.profiles import load_profile

    with pytest.raises(ConfigError, match=r"--dataset-dir .*: no digits.parquet there"):
        data.make_config(_args(["--dataset-dir", str(tmp_path)]), load_profile("local"))
