"""Errors with a meaning for the exit code."""


class ConfigError(Exception):
    """Bad input or configuration: the CLI prints the one-line message and exits 2.

    The message must name the bad value and where it came from, e.g.
    ``profile file /x/eks.yaml: thresholds[0].op: 'gt=' is not one of >, >=, <, <=, ==``.
    """


class ServiceUnavailable(Exception):  # noqa: N818 - a condition, not a bug
    """A service kaic needs (object store, MLflow, Argo Server) stayed unreachable through its retries:
    the CLI prints the one-line message and exits 1 (the input was fine; try again later)."""
