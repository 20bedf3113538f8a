"""Build the dev cluster's binaries from Go modules (the module proxy only), pinned, into a cache.

Every component is one row of COMPONENTS: which module and packages, at which version, with which ldflags.
A component's binaries land in ``<cache>/<name>-<version>/``; a row whose binaries are all there is not
rebuilt. SOURCES are modules whose files (CRDs, kwok stages) the cluster or the tests read; ``go mod download`` fetches
them into the Go module cache and reports their folder.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from kaic.devcluster.layout import REPO_GO, cache_dir

K8S_VERSION = "v1.36.3"


def _version_ldflags(version: str) -> str:
    major, minor = version.lstrip("v").split(".")[:2]
    flags = ["-s", "-w"]
    for pkg in ("k8s.io/component-base/version", "k8s.io/client-go/pkg/version"):
        flags += [f"-X {pkg}.{key}={value}" for key, value in (
            ("gitVersion", version), ("gitMajor", major), ("gitMinor", minor), ("gitTreeState", "clean"),
            ("buildDate", "2026-01-01T00:00:00Z"))]
    return " ".join(flags)


@dataclass(frozen=True)
class Component:
    """One cache folder of binaries built from one Go module at one version."""

    name: str
    version: str
    module: str                      # the module path (for `go install mod/pkg@version`)
    packages: tuple[str, ...]        # full package paths of the commands
    ldflags: str = "-s -w"
    wrapper: str | None = None       # a wrapper module under devcluster/go/ built with `go build` instead
    env: tuple[tuple[str, str], ...] = ()  # extra environment of the build
    tags: tuple[str, ...] = ()       # Go build tags

    @property
    def binaries(self) -> tuple[str, ...]:
        return tuple(pkg.rsplit("/", 1)[-1] for pkg in self.packages)

    def folder(self, cache: Path) -> Path:
        return cache / f"{self.name}-{self.version}"

    def path(self, binary: str, cache: Path | None = None) -> Path:
        return self.folder(cache or cache_dir()) / binary

    def is_built(self, cache: Path) -> bool:
        return all((self.folder(cache) / b).is_file() for b in self.binaries)


@dataclass(frozen=True)
class Source:
    """A module whose files the cluster reads (CRDs, stages), fetched with `go mod download`."""

    module: str
    version: str


KUBERNETES = Component(
    "k8s", K8S_VERSION, "k8s.io/kubernetes",
    ("k8s.io/kubernetes/cmd/kube-apiserver", "k8s.io/kubernetes/cmd/kube-controller-manager",
     "k8s.io/kubernetes/cmd/kube-scheduler"),
    ldflags=_version_ldflags(K8S_VERSION), wrapper="kubernetes",
)
ETCD = Component("etcd", "v3.6.16", "go.etcd.io/etcd/server/v3", ("kaic.dev/devcluster/etcd",), wrapper="etcd")
KWOK = Component("kwok", "v0.8.0", "sigs.k8s.io/kwok", ("sigs.k8s.io/kwok/cmd/kwok",))
# The checksum database has no record of this pseudo-version of k8schain (a dependency of Argo v4.1.4): the
# proxy serves it, sum.golang.org answers 404, so it is fetched without that lookup.
ARGO = Component("argo", "v4.1.4", "github.com/argoproj/argo-workflows/v4",
                 ("github.com/argoproj/argo-workflows/v4/cmd/workflow-controller",),
                 env=(("GONOSUMDB", "github.com/google/go-containerregistry/pkg/authn/k8schain"),))
KUEUE = Component("kueue", "v0.17.1", "sigs.k8s.io/kueue", ("sigs.k8s.io/kueue/cmd/kueue",))
HELM = Component("helm", "v3.22.0", "helm.sh/helm/v3", ("helm.sh/helm/v3/cmd/helm",))
# Prometheus v3.16.0 is the module's v0.316.0. `remove_all_sd` drops every service discovery but the minimum
# (static, file, http); `enable_kubernetes_sd` keeps Kubernetes' (plugins/plugin_*.go). No `builtinassets`:
# the web UI's bundle is not in the module, the HTTP API is all the tests use.
PROMETHEUS_VERSION = "3.16.0"
PROMETHEUS = Component(
    "prometheus", "v0.316.0", "github.com/prometheus/prometheus",
    ("github.com/prometheus/prometheus/cmd/prometheus",),
    ldflags="-s -w " + " ".join(f"-X github.com/prometheus/common/version.{key}={value}" for key, value in (
        ("Version", PROMETHEUS_VERSION), ("Revision", "v0.316.0"), ("Branch", "HEAD"),
        ("BuildUser", "kaic-devcluster"), ("BuildDate", "20260101-00:00:00"))),
    tags=("remove_all_sd", "enable_kubernetes_sd"),
)

# What the core cluster runs (`make cluster` builds these, plus its addons' components).
CORE_COMPONENTS: tuple[Component, ...] = (KUBERNETES, ETCD, KWOK, KUEUE)
# Everything, in build order (`make cluster-build`, CI): the core first, then what addons and tests use.
COMPONENTS: tuple[Component, ...] = (*CORE_COMPONENTS, ARGO, HELM, PROMETHEUS)

KWOK_SOURCE = Source("sigs.k8s.io/kwok", KWOK.version)
KUEUE_SOURCE = Source("sigs.k8s.io/kueue", KUEUE.version)
ARGO_SOURCE = Source("github.com/argoproj/argo-workflows/v4", ARGO.version)
GATEWAY_API_SOURCE = Source("sigs.k8s.io/gateway-api", "v1.6.3")
# KServe's Go module carries its CRDs (config/crd/full); v0.20.0 is the newest the proxy serves.
KSERVE_SOURCE = Source("github.com/kserve/kserve", "v0.20.0")
# Operators the robust_controller probe knows but the dev cluster does not run: their released CRDs, which the
# tests hold the probe's objects against (tests/integration/test_operator_crds.py).
OPERATOR_CRD_SOURCES: tuple[Source, ...] = (
    Source("github.com/kubeflow/trainer/v2", "v2.2.0"), Source("github.com/ray-project/kuberay/ray-operator", "v1.6.0"),
    Source("sigs.k8s.io/jobset", "v0.11.1"), Source("sigs.k8s.io/lws", "v0.8.0"))
SOURCES: tuple[Source, ...] = (KWOK_SOURCE, KUEUE_SOURCE, ARGO_SOURCE, GATEWAY_API_SOURCE, KSERVE_SOURCE,
                               *OPERATOR_CRD_SOURCES)


class BuildError(RuntimeError):
    pass


def _go() -> str:
    go = shutil.which("go")
    if go is None:
        raise BuildError("the Go toolchain (`go`) is not on PATH: the dev cluster builds its binaries from Go modules")
    return go


def _go_env() -> dict[str, str]:
    # Static binaries (no C toolchain needed); the module proxy only.
    return {**os.environ, "CGO_ENABLED": os.environ.get("CGO_ENABLED", "0")}


def build_command(component: Component, out: Path) -> tuple[list[str], Path, dict[str, str]]:
    """The argv, working directory and environment that build `component` into `out`."""
    env = {**_go_env(), **dict(component.env)}
    tags = ["-tags", ",".join(component.tags)] if component.tags else []
    if component.wrapper is not None:
        env["GOFLAGS"] = "-mod=mod"  # the wrapper's go.sum pins every dependency
        cwd = REPO_GO / component.wrapper
        target = f"{out}/" if len(component.packages) > 1 else str(out / component.binaries[0])
        pkgs = [p if not p.startswith("kaic.dev/") else "." for p in component.packages]
        return [_go(), "build", *tags, "-ldflags", component.ldflags, "-o", target, *pkgs], cwd, env
    env["GOBIN"] = str(out)
    return [_go(), "install", *tags, "-ldflags", component.ldflags,
            *[f"{pkg}@{component.version}" for pkg in component.packages]], REPO_GO, env


def build(component: Component, cache: Path, log: Path | None = None) -> float:
    """Build one component (atomically: into a temporary folder renamed into place); return seconds taken."""
    final = component.folder(cache)
    tmp = cache / f".{final.name}.partial"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    argv, cwd, env = build_command(component, tmp)
    start = time.monotonic()
    with open(log or os.devnull, "a") as sink:
        done = subprocess.run(argv, cwd=cwd, env=env, stdout=sink, stderr=subprocess.STDOUT, check=False)
    if done.returncode != 0 or not all((tmp / b).is_file() for b in component.binaries):
        shutil.rmtree(tmp, ignore_errors=True)
        hint = f" (see {log})" if log else ""
        raise BuildError(f"building {component.name} {component.version} failed: exit {done.returncode}{hint}")
    final.mkdir(parents=True, exist_ok=True)
    for binary in component.binaries:
        (tmp / binary).replace(final / binary)
    shutil.rmtree(tmp, ignore_errors=True)
    return time.monotonic() - start


def source_dir(source: Source) -> Path:
    """The folder of a module's files in the Go module cache (downloaded from the proxy when absent)."""
    done = subprocess.run([_go(), "mod", "download", "-json", f"{source.module}@{source.version}"],
                          cwd=REPO_GO, env=_go_env(), capture_output=True, text=True, check=False, timeout=600)
    try:
        info = json.loads(done.stdout)
    except json.JSONDecodeError:
        info = {}
    if done.returncode != 0 or "Dir" not in info:
        error = info.get("Error") or done.stderr.strip()[-500:]
        raise BuildError(f"go mod download {source.module}@{source.version} failed: {error}")
    return Path(info["Dir"])


def ensure_built(components: tuple[Component, ...] = COMPONENTS, *, cache: Path | None = None,
                 log: Path | None = None, say: object = print) -> dict[str, Path]:
    """Build every missing component, printing progress and each one's time; return each folder."""
    cache = cache or cache_dir()
    cache.mkdir(parents=True, exist_ok=True)
    echo = say if callable(say) else print
    folders: dict[str, Path] = {}
    for component in components:
        label = f"{component.name} {component.version}"
        if component.is_built(cache):
            echo(f"build: {label}: cached in {component.folder(cache)}")
        else:
            echo(f"build: {label}: go build {' '.join(component.packages)} ...")
            seconds = build(component, cache, log)
            echo(f"build: {label}: built in {seconds:.0f} s")
        folders[component.name] = component.folder(cache)
    for source in SOURCES:
        source_dir(source)
    return folders
