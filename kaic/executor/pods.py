"""Pod launch: a container, script or containerSet template as local processes, with its input
artifacts fetched before and its outputs collected after (the process primitives are in
:mod:`process`)."""

from __future__ import annotations

import functools
import re
import shutil
import threading
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kaic.executor.artifacts import ArtifactError, fetch_input
from kaic.executor.expressions import to_text
from kaic.executor.loops import parse_duration
from kaic.executor.manifest import Template
from kaic.executor.outputs import collect_pod_outputs
from kaic.executor.process import CancelScope, PathMap, make_dirs, python_argv, read_text, run_process
from kaic.executor.status import NodeStatus
from kaic.executor.templating import substitute, substitute_any

if TYPE_CHECKING:
    from kaic.executor.scheduler import Engine

POD_DEADLINE_MESSAGE = "Pod was active on the node longer than the specified deadline"
ARGOSAY_IMAGE = "argoproj/argosay"
# A POSIX stand-in for the argosay image's /argosay (echo [msg [file]], exit N, sleep Ns, cat FILE),
# the same one the e2e fixtures use for containers without a command.
ARGOSAY_SHIM = """#!/bin/sh
case "$1" in
  ""|echo) if [ $# -le 1 ]; then echo "hello argo"; elif [ $# -eq 2 ]; then echo "$2";
           else mkdir -p "$(dirname "$3")"; printf %s "$2" > "$3"; fi;;
  exit) exit "${2:-0}";;
  sleep) sleep "${2%s}";;
  cat) cat "$2";;
  *) echo "argosay stand-in: unsupported $1" >&2; exit 64;;
esac
"""
_ARGOSAY_RE = re.compile(r"(?<![\w./-])/argosay(?![\w./-])")


# Images whose /bin/sh is busybox ash, which has bash-isms such as $RANDOM that Debian's dash lacks.
ASH_IMAGES = ("alpine", "busybox", "docker.io/library/alpine", "docker.io/library/busybox")


def ash_command() -> list[str]:
    """busybox's ash when installed, else bash (closer to ash than dash is)."""
    if shutil.which("busybox"):
        return ["busybox", "sh"]
    return ["bash"] if shutil.which("bash") else ["sh"]


def write_argosay_shim(bin_dir: Path) -> None:
    bin_dir.mkdir(parents=True, exist_ok=True)
    shim = bin_dir / "argosay"
    shim.write_text(ARGOSAY_SHIM, encoding="utf-8")
    shim.chmod(0o755)


def pod_deadline(tmpl: Template, local: Mapping[str, str]) -> float | None:
    deadlines = [
        parse_duration(substitute(to_text(tmpl.spec[key]), local))
        for key in ("activeDeadlineSeconds", "timeout")
        if tmpl.spec.get(key) is not None
    ]
    return min(deadlines) if deadlines else None


def _declared_paths(tmpl: Template, body: Mapping[str, Any]) -> list[str]:
    outputs = tmpl.spec.get("outputs") or {}
    inputs_spec = tmpl.spec.get("inputs") or {}
    declared = [
        str(p["valueFrom"]["path"]) for p in outputs.get("parameters") or [] if (p.get("valueFrom") or {}).get("path")
    ]
    declared += [
        str(a["path"]) for a in (outputs.get("artifacts") or []) + (inputs_spec.get("artifacts") or []) if a.get("path")
    ]
    if body.get("workingDir"):
        declared.append(str(body["workingDir"]))
    return declared


