"""The `kaic` command line: one literal table of commands, each in its own module.

Each command module exposes ``configure(parser)`` and ``run(args) -> int`` and is imported
only when its command is used, so `kaic --help` stays fast.
"""

from __future__ import annotations

import argparse
import errno
import importlib
import os
import sys
from collections.abc import Sequence
from typing import NoReturn, Protocol

import kaic
from kaic import __version__
from kaic.errors import ConfigError, ServiceUnavailable
from kaic.redact import guard_streams

# name -> (module, one-line help). A duplicate name is impossible in a dict literal; keep it sorted by use.
COMMANDS: dict[str, tuple[str, str]] = {
    "run": ("kaic.commands.run", "run the conformance workflow (local backend needs no cluster)"),
    "local-run": ("kaic.executor.command", "run any Argo Workflow manifest on this machine"),
    "compile": ("kaic.commands.compile", "write the WorkflowTemplate and nightly CronWorkflow as YAML"),
    "submit": ("kaic.commands.submit", "submit the conformance workflow to an Argo Server"),
    "schedule": ("kaic.commands.schedule", "create or update the nightly CronWorkflow on an Argo Server"),
    "step": ("kaic.commands.step", "run one workflow step (what a workflow container runs)"),
    "report": ("kaic.commands.report", "render reports for a finished run"),
    "sync": ("kaic.commands.sync", "backfill MLflow from a run's Parquet rows"),
    "compare": ("kaic.commands.compare", "compare runs across platforms; flag regressions"),
    "requirements": ("kaic.commands.requirements", "print the requirement catalog and how kaic checks each"),
    "snapshot": ("kaic.commands.snapshot", "dump a cluster's objects for offline provision probes"),
    "images": ("kaic.commands.images", "list the container images to mirror for air-gapped clusters"),
    "ui": ("kaic.commands.ui", "open the MLflow UI on the local store"),
}


class CommandModule(Protocol):
    def configure(self, parser: argparse.ArgumentParser) -> None: ...
    def run(self, args: argparse.Namespace) -> int: ...


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        # argparse's own usage errors: one line and exit code 2, like every other bad input.
        self.exit(2, f"kaic: error: {self.prog}: {message}\n")


def _load(name: str) -> CommandModule:
    module: CommandModule = importlib.import_module(COMMANDS[name][0])
    return module


def build_parser(argv: Sequence[str]) -> argparse.ArgumentParser:
    parser = _Parser(prog="kaic", description=kaic.__doc__,
                     epilog="`kaic COMMAND --help` for a command's options. Docs: docs/ in the repository.")
    parser.add_argument("--version", action="version", version=f"kaic {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    wanted = next((a for a in argv if not a.startswith("-")), None)
    for name, (_, help_text) in COMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        if name == wanted:
            _load(name).configure(p)
    return parser


def one_line(text: str) -> str:
    return " ".join(str(text).split("\n")).strip()


def reap(command: str) -> None:
    """What a killed executor or step left registered in this KAIC_HOME is stopped before anything else
    runs (`kaic step` is itself started by an executor, which reaped at its start)."""
    if command == "step":
        return
    from kaic import env, localproc

    home = env.kaic_home()
    if not home.is_dir():
        return
    for line in localproc.reap_orphans(home):
        print(f"kaic: stopped an orphaned process left by an earlier run: {line}", file=sys.stderr)
    from kaic.executor.liveness import close_dead_runs

    for line in close_dead_runs(home):
        print(f"kaic: {line}", file=sys.stderr)


def main(argv: Sequence[str] | None = None) -> int:
    guard_streams()  # no secret value reaches stdout or stderr
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser(argv)
    args = parser.parse_args(argv)
    if not args.command:
        parser.print_help()
        return 2
    try:
        reap(args.command)
        return _load(args.command).run(args)
    except ConfigError as exc:
        print(f"kaic: error: {one_line(str(exc))}", file=sys.stderr)
        return 2
    except ServiceUnavailable as exc:
        print(f"kaic: error: {one_line(str(exc))}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("kaic: interrupted", file=sys.stderr)
        return 130
    except OSError as exc:  # a fault of the machine (full disk, lost mount), not of the input
        if os.environ.get("KAIC_DEBUG"):
            raise
        where = f" ({exc.filename})" if exc.filename else ""
        name = errno.errorcode.get(exc.errno or 0, "OSError")
        print(f"kaic: error: {name}: {exc.strerror or exc}{where}", file=sys.stderr)
        return 1
    except Exception as exc:  # a bug: one line, and the traceback only on request
        if os.environ.get("KAIC_DEBUG"):
            raise
        print(f"kaic: internal error: {type(exc).__name__}: {one_line(str(exc))[:500]} "
              "(KAIC_DEBUG=1 shows the traceback)", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
