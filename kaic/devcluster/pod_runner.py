"""The dev cluster's pod runner: a Node whose pods are local processes, so Argo's real controller drives them.

It registers the Node `kaic-runner` (tainted, so only pods that tolerate it land there: the
workflow-controller's `workflowDefaults` add the toleration and node selector to every workflow pod), keeps
it Ready (node status and its Lease), and for each Argo pod bound to it does what the kubelet and Argo's
executor would: resolve `main`'s environment from the API, unwrap the emissary command, run it as a local
process in its own process group (working directory and logs under `<pods>/<namespace>/<pod>/`), report the
pod Running then Succeeded/Failed with init/wait/main container statuses, and write the
`WorkflowTaskResult` with the outputs (parameters from `valueFrom.path`, `result` from stdout) marked
complete. A plain pod of one container with an explicit command (no Argo) runs the same way: its command as a
local process, the pod Running with the node's IP (127.0.0.1) until the process exits. A pod that is deleted
has its process group killed. There are no containers: the image is not used, and a command that is not on
this machine's PATH fails the pod with a message saying so.

Run: `python -m kaic.devcluster.pod_runner --kubeconfig K --pods-dir D` (the dev cluster starts it).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from kaic.devcluster import argo_pod, kubelet, plain_pod
from kaic.devcluster.argo_pod import NotEmulatedError, OutputError
from kaic.devcluster.kubelet import ConfigMissingError, Exit

NODE = "kaic-runner"
LABEL = "kaic.dev/pod-runner"
TAINT = {"key": LABEL, "value": "true", "effect": "NoSchedule"}
LEASE_NS = "kube-node-lease"
START_ERROR = 128  # the exit code a kubelet reports for a container that could not start
MESSAGE_TAIL = 1024
MAX_GRACE_S = 10.0  # a deleted pod's process gets at most this long after SIGTERM (the loop waits meanwhile)


def now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True)
class RunnerConfig:
    kubeconfig: Path
    pods_dir: Path
    node: str = NODE
    ip: str = "127.0.0.1"
    capacity: Mapping[str, str] = field(default_factory=lambda: {"cpu": "64", "memory": "256Gi", "pods": "110",
                                                                  "ephemeral-storage": "500Gi"})
    path: str = ""  # PATH of the processes (default: this interpreter's scripts folder, then the runner's PATH)
    pass_env: tuple[str, ...] = ()  # host variables passed through, standing in for what an image bakes in
    poll_s: float = 1.0
    lease_s: float = 10.0
    status_s: float = 30.0


class ApiError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class Api:
    """Raw JSON calls through the kubernetes client's authenticated ApiClient."""

    def __init__(self, kubeconfig: Path) -> None:
        from kubernetes import client, config

        cfg = client.Configuration()
        config.load_kube_config(config_file=str(kubeconfig), client_configuration=cfg)  # type: ignore[no-untyped-call]
        cfg.retries = False
        self.cfg = cfg
        self.client = client.ApiClient(cfg)

    def call(self, method: str, path: str, body: Any = None, query: Mapping[str, str] | None = None,
             content_type: str = "application/json") -> Any:
        """The decoded answer; None for 404 on GET/DELETE. Other errors raise ApiError."""
        _, url, headers, data, _ = self.client.param_serialize(
            method, path, query_params=list((query or {}).items()) or None,
            header_params={"Content-Type": content_type, "Accept": "application/json"}, body=body,
            auth_settings=["BearerToken"])
        resp = self.client.call_api(method, url, header_params=headers, body=data, _request_timeout=30)
        resp.read()  # type: ignore[no-untyped-call]
        if resp.status == 404 and method in ("GET", "DELETE"):
            return None
        if resp.status >= 400:
            raise ApiError(resp.status, f"{method} {path}: {resp.status} {(resp.data or b'').decode()[:300]}")
        return json.loads(resp.data or b"null")

    def merge(self, path: str, body: Any) -> Any:
        return self.call("PATCH", path, body, content_type="application/merge-patch+json")


@dataclass
class Proc:
    """A pod's running process."""

    popen: subprocess.Popen[bytes]
    pod: dict[str, Any]
    ap: argo_pod.ArgoPod | None  # None for a plain pod
    container: str               # the container the process is (`main` for an Argo pod)
    started: str
    started_mono: float
    workdir: Path
    killed_reason: str | None = None


