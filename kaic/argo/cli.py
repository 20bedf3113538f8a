"""Flags shared by `kaic compile`, `kaic submit` and `kaic schedule`, and turning them into values."""

from __future__ import annotations

import argparse
import re

from hera.workflows import WorkflowsService

from kaic.argo.connection import argo_token, connect
from kaic.errors import ConfigError
from kaic.profiles import Profile, load_profile
from pipelines.config import PipelineConfig
from pipelines.conformance import PARAMETERS

DEFAULT_PROFILE = "generic"
_PARAM = re.compile(r"^([A-Za-z0-9][A-Za-z0-9_.-]*)=(.*)$", re.DOTALL)


def add_pipeline_arguments(parser: argparse.ArgumentParser) -> None:
    g = parser.add_argument_group("workflow")
    g.add_argument("--profile", default=DEFAULT_PROFILE,
                   help=f"profile whose values become the parameter defaults (default: {DEFAULT_PROFILE})")
    g.add_argument("--image", help="step image (default: the profile's)")
    g.add_argument("--suite", choices=("quick", "full"), help="default suite (default: quick)")


def add_server_arguments(parser: argparse.ArgumentParser) -> None:
    g = parser.add_argument_group(
        "Argo (an Argo Server, token from $KAIC_ARGO_TOKEN or the file named by $KAIC_ARGO_TOKEN_FILE; "
        "or the Kubernetes API the workflow-controller watches)")
    where = g.add_mutually_exclusive_group(required=True)
    where.add_argument("--argo-server", metavar="URL", help="e.g. https://argo.example.com:2746")
    where.add_argument("--kubeconfig", metavar="FILE",
                       help="go through the Kubernetes API with this kubeconfig instead (no Argo Server)")
    g.add_argument("--context", help="with --kubeconfig: the context (default: the current one)")
    g.add_argument("--namespace", help="namespace (default: the profile's kubernetes.namespace)")
    g.add_argument("--insecure-skip-tls-verify", action="store_true",
                   help="do not verify the server's TLS certificate")
    g.add_argument("--insecure-http", action="store_true",
                   help="allow sending the token over plain http:// to a non-loopback host (in clear)")
    g.add_argument("-p", "--parameter", action="append", default=[], metavar="NAME=VALUE",
                   help="set a workflow parameter (repeatable)")


def load(args: argparse.Namespace) -> tuple[Profile, PipelineConfig]:
    profile = load_profile(args.profile)
    schedules = tuple(args.cron) if getattr(args, "cron", None) else None
    config = PipelineConfig.from_profile(
        profile, args.profile, image=args.image, suite=args.suite, schedules=schedules,
        timezone=getattr(args, "timezone", None),
    )
    return profile, config


def parse_parameters(values: list[str]) -> dict[str, str]:
    """`-p NAME=VALUE` flags -> {NAME: VALUE}; unknown names and bad syntax are ConfigErrors."""
    known = [name for name, _, _ in PARAMETERS]
    out: dict[str, str] = {}
    for raw in values:
        match = _PARAM.match(raw)
        if not match:
            raise ConfigError(f"-p {raw!r}: expected NAME=VALUE")
        name, value = match.groups()
        if name not in known:
            raise ConfigError(f"-p {raw!r}: unknown workflow parameter {name!r} (known: {', '.join(known)})")
        if name == "suite" and value not in ("quick", "full"):
            raise ConfigError(f"-p {raw!r}: suite must be quick or full")
        out[name] = value
    return out


def service(args: argparse.Namespace, profile: Profile) -> tuple[WorkflowsService, str]:
    namespace = args.namespace or profile.kubernetes.namespace
    svc = connect(args.argo_server, namespace, argo_token(), verify_ssl=not args.insecure_skip_tls_verify,
                  insecure_http=args.insecure_http)
    return svc, namespace
