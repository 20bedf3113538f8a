"""`python -m kaic.devcluster up|down|status|build`: the dev cluster's command line."""

from __future__ import annotations

import argparse
import sys

from kaic.devcluster.build import COMPONENTS, BuildError, ensure_built
from kaic.devcluster.layout import ClusterPaths, cache_dir
from kaic.devcluster.processes import StartError
from kaic.devcluster.up import down, status, up


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m kaic.devcluster", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    up_parser = sub.add_parser("up", help="build what is missing, start the cluster, print the kubeconfig path")
    up_parser.add_argument("--no-addons", action="store_true",
                           help="only the core cluster (control plane, kwok, Kueue, DRA driver), no addons")
    sub.add_parser("down", help="stop every process the cluster started (recorded PIDs); idempotent")
    sub.add_parser("status", help="the recorded processes, alive or not, and their listening ports")
    sub.add_parser("build", help="build the pinned binaries that are missing from the cache")
    args = parser.parse_args(argv)
    paths = ClusterPaths.default()
    try:
        if args.command == "build":
            cache = cache_dir()
            ensure_built(COMPONENTS, cache=cache, log=cache / "build.log")
            return 0
        if args.command == "up":
            path = up(paths, with_addons=not args.no_addons)
            print(f"kubeconfig: {path}")
            return 0
        if args.command == "down":
            report = down(paths)
            return 0 if not report.ports_open and not report.alive else 1
        rows = status(paths)
        if not rows:
            print(f"cluster: not running (no {paths.state})")
            return 3
        for proc, alive, listening in rows:
            print(f"{proc.name:24} pid {proc.pid:<8} {'alive' if alive else 'GONE':6} listening {listening}")
        print(f"kubeconfig: {paths.kubeconfig}")
        return 0 if all(alive for _, alive, _ in rows) else 1
    except (BuildError, StartError, TimeoutError, RuntimeError) as exc:
        print(f"kaic.devcluster {args.command}: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"kaic.devcluster {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
