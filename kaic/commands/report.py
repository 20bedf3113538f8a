"""`kaic report RUN [--format ...] [--k8s-version X] [--template FILE] [--out DIR]`: render a run's reports.
`kaic report --check-submission DIR`: the CNCF validator's rules on a PRODUCT.yaml, offline.

Reads the run's rows (staged shards under the object store, else the published results dataset),
renders every requested format in memory, then writes each file atomically and prints its path.
Exit code: the run's derived status (0 every evaluated MUST passed, 1 otherwise); 2 for bad input.
--check-submission exits 0 with no validator error, 1 otherwise.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

from kaic import catalog, env
from kaic.errors import ConfigError
from kaic.preflight import creatable_dir
from kaic.results import ResultRow, exit_code

_RUN_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")


def configure(parser: argparse.ArgumentParser) -> None:
    from kaic.reports import FORMATS

    parser.add_argument("run_id", metavar="RUN", nargs="?", help="the run id (kaic-YYYYMMDD-HHMMSS-xxxxxx)")
    parser.add_argument("--check-submission", metavar="DIR", type=Path, help="check a submission folder's "
                        "PRODUCT.yaml (or the file) with the CNCF validator's rules, offline, and exit")
    parser.add_argument("--format", action="append", choices=(*FORMATS, "all"), dest="formats",
                        help="a format to write (repeatable; default: all)")
    parser.add_argument("--k8s-version", help="CNCF version to judge against and draft PRODUCT.yaml for "
                        "(default: the template's, else the run's cluster version, else 1.35)")
    parser.add_argument("--template", type=Path, help="official AIConformance-1.3x.yaml (or a filled one) to "
                        "draft PRODUCT.yaml from (default: the copy packaged with kaic)")
    parser.add_argument("--evidence-base", metavar="BASE", help="where PRODUCT.yaml's evidence links point: a "
                        "folder relative to PRODUCT.yaml (e.g. results) or an https:// URL where junit.xml and "
                        "e2e.log are published (default: beside PRODUCT.yaml)")
    parser.add_argument("--profile", help="profile whose `submission` block fills PRODUCT.yaml's metadata")
    parser.add_argument("--platform-version", help="the product's version for PRODUCT.yaml metadata.platformVersion "
                        "(not the Kubernetes version; default: the profile's submission.platform_version)")
    parser.add_argument("--out", type=Path, help="output folder (default: $KAIC_HOME/runs/RUN/report)")
    parser.add_argument("--object-store", help="object store URI (default: $KAIC_OBJECT_STORE or "
                        "file://$KAIC_HOME/objects)")
    parser.add_argument("--results", help="results dataset URI (default: $KAIC_RESULTS or file://$KAIC_HOME/results)")


def load_rows(run_id: str, object_store: str, results: str) -> list[ResultRow]:
    """The run's staged rows, else its published rows; an unknown run is bad input."""
    from kaic.stores.objects import open_store
    from kaic.stores.results_dataset import ParquetResults, rows_for_run

    if not _RUN_ID.fullmatch(run_id):  # a run id becomes part of object keys and paths
        raise ConfigError(f"RUN {run_id!r}: not a run id (letters, digits, '.', '_', '-')")
    store = open_store(object_store, source="--object-store", create=False)
    rows = ParquetResults(store, store).staged(run_id)  # staging reads only the run store
    if rows:
        return rows
    try:
        rows = rows_for_run(results, run_id)
    except ConfigError as exc:
        reason = f" ({exc})"
    else:
        reason = ""
    if not rows:
        raise ConfigError(f"run {run_id!r}: unknown run (no rows staged under "
                          f"{store.uri(f'runs/{run_id}/rows')} and none published in {results}{reason})")
    return rows


def metadata(profile_name: str | None, platform_version: str | None) -> dict[str, str]:
    """PRODUCT.yaml metadata from a profile's `submission` block and --platform-version (template key names)."""
    from kaic.profiles import load_profile

    out: dict[str, str] = {}
    if profile_name:
        sub = load_profile(profile_name).submission
        for field, value in sub.model_dump().items():
            if value:
                head, *rest = field.split("_")
                key = head + "".join(w.capitalize() for w in rest)
                out["k8sConformanceUrl" if key == "k8sConformanceUrl" else key] = str(value)
    if platform_version:
        out["platformVersion"] = platform_version
    return out


def check_submission(path: Path) -> int:
    from kaic.reports.submission_check import check

    result = check(path)
    for line in result.lines():
        print(line)
    return 0 if not result.errors else 1


def run(args: argparse.Namespace) -> int:
    from kaic.reports import product
    from kaic.reports.writer import write_reports

    if args.check_submission is not None:
        return check_submission(args.check_submission)
    if not args.run_id:
        raise ConfigError("kaic report: give a RUN id, or --check-submission DIR")
    version = catalog.check_k8s_version(args.k8s_version) if args.k8s_version is not None else None
    template = product.read_template(args.template) if args.template is not None else None
    if template is not None:
        product.parse_template(*template)  # a defective template is refused before anything is read
    object_store = args.object_store or env.object_store_uri()
    if args.out is not None:
        creatable_dir(args.out, "--out")  # refused before reading anything, and nothing created
    rows = load_rows(args.run_id, object_store, args.results or env.results_uri())
    out = args.out if args.out is not None else env.kaic_home() / "runs" / args.run_id / "report"
    meta = metadata(args.profile, args.platform_version)
    product.check_evidence_base(args.evidence_base)
    report, paths = write_reports(rows, out, args.formats or ["all"], version, template, args.evidence_base, meta)
    for path in paths:
        print(path)
    print(f"kaic: run {report.info.run_id}: {report.headline} (CNCF v{report.k8s_version}: {report.cncf_verdict})",
          file=sys.stderr)
    return exit_code(report.rows)  # levels re-derived at the judged version
