"""Fingerprint this machine: OS, kernel, CPU, memory, and NVIDIA GPUs through NVML or `nvidia-smi -q -x`.

The only module here with I/O. NVML (`pynvml`) is optional and imported lazily; without it the
`nvidia-smi` binary is asked for XML; without that, the machine is CPU only.
"""

from __future__ import annotations

import os
import platform
import shutil
import socket
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kaic.hardware.nvidia_smi import Gpu, NvidiaReport, NvidiaSmiError, parse_xml


@dataclass(frozen=True)
class Host:
    hostname: str
    os: str
    kernel: str
    machine: str
    cpu_model: str
    cpu_count: int
    memory_bytes: int
    accelerators: NvidiaReport
    accelerator_source: str  # "nvml", "nvidia-smi" or "none"
    accelerator_note: str = ""  # why no accelerator was read, when one might be there

    @property
    def accelerator(self) -> str:
        """The label results carry: the GPU product, or 'cpu'."""
        return self.accelerators.gpus[0].product if self.accelerators.gpus else "cpu"


def cpu_model(cpuinfo: str) -> str:
    """The CPU model from /proc/cpuinfo text ('model name' on x86, 'Model'/'CPU part' elsewhere)."""
    for key in ("model name", "Model", "Hardware", "cpu model"):
        for line in cpuinfo.splitlines():
            name, sep, value = line.partition(":")
            if sep and name.strip() == key and value.strip():
                return value.strip()
    return ""


def _read(path: str) -> str:
    try:
        return Path(path).read_text(errors="replace")
    except OSError:
        return ""


def _memory_bytes() -> int:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):  # not POSIX
        return 0


def nvml_report() -> NvidiaReport | None:
    """GPUs through NVML, or None where pynvml is not installed or NVML does not initialize."""
    try:
        import pynvml
    except ImportError:
        return None
    try:
        pynvml.nvmlInit()
    except Exception:  # NVMLError_LibraryNotFound, DriverNotLoaded...: no NVML here
        return None
    try:
        return _nvml_read(pynvml)
    finally:
        pynvml.nvmlShutdown()


def _s(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _nvml_read(nv: Any) -> NvidiaReport:
    def opt(fn: Any, *args: Any) -> Any:
        try:
            return fn(*args)
        except Exception:  # NVMLError_NotSupported and friends
            return None

    cuda = opt(nv.nvmlSystemGetCudaDriverVersion)
    gpus = []
    for i in range(nv.nvmlDeviceGetCount()):
        h = nv.nvmlDeviceGetHandleByIndex(i)
        mem = opt(nv.nvmlDeviceGetMemoryInfo, h)
        mig = opt(nv.nvmlDeviceGetMigMode, h)
        ecc = opt(nv.nvmlDeviceGetEccMode, h)
        pci = opt(nv.nvmlDeviceGetPciInfo, h)
        gpus.append(Gpu(
            index=i, uuid=_s(nv.nvmlDeviceGetUUID(h)), product=_s(nv.nvmlDeviceGetName(h)),
            memory_mib=int(mem.total) // 2**20 if mem is not None else None,
            mig_mode=None if mig is None else ("Enabled" if mig[0] else "Disabled"),
            ecc_mode=None if ecc is None else ("Enabled" if ecc[0] else "Disabled"),
            pci_bus_id=_s(pci.busId) if pci is not None else None,
        ))
    return NvidiaReport(
        _s(nv.nvmlSystemGetDriverVersion()),
        f"{cuda // 1000}.{cuda % 1000 // 10}" if isinstance(cuda, int) else None,
        tuple(gpus),
    )


def nvidia_smi_report(binary: str = "nvidia-smi", timeout_s: float = 30) -> tuple[NvidiaReport | None, str]:
    """GPUs from `nvidia-smi -q -x`; (None, why) when the binary is absent or fails."""
    path = shutil.which(binary)
    if path is None:
        return None, "no NVML (pynvml not installed) and no nvidia-smi on PATH"
    try:
        out = subprocess.run([path, "-q", "-x"], capture_output=True, timeout=timeout_s, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return None, f"nvidia-smi -q -x failed: {exc}"
    if out.returncode != 0:
        err = (out.stderr or out.stdout).decode(errors="replace").strip().splitlines()
        return None, f"nvidia-smi -q -x exited {out.returncode}: {err[0] if err else ''}".rstrip(": ")
    try:
        return parse_xml(out.stdout), ""
    except NvidiaSmiError as exc:
        return None, str(exc)


def fingerprint() -> Host:
    """This machine, now."""
    report, source, note = nvml_report(), "nvml", ""
    if report is None:
        report, note = nvidia_smi_report()
        source = "nvidia-smi" if report is not None else "none"
    uname = platform.uname()
    return Host(
        hostname=socket.gethostname(),
        os=_os_name(),
        kernel=uname.release,
        machine=uname.machine,
        cpu_model=cpu_model(_read("/proc/cpuinfo")) or platform.processor() or uname.machine,
        cpu_count=os.cpu_count() or 1,
        memory_bytes=_memory_bytes(),
        accelerators=report or NvidiaReport(None, None, ()),
        accelerator_source=source,
        accelerator_note=note,
    )


def _os_name() -> str:
    for line in _read("/etc/os-release").splitlines():
        if line.startswith("PRETTY_NAME="):
            return line.split("=", 1)[1].strip().strip('"')
    return f"{platform.system()} {platform.release()}"
