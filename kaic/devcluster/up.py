"""Start and stop the whole dev cluster: the one start sequence, phase by phase, and its teardown."""

from __future__ import annotations

import shutil
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from kaic.devcluster import addons as addons_mod
from kaic.devcluster import certs, controlplane, kubeconfig, kueue, kwok
from kaic.devcluster.apply import (
    Applier,
    api_client,
    cached_documents,
    create_crds,
    wait_crds_established,
    wait_nodes_ready,
)
from kaic.devcluster.build import (
    ARGO_SOURCE,
    CORE_COMPONENTS,
    GATEWAY_API_SOURCE,
    KSERVE_SOURCE,
    KUEUE_SOURCE,
    KWOK_SOURCE,
    ensure_built,
    source_dir,
)
from kaic.devcluster.layout import TOPOLOGY_FILE, ClusterPaths, cache_dir
from kaic.devcluster.processes import (
    Running,
    State,
    free_port,
    port_listens,
    start,
    start_all,
    stop_all,
    wait_ports_closed,
)
from kaic.devcluster.topology import POOL_LABEL, Topology

Say = Callable[[str], None]


@dataclass(frozen=True)
class DownReport:
    stopped: list[Running]
    ports_open: list[int]
    alive: list[Running]


def running(paths: ClusterPaths) -> list[Running]:
    """The recorded processes that are alive."""
    return [r for r in State(paths.state).read() if r.process() is not None]


class Phases:
    """Prints each phase's elapsed time."""

    def __init__(self, say: Say) -> None:
        self.say = say
        self.t0 = time.monotonic()

    def run(self, name: str, step: Callable[[], Any]) -> Any:
        start = time.monotonic()
        result = step()
        self.say(f"cluster: {name} ({time.monotonic() - start:.1f} s)")
        return result


def crd_files(gateway: Path, argo: Path, kserve: Path, kueue_dir: Path) -> list[Path]:
    return [
        *kueue.crd_files(kueue_dir),
        *sorted((argo / "manifests" / "base" / "crds" / "full").glob("argoproj.io_*.yaml")),
        kserve / "config" / "crd" / "full" / "serving.kserve.io_inferenceservices.yaml",
        *sorted((gateway / "config" / "crd" / "standard").glob("gateway.networking.k8s.io_*.yaml")),
    ]


def up(paths: ClusterPaths, say: Say = print, topology_file: Path = TOPOLOGY_FILE, with_addons: bool = True) -> Path:
    """Build what is missing, start everything (the addons too unless `with_addons` is False), wait until
    ready; return the admin kubeconfig's path."""
    recorded, alive = State(paths.state).read(), running(paths)
    if recorded and len(alive) == len(recorded):
        say(f"cluster: already running ({len(alive)} processes, {paths.state})")
        return paths.kubeconfig
    if alive:
        say(f"cluster: {len(recorded) - len(alive)} of {len(recorded)} recorded processes are gone: restarting")
        down(paths, say)
    phases = Phases(say)
    cache = cache_dir()
    needed = CORE_COMPONENTS + tuple(c for a in (addons_mod.ADDONS if with_addons else []) for c in a.components
                                     if c not in CORE_COMPONENTS)
    phases.run("build", lambda: ensure_built(needed, cache=cache, log=cache / "build.log", say=say))
    sources = phases.run("module sources", lambda: {s.module: source_dir(s) for s in (
        KWOK_SOURCE, KUEUE_SOURCE, ARGO_SOURCE, GATEWAY_API_SOURCE, KSERVE_SOURCE)})
    topology = Topology.load(topology_file)
    State(paths.state).path.unlink(missing_ok=True)
    shutil.rmtree(paths.root, ignore_errors=True)
    for folder in (paths.root, paths.logs, paths.pki, paths.config):
        folder.mkdir(parents=True, exist_ok=True)
    try:
        _start(paths, phases, topology, topology_file, sources, cache, with_addons)
    except BaseException:
        say(f"cluster: start failed; stopping what was started (logs: {paths.logs})")
        down(paths, say=lambda _line: None)
        raise
    say(f"cluster: ready in {time.monotonic() - phases.t0:.1f} s")
    return paths.kubeconfig


