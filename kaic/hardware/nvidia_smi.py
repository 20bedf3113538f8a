"""Parse `nvidia-smi -q -x` (XML) into what kaic fingerprints: product, memory, driver, CUDA, MIG, ECC."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Gpu:
    index: int
    uuid: str
    product: str
    memory_mib: int | None
    mig_mode: str | None = None  # Enabled / Disabled / None where not supported
    ecc_mode: str | None = None
    pci_bus_id: str | None = None
    virtualization_mode: str | None = None
    architecture: str | None = None


@dataclass(frozen=True)
class NvidiaReport:
    driver_version: str | None
    cuda_version: str | None
    gpus: tuple[Gpu, ...] = field(default_factory=tuple)

    @property
    def count(self) -> int:
        return len(self.gpus)


_NA = {"", "N/A", "None", "[N/A]", "Not Supported", "[Not Supported]"}
_MIB = re.compile(r"^\s*(\d+)\s*MiB\s*$")


def _text(node: ET.Element | None, path: str) -> str | None:
    if node is None:
        return None
    el = node.find(path)
    if el is None or el.text is None:
        return None
    value = el.text.strip()
    return None if value in _NA else value


def _mib(value: str | None) -> int | None:
    m = _MIB.match(value or "")
    return int(m.group(1)) if m else None


class NvidiaSmiError(ValueError):
    """The text is not `nvidia-smi -q -x` output."""


def parse_xml(text: str | bytes) -> NvidiaReport:
    """`nvidia-smi -q -x` output -> NvidiaReport. Raises NvidiaSmiError on anything else."""
    try:
        root = ET.fromstring(text)  # the DOCTYPE names a DTD that is never fetched
    except ET.ParseError as exc:
        raise NvidiaSmiError(f"not nvidia-smi XML: {exc}") from None
    if root.tag != "nvidia_smi_log":
        raise NvidiaSmiError(f"not nvidia-smi XML: root element is <{root.tag}>")
    gpus = []
    for i, g in enumerate(root.findall("gpu")):
        minor = _text(g, "minor_number")
        gpus.append(Gpu(
            index=int(minor) if minor and minor.isdigit() else i,
            uuid=_text(g, "uuid") or "",
            product=_text(g, "product_name") or "unknown",
            memory_mib=_mib(_text(g, "fb_memory_usage/total")),
            mig_mode=_text(g, "mig_mode/current_mig"),
            ecc_mode=_text(g, "ecc_mode/current_ecc"),
            pci_bus_id=_text(g, "pci/pci_bus_id") or g.get("id"),
            virtualization_mode=_text(g, "gpu_virtualization_mode/virtualization_mode"),
            architecture=_text(g, "product_architecture"),
        ))
    return NvidiaReport(_text(root, "driver_version"), _text(root, "cuda_version"), tuple(gpus))
