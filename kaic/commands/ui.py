"""`kaic ui`: the MLflow UI on kaic's local tracking store, or where to find a remote one.

Local store (sqlite:///$KAIC_HOME/mlflow.db by default): runs `mlflow ui --backend-store-uri <store>` in
the foreground (Ctrl-C stops it). Remote http(s) tracking server: prints its address and search hints;
there is nothing to start. Runs carry the tags platform, cluster, k8s_version, accelerator and
suite_version (kaic/tracking.py), so the UI's search box compares platforms: see docs/compare.md.
"""

from __future__ import annotations

import argparse
import errno
import socket
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit

from kaic import env
from kaic.errors import ConfigError

SEARCH_HINTS = (
    "tags.platform = 'eks'",
    "tags.platform != 'local'",
    "tags.accelerator LIKE '%H100%'",
    "tags.`kaic.step` = 'train' AND metrics.holdout_accuracy > 0.9",
)


def _port(text: str) -> int:
    try:
        port = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number") from None
    if not 1 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"{port} is not between 1 and 65535")
    return port


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--port", type=_port, default=5000, help="port for the UI (default 5000)")
    parser.add_argument("--host", default="127.0.0.1",
                        help="address to bind (default 127.0.0.1: this machine only)")
    parser.add_argument("--print-command", action="store_true",
                        help="print the mlflow command instead of running it")


def store_path(uri: str) -> Path | None:
    """The file or folder behind a local store URI (sqlite:///x.db, file:///dir, /dir); None if remote."""
    parts = urlsplit(uri)
    if parts.scheme == "sqlite":
        path = parts.path[1:] if parts.path.startswith("//") else parts.path
        return Path(path) if path not in ("", "/", "/:memory:") else None
    if parts.scheme == "file":
        return Path(parts.path)
    if parts.scheme == "":
        return Path(uri)
    return None


def ui_command(uri: str, host: str, port: int, artifacts: Path) -> list[str]:
    # One worker: a personal UI on a small machine (mlflow's default of 4 processes is slow to start).
    return [
        sys.executable, "-m", "mlflow", "ui", "--backend-store-uri", uri,
        "--artifacts-destination", str(artifacts), "--host", host, "--port", str(port), "--workers", "1",
    ]


def _check_free(host: str, port: int) -> None:
    try:
        with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind((host, port))
    except OSError as exc:
        why = "already in use" if exc.errno == errno.EADDRINUSE else (exc.strerror or str(exc))
        raise ConfigError(f"--port {port} / --host {host}: cannot listen there ({why})") from None


def run(args: argparse.Namespace) -> int:
    from kaic.tracking import redact

    uri = env.mlflow_uri()
    source = ("$KAIC_MLFLOW_URI" if env.KAIC_MLFLOW_URI.get() else
              "$MLFLOW_TRACKING_URI" if env.MLFLOW_TRACKING_URI.get() else "the default local store")
    scheme = urlsplit(uri).scheme
    if scheme in ("http", "https"):
        print(f"MLflow tracking server ({source}): {redact(uri)}")
        print("It serves its own UI: open that address in a browser. Search runs by platform with, e.g.:")
        for hint in SEARCH_HINTS:
            print(f"  {hint}")
        return 0
    path = store_path(uri)
    if path is not None and not path.exists():
        raise ConfigError(f"{source} {redact(uri)}: no MLflow store at {path} yet "
                          "(run `kaic run` or a step first)")
    argv = ui_command(uri, args.host, args.port, env.kaic_home() / "mlartifacts")
    if args.print_command:
        print(" ".join(argv))
        return 0
    _check_free(args.host, args.port)
    print(f"MLflow UI for {redact(uri)} at http://{args.host}:{args.port} (Ctrl-C stops it)", file=sys.stderr)
    print("search runs by platform, e.g.: " + " · ".join(SEARCH_HINTS[:3]), file=sys.stderr)
    return subprocess.call(argv)
