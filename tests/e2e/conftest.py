"""The e2e tier's cluster: KAIC_E2E_KUBECONFIG, or the running dev cluster (`make cluster`).

Without either, e2e tests skip with the reason. Under KAIC_E2E=required (CI, which starts the dev cluster),
a skipped e2e test is reported as a failure instead: the tier may not silently not run there.
"""

from __future__ import annotations

from collections.abc import Generator
from pathlib import Path
from typing import Any

import pytest

from kaic import env
from kaic.cluster import ClusterClient, connect
from kaic.devcluster.layout import ClusterPaths
from kaic.devcluster.up import running
from tests.prometheus_fixtures import digits_model, prometheus_binary  # noqa: F401 (fixtures for the tier)

# Read before the autouse fixture of tests/conftest.py points KAIC_HOME at each test's tmp folder.
_DEV_CLUSTER = ClusterPaths(env.kaic_home() / "cluster")


def e2e_required() -> bool:
    return (env.KAIC_E2E.get() or "").lower() == "required"


def find_kubeconfig() -> tuple[Path | None, str]:
    """The cluster's kubeconfig, or None and why there is none."""
    named = env.KAIC_E2E_KUBECONFIG.get()
    if named:
        path = Path(named).expanduser()
        return (path, "") if path.is_file() else (None, f"KAIC_E2E_KUBECONFIG={named} is not a file")
    if _DEV_CLUSTER.kubeconfig.is_file() and running(_DEV_CLUSTER):
        return _DEV_CLUSTER.kubeconfig, ""
    return None, ("no cluster: set KAIC_E2E_KUBECONFIG (and KAIC_E2E_CONTEXT), or start the dev cluster "
                  f"with `make cluster` (none running under {_DEV_CLUSTER.root})")


@pytest.fixture(scope="session")
def kubeconfig() -> str:
    """The path of the e2e cluster's kubeconfig (skips, or fails under KAIC_E2E=required, without one)."""
    path, why = find_kubeconfig()
    if path is None:
        pytest.skip(why)
    return str(path)


@pytest.fixture(scope="session")
def cluster(kubeconfig: str) -> ClusterClient:
    """An admin client of the e2e cluster."""
    return connect(kubeconfig, None, False)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Generator[None, Any, None]:
    outcome = yield
    report = outcome.get_result()
    if report.skipped and e2e_required() and item.get_closest_marker("e2e") is not None:
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        report.outcome = "failed"
        report.longrepr = f"KAIC_E2E=required, and this e2e test skipped: {reason}"
