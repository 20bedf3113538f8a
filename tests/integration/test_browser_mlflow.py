"""Platforms compared in the MLflow UI: `kaic ui` serves a store written by the real MlflowTracker, and a
headless chromium finds the runs by their platform and accelerator tags with the UI's own search box."""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from kaic import env
from kaic.results import Level, ResultRow, RunContext, Status
from kaic.tracking import MlflowTracker
from tests.browser import browser_page, chromium_path, screenshot
from tests.integration.conftest import start_server

pytestmark = pytest.mark.integration

H100 = "NVIDIA H100 80GB HBM3"
RUNS = (("eks", H100, 0.97), ("gke", H100, 0.95), ("local", "cpu", 0.93))


def _log_runs() -> str:
    tracker = MlflowTracker(env.mlflow_uri())
    for platform, accelerator, accuracy in RUNS:
        ctx = RunContext(f"nightly-{platform}-20260312", "0.1.0", datetime(2026, 3, 12, 2, tzinfo=UTC), platform,
                         f"{platform}-cluster", "1.35", accelerator)
        row = ResultRow(ctx.run_id, ctx.suite_version, ctx.started_at, platform, ctx.cluster, ctx.k8s_version,
                        accelerator, "train", "train.holdout_accuracy", None, Level.MUST, Status.PASSED,
                        "holdout_accuracy", accuracy, "ratio")
        latency = ResultRow(ctx.run_id, ctx.suite_version, ctx.started_at, platform, ctx.cluster,
                            ctx.k8s_version, accelerator, "serve", "serve.latency", None, Level.INFO,
                            Status.PASSED, "serve_p95_ms@c8", 10.0 / accuracy, "ms")
        assert tracker.log_step(ctx, "train", [row])
        assert tracker.log_step(ctx, "serve", [latency])
    tracker.connect()
    return str(tracker._experiment_id)


def _search(page: Any, query: str, visible: set[str], hidden: set[str]) -> None:
    """Type a search into the runs page and wait for its answer: every run of a platform is a parent
    (the workflow run) and two children (train, serve), so n platforms match 3n runs."""
    box = page.locator('input[data-testid="search-box"]')
    box.fill(query)
    box.press("Enter")
    try:
        page.get_by_text(f"{3 * len(visible)} matching runs").wait_for(state="visible", timeout=60_000)
        for platform in visible:
            page.get_by_text(f"nightly-{platform}-20260312").first.wait_for(state="visible", timeout=60_000)
        for platform in hidden:
            page.get_by_text(f"nightly-{platform}-20260312").first.wait_for(state="hidden", timeout=60_000)
    except Exception:
        screenshot(page, "mlflow-ui-failure.png", full_page=False)  # what the page showed instead
        raise


def test_mlflow_ui_finds_runs_by_platform(kaic_home: Path, tmp_path: Path) -> None:
    chromium_path()  # skip early, before starting a server, when there is no browser
    experiment = _log_runs()
    server, url = start_server(
        lambda port: [sys.executable, "-m", "kaic.cli", "ui", "--port", str(port)],
        tmp_path / "ui.log", "/health", timeout=240,
    )
    try:
        with browser_page(1400, 900) as (page, _errors):
            page.goto(f"{url}/#/experiments/{experiment}/runs", wait_until="domcontentloaded")
            page.locator('input[data-testid="search-box"]').wait_for(timeout=120_000)
            for platform, _, _ in RUNS:  # the unfiltered table lists every platform's run
                page.get_by_text(f"nightly-{platform}-20260312").first.wait_for(timeout=60_000)
            # each search changes the match count, so a stale table cannot pass for the next answer.
            # (MLflow's search has no OR and no IN for tags: `tags.platform IN (...)` is a request error.)
            _search(page, "tags.platform = 'eks'", visible={"eks"}, hidden={"gke", "local"})
            _search(page, "tags.platform != 'local'", visible={"eks", "gke"}, hidden={"local"})
            _search(page, "tags.platform = 'gke'", visible={"gke"}, hidden={"eks", "local"})
            _search(page, "tags.accelerator LIKE '%H100%'", visible={"eks", "gke"}, hidden={"local"})
            assert "searchFilter=tags.accelerator" in page.url  # the search is in the address: shareable
            page.wait_for_timeout(1500)  # let the table finish repainting: only the screenshot's looks
            shot = screenshot(page, "mlflow-ui-platforms.png", full_page=False)
            page.get_by_text("nightly-eks-20260312").first.click()  # one run's page shows its tags
            page.get_by_text("NVIDIA H100 80GB HBM3").first.wait_for(timeout=60_000)
            page.get_by_text("eks-cluster").first.wait_for(timeout=60_000)
            screenshot(page, "mlflow-ui-run.png", full_page=False)
        assert shot.stat().st_size > 10_000
    finally:
        server.stop()


# Every search string docs/compare.md shows, and the runs each must find (platforms of matching runs).
DOCUMENTED_SEARCHES = {
    "tags.platform = 'eks'": {"eks"},
    "tags.platform != 'local'": {"eks", "gke"},
    "tags.accelerator LIKE '%H100%'": {"eks", "gke"},
    "tags.k8s_version = '1.35'": {"eks", "gke", "local"},
    "tags.`kaic.step` = 'train' AND metrics.holdout_accuracy > 0.94": {"eks", "gke"},
    "tags.`kaic.role` = 'workflow' AND tags.`kaic.status` = 'failed'": set(),
    "metrics.`serve_p95_ms/c8` < 10.6": {"eks", "gke"},
}


def test_documented_search_strings_work_against_the_tracker_store(kaic_home: Path) -> None:
    from mlflow.tracking import MlflowClient

    experiment = _log_runs()
    client = MlflowClient(env.mlflow_uri())
    for query, platforms in DOCUMENTED_SEARCHES.items():
        runs = client.search_runs([experiment], filter_string=query, max_results=100)
        assert {r.data.tags["platform"] for r in runs} == platforms, query
    with pytest.raises(Exception, match="Expected a quoted string value"):
        client.search_runs([experiment], filter_string="tags.platform IN ('eks', 'gke')")
