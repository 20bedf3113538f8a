"""The comparison HTML report in a real headless browser (Debian chromium + Playwright).

The dataset: one real local run (provision + report, published) and three recorded platforms with a
seeded regression. Checks: no console errors, the requirement matrix, charts with marks, the
regression highlighted, nothing fetched from the network; a screenshot is kept in test-artifacts/.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from kaic.cli import main
from tests.browser import browser_page, screenshot
from tests.compare_rows import recorded_rows, write_dataset

pytestmark = pytest.mark.integration


def test_html_report_renders_in_chromium(kaic_home: Path, tmp_path: Path) -> None:
    for step in ("provision", "report"):
        assert main(["step", step, "--platform", "local", "--run-id", "local-browser-1"]) in (0, 1)
    write_dataset(kaic_home / "results", recorded_rows(regress={"gke": {"train_samples_per_s": 0.7}}))
    html = tmp_path / "compare.html"
    assert main(["compare", "--baseline", "eks", "--format", "json", "--out", str(tmp_path / "c.json"),
                 "--html", str(html)]) == 0

    with browser_page() as (page, errors):
        requests: list[str] = []
        page.on("request", lambda r: requests.append(r.url))
        page.goto(html.as_uri(), wait_until="load")
        assert page.title().startswith("kaic comparison")
        matrix = page.locator("section.matrix table")
        assert matrix.locator("th", has_text="secure_accelerator_access").count() == 1
        header = [t.strip() for t in matrix.locator("tr").first.locator("th").all_inner_texts()]
        assert header == ["requirement", "aks", "eks", "gke", "local"]
        assert matrix.locator("td.passed").count() >= 12 * 3
        assert matrix.locator("td.skipped").count() >= 1  # local: no cluster
        charts = page.locator("svg.chart")
        assert charts.count() >= 2
        assert page.locator("svg.chart.bar rect.mark").count() >= 3
        assert page.locator("svg.chart.line polyline.mark").count() >= 3
        box = page.locator("svg.chart.bar").first.bounding_box()
        assert box is not None
        assert box["width"] > 100  # laid out, not collapsed
        flagged = page.locator("section.regressions.flagged tr.failed")
        assert flagged.count() == 1
        assert "train_samples_per_s" in flagged.inner_text()
        assert page.locator(".card.flagged").count() == 1
        platforms = page.locator("section.platforms").inner_text()
        assert "580.159.04" in platforms  # the driver beside the platform
        assert "NVIDIA H100 80GB HBM3" in platforms
        shot = screenshot(page, "compare-report.png")
    assert errors == []
    assert [u for u in requests if not u.startswith("file://")] == []
    assert shot.stat().st_size > 10_000
