"""Real torchrun workers (gloo, 2 processes): the train step end to end, a SIGKILLed worker resumed to
bitwise-equal parameters, deterministic loss curves across runs, and the TensorFlow variant."""

from __future__ import annotations

import argparse
import importlib.util
import io
import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from kaic import checkpoint, stepkit
from kaic.results import Status
from kaic.stores.objects import open_store
from steps import digits, train
from steps.train.local import LocalLauncher, LocalTFLauncher
from steps.train.spec import WorkerSpec

pytestmark = pytest.mark.integration


def _state(uri: str, step: int) -> dict[str, Any]:
    import torch

    _, objects, _ = checkpoint.read(open_store(uri, source="test"), step)
    return torch.load(io.BytesIO(objects["state.pt"]), weights_only=True)  # type: ignore[no-any-return]


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> tuple[LocalLauncher, WorkerSpec, dict[str, Any]]:
    """One uninterrupted 2-worker run (60 steps, checkpoints every 20), shared by the tests below."""
    root = tmp_path_factory.mktemp("train-ref")
    store = open_store(f"file://{root / 'objects'}", source="test")
    key = digits.ensure_uploaded(store, "ref")
    launcher = LocalLauncher("ref", store, root, deadline_s=240)
    spec = WorkerSpec(store.base_uri, key, "runs/ref/train/ref.json", checkpoint_uri=f"{store.base_uri}/ck-ref",
                      checkpoint_every=20)
    res = launcher.launch(spec, 2, "ref")
    assert res.ok, res.message
    assert res.result is not None
    return launcher, spec, res.result


def test_killed_worker_resumes_to_bitwise_equal_parameters(reference: Any) -> None:
    import torch

    launcher, spec, ref = reference
    probe = replace(spec, checkpoint_uri=f"{launcher.store.base_uri}/ck-kill", result_key="runs/ref/train/k.json")
    killed = launcher.launch(replace(probe, fault_hold_at_step=20), 2, "killed", kill_after_checkpoint=20)
    assert killed.killed.startswith("SIGKILL to rank 1"), killed.message
    assert not killed.ok
    assert "torchrun exited" in killed.message
    assert checkpoint.list_steps(open_store(probe.checkpoint_uri, source="test")) == [20]

    resumed = launcher.launch(replace(probe, resume=True), 2, "resumed")
    assert resumed.ok, resumed.message
    assert resumed.result is not None
    assert resumed.result["resumed_from"]["step"] == 20
    assert resumed.result["param_sha256"] == ref["param_sha256"]
    a, b = _state(spec.checkpoint_uri, 60), _state(probe.checkpoint_uri, 60)
    for name, tensor in a["model"].items():
        assert torch.equal(tensor, b["model"][name]), name  # bitwise, not approximately
    # the resumed run's losses for steps 20..59 are the uninterrupted run's, exactly
    assert resumed.result["losses"] == ref["losses"][20:]


