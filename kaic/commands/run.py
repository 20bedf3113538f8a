"""`kaic run`: the conformance workflow, end to end.

`--backend local` (the default) compiles the very WorkflowTemplate users submit to Argo and runs it
with kaic's local executor: each step is a local process, no cluster needed. `--backend argo`
submits it to an Argo Server and waits.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from kaic import stepkit
from kaic.errors import ConfigError
from kaic.profiles import BUILTIN, load_profile

if TYPE_CHECKING:
    from kaic.executor import ExecutorOptions
    from pipelines.config import PipelineConfig


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--profile", default="local", help="profile name or YAML file (default: local)")
    parser.add_argument("--suite", choices=("quick", "full"), default="quick")
    parser.add_argument("--backend", choices=("local", "argo"), default="local",
                        help="local: run here with kaic's executor; argo: submit to an Argo Server")
    parser.add_argument("--platform", help="platform label for the results (default: the profile's)")
    parser.add_argument("--world-size", type=int, help="training workers (default: the profile's)")
    parser.add_argument("--resume", metavar="RUN", help="continue a stopped local run without redoing what succeeded")
    parser.add_argument("--max-parallel", type=int, default=None, help="local: nodes run at once")
    argo = parser.add_argument_group("argo backend")
    argo.add_argument("--argo-server", help="Argo Server URL (token from $KAIC_ARGO_TOKEN or $KAIC_ARGO_TOKEN_FILE)")
    argo.add_argument("--kubeconfig", help="instead of an Argo Server: the Kubernetes API with this kubeconfig")
    argo.add_argument("--context", help="with --kubeconfig: the context (default: the current one)")
    argo.add_argument("--namespace", default="kaic", help="Argo namespace (default: kaic)")
    argo.add_argument("--insecure-http", action="store_true",
                      help="allow sending the token over plain http:// to a non-loopback host (in clear)")
    argo.add_argument("--timeout", type=float, default=3600, help="seconds to wait for the workflow")


def _profile_ref(name: str) -> str:
    """Built-in names pass as they are; a user's file passes as an absolute path (steps run elsewhere)."""
    return name if name in BUILTIN else str(Path(name).resolve())


def _local_env(kaic_home: Path) -> dict[str, str]:
    """What every step process gets: this interpreter's scripts folder first on PATH (so steps run this very
    kaic), and KAIC_HOME as an absolute path (each node runs in its own working directory)."""
    scripts = str(Path(sys.executable).parent)
    return {"PATH": os.pathsep.join([scripts, os.environ.get("PATH", "")]), "PYTHONUNBUFFERED": "1",
            "KAIC_HOME": str(kaic_home)}


def run(args: argparse.Namespace) -> int:
    from kaic import env
    from kaic.executor import resume_workflow, run_workflow
    from kaic.preflight import creatable_dir
    from pipelines.config import PipelineConfig
    from pipelines.conformance import build_workflow
    from pipelines.manifests import to_dict

    if args.max_parallel is not None and args.max_parallel < 1:
        raise ConfigError(f"--max-parallel {args.max_parallel}: must be at least 1")
    if args.world_size is not None and args.world_size < 1:
        raise ConfigError(f"--world-size {args.world_size}: must be at least 1")
    if args.timeout <= 0:
        raise ConfigError(f"--timeout {args.timeout:g}: must be positive")
    home = env.kaic_home()
    creatable_dir(home / "runs", f"KAIC_HOME {home}:")
    if args.resume:
        run_dir = home / "runs" / args.resume
        if not (run_dir / "status.json").is_file():
            raise ConfigError(f"--resume: no run {args.resume!r} under {home / 'runs'}")
        options = _options(args, stepkit.ensure_kaic_home())
        result = resume_workflow(run_dir, options)
        return _finish(result.name, result.phase, result.run_dir)

    profile = load_profile(args.profile)
    ref = _profile_ref(args.profile)
    config = PipelineConfig.from_profile(profile, ref, suite=args.suite, platform=args.platform,
                                         world_size=args.world_size)
    if args.backend == "argo":
        return _run_on_argo(args, config)
    manifest = to_dict(build_workflow(config))
    options = _options(args, stepkit.ensure_kaic_home())  # validated above; created only now
    print(f"kaic: running the conformance workflow locally (profile {profile.name}, suite {args.suite})",
          file=sys.stderr)
    result = run_workflow(manifest, {}, options, source="kaic-conformance")
    return _finish(result.name, result.phase, result.run_dir)


def _options(args: argparse.Namespace, kaic_home: Path) -> ExecutorOptions:
    from kaic.executor import ExecutorOptions

    return ExecutorOptions(kaic_home=kaic_home, max_parallel=args.max_parallel or 8, progress=True,
                           env=_local_env(kaic_home), handle_signals=True)


def _run_on_argo(args: argparse.Namespace, config: PipelineConfig) -> int:
    """The same workflow, submitted to an Argo Server or through the Kubernetes API; exit code by its final
    phase."""
    if bool(args.argo_server) == bool(args.kubeconfig):
        raise ConfigError("--backend argo needs one of --argo-server URL or --kubeconfig FILE")
    from kaic.argo import ArgoServerError, submit_and_wait

    try:
        if args.kubeconfig:
            from kaic.argo import kube

            done = kube.submit_and_wait(kube.connect(args.kubeconfig, args.context), config,
                                        namespace=args.namespace, wait=True, timeout_s=args.timeout)
            return done.exit_code
        from kaic.argo.connection import argo_token, check_url, connect

        service = connect(check_url(args.argo_server), args.namespace, argo_token(),
                          insecure_http=args.insecure_http)
        result = submit_and_wait(service, config, namespace=args.namespace, wait=True, timeout_s=args.timeout)
    except ArgoServerError as exc:
        print(f"kaic: error: {exc}", file=sys.stderr)
        return 1
    return result.exit_code


def _finish(name: str, phase: str, run_dir: Path) -> int:
    """Print where the report is; exit 0 only when the workflow Succeeded (every MUST passed)."""
    report = run_dir / "report" / "report.html"
    print(f"run {name}: {phase}")
    if report.is_file():
        print(f"report: {report}")
    else:
        print(f"report: not written (see the node logs under {run_dir / 'nodes'})")
    return 0 if phase == "Succeeded" else 1
