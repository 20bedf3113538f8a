"""`kaic step NAME [ARGS]`: run one workflow step, as a workflow container does."""

from __future__ import annotations

import argparse
import importlib

from kaic import stepkit
from steps import STEPS


def configure(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="step", metavar="STEP", required=True, parser_class=type(parser))
    for name in STEPS:  # step modules import heavy libraries lazily, so this stays fast
        p = sub.add_parser(name, help=f"the {name} step")
        stepkit.add_common_arguments(p)
        _module(name).configure(p)


def _module(name: str) -> stepkit.StepModule:
    module: stepkit.StepModule = importlib.import_module(STEPS[name])
    return module


def run(args: argparse.Namespace) -> int:
    _, code = stepkit.execute_step(_module(args.step), args)
    return code