def _start(paths: ClusterPaths, phases: Phases, topology: Topology, topology_file: Path,
           sources: dict[str, Path], cache: Path, with_addons: bool) -> None:
    state = State(paths.state)
    pki = paths.pki
    ports = controlplane.Ports(*(free_port() for _ in range(9)))

    def make_pki() -> tuple[controlplane.Files, dict[str, str]]:
        ca = certs.make_ca(pki)
        serving = certs.make_serving(pki, "kube-apiserver", ca, ("127.0.0.1", "localhost", "10.96.0.1",
                                                                   "kubernetes", "kubernetes.default.svc"))
        sa = certs.make_service_account_keys(pki)
        tokens = certs.make_tokens(pki)
        server = f"https://127.0.0.1:{ports.apiserver}"
        users = {t.name: t.user for t in certs.TOKENS}
        kubeconfigs = {name: kubeconfig.write(paths.config / f"{name}.kubeconfig", server, ca.cert, tokens[name],
                                              users[name]) for name in tokens}
        kubeconfig.write(paths.kubeconfig, server, ca.cert, tokens["admin"], users["admin"])
        webhook = certs.make_serving(pki, "kueue-webhook", ca)
        kueue_certs = paths.root / "kueue" / "certs"
        kueue.install_webhook_cert(webhook, kueue_certs)
        kueue_config = kueue.write_config(paths.config / "kueue.yaml", kueue.config(
            ports.kueue_webhook, ports.kueue_health, ports.kueue_metrics, kueue_certs))
        kwok_config = kwok.write_config(sources[KWOK_SOURCE.module], paths.config / "kwok.yaml")
        files = controlplane.Files(
            ca.cert, ca.key, serving.cert, serving.key, sa.cert, sa.key, pki / "tokens.csv",
            kubeconfigs["admin"], kubeconfigs["kube-controller-manager"], kubeconfigs["kube-scheduler"],
            kubeconfigs["components"], kwok_config, kueue_config, paths.etcd_data)
        return files, tokens

    files, tokens = phases.run("certificates, tokens, kubeconfigs", make_pki)
    phases.run("etcd", lambda: start(controlplane.etcd(files, ports), paths.logs, state))
    phases.run("kube-apiserver", lambda: start(controlplane.apiserver(files, ports, tokens["admin"]),
                                               paths.logs, state))
    phases.run("kube-controller-manager, kube-scheduler", lambda: start_all(
        [controlplane.controller_manager(files, ports), controlplane.scheduler(files, ports)], paths.logs, state))
    api = api_client(paths.kubeconfig)
    applier = Applier(api)

    docs = cached_documents(crd_files(sources[GATEWAY_API_SOURCE.module], sources[ARGO_SOURCE.module],
                                      sources[KSERVE_SOURCE.module], sources[KUEUE_SOURCE.module]), cache)
    crds = [d for d in docs if d["kind"] == "CustomResourceDefinition"]
    kueue_crds = [d for d in crds if d["spec"]["group"] == "kueue.x-k8s.io"]
    other_crds = [d for d in crds if d["spec"]["group"] != "kueue.x-k8s.io"]

    def install_kueue_crds() -> None:
        create_crds(api, kueue_crds)
        wait_crds_established(api, [d["metadata"]["name"] for d in kueue_crds], timeout=600)
        applier.refresh()
    phases.run("Kueue CRDs Established", install_kueue_crds)
    # The big ones (Argo's full schemas, KServe, Gateway API) are created while Kueue and the nodes start.
    background = _Background(lambda: create_crds(api, other_crds))

    def start_kueue() -> None:
        applier.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": kueue.NAMESPACE}})
        start(controlplane.kueue(files, ports), paths.logs, state)
        applier.apply_all(kueue.webhook_configurations(sources[KUEUE_SOURCE.module], ports.kueue_webhook,
                                                       files.ca_cert))
        gpu = topology.pool("gpu")
        _retry(lambda: applier.apply_all(kueue.queue_objects((POOL_LABEL, gpu.name))), "Kueue's queues", 90)
    phases.run("Kueue (webhooks registered, queues created)", start_kueue)

    def start_nodes() -> None:
        for node in topology.nodes():
            applier.create(node)
        start_all([controlplane.kwok(files, ports), controlplane.dra_driver(files, topology_file)],
                  paths.logs, state)
        wait_nodes_ready(api, [n["metadata"]["name"] for n in topology.nodes()])
        _wait_slices(applier, topology)
    phases.run("nodes Ready (kwok), ResourceSlices published (fake DRA driver)", start_nodes)

    def finish_crds() -> None:
        background.join()
        wait_crds_established(api, [d["metadata"]["name"] for d in other_crds], timeout=900)
        applier.apply_all(d for d in docs if d["kind"] != "CustomResourceDefinition")
        applier.refresh()
    phases.run("CRDs (Argo full schemas, KServe InferenceService, Gateway API) Established", finish_crds)

    ctx = addons_mod.ClusterContext(paths, paths.kubeconfig, files.kubeconfig_components, files.ca_cert, api,
                                    applier, cache)
    for addon in addons_mod.ADDONS if with_addons else []:
        def start_addon(addon: addons_mod.Addon = addon) -> None:
            addon.install(ctx)
            for spec in addon.processes(ctx):
                start(spec, paths.logs, state)
        phases.run(f"addon {addon.name}", start_addon)


