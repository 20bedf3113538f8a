"""kaic: Kubernetes AI Conformance. Prove, with evidence, that a platform runs AI workloads."""

__version__ = "0.1.0"
SUITE_VERSION = __version__
