"""Cross-platform comparison: many runs' rows -> requirement matrix, metric ratios, regressions, HTML.

- `dataset.load_results(uri)`: the results dataset as a normalized pyarrow Table (the only I/O);
- `core.compare(table, ...)`: the pure core -> `Comparison`;
- `regression`: the median/MAD rule, and `regressions_for_run` for one run's rows;
- `render_text` (rich table, CSV), `html` + `svg` (the self-contained report).
`regression_outcomes` below is what the report step calls to add `report.regression` rows.
"""

from __future__ import annotations

from collections.abc import Sequence

from kaic.results import Outcome, ResultRow


def regression_outcomes(rows: Sequence[ResultRow], results_uri: str) -> list[Outcome]:
    """`report.regression` outcomes for a run's rows against its platform's published history.

    No dataset (or no history for the platform) yet: one skipped outcome per directed metric.
    """
    from kaic.compare.dataset import load_results
    from kaic.compare.regression import regressions_for_run
    from kaic.errors import ConfigError

    if not rows:
        return []
    try:
        history = load_results(results_uri, platforms=[rows[0].platform])
    except ConfigError:
        history = None
    return regressions_for_run(rows, history)
