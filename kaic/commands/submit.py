"""`kaic submit`: create-or-update the WorkflowTemplate and submit a Workflow from it, through an Argo Server
(`--argo-server`) or the Kubernetes API (`--kubeconfig`).

Exit codes: 0 submitted (or, with --wait, Succeeded); 1 Failed/Error, timed out, or the server is
unreachable or answered with an error; 2 bad input (malformed URL, unknown -p name, refused token).
"""

from __future__ import annotations

import argparse
import sys

from kaic.argo import ArgoServerError, submit_and_wait
from kaic.argo.cli import add_pipeline_arguments, add_server_arguments, load, parse_parameters, service
from kaic.errors import ConfigError


def configure(parser: argparse.ArgumentParser) -> None:
    add_pipeline_arguments(parser)
    add_server_arguments(parser)
    parser.add_argument("--wait", action="store_true", help="wait for a final phase, printing node phases")
    parser.add_argument("--timeout", type=float, default=3600.0, metavar="S",
                        help="with --wait: give up after S seconds (default: 3600)")
    parser.add_argument("--poll", type=float, default=2.0, metavar="S", help=argparse.SUPPRESS)


def run(args: argparse.Namespace) -> int:
    if args.timeout <= 0 or args.poll <= 0:
        raise ConfigError(f"--timeout {args.timeout:g} / --poll {args.poll:g}: must be positive")
    parameters = parse_parameters(args.parameter)
    profile, config = load(args)
    try:
        if args.kubeconfig:
            from kaic.argo import kube

            namespace = args.namespace or profile.kubernetes.namespace
            result = kube.submit_and_wait(kube.connect(args.kubeconfig, args.context), config, namespace=namespace,
                                          parameters=parameters, wait=args.wait, timeout_s=args.timeout,
                                          poll_s=args.poll)
        else:
            svc, namespace = service(args, profile)
            try:
                result = submit_and_wait(svc, config, namespace=namespace, parameters=parameters, wait=args.wait,
                                         timeout_s=args.timeout, poll_s=args.poll)
            finally:
                svc.session.close()
    except ArgoServerError as exc:
        print(f"kaic: error: {exc}", file=sys.stderr)
        return 1
    waited = result.wait
    if waited is None:
        print(f"not waiting; follow it with: argo -n {namespace} watch {result.name}")
    elif waited.timed_out:
        print(f"kaic: error: timed out after {args.timeout:g}s waiting for Workflow {namespace}/"
              f"{result.name} (last phase {waited.phase or 'unknown'}); it is still running on the server",
              file=sys.stderr)
    else:
        detail = f": {waited.message}" if waited.message and waited.phase != "Succeeded" else ""
        print(f"Workflow {namespace}/{result.name} {waited.phase}{detail}")
    return result.exit_code
