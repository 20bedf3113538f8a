"""``kaic local-run FILE.yaml [-p NAME=VALUE ...] [--status-json PATH]``: run an Argo Workflow here.

Exit codes: 0 the workflow Succeeded; 1 it Failed or Errored (also when interrupted: SIGINT or
SIGTERM stop the nodes, the exit handler runs, the workflow ends Failed "interrupted"); 2 bad input.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from kaic.env import kaic_home
from kaic.errors import ConfigError
from kaic.executor.manifest import load_file
from kaic.executor.runner import ExecutorOptions, default_parallelism, find_run, resume_workflow, run_workflow


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("file", nargs="?", type=Path, help="Workflow or WorkflowTemplate YAML")
    parser.add_argument(
        "-p",
        "--parameter",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="override a spec.arguments parameter (repeatable)",
    )
    parser.add_argument("--status-json", type=Path, help="also write the final status.json here")
    parser.add_argument(
        "--max-parallel",
        type=int,
        default=default_parallelism(),
        help="pods running at once (default: CPUs x 4)",
    )
    parser.add_argument("--name", help="workflow name (default: metadata.name, or generateName + 5 chars)")
    parser.add_argument(
        "--template",
        action="append",
        default=[],
        type=Path,
        metavar="FILE",
        help="a WorkflowTemplate a workflowTemplateRef points to (repeatable)",
    )
    parser.add_argument("--resume", metavar="RUN_ID", help="continue a stopped run (runs/<RUN_ID> or a path)")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress lines")


def _parameters(pairs: list[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name:
            raise ConfigError(f"-p {pair!r}: expected NAME=VALUE")
        out[name] = value
    return out


def run(args: argparse.Namespace) -> int:
    if args.max_parallel < 1:
        raise ConfigError(f"--max-parallel {args.max_parallel}: must be at least 1")
    options = ExecutorOptions(
        kaic_home=kaic_home(),
        max_parallel=args.max_parallel,
        name=args.name,
        status_json=args.status_json,
        progress=not args.quiet,
        workflow_templates=[load_file(p) for p in args.template],
    )
    if args.resume:
        if args.file is not None or args.parameter:
            raise ConfigError("--resume: give either a FILE (with -p) or --resume RUN_ID, not both")
        result = resume_workflow(find_run(args.resume, options.kaic_home), options)
    else:
        if args.file is None:
            raise ConfigError("local-run: a workflow FILE (or --resume RUN_ID) is required")
        manifest = load_file(args.file)
        result = run_workflow(manifest, _parameters(args.parameter), options, source=str(args.file))
    tail = f": {result.message}" if result.message else ""
    print(f"{result.name} {result.phase}{tail}  ({result.run_dir / 'status.json'})", file=sys.stderr)
    return 0 if result.phase == "Succeeded" else 1
