"""kaic.checkpoint: manifest last, newest valid, checksums refused on corruption or truncation."""

from __future__ import annotations

from pathlib import Path

import pytest

from kaic import checkpoint
from kaic.stores.objects import open_store

pytestmark = pytest.mark.unit


@pytest.fixture
def store(tmp_path: Path):  # type: ignore[no-untyped-def]
    return open_store(f"file://{tmp_path / 'ck'}", source="test")


def test_round_trip_with_manifest(store) -> None:  # type: ignore[no-untyped-def]
    manifest, wrote = checkpoint.write(store, 20, {"state.pt": b"abc" * 100}, world_size=2, framework="pytorch",
                                       versions={"torch": "x"}, extra={"seed": 0})
    assert wrote.nbytes == 300
    got, objects, read = checkpoint.read(store, 20)
    assert got == manifest
    assert objects == {"state.pt": b"abc" * 100}
    assert read.nbytes == 300
    assert got.objects["state.pt"].sha256 == checkpoint.sha256(b"abc" * 100)
    assert got.world_size == 2
    assert got.versions == {"torch": "x"}
    assert got.created_at


def test_newest_ignores_uncommitted_checkpoints(store) -> None:  # type: ignore[no-untyped-def]
    checkpoint.write(store, 10, {"state.pt": b"a"}, world_size=1, framework="pytorch")
    checkpoint.write(store, 20, {"state.pt": b"b"}, world_size=1, framework="pytorch")
    store.put_bytes("step-00000030/state.pt", b"partial")  # a writer killed before its manifest
    assert checkpoint.list_steps(store) == [10, 20]
    newest = checkpoint.newest(store)
    assert newest is not None
    assert newest.step == 20


def test_no_checkpoint_is_none(store) -> None:  # type: ignore[no-untyped-def]
    assert checkpoint.newest(store) is None
    with pytest.raises(checkpoint.CheckpointError, match="no manifest"):
        checkpoint.read(store, 5)


def test_corrupted_object_is_refused(store) -> None:  # type: ignore[no-untyped-def]
    checkpoint.write(store, 20, {"state.pt": b"0123456789"}, world_size=1, framework="pytorch")
    store.put_bytes("step-00000020/state.pt", b"0123456780")  # same size, one byte flipped
    with pytest.raises(checkpoint.CheckpointCorruptError, match=r"state\.pt: sha256 .* \(corrupted\)"):
        checkpoint.read(store, 20)


def test_truncated_object_is_refused(store) -> None:  # type: ignore[no-untyped-def]
    checkpoint.write(store, 20, {"state.pt": b"0123456789"}, world_size=1, framework="pytorch")
    store.put_bytes("step-00000020/state.pt", b"01234")
    with pytest.raises(checkpoint.CheckpointCorruptError, match="5 bytes, manifest says 10"):
        checkpoint.read(store, 20)


def test_missing_object_and_bad_manifest_are_refused(store) -> None:  # type: ignore[no-untyped-def]
    checkpoint.write(store, 20, {"state.pt": b"x"}, world_size=1, framework="pytorch")
    store.delete("step-00000020/state.pt")
    with pytest.raises(checkpoint.CheckpointCorruptError, match="is missing"):
        checkpoint.read(store, 20)
    store.put_bytes("step-00000030/manifest.json", b"{not json")
    with pytest.raises(checkpoint.CheckpointCorruptError, match="unreadable"):
        checkpoint.newest(store)


def test_reserved_and_empty_objects_rejected(store) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ValueError, match="at least one"):
        checkpoint.write(store, 1, {}, world_size=1, framework="pytorch")
    with pytest.raises(ValueError, match="reserved"):
        checkpoint.write(store, 1, {"manifest.json": b"x"}, world_size=1, framework="pytorch")
