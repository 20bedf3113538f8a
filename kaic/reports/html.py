"""report.html: one self-contained file (inline CSS, no scripts, no remote resources), readable offline."""

from __future__ import annotations

from html import escape

from kaic import catalog
from kaic.reports import charts
from kaic.reports.model import CheckLine, Report, Verdict, check_lines, fmt_value, meta_pairs

FILENAME = "report.html"

CSS = r"""
body{font:14px/1.45 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2rem;color:#1d2430}
h1{font-size:1.5rem;margin:0 0 .3rem}h2{font-size:1.15rem;margin:2rem 0 .6rem}
table{border-collapse:collapse;width:100%;margin:.4rem 0}
th,td{border:1px solid #d9dee7;padding:.3rem .5rem;text-align:left;vertical-align:top}
th{background:#f3f5f9}td.num{text-align:right;font-variant-numeric:tabular-nums}
code{font-family:ui-monospace,SFMono-Regular,Menlo,monospace;font-size:.92em}
.meta td:first-child{color:#5a6475;width:12rem}
.badge{display:inline-block;padding:.1rem .5rem;border-radius:.8rem;font-weight:600;font-size:.85em}
.passed,.verified{background:#dcf5e3;color:#135c2b}.failed{background:#fbe0e0;color:#8a1414}
.error,.partial{background:#ffe9cc;color:#7a4200}.skipped,.unverified{background:#eceff4;color:#4a5363}
.not-checked{background:#f6f7f9;color:#8a93a3}.run{font-size:1.1rem;padding:.2rem .8rem}
.N\/A,.no-CNCF-verdict{background:#eceff4;color:#4a5363}details summary{cursor:pointer}
.charts svg{margin:.3rem 1rem .3rem 0}.ct{font-weight:600;font-size:13px}.cu,.ca,.cl,.cv{font-size:11px;fill:#5a6475}
.lv-MUST{font-weight:700}.lv-none{color:#b0b6c1}tr.current td.lv{outline:2px solid #6b8bd6}
"""


def _badge(text: str) -> str:
    return f'<span class="badge {escape(text.replace(" ", "-"))}">{escape(text)}</span>'


def _meta(report: Report) -> str:
    rows = "".join(f"<tr><td>{escape(k)}</td><td>{escape(v)}</td></tr>" for k, v in meta_pairs(report))
    return f'<table class="meta">{rows}</table>'


def _matrix(report: Report) -> str:
    """Requirements x Kubernetes versions (levels), with this run's verdict and its checks."""
    versions = catalog.K8S_VERSIONS
    head = "".join(f"<th>{'<u>' if v == report.k8s_version else ''}v{escape(v)}"
                   f"{'</u>' if v == report.k8s_version else ''}</th>" for v in versions)
    body = []
    for s in report.requirements:
        levels = "".join(
            f'<td class="lv lv-{lv.value if lv else "none"}">{lv.value if lv else "-"}</td>'
            for lv in (s.requirement.level(v) for v in versions)
        )
        checks = "<br>".join(f"<code>{escape(r.name)}</code> {_badge(r.status.value)}" for r in s.rows) or "-"
        listed = s.level is not None or s.verdict is not Verdict.NOT_CHECKED
        verdict = _badge(s.verdict.value) if listed else "-"
        body.append(f"<tr><td><code>{escape(s.id)}</code><br><small>{escape(s.requirement.title)}</small></td>"
                    f"<td>{escape(s.requirement.category)}</td>{levels}<td>{verdict}</td><td>{checks}</td></tr>")
    return (f'<table class="matrix"><tr><th>requirement</th><th>category</th>{head}'
            f"<th>this run</th><th>checks</th></tr>{''.join(body)}</table>")


def _check_row(line: CheckLine) -> str:
    r = line.first
    message = escape(line.summary)
    if line.folded:  # e.g. the dataset's expectations: one line, the sub-table behind a <details>
        sub = "".join(f"<tr><td>{_badge(x.status.value)}</td><td>{escape(x.message)}</td></tr>"
                      for x in sorted(line.rows, key=lambda x: x.status.value != "failed"))
        message = f"<details><summary>{message}</summary><table>{sub}</table></details>"
    name = r.check_id if line.folded else r.name
    return (f"<tr><td>{_badge(line.status.value)}</td><td>{r.level.value}</td><td>{escape(r.step)}</td>"
            f"<td><code>{escape(name)}</code></td><td>{escape(r.requirement_id or '')}</td>"
            f'<td class="num">{"" if line.folded else escape(fmt_value(r))}</td>'
            f'<td>{escape(r.threshold or "")}</td><td>{message}</td></tr>')


def _charts(report: Report) -> str:
    svgs = [c for c in (charts.loss_curve(report), charts.latency_by_concurrency(report),
                        charts.step_timeline(report)) if c]
    return f'<div class="charts">{"".join(svgs)}</div>' if svgs else "<p>Nothing to draw in this run.</p>"


def _checks(report: Report) -> str:
    rows = "".join(_check_row(ln) for ln in check_lines(report.rows))
    return ("<table><tr><th>status</th><th>level</th><th>step</th><th>check</th><th>requirement</th>"
            f"<th>value</th><th>threshold</th><th>message</th></tr>{rows}</table>")


def _metrics(report: Report) -> str:
    rows = "".join(
        f"<tr><td>{escape(r.step)}</td><td><code>{escape(r.metric or '')}</code></td>"
        f'<td class="num">{escape(fmt_value(r))}</td><td>{escape(r.threshold or "")}</td>'
        f"<td>{_badge(r.status.value)}</td></tr>"
        for r in report.metric_rows
    )
    if not rows:
        return "<p>No measurements in this run.</p>"
    head = "<tr><th>step</th><th>metric</th><th>value</th><th>threshold</th><th>status</th></tr>"
    return f"<table>{head}{rows}</table>"


def render(report: Report) -> str:
    i = report.info
    title = f"kaic conformance report: {i.run_id}"
    return (
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        f"<title>{escape(title)}</title><style>{CSS}</style></head><body>\n"
        f"<h1>{escape(title)}</h1>\n<h2>CNCF AI Conformance v{escape(report.k8s_version)}: "
        f"{escape(report.cncf_verdict)}</h2>\n{_matrix(report)}\n"
        f"<p>Run status {_badge(report.headline).replace('badge ', 'badge run ')}"
        " (derived: failed when a MUST check failed; skips are not failures; 'no CNCF verdict' when no CNCF "
        "MUST could be verified)</p>\n"
        f"{_meta(report)}\n<h2>Pictures</h2>\n{_charts(report)}\n"
        f"<h2>Checks</h2>\n{_checks(report)}\n<h2>Metrics</h2>\n{_metrics(report)}\n</body></html>\n"
    )
