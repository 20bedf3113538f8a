"""The `report` step: every staged row of the run -> junit.xml, results.json, e2e.log, summary.md,
report.html and a PRODUCT.yaml draft, under $KAIC_HOME/runs/<run-id>/report/ and the object store's
runs/<run-id>/report/; then the run is published to the results dataset.

Its own rows are `report.regression` (INFO): each directed metric of the run against the same platform's
recent history in the results dataset (`kaic.compare.regression`); a crash still becomes a `step.error`
row. Its exit code is the whole run's derived status, computed in `finish` after its own rows are staged,
so the workflow's last phase tells the truth about the run.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

from kaic import catalog
from kaic.errors import ConfigError
from kaic.profiles import Profile
from kaic.results import Outcome, ResultRow, exit_code
from kaic.stepkit import StepConfig, StepContext, parse_config
from kaic.stores import ResultSink

NAME = "report"


class Config(StepConfig):
    k8s_version: str | None = None  # '1.35'; default: the run's cluster version, else 1.35
    template: str | None = None  # a checklist file; default: the template packaged for the version


def configure(parser: argparse.ArgumentParser) -> None:
    g = parser.add_argument_group("report")
    g.add_argument("--k8s-version", help="CNCF version to draft PRODUCT.yaml for (default: the run's cluster "
                   f"version, else {catalog.DEFAULT_K8S_VERSION})")
    g.add_argument("--template", help="AI conformance checklist to draft from (default: the packaged one)")


def make_config(args: argparse.Namespace, profile: Profile) -> Config:
    from kaic.reports import product

    version = catalog.check_k8s_version(args.k8s_version) if args.k8s_version else None
    if args.template:  # read and validate now, before any work
        product.template_version(*product.read_template(Path(args.template)), wanted=version)
    return parse_config(Config, {"k8s_version": version, "template": args.template}, "kaic step report")


def report_dir(ctx: StepContext) -> Path:
    return ctx.run_dir / "report"


def _sink(ctx: StepContext) -> ResultSink:
    if ctx.sink is None:
        raise RuntimeError("the report step needs the run's result sink (StepContext.sink)")
    return ctx.sink


def run(config: Config, ctx: StepContext) -> list[Outcome]:
    """Judge the run's metrics against its platform's history (regressions), then render the reports, those
    rows included."""
    from kaic.compare import regression_outcomes
    from kaic.stepkit import stamp

    template = Path(config.template) if config.template else None
    rows = [r for r in _sink(ctx).staged(ctx.run.run_id) if r.step != NAME]  # a previous attempt's own rows out
    own = regression_outcomes(rows, ctx.results_uri) if ctx.results_uri and rows else []
    # the reports list every row, this step's own included (stamped as the harness will stage them)
    render(ctx, [*rows, *stamp(own, ctx.run, NAME, ctx.profile)], config.k8s_version, template)
    return own


def render(ctx: StepContext, staged: Sequence[ResultRow], k8s_version: str | None = None,
           template_path: Path | None = None) -> list[ResultRow]:
    """Every report for the run's rows (the report step's own included), into the run's report folder and
    the object store. Returns the rows reported on."""
    from kaic.reports import product
    from kaic.reports.writer import write_reports

    run_id = ctx.run.run_id
    rows = list(staged)
    if not [r for r in rows if r.step != NAME]:
        where = ctx.store.uri(ctx.key("rows"))
        raise ConfigError(f"run {run_id!r}: no staged rows to report on under {where}")
    template = product.read_template(template_path) if template_path else None
    report, paths = write_reports(rows, report_dir(ctx), ["all"], k8s_version, template)
    for path in paths:
        ctx.store.put_file(ctx.key("report", path.name), path)
    ctx.log(f"{len(paths)} reports for {len(rows)} rows (CNCF v{report.k8s_version}) in {report_dir(ctx)}, "
            f"uploaded to {ctx.store.uri(ctx.key('report'))}")
    return rows


def publish(ctx: StepContext) -> list[Path]:
    """Publish the run's rows to the results dataset (atomic; again replaces), print where the report is,
    and return the report files to log on the MLflow parent run."""
    from kaic.reports import html

    ctx.log(f"run published: {_sink(ctx).publish(ctx.run.run_id)}")
    out = report_dir(ctx)
    artifacts = sorted(p for p in out.iterdir() if p.is_file() and not p.name.startswith(".")) \
        if out.is_dir() else []
    page = out / html.FILENAME
    if page.is_file():
        print(f"report: {page.resolve()}", flush=True)
    return artifacts


def finish(config: Config, ctx: StepContext) -> tuple[int, list[Path]]:
    """After this step's rows are staged: publish the run, point at the report, exit by the whole run."""
    artifacts = publish(ctx)
    return exit_code(_sink(ctx).staged(ctx.run.run_id)), artifacts