def run_pod(
    eng: Engine,
    tmpl: Template,
    node: NodeStatus,
    local: dict[str, str],
    arts: tuple[Mapping[str, Any], ...],
    scope: CancelScope,
) -> None:
    """Run a container/script/containerSet template as the pod ``node``, and finish it."""
    keeper = eng.keeper
    if not tmpl.schedulable:
        selector = tmpl.spec.get("nodeSelector")
        if eng.model.active_deadline_seconds is None:
            keeper.finish(node, "Error", f"unschedulable: nodeSelector {selector} does not match this machine")
        else:  # Argo leaves such a pod Pending until a deadline ends the workflow
            scope.event.wait()
            keeper.finish(node, "Failed", scope.reason)
        return
    node_dir = eng.config.run_dir / "nodes" / node.id
    if tmpl.kind == "containerSet":
        bodies = [dict(c) for c in tmpl.spec["containerSet"].get("containers") or []]
    else:
        bodies = [dict(tmpl.spec[tmpl.kind])]
    declared: list[str] = []
    for body in bodies:
        declared += _declared_paths(tmpl, body)
    paths = PathMap(node_dir, tuple(substitute(p, local) for p in declared))
    if not eng.pods.acquire(scope):
        keeper.finish(node, "Failed", scope.reason)
        return
    try:
        make_dirs((node_dir, paths.tmp, *(paths.local(p).parent for p in paths.declared)))
        _fetch_inputs(eng, tmpl.spec.get("inputs") or {}, arts, local, paths)
        if tmpl.kind == "containerSet":
            code, killed, start_error = _run_container_set(eng, tmpl, bodies, node, local, paths, scope)
        else:
            code, killed, start_error = _run_one(eng, tmpl, bodies[0], node, node_dir, local, paths, scope)
    except ArtifactError as exc:
        keeper.finish(node, "Error", str(exc))
        return
    finally:
        eng.pods.release()
    if code is None:
        keeper.finish(node, "Error", start_error or "failed to start")
        return
    node.exit_code = str(code)
    node.result = read_text(_main_log(tmpl, node_dir)).strip()
    if killed:
        keeper.finish(node, "Failed", killed)
        return
    store = eng.config.store_dir
    if code != 0:
        collect_pod_outputs(tmpl, node, local, paths, store, strict=False)
        keeper.finish(node, "Failed", f"Error (exit code {code})")
        return
    error = collect_pod_outputs(tmpl, node, local, paths, store, strict=True)
    keeper.finish(node, "Error" if error else "Succeeded", error or "")


def _main_log(tmpl: Template, node_dir: Path) -> Path:
    if tmpl.kind != "containerSet":
        return node_dir / "stdout.log"
    names = [str(c.get("name")) for c in tmpl.spec["containerSet"].get("containers") or []]
    main = "main" if "main" in names else names[-1]
    return node_dir / f"{main}.stdout.log"


def _argv(
    tmpl: Template, body: Mapping[str, Any], spec: Mapping[str, Any], node_dir: Path, paths: PathMap, bin_dir: Path
) -> list[str]:
    argosay = str(body.get("image") or "").startswith(ARGOSAY_IMAGE)

    def rewrite(text: Any) -> str:
        out = paths.rewrite(str(text))
        return _ARGOSAY_RE.sub(str(bin_dir / "argosay"), out) if argosay else out

    argv = [rewrite(a) for a in spec.get("command") or []]
    if argv and argv[0] in ("sh", "/bin/sh") and str(body.get("image") or "").startswith(ASH_IMAGES):
        argv[:1] = ash_command()
    if tmpl.kind == "script":
        script = node_dir / "script"
        script.write_text(paths.rewrite(str(spec.get("source") or "")), encoding="utf-8")
        script.chmod(0o755)
        argv.append(str(script))
    argv += [rewrite(a) for a in spec.get("args") or []]
    return python_argv(argv)


