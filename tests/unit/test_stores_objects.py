"""The file:// object store, URI parsing and key rules (S3 round trips are in tests/integration)."""

from __future__ import annotations

from pathlib import Path

import pytest

from kaic.errors import ConfigError
from kaic.stores import ObjectNotFound, ObjectStore
from kaic.stores.objects import (
    TMP_PREFIX,
    FileStore,
    InvalidKeyError,
    S3Store,
    check_key,
    open_store,
    parse_uri,
    redact,
)

pytestmark = pytest.mark.unit


class FakeStore:
    """The smallest in-memory store: what a step's unit test injects."""

    base_uri = "mem://"

    def __init__(self) -> None:
        self.objects: dict[str, bytes] = {}

    def uri(self, key: str) -> str:
        return self.base_uri + key

    def put_bytes(self, key: str, data: bytes) -> None:
        self.objects[key] = data

    def get_bytes(self, key: str) -> bytes:
        try:
            return self.objects[key]
        except KeyError:
            raise ObjectNotFound(key) from None

    def put_file(self, key: str, path: Path) -> None:
        self.objects[key] = path.read_bytes()

    def get_file(self, key: str, path: Path) -> None:
        path.write_bytes(self.get_bytes(key))

    def exists(self, key: str) -> bool:
        return key in self.objects

    def list(self, prefix: str = "") -> list[str]:
        return sorted(k for k in self.objects if k.startswith(prefix))

    def delete(self, key: str) -> None:
        self.objects.pop(key, None)


def test_protocol_conformance(tmp_path: Path) -> None:
    for cls in (FileStore, S3Store, FakeStore):
        for member in ("base_uri", "uri", "put_bytes", "get_bytes", "put_file", "get_file", "exists", "list",
                       "delete"):
            assert hasattr(cls, member), f"{cls.__name__} lacks {member}"
    assert isinstance(FileStore(tmp_path), ObjectStore)
    assert isinstance(FakeStore(), ObjectStore)
    assert isinstance(S3Store("b", "p", client=object(), endpoint="http://x"), ObjectStore)


def test_file_round_trip(tmp_path: Path) -> None:
    store = open_store(f"file://{tmp_path / 'objs'}", source="--object-store")
    store.put_bytes("runs/r1/a.bin", b"hello")
    assert store.get_bytes("runs/r1/a.bin") == b"hello"
    store.put_bytes("runs/r1/a.bin", b"again")  # overwrite
    assert store.get_bytes("runs/r1/a.bin") == b"again"
    src = tmp_path / "src.txt"
    src.write_text("file body")
    store.put_file("runs/r1/sub/b.txt", src)
    out = tmp_path / "out" / "b.txt"
    store.get_file("runs/r1/sub/b.txt", out)
    assert out.read_text() == "file body"
    assert store.exists("runs/r1/a.bin")
    assert not store.exists("runs/r1/missing")
    store.put_bytes("runs/r10/c.bin", b"x")
    assert store.list() == ["runs/r1/a.bin", "runs/r1/sub/b.txt", "runs/r10/c.bin"]
    assert store.list("runs/r1/") == ["runs/r1/a.bin", "runs/r1/sub/b.txt"]
    assert store.list("runs/r1") == ["runs/r1/a.bin", "runs/r1/sub/b.txt", "runs/r10/c.bin"]  # S3 semantics
    assert store.list("nothing/here/") == []
    assert store.uri("runs/r1/a.bin") == f"file://{(tmp_path / 'objs').resolve()}/runs/r1/a.bin"
    store.delete("runs/r1/a.bin")
    store.delete("runs/r1/a.bin")  # idempotent
    assert not store.exists("runs/r1/a.bin")


def test_missing_objects_raise_object_not_found(tmp_path: Path) -> None:
    store = open_store(str(tmp_path), source="test")
    with pytest.raises(ObjectNotFound, match="nope"):
        store.get_bytes("nope")
    with pytest.raises(ObjectNotFound):
        store.get_file("nope", tmp_path / "x")
    assert not (tmp_path / "x").exists()


