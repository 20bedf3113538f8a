"""Where the dev cluster keeps things: the binary cache, and its state under $KAIC_HOME/cluster/."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from kaic import env

REPO = Path(__file__).resolve().parents[2]
REPO_GO = REPO / "devcluster" / "go"
TOPOLOGY_FILE = REPO / "devcluster" / "topology.yaml"


def cache_dir() -> Path:
    """The build cache, outside the checkout and keyed by component versions."""
    return Path(env.KAIC_DEVCLUSTER_CACHE.get() or "~/.cache/kaic-devcluster").expanduser().resolve()


@dataclass(frozen=True)
class ClusterPaths:
    """Every file of one running dev cluster, under ``<KAIC_HOME>/cluster``."""

    root: Path

    @classmethod
    def default(cls) -> ClusterPaths:
        return cls(env.kaic_home() / "cluster")

    @property
    def kubeconfig(self) -> Path:
        return self.root / "kubeconfig"

    @property
    def state(self) -> Path:
        return self.root / "state.json"

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    @property
    def pki(self) -> Path:
        return self.root / "pki"

    @property
    def etcd_data(self) -> Path:
        return self.root / "etcd"

    @property
    def config(self) -> Path:
        return self.root / "config"

    def log(self, name: str) -> Path:
        return self.logs / f"{name}.log"
