"""The s3:// object store against moto's server over real HTTP."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from kaic.errors import ConfigError
from kaic.stores import ObjectNotFound
from kaic.stores.objects import open_store

pytestmark = pytest.mark.integration


def test_s3_round_trip(s3_env: Any, tmp_path: Path) -> None:
    store = open_store("s3://kaic/team-a/", source="--object-store")
    assert store.base_uri == "s3://kaic/team-a"
    store.put_bytes("runs/r1/a.bin", b"hello")
    assert store.get_bytes("runs/r1/a.bin") == b"hello"
    store.put_bytes("runs/r1/a.bin", b"again")
    assert store.get_bytes("runs/r1/a.bin") == b"again"
    big = tmp_path / "big.bin"
    big.write_bytes(bytes(range(256)) * 40_000)  # ~10 MB
    store.put_file("runs/r1/ckpt/big.bin", big)
    out = tmp_path / "out" / "big.bin"
    store.get_file("runs/r1/ckpt/big.bin", out)
    assert out.read_bytes() == big.read_bytes()
    store.put_bytes("runs/r10/c", b"x")
    assert store.list() == ["runs/r1/a.bin", "runs/r1/ckpt/big.bin", "runs/r10/c"]
    assert store.list("runs/r1/") == ["runs/r1/a.bin", "runs/r1/ckpt/big.bin"]
    assert store.exists("runs/r1/a.bin")
    assert not store.exists("runs/r1/nope")
    assert store.uri("runs/r1/a.bin") == "s3://kaic/team-a/runs/r1/a.bin"
    # The prefix really is a prefix in the bucket, and other prefixes are not listed.
    raw = sorted(o.object_name for o in s3_env.client().list_objects("kaic", recursive=True))
    assert raw == ["team-a/runs/r1/a.bin", "team-a/runs/r1/ckpt/big.bin", "team-a/runs/r10/c"]
    store.delete("runs/r1/a.bin")
    store.delete("runs/r1/a.bin")
    assert not store.exists("runs/r1/a.bin")
    with pytest.raises(ObjectNotFound, match=r"s3://kaic/team-a/runs/r1/a\.bin"):
        store.get_bytes("runs/r1/a.bin")
    with pytest.raises(ObjectNotFound):
        store.get_file("runs/r1/a.bin", tmp_path / "gone")


def test_bucket_root_store(s3_env: Any) -> None:
    store = open_store("s3://kaic", source="--results")
    store.put_bytes("x/y", b"1")
    assert store.list() == ["x/y"]
    assert store.uri("x/y") == "s3://kaic/x/y"


def test_missing_bucket_is_a_config_error(s3_env: Any) -> None:
    with pytest.raises(ConfigError, match=r"^--object-store: object store 's3://nobucket/x': bucket"):
        open_store("s3://nobucket/x", source="--object-store")


def test_unreachable_endpoint_is_a_config_error(s3_env: Any, monkeypatch: pytest.MonkeyPatch,
                                                closed_port: int) -> None:
    monkeypatch.setenv("KAIC_S3_ENDPOINT", f"http://127.0.0.1:{closed_port}")
    with pytest.raises(ConfigError, match="unreachable"):
        open_store("s3://kaic/x", source="KAIC_OBJECT_STORE")


def test_secrets_never_in_repr_or_errors(s3_env: Any) -> None:
    store = open_store("s3://kaic/p", source="x")
    assert s3_env.secret_key not in repr(store)
    assert s3_env.access_key not in repr(store)
