"""`kaic compile`: write the conformance WorkflowTemplate and the nightly CronWorkflow as YAML.

Output is byte-stable (sorted keys, no timestamps); every manifest is checked by a round trip through
Hera's Argo models and, with --schema, against Argo's JSON schema, before anything is written.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from kaic.argo.cli import add_pipeline_arguments, load
from kaic.errors import ConfigError
from pipelines.config import DEFAULT_SCHEDULE
from pipelines.manifests import Manifest, compile_manifests, load_schema, roundtrip_problems, schema_problems


def configure(parser: argparse.ArgumentParser) -> None:
    add_pipeline_arguments(parser)
    parser.add_argument("--out", default=".", help="directory to write into (default: .)")
    parser.add_argument("--cron", action="append", metavar="EXPR",
                        help=f"nightly schedule, repeatable (default: {DEFAULT_SCHEDULE!r})")
    parser.add_argument("--timezone", help="IANA time zone of the schedule (default: UTC)")
    parser.add_argument("--schema", type=Path, metavar="FILE",
                        help="also validate against Argo's JSON schema (api/jsonschema/schema.json)")


def check(manifests: list[Manifest], schema_file: Path | None) -> None:
    """ConfigError naming the first problem; nothing is written when one is found."""
    schema = None
    if schema_file is not None:
        try:
            schema = load_schema(schema_file)
        except (OSError, ValueError) as exc:
            raise ConfigError(f"--schema {schema_file}: cannot read a JSON schema ({exc})") from None
    for mf in manifests:
        problems = roundtrip_problems(mf.body) + (schema_problems(mf.body, schema) if schema else [])
        if problems:
            more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
            raise ConfigError(f"compiled {mf.filename}: {problems[0]}{more}")


def write(manifests: list[Manifest], out: Path) -> list[Path]:
    """Each file written to a temporary name in the same directory, then renamed into place."""
    if out.exists() and not out.is_dir():
        raise ConfigError(f"--out {out}: exists and is not a directory")
    out.mkdir(parents=True, exist_ok=True)
    texts = [(out / mf.filename, mf.text) for mf in manifests]
    written = []
    for path, text in texts:
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        try:
            tmp.write_text(text)
            tmp.replace(path)
        finally:
            tmp.unlink(missing_ok=True)
        written.append(path)
    return written


def run(args: argparse.Namespace) -> int:
    from kaic.preflight import creatable_dir

    creatable_dir(Path(args.out), "--out")
    _, config = load(args)
    manifests = compile_manifests(config)
    check(manifests, args.schema)
    for path in write(manifests, Path(args.out)):
        print(path)
    return 0
