"""The shared server fixtures themselves: each server really answers over HTTP on loopback."""

from __future__ import annotations

import urllib.request
from typing import Any

import pytest

pytestmark = pytest.mark.integration


def test_s3_env_gives_an_empty_kaic_bucket(s3_env: Any) -> None:
    client = s3_env.client()
    assert client.bucket_exists("kaic")
    assert list(client.list_objects("kaic", recursive=True)) == []


def test_mlflow_server_answers_health(mlflow_server: str) -> None:
    assert mlflow_server.startswith("http://127.0.0.1:")
    with urllib.request.urlopen(mlflow_server + "/health", timeout=5) as resp:
        assert resp.status == 200
