"""Accelerator parsing from real captures: `nvidia-smi -q -x` on an H100, Node objects and label maps from
real clusters (GFD labels, MIG, vGPU, AMD capacity), and this machine's own fingerprint."""

from __future__ import annotations

import json
import re
import shutil

import pytest
import yaml

from kaic.hardware import host
from kaic.hardware.nodes import node_info, provider_of
from kaic.hardware.nvidia_smi import NvidiaSmiError, parse_xml
from kaic.hardware.resources import accelerator_resources, accelerator_vendor, parse_quantity
from tests.conftest import shared_path

pytestmark = pytest.mark.unit


def test_h100_nvidia_smi_xml() -> None:
    report = parse_xml(shared_path("fixtures", "nvidia", "h100-sxm-80gb.nvidia-smi-q.xml").read_bytes())
    assert (report.driver_version, report.cuda_version, report.count) == ("580.159.04", "13.0", 1)
    gpu = report.gpus[0]
    assert gpu.product == "NVIDIA H100 80GB HBM3"
    assert gpu.memory_mib == 81559
    assert (gpu.mig_mode, gpu.ecc_mode, gpu.architecture) == ("Disabled", "Enabled", "Hopper")
    assert gpu.uuid.startswith("GPU-")
    assert gpu.pci_bus_id == "00000000:00:06.0"


def test_the_text_form_is_not_mistaken_for_xml() -> None:
    text = shared_path("fixtures", "nvidia", "h100-sxm-80gb.nvidia-smi-q.txt").read_text()
    with pytest.raises(NvidiaSmiError, match="not nvidia-smi XML"):
        parse_xml(text)
    # the human form agrees with the XML on what kaic reads
    assert re.search(r"^\s*Product Name\s+: NVIDIA H100 80GB HBM3$", text, re.M)
    assert re.search(r"^Driver Version\s+: 580.159.04$", text, re.M)


def test_nodes_from_real_clusters() -> None:
    rke2 = json.loads(shared_path("fixtures", "k8s", "nodes", "node-list_onprem-rke2_nvidia-vgpu-a16-4q_edgexr.json")
                      .read_text())["items"][0]
    info = node_info(rke2)
    assert (info.provider, info.vendor, info.product, info.count) == ("rke2", "nvidia", "NVIDIA-A16-4Q", 1)
    assert info.driver_version == "550.90.07"
    assert info.runtime_version == "12.4"
    assert info.vgpu
    t4 = node_info(yaml.safe_load(shared_path("fixtures", "k8s", "nodes",
                                              "node_gce-kubeadm_2x-tesla-t4_mig-strategy-mixed_runai.yaml").read_text()))
    assert (t4.product, t4.count, t4.driver_version, t4.mig, t4.vgpu) == ("Tesla-T4", 2, "525.60.13", {}, False)
    assert t4.provider == "gcp"  # no providerID (kubeadm); GFD's gpu.machine says Google Compute Engine
    mig = node_info(yaml.safe_load(shared_path(
        "fixtures", "k8s", "nodes", "node_gce-kubeadm_a100-sxm4-40gb_mig-mixed-4-instances_runai.yaml").read_text()))
    assert mig.mig == {"nvidia.com/mig-1g.5gb": 3, "nvidia.com/mig-2g.10gb": 1, "nvidia.com/mig-3g.20gb": 1}
    assert mig.allocatable["nvidia.com/mig-1g.5gb"] == 3


def test_label_maps_and_capacity_only_dumps() -> None:
    labels = json.loads(shared_path("fixtures", "k8s", "nodes", "partial",
                                    "labels-only_onprem-supermicro_h100-80gb_mig-mixed_nvidia-docs.json").read_text())
    info = node_info({"metadata": {"name": "s4124-0073", "labels": labels}})
    assert info.product == "NVIDIA-H100-80GB-HBM3"
    assert info.memory_mib == 81559
    assert info.mig.get("nvidia.com/mig-1g.10gb") == 2
    amd = json.loads(shared_path("fixtures", "k8s", "nodes", "partial",
                                 "capacity-only_amd-mi300-8gpu_skypilot-docs.json")
                     .read_text())
    a = node_info({"metadata": {"name": amd["name"]}, "status": {"capacity": amd["capacity"]}})
    assert (a.vendor, a.count, a.product) == ("amd", 8, None)  # product unknown: no labeller labels here


def test_resource_names_and_quantities() -> None:
    assert [accelerator_vendor(r) for r in ("nvidia.com/mig-3g.20gb", "amd.com/gpu", "google.com/tpu",
                                            "gpu.intel.com/i915", "aws.amazon.com/neuroncore", "cpu")] == \
        ["nvidia", "amd", "google", "intel", "aws", None]
    assert accelerator_resources({"cpu": "8", "nvidia.com/gpu": "4", "memory": "1Gi"}) == {"nvidia.com/gpu": 4}
    assert parse_quantity("16367668Ki") == 16367668 * 1024
    assert parse_quantity("250m") == 0.25
    with pytest.raises(ValueError, match="not a Kubernetes quantity"):
        parse_quantity("lots")
    assert provider_of("aws:///us-east-1a/i-0abc", {}) == "aws"
    assert provider_of("", {}) == "unknown"


def test_this_machine() -> None:
    h = host.fingerprint()
    assert h.cpu_count >= 1
    assert h.memory_bytes > 0
    assert h.kernel
    assert h.hostname
    if shutil.which("nvidia-smi") is None:
        assert h.accelerator == "cpu"
        assert h.accelerator_source in ("none", "nvml")
        assert h.accelerator_note or h.accelerator_source == "nvml"


def test_cpu_model_from_cpuinfo() -> None:
    assert host.cpu_model("processor\t: 0\nmodel name\t: AMD EPYC 9654\n") == "AMD EPYC 9654"
    assert host.cpu_model("") == ""
