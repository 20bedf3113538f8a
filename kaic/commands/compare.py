"""`kaic compare`: compare runs across platforms from the results dataset; flag regressions.

Reads the dataset (local folder or s3://), runs the pure core (kaic.compare.core), then renders a
terminal table, CSV or JSON (to stdout or --out) and optionally the HTML report (--html).
Exit codes: 0; 1 with --fail-on-regression when a regression is flagged; 2 on bad input.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path

from kaic import env
from kaic.errors import ConfigError

# kaic.compare.core.GROUP_COLUMNS, repeated so `--help` does not import pyarrow
GROUP_COLUMNS = ("platform", "cluster", "accelerator", "k8s_version")


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--results", help="results dataset URI: a folder, file://... or s3://bucket/prefix "
                        "(default: $KAIC_RESULTS, then file://$KAIC_HOME/results)")
    parser.add_argument("--by", default="platform", choices=GROUP_COLUMNS,
                        help="group runs by this column (default: platform)")
    parser.add_argument("--baseline", help="group the ratios are taken against (default: 'local' if present, "
                        "else the first alphabetically)")
    window = parser.add_mutually_exclusive_group()
    window.add_argument("--since", metavar="YYYY-MM-DD", help="only runs started on or after this date (UTC)")
    window.add_argument("--last", metavar="N", type=int, help="only the last N runs of each group")
    parser.add_argument("--format", choices=("table", "csv", "json"), default="table", help="output format")
    parser.add_argument("--out", metavar="FILE", help="write the table/CSV/JSON here instead of stdout")
    parser.add_argument("--html", metavar="OUT", help="also write the self-contained HTML report here")
    parser.add_argument("--fail-on-regression", action="store_true",
                        help="exit 1 when a regression is flagged")


def parse_date(text: str, source: str = "--since") -> datetime:
    try:
        return datetime.strptime(text, "%Y-%m-%d").replace(tzinfo=UTC)
    except ValueError:
        raise ConfigError(f"{source} {text!r}: not a date (use YYYY-MM-DD)") from None


def _writable_target(path: str, source: str) -> Path:
    from kaic.preflight import writable_file

    return writable_file(Path(path), source)


def write_atomic(target: Path, text: str) -> None:
    """All or nothing: write beside the target, then rename over it."""
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        umask = os.umask(0)
        os.umask(umask)
        Path(tmp).chmod(0o666 & ~umask)  # mkstemp makes 0600; a report is an ordinary file
        Path(tmp).replace(target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def run(args: argparse.Namespace) -> int:
    from kaic.compare.core import compare
    from kaic.compare.dataset import load_for_compare

    since = parse_date(args.since) if args.since else None
    if args.last is not None and args.last < 1:
        raise ConfigError(f"--last {args.last}: must be at least 1")
    out = _writable_target(args.out, "--out") if args.out else None
    html_out = _writable_target(args.html, "--html") if args.html else None
    uri = args.results or env.results_uri()
    source = "--results" if args.results else "$KAIC_RESULTS" if env.KAIC_RESULTS.get() else "default results"

    table = load_for_compare(uri, source=source, since=since.date() if since else None, by=args.by)
    comparison = compare(table, by=args.by, baseline=args.baseline, since=since, last=args.last,
                         keep_history=html_out is not None)

    text = _render(comparison, args.format, to_file=out is not None)
    if html_out is not None:
        from kaic.compare.html import render_html

        write_atomic(html_out, render_html(comparison, source=uri))
    if out is not None:
        write_atomic(out, text)
    elif text:
        sys.stdout.write(text)
    if html_out is not None:
        print(f"HTML report: {html_out}", file=sys.stderr)
    if out is not None:
        print(f"{args.format} output: {out}", file=sys.stderr)
    return 1 if args.fail_on_regression and comparison.regressed else 0


def _render(comparison: object, fmt: str, to_file: bool) -> str:
    from kaic.compare.core import Comparison
    from kaic.compare.render_text import render_csv, render_table

    assert isinstance(comparison, Comparison)
    if fmt == "json":
        return comparison.to_json() + "\n"
    if fmt == "csv":
        return render_csv(comparison)
    from rich.console import Console

    if to_file:
        console = Console(record=True, width=200, color_system=None, file=open(os.devnull, "w"))  # noqa: SIM115
        render_table(comparison, console)
        return console.export_text()
    render_table(comparison, Console(width=max(Console().width, 140)))
    return ""
