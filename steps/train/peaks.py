"""Peak dense FLOP/s of known accelerators (vendor datasheets, no sparsity), for MFU.

Matched by substring of the device name, most specific first. Unknown devices give None and the
MFU row is skipped with "unknown accelerator", never guessed.
"""

from __future__ import annotations

# (name substring, fp32 FLOP/s, bf16/fp16 tensor FLOP/s), datasheet dense figures.
PEAKS: tuple[tuple[str, float, float], ...] = (
    ("H100 PCIe", 51.2e12, 756e12),
    ("H100 NVL", 60e12, 835e12),
    ("H100", 67e12, 989.4e12),  # SXM5
    ("H200", 67e12, 989.4e12),
    ("GH200", 67e12, 989.4e12),
    ("A100", 19.5e12, 312e12),
    ("L40S", 91.6e12, 362.05e12),
    ("L4", 30.3e12, 121e12),
    ("A10G", 31.2e12, 70e12),
    ("A10", 31.2e12, 125e12),
    ("V100", 15.7e12, 125e12),
    ("T4", 8.1e12, 65e12),
    ("MI300X", 163.4e12, 1307.4e12),
    ("MI250X", 47.9e12, 383e12),
)


def peak_flops(device_name: str, dtype: str = "fp32") -> float | None:
    """Peak FLOP/s of one device for `dtype` ('fp32' or 'bf16'), or None when the device is unknown."""
    for needle, fp32, bf16 in PEAKS:
        if needle.lower() in device_name.lower():
            return fp32 if dtype == "fp32" else bf16
    return None


def mfu(samples_per_s: float, flops_per_sample: float, peak: float, devices: int) -> float:
    """Model FLOPs utilization: achieved model FLOP/s over the peak of all devices used."""
    return samples_per_s * flops_per_sample / (peak * devices)
