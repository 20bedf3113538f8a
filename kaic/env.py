"""Every environment variable kaic reads, declared once with type, default and doc.

Nothing else in kaic reads ``os.environ`` for configuration: code receives values from here.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class EnvVar:
    name: str
    default: str | None
    doc: str
    secret: bool = False

    def get(self) -> str | None:
        value = os.environ.get(self.name)
        return value if value not in (None, "") else self.default


KAIC_HOME = EnvVar("KAIC_HOME", ".kaic", "where runs, the local object store, results and mlflow.db live")
KAIC_MLFLOW_URI = EnvVar(
    "KAIC_MLFLOW_URI", None,
    "MLflow tracking URI (default sqlite:///$KAIC_HOME/mlflow.db); MLFLOW_TRACKING_URI also works",
)
MLFLOW_TRACKING_URI = EnvVar("MLFLOW_TRACKING_URI", None, "MLflow's own variable, used when KAIC_MLFLOW_URI is unset")
KAIC_OBJECT_STORE = EnvVar("KAIC_OBJECT_STORE", None, "object store URI (default file://$KAIC_HOME/objects)")
KAIC_RESULTS = EnvVar("KAIC_RESULTS", None, "results dataset URI (default file://$KAIC_HOME/results)")
KAIC_S3_ENDPOINT = EnvVar("KAIC_S3_ENDPOINT", None, "S3 endpoint for s3:// URIs, e.g. http://minio.kaic:9000")
KAIC_S3_ACCESS_KEY = EnvVar("KAIC_S3_ACCESS_KEY", None, "S3 access key (AWS_ACCESS_KEY_ID also works)", secret=True)
KAIC_S3_SECRET_KEY = EnvVar("KAIC_S3_SECRET_KEY", None, "S3 secret key (AWS_SECRET_ACCESS_KEY also works)", secret=True)
AWS_ACCESS_KEY_ID = EnvVar("AWS_ACCESS_KEY_ID", None, "fallback S3 access key", secret=True)
AWS_SECRET_ACCESS_KEY = EnvVar("AWS_SECRET_ACCESS_KEY", None, "fallback S3 secret key", secret=True)
KAIC_S3_REGION = EnvVar("KAIC_S3_REGION", "us-east-1", "S3 region")
KAIC_ARGO_TOKEN = EnvVar("KAIC_ARGO_TOKEN", None, "bearer token for the Argo Server", secret=True)
KAIC_ARGO_TOKEN_FILE = EnvVar("KAIC_ARGO_TOKEN_FILE", None, "file holding the Argo Server bearer token")
KAIC_STORE_RETRY_S = EnvVar("KAIC_STORE_RETRY_S", "60",
                            "seconds an object-store call is retried (backoff) through an outage before giving up")
KAIC_S3_TIMEOUT_S = EnvVar("KAIC_S3_TIMEOUT_S", "120",
                           "seconds an S3 request may wait for an answer (a stalled server costs this per try)")
KAIC_RUN_ID = EnvVar("KAIC_RUN_ID", None, "run id a step belongs to (set by the workflow)")
KAIC_PROFILE = EnvVar("KAIC_PROFILE", "local", "platform profile name or file")
KAIC_TF_PYTHON = EnvVar("KAIC_TF_PYTHON", None, "Python interpreter for TensorFlow train workers (default: kaic's own)")
KAIC_DATASETS = EnvVar("KAIC_DATASETS", None,
                       "folder holding the datasets (default: datasets/ beside the code; the images set it)")
KAIC_E2E_KUBECONFIG = EnvVar("KAIC_E2E_KUBECONFIG", None, "kubeconfig of a real cluster for the e2e test tier")
KAIC_E2E_CONTEXT = EnvVar("KAIC_E2E_CONTEXT", None, "context in KAIC_E2E_KUBECONFIG for the e2e test tier")
KAIC_E2E = EnvVar("KAIC_E2E", None, "`required`: an e2e test that skips fails instead (CI sets it with its cluster)")
KAIC_DEVCLUSTER_CACHE = EnvVar("KAIC_DEVCLUSTER_CACHE", None,
                               "the dev cluster's Go-built binaries (default ~/.cache/kaic-devcluster)")

ALL: tuple[EnvVar, ...] = (
    KAIC_HOME, KAIC_MLFLOW_URI, MLFLOW_TRACKING_URI, KAIC_OBJECT_STORE, KAIC_RESULTS, KAIC_S3_ENDPOINT,
    KAIC_S3_ACCESS_KEY, KAIC_S3_SECRET_KEY, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, KAIC_S3_REGION,
    KAIC_ARGO_TOKEN, KAIC_ARGO_TOKEN_FILE, KAIC_STORE_RETRY_S, KAIC_S3_TIMEOUT_S, KAIC_RUN_ID, KAIC_PROFILE,
    KAIC_TF_PYTHON, KAIC_DATASETS, KAIC_E2E_KUBECONFIG, KAIC_E2E_CONTEXT, KAIC_E2E, KAIC_DEVCLUSTER_CACHE,
)


def kaic_home() -> Path:
    return Path(KAIC_HOME.get() or ".kaic").expanduser().resolve()


def mlflow_uri() -> str:
    return KAIC_MLFLOW_URI.get() or MLFLOW_TRACKING_URI.get() or f"sqlite:///{kaic_home() / 'mlflow.db'}"


def object_store_uri() -> str:
    return KAIC_OBJECT_STORE.get() or f"file://{kaic_home() / 'objects'}"


def results_uri() -> str:
    return KAIC_RESULTS.get() or f"file://{kaic_home() / 'results'}"


@dataclass(frozen=True)
class S3Settings:
    endpoint: str | None
    access_key: str | None
    secret_key: str | None
    region: str

    def __repr__(self) -> str:  # never print credentials
        return f"S3Settings(endpoint={self.endpoint!r}, region={self.region!r})"


def s3_settings() -> S3Settings:
    return S3Settings(
        endpoint=KAIC_S3_ENDPOINT.get(),
        access_key=KAIC_S3_ACCESS_KEY.get() or AWS_ACCESS_KEY_ID.get(),
        secret_key=KAIC_S3_SECRET_KEY.get() or AWS_SECRET_ACCESS_KEY.get(),
        region=KAIC_S3_REGION.get() or "us-east-1",
    )
