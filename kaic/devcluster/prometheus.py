"""A real Prometheus (built from its Go module, `kaic.devcluster.build.PROMETHEUS`) for the tests that need a
monitoring API: its configuration, as pure functions, and one process on 127.0.0.1 with a throw-away store.

Two ways to find targets:

- `pod_scrape_config`: Kubernetes service discovery (role `pod`) through the dev cluster's API server, with a
  ServiceAccount token and the cluster CA, keeping the pods annotated `prometheus.io/scrape: "true"` and
  scraping `prometheus.io/port` (and `prometheus.io/path`): the annotation convention a cluster's Prometheus
  uses to find KServe's predictor pods. The pod's namespace becomes the `namespace` label.
- `static_scrape_config`: fixed addresses with fixed labels (no cluster needed).

    with Prometheus.start(binary, config([...]), workdir) as prom:
        prom.url   # http://127.0.0.1:<port>, the HTTP API (/api/v1/query)
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import yaml

from kaic.devcluster.processes import ProcessSpec, Running, StartError, State, free_port, launch, stop, wait_ready

SCRAPE_ANNOTATION = "prometheus.io/scrape"
PORT_ANNOTATION = "prometheus.io/port"
PATH_ANNOTATION = "prometheus.io/path"


@dataclass(frozen=True)
class KubernetesAccess:
    """How Prometheus reaches the API server: its URL, a bearer-token file and the cluster CA."""

    api_server: str
    token_file: Path
    ca_file: Path


def _meta(annotation: str) -> str:
    """The discovery label of a pod annotation (`prometheus.io/port` -> `..._prometheus_io_port`)."""
    return "__meta_kubernetes_pod_annotation_" + "".join(c if c.isalnum() else "_" for c in annotation)


def pod_scrape_config(job: str, access: KubernetesAccess, namespaces: Sequence[str]) -> dict[str, Any]:
    """Scrape the annotated pods of `namespaces`, found through the API server (kubernetes_sd, role pod)."""
    return {
        "job_name": job,
        "kubernetes_sd_configs": [{
            "role": "pod",
            "api_server": access.api_server,
            "authorization": {"credentials_file": str(access.token_file)},
            "tls_config": {"ca_file": str(access.ca_file)},
            "namespaces": {"names": list(namespaces)},
        }],
        "relabel_configs": [
            {"source_labels": [_meta(SCRAPE_ANNOTATION)], "action": "keep", "regex": "true"},
            {"source_labels": [_meta(PATH_ANNOTATION)], "action": "replace", "regex": "(.+)",
             "target_label": "__metrics_path__"},
            {"source_labels": ["__address__", _meta(PORT_ANNOTATION)], "action": "replace",
             "regex": r"([^:]+)(?::\d+)?;(\d+)", "replacement": "$1:$2", "target_label": "__address__"},
            {"source_labels": ["__meta_kubernetes_namespace"], "target_label": "namespace"},
            {"source_labels": ["__meta_kubernetes_pod_name"], "target_label": "pod"},
        ],
    }


def static_scrape_config(job: str, targets: Sequence[str], labels: Mapping[str, str]) -> dict[str, Any]:
    """Scrape fixed `host:port` targets, every series labelled with `labels`."""
    return {"job_name": job, "static_configs": [{"targets": list(targets), "labels": dict(labels)}]}


def config(scrape_configs: Sequence[Mapping[str, Any]], interval_s: float = 1.0) -> dict[str, Any]:
    """The whole configuration: every job scraped (and timed out) every `interval_s` seconds."""
    every = f"{int(interval_s * 1000)}ms"
    return {"global": {"scrape_interval": every, "scrape_timeout": every, "evaluation_interval": every},
            "scrape_configs": [dict(c) for c in scrape_configs]}


def argv(binary: Path, config_file: Path, data_dir: Path, port: int) -> list[str]:
    return [str(binary), f"--config.file={config_file}", f"--storage.tsdb.path={data_dir}",
            f"--web.listen-address=127.0.0.1:{port}", "--storage.tsdb.retention.time=1h", "--log.level=info"]


@dataclass(frozen=True)
class Prometheus:
    """A started Prometheus: its API's URL, its process (as recorded in `state`), its log."""

    url: str
    running: Running
    log: Path

    def targets(self) -> list[dict[str, Any]]:
        """The active targets (`/api/v1/targets`): what discovery found and how the last scrape went."""
        body = httpx.get(f"{self.url}/api/v1/targets", params={"state": "active"}, timeout=10).json()
        return list(body["data"]["activeTargets"])

    @classmethod
    @contextmanager
    def start(cls, binary: Path, cfg: Mapping[str, Any], workdir: Path,
              ready_timeout_s: float = 120.0) -> Iterator[Prometheus]:
        """Write `cfg`, start Prometheus on a free loopback port with its store under `workdir`, wait for
        `/-/ready`; on the way out SIGTERM it (SIGKILL after 15 s)."""
        if not binary.is_file():
            raise StartError(f"no prometheus binary at {binary}: `make cluster-build` builds it")
        workdir.mkdir(parents=True, exist_ok=True)
        config_file = workdir / "prometheus.yml"
        config_file.write_text(yaml.safe_dump(dict(cfg), sort_keys=False))
        port = free_port()
        url = f"http://127.0.0.1:{port}"

        def ready() -> bool:
            return httpx.get(f"{url}/-/ready", timeout=2).status_code == 200

        spec = ProcessSpec("prometheus", argv(binary, config_file, workdir / "data", port), ports=(port,),
                           ready=ready, ready_timeout=ready_timeout_s)
        proc, running = launch(spec, workdir, State(workdir / "state.json"))
        try:
            wait_ready(spec, proc, running)
            yield cls(url, running, Path(running.log))
        finally:
            stop(running)
            proc.wait()