class _Background:
    """Run `step` in a thread; join() re-raises what it raised."""

    def __init__(self, step: Callable[[], None]) -> None:
        self.error: BaseException | None = None

        def run() -> None:
            try:
                step()
            except BaseException as exc:  # handed to join()
                self.error = exc
        self.thread = threading.Thread(target=run, daemon=True)
        self.thread.start()

    def join(self) -> None:
        self.thread.join()
        if self.error is not None:
            raise self.error


def _retry(step: Callable[[], Any], what: str, timeout: float) -> Any:
    """Retry while the API answers with a webhook not yet reachable (a 500) or a kind not yet served (404)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return step()
        except ApiException as exc:
            if exc.status not in (404, 500, 503) or time.monotonic() > deadline:
                raise RuntimeError(f"{what}: {exc.status} {exc.reason}: {str(exc.body)[:500]}") from exc
            time.sleep(1)


def _wait_slices(applier: Applier, topology: Topology, timeout: float = 60.0) -> None:
    expected = sum(p.count for p in topology.pools if p.dra is not None)
    slices = applier.resource("resource.k8s.io/v1", "ResourceSlice")
    deadline = time.monotonic() + timeout
    while True:
        found = len(slices.get(field_selector=f"spec.driver={topology.dra.driver}").items)
        if found >= expected:
            return
        if time.monotonic() > deadline:
            raise TimeoutError(f"the fake DRA driver published {found} of {expected} ResourceSlices in {timeout} s")
        time.sleep(0.5)


def down(paths: ClusterPaths, say: Say = print) -> DownReport:
    """Stop every recorded process (process groups, last started first); report what is left (nothing)."""
    recorded = State(paths.state).read()
    stop_all(State(paths.state))
    ports = sorted({p for r in recorded for p in r.ports})
    still_open = wait_ports_closed(ports)
    alive = [r for r in recorded if r.process() is not None]
    say(f"cluster: stopped {len(recorded)} processes; {len(ports)} ports closed"
        if not still_open and not alive else
        f"cluster: still alive: {[r.name for r in alive]}; ports still open: {still_open}")
    return DownReport(recorded, still_open, alive)


def status(paths: ClusterPaths) -> list[tuple[Running, bool, list[int]]]:
    """Each recorded process: alive or not, and which of its ports listen."""
    return [(r, r.process() is not None, [p for p in r.ports if port_listens(p)]) for r in State(paths.state).read()]


def client_for(paths: ClusterPaths) -> client.ApiClient:
    return api_client(paths.kubeconfig)