def _run_one(
    eng: Engine,
    tmpl: Template,
    body: Mapping[str, Any],
    node: NodeStatus,
    node_dir: Path,
    local: Mapping[str, str],
    paths: PathMap,
    scope: CancelScope,
    log_prefix: str = "",
    on_start: Callable[[], None] | None = None,
) -> tuple[int | None, str | None, str | None]:
    spec = substitute_any({k: body.get(k) for k in ("command", "args", "env", "source", "workingDir")}, local)
    argv = _argv(tmpl, body, spec, node_dir, paths, eng.config.run_dir / "bin")
    env = dict(eng.env)
    env["TMPDIR"] = str(paths.tmp)
    for e in spec.get("env") or []:
        if "value" in e:  # optional Secret/ConfigMap refs keep this machine's value (if any)
            env[str(e["name"])] = paths.rewrite(to_text(e["value"]))
    cwd = paths.local(str(spec["workingDir"])) if spec.get("workingDir") else node_dir
    if spec.get("workingDir"):
        cwd.mkdir(parents=True, exist_ok=True)
    outcome = run_process(
        argv,
        home=eng.config.kaic_home,
        env=env,
        cwd=cwd,
        stdout=node_dir / f"{log_prefix}stdout.log",
        stderr=node_dir / f"{log_prefix}stderr.log",
        scope=scope,
        timer=eng.timer,
        deadline_s=pod_deadline(tmpl, local),
        deadline_message=POD_DEADLINE_MESSAGE,
        on_start=on_start or (lambda: _mark_running(eng, node)),
    )
    if outcome.exit_code is None:
        return None, None, outcome.start_error
    code = outcome.exit_code if outcome.exit_code >= 0 else 128 - outcome.exit_code
    return code, outcome.killed, None


def _mark_running(eng: Engine, node: NodeStatus) -> None:
    eng.keeper.running(node)


def _run_container_set(
    eng: Engine,
    tmpl: Template,
    bodies: list[dict[str, Any]],
    node: NodeStatus,
    local: Mapping[str, str],
    paths: PathMap,
    scope: CancelScope,
) -> tuple[int | None, str | None, str | None]:
    """Each container a process (a Container child node), started once its ``dependencies`` have
    succeeded; ``containerSet.retryStrategy.retries`` restarts a failed container."""
    keeper = eng.keeper
    node_dir = paths.node_dir
    retry = tmpl.spec["containerSet"].get("retryStrategy") or {}
    retries = int(substitute(to_text(retry.get("retries", 0)), local))
    pause = parse_duration(substitute(to_text(retry["duration"]), local)) if retry.get("duration") else 0.0
    keeper.running(node)
    results: dict[str, tuple[int | None, str | None, str | None]] = {}
    children = {
        str(b["name"]): keeper.create(f"{node.name}.{b['name']}", str(b["name"]), "Container", tmpl.name, node)
        for b in bodies
    }
    done: dict[str, threading.Event] = {str(b["name"]): threading.Event() for b in bodies}

    def run(body: dict[str, Any]) -> None:
        name = str(body["name"])
        child = children[name]
        try:
            deps = [str(d) for d in body.get("dependencies") or []]
            for d in deps:
                done[d].wait()
            if any(results[d][0] != 0 for d in deps):
                keeper.finish(child, "Omitted", "a dependency did not succeed")
                results[name] = (0, None, None)
                return
            attempt = 0
            while True:
                res = _run_one(
                    eng,
                    tmpl,
                    body,
                    child,
                    node_dir,
                    local,
                    paths,
                    scope,
                    f"{name}.",
                    on_start=functools.partial(_mark_running, eng, child),
                )
                if res[0] == 0 or res[0] is None or res[1] or attempt >= retries:
                    break
                attempt += 1
                if pause and scope.event.wait(pause):
                    break
            results[name] = res
            code = res[0]
            phase = "Succeeded" if code == 0 and not res[1] else ("Error" if code is None else "Failed")
            message = res[1] or res[2] or (f"Error (exit code {code})" if code else "")
            keeper.finish(child, phase, message)
        finally:
            done[name].set()

    threads = [threading.Thread(target=run, args=(b,), daemon=True) for b in bodies]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for b in bodies:
        code, killed, error = results[str(b["name"])]
        if code is None or killed or code != 0:
            return code, killed, error
    names = [str(b["name"]) for b in bodies]
    return results["main" if "main" in names else names[-1]]


def _fetch_inputs(
    eng: Engine,
    inputs_spec: Mapping[str, Any],
    arts: tuple[Mapping[str, Any], ...],
    local: Mapping[str, str],
    paths: PathMap,
) -> None:
    given = {a.get("name"): a for a in arts}
    for spec in inputs_spec.get("artifacts") or []:
        merged = substitute_any({**spec, **given.get(spec.get("name"), {})}, local)
        fetch_input(eng.config.store_dir, merged, paths.local(str(spec["path"])))
