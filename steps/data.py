"""The `data` step: put the dataset in the run's object store, read it back, validate it with Great Expectations.

    kaic step data [--dataset-dir datasets/digits] [--read-repeats 5]

1. Uploads `digits.parquet` and `expectations.json` (a GE 1.x ExpectationSuite) to `runs/<run-id>/data/`,
   where the train step (local processes or pods) reads them.
2. Reads the Parquet back from the store `--read-repeats` times: `data_read_mb_per_s`.
3. Validates it with the suite through GE's own API (ephemeral context, pandas datasource, dataframe
   asset, ValidationDefinition). Each expectation is one `data.expectations` row; a failed expectation
   fails the step. The full GE validation result is saved as JSON (`runs/<run-id>/data/validation.json`
   and the step's work folder) and named as every row's evidence.
"""

from __future__ import annotations

import argparse
import io
import json
import time
from pathlib import Path
from typing import Any

from pydantic import Field

from kaic.profiles import Profile
from kaic.results import Outcome, Status
from kaic.stepkit import StepConfig, StepContext, parse_config
from steps import digits

NAME = "data"


class Config(StepConfig):
    dataset_dir: str = str(digits.SOURCE_DIR)
    read_repeats: int = Field(5, ge=1, le=1000)


def configure(parser: argparse.ArgumentParser) -> None:
    g = parser.add_argument_group("data")
    g.add_argument("--dataset-dir", default=str(digits.SOURCE_DIR),
                   help="folder holding digits.parquet and expectations.json (default: the committed dataset)")
    g.add_argument("--read-repeats", type=int, default=5, help="reads of the dataset for the throughput figure")


def make_config(args: argparse.Namespace, profile: Profile) -> Config:
    from kaic.errors import ConfigError

    folder = Path(args.dataset_dir)
    for name in (digits.PARQUET, digits.SUITE):
        if not (folder / name).is_file():
            raise ConfigError(f"--dataset-dir {args.dataset_dir!r}: no {name} there")
    return parse_config(Config, {"dataset_dir": str(folder), "read_repeats": args.read_repeats}, "kaic step data")


def run(config: Config, ctx: StepContext) -> list[Outcome]:
    run_id = ctx.run.run_id
    keys = digits.upload(ctx.store, run_id, Path(config.dataset_dir))
    ctx.log(f"dataset uploaded: {', '.join(ctx.store.uri(k) for k in keys)}")
    data, seconds = timed_reads(ctx, digits.data_key(run_id), config.read_repeats)
    outcomes = [Outcome.measured(
        "data.read_throughput", "data_read_mb_per_s", len(data) * config.read_repeats / 1e6 / seconds, "MB/s",
        f"{config.read_repeats} reads of {len(data)} bytes from {ctx.store.uri(digits.data_key(run_id))}",
    )]
    suite = json.loads(ctx.store.get_bytes(digits.data_key(run_id, digits.SUITE)))
    result = validate(data, suite)
    report_key = digits.data_key(run_id, "validation.json")
    blob = json.dumps(result, indent=1, sort_keys=True, default=str).encode()
    ctx.store.put_bytes(report_key, blob)
    (ctx.work_dir / "validation.json").write_bytes(blob)
    outcomes += expectation_outcomes(result, ctx.store.uri(report_key))
    return outcomes


def timed_reads(ctx: StepContext, key: str, repeats: int) -> tuple[bytes, float]:
    started = time.perf_counter()
    data = b""
    for _ in range(repeats):
        data = digits.read_bytes(ctx.store, key)
    return data, max(time.perf_counter() - started, 1e-9)


def validate(parquet: bytes, suite: dict[str, Any]) -> dict[str, Any]:
    """Run the suite over the Parquet with Great Expectations; returns GE's validation result as JSON."""
    import great_expectations as gx
    import pyarrow.parquet as pq

    frame = pq.read_table(io.BytesIO(parquet)).to_pandas()
    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = {"globally": False}  # type: ignore[assignment]
    source = context.data_sources.add_pandas(name="kaic")
    batch = source.add_dataframe_asset(name="digits").add_batch_definition_whole_dataframe("all")
    stored = context.suites.add(gx.ExpectationSuite(**{k: v for k, v in suite.items() if k != "id"}))
    definition = context.validation_definitions.add(gx.ValidationDefinition(name="digits", data=batch, suite=stored))
    outcome = definition.run(batch_parameters={"dataframe": frame})
    result: dict[str, Any] = outcome.to_json_dict()  # type: ignore[no-untyped-call]
    return result


def expectation_outcomes(result: dict[str, Any], evidence: str) -> list[Outcome]:
    """One `data.expectations` row per expectation result (pure: GE's JSON in, outcomes out)."""
    out = []
    for r in result.get("results", []):
        cfg = r.get("expectation_config", {})
        kwargs = {k: v for k, v in cfg.get("kwargs", {}).items() if k != "batch_id"}
        name = cfg.get("type", "?") + (f"({kwargs['column']})" if "column" in kwargs else "")
        seen = r.get("result", {})
        detail = ", ".join(f"{k}={seen[k]}" for k in ("observed_value", "unexpected_count") if seen.get(k) is not None)
        if r.get("exception_info", {}).get("raised_exception"):
            msg = r["exception_info"].get("exception_message", "raised")
            out.append(Outcome("data.expectations", Status.ERROR, f"{name}: {msg}", evidence=evidence))
            continue
        ok = bool(r.get("success"))
        out.append(Outcome.verdict("data.expectations", ok, f"{name}: {'met' if ok else 'NOT met'}"
                                   + (f" ({detail})" if detail else ""), evidence=evidence))
    if not out:
        out.append(Outcome("data.expectations", Status.ERROR, "the suite produced no results", evidence=evidence))
    return out
