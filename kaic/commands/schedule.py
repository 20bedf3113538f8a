"""`kaic schedule`: create-or-update the WorkflowTemplate and the nightly CronWorkflow that runs it, through an
Argo Server (`--argo-server`) or the Kubernetes API (`--kubeconfig`).

Exit codes: 0 applied; 1 the server is unreachable or answered with an error; 2 bad input
(malformed URL or cron expression, unknown -p name, refused token).
"""

from __future__ import annotations

import argparse
import sys

from kaic.argo import ArgoServerError, apply_cron_workflow, apply_workflow_template
from kaic.argo.cli import add_pipeline_arguments, add_server_arguments, load, parse_parameters, service
from pipelines.config import CRON_NAME, DEFAULT_SCHEDULE, TEMPLATE_NAME
from pipelines.conformance import build_workflow
from pipelines.schedule import build_cron


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--cron", action="append", metavar="EXPR",
                        help=f"cron schedule, repeatable (default: {DEFAULT_SCHEDULE!r})")
    parser.add_argument("--timezone", help="IANA time zone of the schedule (default: UTC)")
    add_pipeline_arguments(parser)
    add_server_arguments(parser)


def run(args: argparse.Namespace) -> int:
    parameters = parse_parameters(args.parameter)
    profile, config = load(args)
    template, cron = build_workflow(config).to_dict(), build_cron(config, parameters).to_dict()
    when = f"{', '.join(config.schedules)} ({config.timezone})"
    try:
        if args.kubeconfig:
            from kaic.argo import kube

            client = kube.connect(args.kubeconfig, args.context)
            namespace = args.namespace or profile.kubernetes.namespace
            print(f"WorkflowTemplate {namespace}/{TEMPLATE_NAME} {kube.apply(client, template, namespace)}")
            print(f"CronWorkflow {namespace}/{CRON_NAME} {kube.apply(client, cron, namespace)}: {when}")
            return 0
        svc, namespace = service(args, profile)
        try:
            applied = apply_workflow_template(svc, template, namespace)
            print(f"WorkflowTemplate {namespace}/{TEMPLATE_NAME} {applied}")
            applied = apply_cron_workflow(svc, cron, namespace)
            print(f"CronWorkflow {namespace}/{CRON_NAME} {applied}: {when}")
        finally:
            svc.session.close()
    except ArgoServerError as exc:
        print(f"kaic: error: {exc}", file=sys.stderr)
        return 1
    return 0
