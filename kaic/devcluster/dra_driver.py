"""A fake DRA driver: publishes the DRA pool's DeviceClass and one ResourceSlice per node, and keeps them.

A real driver runs as a kubelet plugin on each node and also prepares claimed devices; here there is no
kubelet and no device, so this process only does the publishing half (what the scheduler allocates from).
It reconciles every few seconds until SIGTERM: a deleted slice comes back, a slice of a gone node is dropped.

    python -m kaic.devcluster.dra_driver --kubeconfig FILE --topology devcluster/topology.yaml
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from pathlib import Path
from types import FrameType
from typing import Any

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from kaic.devcluster.apply import Applier, api_client
from kaic.devcluster.topology import Topology

INTERVAL_S = 5.0


def reconcile(applier: Applier, topology: Topology) -> int:
    """Apply the DeviceClass and the slices of the DRA pool's existing nodes; delete stale slices."""
    applier.apply(topology.device_class())
    core: Any = client.CoreV1Api(applier.api)
    nodes: dict[str, str] = {n.metadata.name: n.metadata.uid for n in core.list_node().items}
    wanted = topology.resource_slices(nodes)
    for slice_ in wanted:
        applier.apply(slice_)
    slices = applier.resource("resource.k8s.io/v1", "ResourceSlice")
    names = {s["metadata"]["name"] for s in wanted}
    for item in slices.get(field_selector=f"spec.driver={topology.dra.driver}").items:
        if item.metadata.name not in names:
            slices.delete(name=item.metadata.name)
    return len(wanted)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m kaic.devcluster.dra_driver")
    parser.add_argument("--kubeconfig", type=Path, required=True)
    parser.add_argument("--topology", type=Path, required=True)
    args = parser.parse_args(argv)
    topology = Topology.load(args.topology)
    applier = Applier(api_client(args.kubeconfig))
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    published = -1
    while not stop.is_set():
        try:
            count = reconcile(applier, topology)
            if count != published:
                print(f"dra-driver: {topology.dra.driver}: {count} ResourceSlice(s) published", flush=True)
                published = count
        except (ApiException, OSError) as exc:  # the API server restarting: try again next round
            print(f"dra-driver: reconcile failed: {exc}", file=sys.stderr, flush=True)
        stop.wait(INTERVAL_S)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
