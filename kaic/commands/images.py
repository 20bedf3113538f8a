"""`kaic images`: the container images to mirror for an air-gapped cluster."""

from __future__ import annotations

import argparse
import json

from kaic.images import IMAGES


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--format", choices=("table", "list", "json"), default="table",
                        help="'list' prints one reference per line, for scripts (e.g. crane copy)")


def run(args: argparse.Namespace) -> int:
    if args.format == "list":
        print("\n".join(i.ref for i in IMAGES))
    elif args.format == "json":
        print(json.dumps([{"image": i.ref, "role": i.role, "used_by": i.source} for i in IMAGES], indent=2))
    else:
        width = max(len(i.ref) for i in IMAGES)
        for i in IMAGES:
            print(f"{i.ref:<{width}}  {i.role}")
    return 0
