"""Reports for a run: pure renderers (a `Report` built from rows -> text), one small module per format.

| format  | file          | module                      |
|---------|---------------|-----------------------------|
| junit   | junit.xml     | kaic.reports.junit (CNCF only) |
| junit-full | junit-full.xml | kaic.reports.junit (every row) |
| json    | results.json  | kaic.reports.results_json   |
| e2e     | e2e.log       | kaic.reports.e2e_log        |
| md      | summary.md    | kaic.reports.markdown       |
| html    | report.html   | kaic.reports.html           |
| product | PRODUCT.yaml  | kaic.reports.product        |

The CNCF validator reads only PRODUCT.yaml (and checks that its evidence links exist); junit.xml and
e2e.log are the evidence it links to. `render(...)` renders in memory (so bad input fails before
anything is written); `writer` writes.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from kaic.reports import e2e_log, html, junit, markdown, product, results_json
from kaic.reports.model import Report, default_k8s_version

__all__ = ["FILENAMES", "FORMATS", "Report", "default_k8s_version", "expand_formats", "render"]

_Renderer = Callable[[Report], str | bytes]

# format -> (file name, renderer); product needs a template and is handled in `render`.
_SIMPLE: dict[str, tuple[str, _Renderer]] = {
    "junit": (junit.FILENAME, junit.render),
    "junit-full": (junit.FULL_FILENAME, junit.render_full),
    "json": (results_json.FILENAME, results_json.render),
    "e2e": (e2e_log.FILENAME, e2e_log.render),
    "md": (markdown.FILENAME, markdown.render),
    "html": (html.FILENAME, html.render),
}
FORMATS: tuple[str, ...] = (*_SIMPLE, "product")
FILENAMES: dict[str, str] = {**{k: v[0] for k, v in _SIMPLE.items()}, "product": product.FILENAME}


def expand_formats(requested: Sequence[str]) -> list[str]:
    """'all' -> every format; order follows FORMATS, duplicates dropped."""
    wanted = set(FORMATS) if "all" in requested else set(requested)
    return [f for f in FORMATS if f in wanted]


def render(report: Report, formats: Sequence[str], report_dir: Path,
           template: tuple[str, str] | None = None, evidence_base: str | None = None,
           metadata: Mapping[str, str] | None = None) -> dict[str, bytes]:
    """file name -> content, for each format. `template` is (text, source) for PRODUCT.yaml (default: the
    packaged template of the report's version); PRODUCT.yaml's evidence links are relative to its folder
    (default: junit.xml and e2e.log beside it) or under an https:// `evidence_base`; `metadata` fills the
    template's placeholders (platformVersion: the product's version)."""
    out: dict[str, bytes] = {}
    for fmt in expand_formats(formats):
        if fmt == "product":
            text, source = template or product.packaged_template(report.k8s_version)
            out[product.FILENAME] = product.draft(text, source, report, evidence_base or "", metadata).encode()
            continue
        name, renderer = _SIMPLE[fmt]
        content = renderer(report)
        out[name] = content if isinstance(content, bytes) else content.encode()
    return out
