"""Vendor-neutral accelerator resource names, and Kubernetes quantities."""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation

# Extended-resource name prefixes that denote accelerators, with their vendor. A prefix matches the
# name itself and any longer name (nvidia.com/gpu.shared for time-slicing, aws.amazon.com/neuroncore).
ACCELERATOR_RESOURCES: tuple[tuple[str, str], ...] = (
    ("nvidia.com/gpu", "nvidia"),
    ("nvidia.com/mig-", "nvidia"),
    ("amd.com/gpu", "amd"),
    ("gpu.intel.com/", "intel"),
    ("google.com/tpu", "google"),
    ("aws.amazon.com/neuron", "aws"),  # neuron, neuroncore, neurondevice
    ("habana.ai/gaudi", "habana"),
)


def accelerator_vendor(resource: str) -> str | None:
    """'nvidia.com/mig-1g.5gb' -> 'nvidia'; 'cpu' -> None."""
    for prefix, vendor in ACCELERATOR_RESOURCES:
        if resource.startswith(prefix):
            return vendor
    return None


def is_shared(resource: str) -> bool:
    """Time-sliced replicas advertised under their own name (device plugin `renameByDefault`)."""
    return resource.endswith(".shared")


def is_accelerator(resource: str) -> bool:
    return accelerator_vendor(resource) is not None


def is_mig(resource: str) -> bool:
    return resource.startswith("nvidia.com/mig-")


_SUFFIX: dict[str, Decimal] = {
    **{s: Decimal(2) ** (10 * (i + 1)) for i, s in enumerate(("Ki", "Mi", "Gi", "Ti", "Pi", "Ei"))},
    "n": Decimal("1e-9"), "u": Decimal("1e-6"), "m": Decimal("1e-3"), "": Decimal(1),
    **{s: Decimal(10) ** (3 * (i + 1)) for i, s in enumerate(("k", "M", "G", "T", "P", "E"))},
    "K": Decimal(1000),
}
_QUANTITY = re.compile(r"^([+-]?[0-9.]+(?:[eE][+-]?[0-9]+)?)([a-zA-Z]*)$")


def parse_quantity(value: str | int | float) -> float:
    """A Kubernetes quantity ('16367668Ki', '8', '500m', '40Gi') as a number; ValueError when malformed."""
    if isinstance(value, int | float):
        return float(value)
    m = _QUANTITY.match(str(value).strip())
    if not m or m.group(2) not in _SUFFIX:
        raise ValueError(f"not a Kubernetes quantity: {value!r}")
    try:
        return float(Decimal(m.group(1)) * _SUFFIX[m.group(2)])
    except InvalidOperation:
        raise ValueError(f"not a Kubernetes quantity: {value!r}") from None


def accelerator_resources(resources: dict[str, str] | None) -> dict[str, int]:
    """The accelerator entries of a node's capacity/allocatable map, as integer counts."""
    out: dict[str, int] = {}
    for name, qty in (resources or {}).items():
        if is_accelerator(name):
            try:
                out[name] = int(parse_quantity(qty))
            except ValueError:
                continue
    return out
