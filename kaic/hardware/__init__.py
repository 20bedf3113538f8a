"""What accelerators a machine or a cluster has: resource names, node labels, `nvidia-smi`, NVML.

Pure parsers (`resources`, `nodes`, `nvidia_smi`) and one module with I/O at the edge (`host`).
"""