def test_bare_paths_are_file_stores(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    store = open_store("rel/objects", source="test")
    assert store.base_uri == f"file://{tmp_path.resolve()}/rel/objects"
    assert (tmp_path / "rel" / "objects").is_dir()


def test_failed_put_leaves_old_object_and_no_temp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = FileStore(tmp_path)
    store.put_bytes("k/v", b"old")

    def boom(self: Path, target: Path) -> None:
        raise OSError("disk vanished")

    monkeypatch.setattr(Path, "replace", boom)
    with pytest.raises(OSError, match="disk vanished"):
        store.put_bytes("k/v", b"new")
    monkeypatch.undo()
    assert store.get_bytes("k/v") == b"old"
    assert [p.name for p in (tmp_path / "k").iterdir()] == ["v"]


def test_list_hides_in_flight_temp_files(tmp_path: Path) -> None:
    store = FileStore(tmp_path)
    store.put_bytes("a/b", b"1")
    (tmp_path / "a" / f"{TMP_PREFIX}123-c").write_bytes(b"partial")
    assert store.list() == ["a/b"]


@pytest.mark.parametrize("key", ["", "/abs", "a/../b", "..", "a//b", "a/./b", "a/", "a\\b"])
def test_bad_keys_are_refused(tmp_path: Path, key: str) -> None:
    store = FileStore(tmp_path)
    with pytest.raises(InvalidKeyError, match="object key"):
        store.put_bytes(key, b"x")
    assert list(tmp_path.iterdir()) == []


def test_good_keys() -> None:
    assert check_key("runs/kaic-1/rows/train.parquet") == "runs/kaic-1/rows/train.parquet"


@pytest.mark.parametrize(("uri", "why"), [
    ("ftp://x", "expected file:///PATH or s3://BUCKET"),
    ("s3://", "no bucket"),
    ("s3:///prefix", "no bucket"),
    ("s3://Bad_Bucket/x", "not a valid S3 bucket name"),
    ("s3://bucket/a/../b", "prefix"),
    ("s3://key:secret@bucket/x", "credentials come from KAIC_S3_"),
    ("file://host/path", "absolute path"),
    ("file://relative", "absolute path"),
    ("", "expected file"),
])
def test_bad_uris_name_value_and_source(uri: str, why: str) -> None:
    with pytest.raises(ConfigError) as err:
        parse_uri(uri, "--object-store")
    msg = str(err.value)
    assert msg.startswith(f"--object-store: bad object-store URI {redact(uri)!r}")
    assert "secret" not in msg
    assert why in msg
    assert "\n" not in msg


def test_s3_uri_parts() -> None:
    p = parse_uri("s3://kaic/some/prefix/", "x")
    assert (p.scheme, p.bucket, p.prefix) == ("s3", "kaic", "some/prefix")


def test_file_store_that_cannot_be_created(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    with pytest.raises(ConfigError, match=r"^--results: object store .*a-file/sub.*cannot create"):
        open_store(f"file://{blocker}/sub", source="--results")
    with pytest.raises(ConfigError, match="--results: object store"):
        open_store(str(blocker), source="--results")


def test_bad_s3_endpoint_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KAIC_S3_ENDPOINT", "ftp://minio:9000")
    with pytest.raises(ConfigError, match=r"^KAIC_S3_ENDPOINT: bad S3 endpoint .ftp://minio:9000."):
        open_store("s3://kaic/x", source="--object-store")


def test_s3_store_repr_hides_credentials() -> None:
    class Client:
        secret = "SUPERSECRET"

    store = S3Store("kaic", "p", Client(), "http://127.0.0.1:9")
    assert "SUPERSECRET" not in repr(store)
    assert repr(store) == "S3Store('s3://kaic/p', endpoint='http://127.0.0.1:9')"