class Runner:
    def __init__(self, config: RunnerConfig, api: Api | None = None) -> None:
        self.config = config
        self.api = api or Api(config.kubeconfig)
        self.procs: dict[str, Proc] = {}  # pod uid -> process
        self.retry_at: dict[str, float] = {}  # pod uid -> when to retry a CreateContainerConfigError
        self.stopping = False
        self._lease_due = 0.0
        self._status_due = 0.0

    # -- the node -----------------------------------------------------------------------------------------------
    def register(self) -> None:
        c = self.config
        path = f"/api/v1/nodes/{c.node}"
        if self.api.call("GET", path) is None:
            self.api.call("POST", "/api/v1/nodes", kubelet.node_body(c.node, {LABEL: "true"}, [TAINT]))
        # Exactly our taint: admission (TaintNodesByCondition) adds node.kubernetes.io/not-ready to a new Node,
        # and no node-lifecycle controller may be there to lift it once the node is Ready.
        self.api.merge(path, {"metadata": {"labels": {LABEL: "true"}}, "spec": {"taints": [TAINT]}})
        self.heartbeat(force=True)

    def heartbeat(self, force: bool = False) -> None:
        c, mono = self.config, time.monotonic()
        if force or mono >= self._status_due:
            version = str(self.api.call("GET", "/version").get("gitVersion", ""))
            self.api.merge(f"/api/v1/nodes/{c.node}/status",
                           {"status": kubelet.node_status(c.capacity, now(), c.ip, version)})
            self._status_due = mono + c.status_s
        if force or mono >= self._lease_due:
            self._renew_lease()
            self._lease_due = mono + c.lease_s

    def _renew_lease(self) -> None:
        stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        path = f"/apis/coordination.k8s.io/v1/namespaces/{LEASE_NS}/leases/{self.config.node}"
        spec = {"holderIdentity": self.config.node, "leaseDurationSeconds": 40, "renewTime": stamp}
        if self.api.call("GET", path) is None:
            self.api.call("POST", f"/apis/coordination.k8s.io/v1/namespaces/{LEASE_NS}/leases",
                          {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                           "metadata": {"name": self.config.node, "namespace": LEASE_NS}, "spec": spec})
        else:
            self.api.merge(path, {"spec": spec})

    # -- the loop -----------------------------------------------------------------------------------------------
    def run(self) -> None:
        self.register()
        print(f"pod runner: node {self.config.node} registered; pods under {self.config.pods_dir}", flush=True)
        while not self.stopping:
            try:
                self.heartbeat()
                self.sync()
            except Exception as exc:  # the API server restarting or a conflict: log it, try again next tick
                print(f"pod runner: {type(exc).__name__}: {str(exc).splitlines()[0][:300]}", flush=True)
            time.sleep(self.config.poll_s)
        self.kill_all()

    def sync(self) -> None:
        listed = self.api.call("GET", "/api/v1/pods", query={"fieldSelector": f"spec.nodeName={self.config.node}"})
        pods = {p["metadata"]["uid"]: p for p in listed.get("items", [])}
        for uid in [u for u in self.procs if u not in pods]:  # deleted outright (grace 0)
            self._kill(self.procs.pop(uid), "pod deleted")
        for uid, pod in pods.items():
            try:
                self._handle(uid, pod)
            except Exception as exc:  # one pod's trouble (a conflict, a vanished object) must not stall the rest
                name = f"{pod['metadata'].get('namespace')}/{pod['metadata'].get('name')}"
                print(f"pod runner: {name}: {type(exc).__name__}: {str(exc).splitlines()[0][:300]}", flush=True)

    def _handle(self, uid: str, pod: dict[str, Any]) -> None:
        meta, phase = pod["metadata"], (pod.get("status") or {}).get("phase", "Pending")
        if meta.get("deletionTimestamp"):
            proc = self.procs.pop(uid, None)
            if proc is not None:
                grace = min(float(meta.get("deletionGracePeriodSeconds") or 0), MAX_GRACE_S)
                self._kill(proc, "pod deleted", grace=grace)
            self._force_delete(pod)
            return
        proc = self.procs.get(uid)
        if proc is not None:
            self._watch(uid, proc)
        elif phase == "Pending" and time.monotonic() >= self.retry_at.get(uid, 0.0):
            self._start(uid, pod)
        elif phase == "Running":  # running before this runner started: its process is gone
            self._finish_without_process(pod, "the pod runner restarted; the pod's process was lost")

    # -- starting -----------------------------------------------------------------------------------------------
    def _start(self, uid: str, pod: dict[str, Any]) -> None:
        meta = pod["metadata"]
        ns, name = meta["namespace"], meta["name"]
        if not argo_pod.is_argo_pod(pod):
            self._start_plain(uid, pod)
            return
        offloaded = self._offloaded(pod)
        try:
            ap = argo_pod.argo_pod(pod, offloaded)
        except NotEmulatedError as exc:
            self._finish_without_process(pod, str(exc))
            return
        workdir = self.config.pods_dir / ns / name
        try:
            env = self._env(pod, workdir, argo_pod.MAIN)
            script = argo_pod.script_source(ap.template)
            script_file = None
            workdir.mkdir(parents=True, exist_ok=True)
            if script is not None:
                (workdir / "script").write_text(script)
                script_file = str(workdir / "script")
            args = json.loads(offloaded[argo_pod.ENV_ARGS_FILE]) if argo_pod.ENV_ARGS_FILE in offloaded else None
            argv = [kubelet.expand(a, env) for a in argo_pod.main_argv(pod, args, script_file)]
        except ConfigMissingError as exc:
            self.retry_at[uid] = time.monotonic() + 5.0
            self._status(pod, kubelet.waiting_status(pod, now(), self.config.ip, "CreateContainerConfigError",
                                                     str(exc)))
            return
        except NotEmulatedError as exc:
            self._finish_without_process(pod, str(exc), ap)
            return
        self.retry_at.pop(uid, None)
        self._launch(uid, pod, ap, argo_pod.MAIN, argv, env, workdir)

    def _start_plain(self, uid: str, pod: dict[str, Any]) -> None:
        """A pod of one container with an explicit command, not built by Argo: run that command."""
        meta = pod["metadata"]
        try:
            c = plain_pod.container(pod)
        except NotEmulatedError as exc:
            names = [str(c.get("name")) for c in pod.get("spec", {}).get("containers") or []]
            self._finish_without_process(pod, str(exc), main=names[0] if names else argo_pod.MAIN)
            return
        workdir = self.config.pods_dir / meta["namespace"] / meta["name"]
        try:
            env = self._env(pod, workdir, c["name"])
        except ConfigMissingError as exc:
            self.retry_at[uid] = time.monotonic() + 5.0
            self._status(pod, kubelet.waiting_status(pod, now(), self.config.ip, "CreateContainerConfigError",
                                                     str(exc)))
            return
        self.retry_at.pop(uid, None)
        workdir.mkdir(parents=True, exist_ok=True)
        argv = [kubelet.expand(a, env) for a in plain_pod.argv(c)]
        self._launch(uid, pod, None, c["name"], argv, env, workdir)

    def _launch(self, uid: str, pod: dict[str, Any], ap: argo_pod.ArgoPod | None, name: str, argv: list[str],
                env: dict[str, str], workdir: Path) -> None:
        """Start the container's process in its own process group; report the pod Running."""
        meta = pod["metadata"]
        exe = shutil.which(argv[0], path=env.get("PATH"))
        if exe is None:
            image = (argo_pod.container(pod, name) or {}).get("image", "")
            self._finish_without_process(
                pod, f"cannot run {argv[0]!r}: not found on the pod runner's PATH (no containers here: image "
                     f"{image!r} is not emulated, the command runs as a local process)", ap, main=name)
            return
        started = now()
        try:
            with open(workdir / "main.stdout", "wb") as out, open(workdir / "main.stderr", "wb") as err:
                popen = subprocess.Popen([exe, *argv[1:]], cwd=workdir, env=env, stdin=subprocess.DEVNULL,
                                         stdout=out, stderr=err, start_new_session=True)
        except OSError as exc:
            self._finish_without_process(pod, f"cannot start {argv[0]!r}: {exc.strerror or exc}", ap, main=name)
            return
        (workdir / "pid").write_text(f"{popen.pid}\n")
        (workdir / "argv.json").write_text(json.dumps(argv))
        self.procs[uid] = Proc(popen, pod, ap, name, started, time.monotonic(), workdir)
        print(f"pod runner: {meta['namespace']}/{meta['name']} started pid {popen.pid}: {' '.join(argv)[:200]}",
              flush=True)
        self._status(pod, kubelet.running_status(pod, started, self.config.ip))

    def _offloaded(self, pod: dict[str, Any]) -> dict[str, str]:
        if not argo_pod.uses_offloaded(pod):
            return {}
        meta = pod["metadata"]
        cm = self.api.call("GET", f"/api/v1/namespaces/{meta['namespace']}/configmaps/{meta['name']}")
        return dict((cm or {}).get("data") or {})

    def _lookup(self, namespace: str) -> kubelet.Lookup:
        def lookup(kind: str, name: str) -> Mapping[str, str] | None:
            plural = "secrets" if kind == "secret" else "configmaps"
            obj = self.api.call("GET", f"/api/v1/namespaces/{namespace}/{plural}/{name}")
            if obj is None:
                return None
            return kubelet.secret_data(obj) if kind == "secret" else dict(obj.get("data") or {})
        return lookup

    def _env(self, pod: dict[str, Any], workdir: Path, name: str) -> dict[str, str]:
        """The process environment: a minimal base (PATH, HOME, HOSTNAME), the passed-through host variables,
        a kubeconfig for the pod's service account, then the container's own variables."""
        main = argo_pod.container(pod, name) or {}
        meta = pod["metadata"]
        base = {"PATH": self.config.path or default_path(), "HOME": str(workdir), "HOSTNAME": meta["name"],
                "LANG": "C.UTF-8"}
        base.update({k: os.environ[k] for k in self.config.pass_env if k in os.environ})
        kubeconfig = self._service_account_kubeconfig(pod, workdir)
        if kubeconfig:
            base["KUBECONFIG"] = str(kubeconfig)
        pod_now = {**pod, "status": {**(pod.get("status") or {}), "podIP": self.config.ip,
                                     "hostIP": self.config.ip, "podIPs": [{"ip": self.config.ip}]}}
        own = kubelet.container_env(pod_now, main, self._lookup(meta["namespace"]), self.config.capacity)
        return {**base, **own}

    def _service_account_kubeconfig(self, pod: dict[str, Any], workdir: Path) -> Path | None:
        """A kubeconfig holding a token bound to this pod for its service account (what the kubelet mounts at
        /var/run/secrets/kubernetes.io/serviceaccount), so the process talks to the API as the pod would."""
        spec, meta = pod.get("spec", {}), pod["metadata"]
        sa = spec.get("serviceAccountName") or "default"
        if spec.get("automountServiceAccountToken") is False:
            return None
        request = {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest",
                   "spec": {"expirationSeconds": 86400,
                            "boundObjectRef": {"apiVersion": "v1", "kind": "Pod", "name": meta["name"],
                                               "uid": meta["uid"]}}}
        try:
            answer = self.api.call("POST", f"/api/v1/namespaces/{meta['namespace']}/serviceaccounts/{sa}/token",
                                   request)
        except ApiError as exc:
            raise ConfigMissingError(f"service account token for {sa}: {exc}") from None
        sa_dir = workdir / "serviceaccount"
        sa_dir.mkdir(parents=True, exist_ok=True)
        (sa_dir / "token").write_text(answer["status"]["token"])
        (sa_dir / "namespace").write_text(meta["namespace"])
        cluster: dict[str, Any] = {"server": self.api.cfg.host}
        if self.api.cfg.ssl_ca_cert:
            cluster["certificate-authority"] = str(self.api.cfg.ssl_ca_cert)
        kc = {"apiVersion": "v1", "kind": "Config", "current-context": "pod",
              "clusters": [{"name": "dev", "cluster": cluster}],
              "users": [{"name": sa, "user": {"tokenFile": str(sa_dir / "token")}}],
              "contexts": [{"name": "pod", "context": {"cluster": "dev", "user": sa,
                                                       "namespace": meta["namespace"]}}]}
        path = sa_dir / "kubeconfig"
        path.write_text(json.dumps(kc))
        return path

    # -- running and finishing ----------------------------------------------------------------------------------
    def _watch(self, uid: str, proc: Proc) -> None:
        deadline = proc.pod.get("spec", {}).get("activeDeadlineSeconds")
        if proc.popen.poll() is None:
            if deadline is not None and time.monotonic() - proc.started_mono > float(deadline):
                self._kill(proc, "DeadlineExceeded")
            else:
                return
        self._finish(proc)  # raises on an API error: the pod stays tracked and is finished on the next tick
        self.procs.pop(uid, None)

    def _finish(self, proc: Proc) -> None:
        code = proc.popen.returncode
        code = 128 - code if code < 0 else code
        _killpg(proc.popen.pid, signal.SIGKILL)  # what the container left behind goes with it
        finished = now()
        main = Exit(code, "Completed" if code == 0 else "Error", _tail(proc.workdir) if code else "")
        exits = {proc.container: main}
        if proc.ap is not None:
            wait = Exit(0, "Completed")
            stdout = (proc.workdir / "main.stdout").read_text(errors="replace") if proc.ap.include_script_output \
                else None
            try:
                outputs = argo_pod.collect_outputs(proc.ap.template, _read_text, stdout)
            except OutputError as exc:
                outputs, wait = {}, Exit(1, "Error", str(exc))
            self._task_result(proc.ap, outputs)
            exits[argo_pod.WAIT] = wait
        reason = message = None
        if proc.killed_reason == "DeadlineExceeded":
            reason, message = "DeadlineExceeded", "Pod was active on the node longer than the specified deadline"
        self._status(proc.pod, kubelet.finished_status(proc.pod, proc.started, finished, self.config.ip, exits,
                                                       reason, message))
        meta = proc.pod["metadata"]
        print(f"pod runner: {meta['namespace']}/{meta['name']} exited {code}", flush=True)

    def _finish_without_process(self, pod: dict[str, Any], message: str, ap: argo_pod.ArgoPod | None = None,
                                main: str = argo_pod.MAIN) -> None:
        """Fail a pod whose container `main` could not start: it terminated with StartError, the message on the
        pod."""
        stamp = now()
        names = [c["name"] for c in pod.get("spec", {}).get("containers") or []]
        exits = {n: Exit(START_ERROR, "StartError", message) if n == main else Exit(0, "Completed")
                 for n in names}
        if ap is not None:
            self._task_result(ap, {})
        self._status(pod, kubelet.finished_status(pod, stamp, stamp, self.config.ip, exits, None, message))
        meta = pod["metadata"]
        print(f"pod runner: {meta['namespace']}/{meta['name']} failed: {message}", flush=True)

    def _task_result(self, ap: argo_pod.ArgoPod, outputs: dict[str, Any]) -> None:
        body = argo_pod.task_result(ap, outputs)
        base = f"/apis/argoproj.io/v1alpha1/namespaces/{ap.namespace}/workflowtaskresults"
        try:
            self.api.call("POST", base, body)
        except ApiError as exc:
            if exc.status != 409:
                raise
            self.api.merge(f"{base}/{ap.node_id}", {"metadata": {"labels": body["metadata"]["labels"]},
                                                    "outputs": body.get("outputs")})

    def _status(self, pod: dict[str, Any], status: dict[str, Any]) -> None:
        meta = pod["metadata"]
        self.api.merge(f"/api/v1/namespaces/{meta['namespace']}/pods/{meta['name']}/status", {"status": status})

    def _kill(self, proc: Proc, reason: str, grace: float = 0.0) -> None:
        """SIGTERM the process group, SIGKILL it after `grace` seconds."""
        proc.killed_reason = reason
        _killpg(proc.popen.pid, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.popen.wait(timeout=max(grace, 0.5))
        _killpg(proc.popen.pid, signal.SIGKILL)
        proc.popen.wait()

    def _force_delete(self, pod: dict[str, Any]) -> None:
        """What the kubelet does once the containers are gone: delete the pod for good."""
        meta = pod["metadata"]
        self.api.call("DELETE", f"/api/v1/namespaces/{meta['namespace']}/pods/{meta['name']}",
                      {"apiVersion": "v1", "kind": "DeleteOptions", "gracePeriodSeconds": 0,
                       "preconditions": {"uid": meta["uid"]}})

    def kill_all(self) -> None:
        for proc in self.procs.values():
            self._kill(proc, "pod runner stopped")
        self.procs.clear()


def _killpg(pgid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def _read_text(path: str) -> str:
    return Path(path).read_text(errors="replace")


def _tail(workdir: Path) -> str:
    """The end of the process's stderr (else stdout), as a kubelet's FallbackToLogsOnError would report."""
    for name in ("main.stderr", "main.stdout"):
        data = (workdir / name).read_bytes() if (workdir / name).is_file() else b""
        if data.strip():
            return data[-MESSAGE_TAIL:].decode("utf-8", "replace").strip()
    return ""


def default_path() -> str:
    """This interpreter's scripts folder first (so `kaic` is this checkout's), then the runner's PATH."""
    return os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "/usr/bin:/bin")])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m kaic.devcluster.pod_runner", description=__doc__.splitlines()[0])
    parser.add_argument("--kubeconfig", required=True, type=Path, help="the dev cluster's admin kubeconfig")
    parser.add_argument("--pods-dir", required=True, type=Path, help="working directories and logs of the pods")
    parser.add_argument("--node", default=NODE, help=f"the Node's name (default: {NODE})")
    parser.add_argument("--pass-env", action="append", default=[], metavar="NAME",
                        help="pass this host variable to every process (repeatable)")
    parser.add_argument("--poll", type=float, default=1.0, metavar="S", help="seconds between pod lists")
    args = parser.parse_args(argv)
    if not args.kubeconfig.is_file():
        print(f"pod runner: --kubeconfig {args.kubeconfig}: no such file", file=sys.stderr)
        return 2
    runner = Runner(RunnerConfig(args.kubeconfig, args.pods_dir.resolve(), node=args.node,
                                 pass_env=tuple(args.pass_env), poll_s=args.poll))

    def stop(signum: int, _frame: object) -> None:
        runner.stopping = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    runner.run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
