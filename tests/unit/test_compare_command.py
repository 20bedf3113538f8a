"""`kaic compare` end to end in-process (dataset on disk -> table/CSV/JSON/HTML), and its renderers."""

from __future__ import annotations

import csv
import io
import json
import re
from pathlib import Path

import pytest

from kaic.cli import main
from kaic.compare.core import compare
from kaic.compare.dataset import load_for_compare, load_results
from kaic.compare.html import render_html
from kaic.compare.svg import Bar, bar_chart, nice_max
from tests.compare_rows import recorded_rows, write_dataset

pytestmark = pytest.mark.unit


@pytest.fixture
def dataset(tmp_path: Path) -> Path:
    return write_dataset(tmp_path / "results", recorded_rows(regress={"gke": {"train_samples_per_s": 0.7}}))


def test_table_output_shows_matrix_ratios_and_regressions(dataset: Path,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["compare", "--results", str(dataset)]) == 0
    out = capsys.readouterr().out
    assert "baseline: aks (default: first alphabetically" in out
    assert "secure_accelerator_access" in out
    assert re.search(r"train_samples_per_s .*×0\.7\d▼", out)
    assert "REGRESSION gke train_samples_per_s" in out


def test_fail_on_regression_exits_1(dataset: Path) -> None:
    assert main(["compare", "--results", str(dataset), "--format", "json", "--fail-on-regression"]) == 1
    clean = write_dataset(dataset.parent / "clean", recorded_rows())
    assert main(["compare", "--results", f"file://{clean}", "--format", "json", "--fail-on-regression"]) == 0


def test_default_results_location_is_kaic_home(kaic_home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write_dataset(kaic_home / "results", recorded_rows(nights=2))
    assert main(["compare", "--format", "csv"]) == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    kinds = {r["kind"] for r in rows}
    assert kinds == {"run", "requirement", "metric", "regression"}
    skipped = [r for r in rows if r["kind"] == "regression"]
    assert skipped
    assert all(r["status"] == "skipped" for r in skipped)  # 1 earlier run < 3
    ratio = next(r for r in rows if r["kind"] == "metric" and r["group"] == "aks")
    assert ratio["mark"] == "baseline"


def test_json_and_html_files(dataset: Path, tmp_path: Path) -> None:
    out, html = tmp_path / "cmp.json", tmp_path / "cmp.html"
    assert main(["compare", "--results", str(dataset), "--last", "5", "--format", "json", "--out", str(out),
                 "--html", str(html)]) == 0
    data = json.loads(out.read_text())
    assert data["window"].startswith("last 5 run(s) per group")
    assert [r["metric"] for r in data["regressions"] if r["status"] == "failed"] == ["train_samples_per_s"]
    page = html.read_text()
    assert page.startswith("<!DOCTYPE html>")
    assert html.stat().st_mode & 0o044  # an ordinary readable file, not mkstemp's 0600


@pytest.mark.parametrize(("argv", "message"), [
    (["--results", "/nonexistent/results"], "does not exist"),
    (["--baseline", "openshift"], "--baseline 'openshift': not in the results (have: aks, eks, gke)"),
    (["--since", "2026-02-30"], "--since '2026-02-30': not a date (use YYYY-MM-DD)"),
    (["--since", "2030-01-01"], "has no rows since 2030-01-01"),
    (["--last", "0"], "--last 0: must be at least 1"),
    (["--html", "/nonexistent/dir/r.html"], "--html /nonexistent/dir/r.html: folder /nonexistent/dir"),
])
def test_bad_input_exits_2_with_one_line_and_writes_nothing(
    dataset: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], argv: list[str], message: str,
) -> None:
    out = tmp_path / "out.txt"
    args = ["compare", "--results", str(dataset), "--out", str(out), *argv]
    if argv[0] == "--results":
        args = ["compare", "--out", str(out), *argv]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert message in err
    assert err.count("\n") == 1
    assert not out.exists()


def test_html_is_self_contained_with_matrix_charts_and_highlighted_regressions(dataset: Path) -> None:
    c = compare(load_results(str(dataset)))
    page = render_html(c, source=str(dataset))
    assert "<script" not in page
    assert "<link" not in page
    assert not re.findall(r"(?:src|href)=", page)  # nothing fetched
    urls = set(re.findall(r"https?://[^\"' <]+", page))
    assert urls == {"http://www.w3.org/2000/svg"}  # only the SVG namespace name
    assert page.count('<svg class="chart bar"') == len(c.metrics)
    assert page.count('<svg class="chart line"') == 5  # the directed metrics have trends
    assert '<section class="regressions flagged">' in page
    assert 'class="card flagged" id="metric-train_samples_per_s"' in page
    assert "580.159.04" in page  # driver beside the platform
    matrix = page[page.index('<section class="matrix">'):page.index('<section class="metrics">')]
    assert matrix.count('<td class="passed"') == 12 * 3  # 12 requirements x 3 platforms
    assert "r=\"6\"" in page  # the regressed point is ringed on its trend line


def test_svg_helpers() -> None:
    assert nice_max(0.19) == 0.2
    assert nice_max(566_000) == 1_000_000
    assert nice_max(0) == 1.0
    svg = bar_chart("m <x>", "MB/s", [Bar("a&b", 3.0, "#000"), Bar("c", float("nan"), "#111")])
    assert "m &lt;x&gt;" in svg
    assert "a&amp;b" in svg
    assert svg.count('class="mark"') == 2


@pytest.mark.parametrize("by", ["platform", "accelerator"])
def test_two_pass_read_gives_the_same_comparison_as_reading_everything(dataset: Path, by: str) -> None:
    whole = compare(load_results(str(dataset)), by=by).to_dict()
    two_pass = compare(load_for_compare(str(dataset), by=by), by=by).to_dict()
    assert two_pass == whole
    assert whole["requirements"]  # the latest runs' text columns made it through
