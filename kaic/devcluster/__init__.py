"""A real local Kubernetes control plane for kaic's e2e tier, built from Go modules (docs/dev-cluster.md).

`python -m kaic.devcluster up|down|status|build`; `make cluster` / `make cluster-down` call it.
"""