def test_corrupt_checkpoint_is_refused_by_the_worker(reference: Any, tmp_path: Path) -> None:
    """Defense in depth: even a worker asked to resume from a corrupted checkpoint refuses it."""
    launcher, spec, _ = reference
    ck = open_store(f"file://{tmp_path / 'ck'}", source="test")
    _, objects, _ = checkpoint.read(open_store(spec.checkpoint_uri, source="test"), 20)
    checkpoint.write(ck, 20, objects, world_size=2, framework="pytorch")
    data = bytearray(objects["state.pt"])
    data[len(data) // 2] ^= 0xFF
    ck.put_bytes("step-00000020/state.pt", bytes(data))
    res = launcher.launch(replace(spec, checkpoint_uri=ck.base_uri, resume=True, result_key="runs/ref/c.json"),
                          1, "corrupt")
    assert not res.ok
    assert "CheckpointCorruptError" in res.message
    assert "does not match the manifest" in res.message


def _step_args(extra: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser()
    stepkit.add_common_arguments(p)
    train.configure(p)
    return p.parse_args(extra)


def test_train_step_end_to_end(reference: Any, kaic_home: Path) -> None:
    import mlflow
    import numpy as np
    import pyarrow.parquet as pq
    import torch

    rows, code = stepkit.execute_step(train, _step_args(["--run-id", "t-e2e", "--world-size", "2",
                                                         "--sweep-max-bytes", str(64 << 10)]))
    by = {r.name: r for r in rows}
    assert code == 0, [(r.name, r.status, r.message) for r in rows if r.status is not Status.PASSED]
    for name in ("train.workers[train_launch_wall_s]", "train.allreduce_correct",
                 "train.loss_decreases[train_loss_final]",
                 "train.holdout_accuracy[holdout_accuracy]", "train.checkpoint_write[checkpoint_write_mb_per_s]",
                 "train.checkpoint_read[checkpoint_read_mb_per_s]", "train.model_export", "train.resume",
                 "train.allreduce_busbw[allreduce_busbw_gbps@64KiB]"):
        assert by[name].status is Status.PASSED, (name, by[name].message)
    assert by["train.holdout_accuracy[holdout_accuracy]"].threshold == "holdout_accuracy >= 0.9"
    assert by["train.tensorflow"].status is Status.SKIPPED
    # determinism: the step's loss curve is the reference run's, value for value
    _, _, ref = reference
    assert [by[f"train.loss_curve[loss_curve@step{k}]"].value for k in range(10)] == ref["loss_curve"]

    objects = kaic_home / "objects" / "runs" / "t-e2e"
    manifest = json.loads((objects / "checkpoints" / "step-00000060" / "manifest.json").read_text())
    assert manifest["step"] == 60
    assert manifest["world_size"] == 2
    assert manifest["versions"]["torch"]
    assert len(manifest["objects"]["state.pt"]["sha256"]) == 64
    meta = json.loads((objects / "model" / "model.json").read_text())
    assert meta["input_shape"] == [64]
    assert meta["input_scale"] == 16.0
    assert meta["classes"] == 10
    preds = pq.read_table(objects / "model" / "holdout_predictions.parquet")
    assert preds.num_rows == 360
    assert preds.column_names == ["row", "features", "label", "predicted", "logits"]
    assert pq.read_table(objects / "rows" / "train.parquet").num_rows == len(rows)
    # the export contract as the serve step uses it: model.pt fed `features` gives `logits`, exactly
    net = torch.jit.load(str(objects / "model" / "model.pt"))
    table = preds.to_pydict()
    logits = net(torch.tensor(np.array(table["features"], dtype=np.float32))).detach().numpy()
    assert np.array_equal(logits, np.array(table["logits"], dtype=np.float32))
    assert list(logits.argmax(1)) == table["predicted"]

    mlflow.set_tracking_uri(f"sqlite:///{kaic_home / 'mlflow.db'}")
    runs = mlflow.search_runs(search_all_experiments=True, filter_string="tags.`kaic.step` = 'train'")
    assert float(runs.iloc[0]["metrics.holdout_accuracy"]) == by["train.holdout_accuracy[holdout_accuracy]"].value


@pytest.mark.skipif(importlib.util.find_spec("tensorflow") is None,
                    reason="tensorflow is not installed in this environment (pip install tensorflow-cpu==2.21.0)")
def test_tensorflow_multiworker_trains_the_same_model(tmp_path: Path) -> None:
    from steps.train import outcomes

    store = open_store(f"file://{tmp_path / 'objects'}", source="test")
    key = digits.ensure_uploaded(store, "tf")
    res = LocalTFLauncher("tf", store, tmp_path, deadline_s=240).launch(
        WorkerSpec(store.base_uri, key, "runs/tf/train/tf.json"), 2, "tf")
    assert res.ok, res.message
    assert res.result is not None
    assert res.result["world_size"] == 2
    outs = outcomes.tf_outcomes(res.result, (">=", 0.9))
    assert {o.status for o in outs} == {Status.PASSED}, [(o.metric, o.message) for o in outs]


def test_resume_from_a_corrupt_checkpoint_fails_the_step_before_launching(tmp_path: Path) -> None:
    ck = open_store(f"file://{tmp_path / 'ck'}", source="test")
    checkpoint.write(ck, 20, {"state.pt": b"0123456789"}, world_size=2, framework="pytorch")
    ck.put_bytes("step-00000020/state.pt", b"01234")  # truncated
    rows, code = stepkit.execute_step(train, _step_args(["--run-id", "t-corrupt", "--resume",
                                                         "--checkpoint-uri", ck.base_uri]))
    assert code == 1
    [row] = [r for r in rows if r.check_id == "train.checkpoint_read"]
    assert row.status is Status.FAILED
    assert "--resume refused" in row.message
    assert "truncated" in row.message
    assert not any(r.check_id == "train.workers" for r in rows)  # nothing was launched
