"""The train step's pure parts: worker spec, data order, bandwidth math, peaks, outcomes, config rules,
and the cluster launcher's manifests (schema-validated) run through FakeCluster at the seam."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import pytest

from kaic.cluster import RUN_ID_LABEL
from kaic.cluster.fake import FakeCluster
from kaic.errors import ConfigError
from kaic.profiles import load_profile
from kaic.results import Status
from kaic.stores.objects import open_store
from steps import train
from steps.train import cluster, collectives, model, outcomes, peaks
from steps.train.launch import LaunchResult
from steps.train.spec import WorkerSpec

pytestmark = pytest.mark.unit


def test_worker_spec_round_trips_through_argv() -> None:
    spec = WorkerSpec("s3://b/p", "k", "r", checkpoint_uri="file:///c", resume=True, lr=0.5, sweep_bytes="1024,4096")
    assert WorkerSpec.from_argv(spec.to_argv()) == spec
    assert spec.sweep_sizes == [1024, 4096]


def test_batches_depend_on_seed_and_step_only_and_ranks_partition_them() -> None:
    a = model.batch_indices(25, 1437, 64, seed=0)
    assert (a == model.batch_indices(25, 1437, 64, seed=0)).all()
    assert not (a == model.batch_indices(25, 1437, 64, seed=1)).all()
    shards = [model.rank_slice(a, r, 4) for r in range(4)]
    assert sorted(int(i) for s in shards for i in s) == sorted(int(i) for i in a)
    assert {len(s) for s in shards} == {16}
    with pytest.raises(ValueError, match="exceeds"):
        model.batch_indices(0, 10, 64, seed=0)


def test_busbw_follows_nccl_tests_definition() -> None:
    p = collectives.BandwidthPoint.of(1 << 30, 0.5, world_size=8)
    assert p.algbw_gbps == pytest.approx((1 << 30) / 0.5 / 1e9)
    assert p.busbw_gbps == pytest.approx(p.algbw_gbps * 2 * 7 / 8)
    assert collectives.bus_factor(1) == 0.0
    assert [collectives.size_label(n) for n in (1024, 4 << 20, 1 << 30, 1000)] == ["1KiB", "4MiB", "1GiB", "1000B"]


def test_nccl_algo_proto_from_env_then_log(tmp_path: Path) -> None:
    assert collectives.nccl_algo_proto({"NCCL_ALGO": "Ring", "NCCL_PROTO": "LL128"}, None) == ("Ring", "LL128")
    log = tmp_path / "nccl.log"
    log.write_text("host:1:1 [0] NCCL INFO AllReduce: opCount 0 ... algorithm Tree protocol Simple nchannels 2\n")
    assert collectives.nccl_algo_proto({}, log) == ("Tree", "Simple")
    assert collectives.nccl_algo_proto({}, tmp_path / "absent") == ("unknown", "unknown")


def test_peaks_and_mfu() -> None:
    assert peaks.peak_flops("NVIDIA H100 80GB HBM3") == 67e12
    assert peaks.peak_flops("NVIDIA H100 PCIe", "bf16") == 756e12
    assert peaks.peak_flops("Some New Accelerator") is None
    assert peaks.mfu(1000.0, 1e9, 1e12, 2) == pytest.approx(0.5)


def _result(**over: Any) -> dict[str, Any]:
    r: dict[str, Any] = {
        "framework": "torch", "backend": "gloo", "world_size": 2, "device": "cpu", "device_name": "x86_64",
        "versions": {"torch": "2"}, "allreduce": {"correct": True, "detail": "ok"},
        "busbw": [{"nbytes": 1024, "time_s": 1e-3, "algbw_gbps": 1.0, "busbw_gbps": 1.0}],
        "losses": [2.3, 2.0, 1.5, 1.0, 0.5, 0.4, 0.3, 0.2, 0.2, 0.1], "loss_curve": [2.3, 2.0],
        "samples_per_s": 1000.0, "step_time_ms": 2.0, "batch_size": 64, "holdout_accuracy": 0.95,
        "checkpoints": [{"step": 20, "bytes": 1000, "seconds": 0.001, "uri": "file:///c/step-00000020"}],
        "param_sha256": "ab" * 32,
    }
    r.update(over)
    return r


def test_torch_outcomes_cover_the_catalog_ids() -> None:
    from kaic import catalog

    outs = outcomes.torch_outcomes(_result())
    for o in outs:
        catalog.check(o.check_id)  # only catalogued ids
        if o.metric:
            assert catalog.metric_spec(o.metric) is not None, o.metric
    by = {(o.check_id, o.metric): o for o in outs}
    assert by[("train.allreduce_busbw", "allreduce_busbw_gbps@1KiB")].value == 1.0
    assert by[("train.throughput", "train_mfu")].status is Status.SKIPPED
    assert by[("train.loss_decreases", "train_loss_final")].status is Status.PASSED
    assert by[("train.loss_curve", "loss_curve@step1")].value == 2.0
    assert by[("train.holdout_accuracy", "holdout_accuracy")].value == 0.95


def test_mfu_unknown_accelerator_is_skipped_not_guessed() -> None:
    o = outcomes.mfu_outcome(_result(device="cuda", device_name="Mystery GPU", mfu=None))
    assert o.status is Status.SKIPPED
    assert "unknown accelerator" in o.message
    o = outcomes.mfu_outcome(_result(device="cuda", device_name="NVIDIA H100", mfu=0.01, peak_flops=67e12))
    assert o.status is Status.PASSED
    assert o.value == 0.01


def test_loss_that_does_not_decrease_fails() -> None:
    [o] = outcomes.loss_outcomes([1.0, 1.0, 1.1, 1.2], "train.loss_decreases", "train_loss_final")
    assert o.status is Status.FAILED
    [o] = outcomes.loss_outcomes([1.0], "train.loss_decreases", "train_loss_final")
    assert o.status is Status.ERROR


def test_resume_outcome_compares_parameter_fingerprints() -> None:
    ref = _result()
    same = LaunchResult("r", True, 1.0, result={"param_sha256": "ab" * 32, "resumed_from": {"step": 20}})
    other = LaunchResult("r", True, 1.0, result={"param_sha256": "cd" * 32, "resumed_from": {"step": 20}})
    wrong_start = LaunchResult("r", True, 1.0, result={"param_sha256": "ab" * 32, "resumed_from": {"step": 40}})
    assert outcomes.resume_outcome(ref, same, "kill", 20).status is Status.PASSED
    assert outcomes.resume_outcome(ref, other, "kill", 20).status is Status.FAILED
    assert outcomes.resume_outcome(ref, wrong_start, "kill", 20).status is Status.FAILED
    assert outcomes.resume_outcome(ref, LaunchResult("r", False, 1.0, "boom"), "kill", 20).status is Status.FAILED


def test_checkpoint_write_outcome() -> None:
    o = outcomes.checkpoint_write_outcome(_result())
    assert o.status is Status.PASSED
    assert o.value == pytest.approx(1.0)
    assert outcomes.checkpoint_write_outcome(_result(checkpoints=[])).status is Status.FAILED


def test_tf_outcomes_apply_the_profile_accuracy_threshold() -> None:
    r = {"holdout_accuracy": 0.85, "samples_per_s": 100.0, "losses": [2.0, 0.5], "tf_version": "2", "world_size": 2}
    outs = outcomes.tf_outcomes(r, (">=", 0.9))
    acc = next(o for o in outs if o.metric == "tf_holdout_accuracy")
    assert acc.status is Status.FAILED
    assert acc.threshold == "tf_holdout_accuracy >= 0.9"


def _args(**over: Any) -> argparse.Namespace:
    p = argparse.ArgumentParser()
    train.configure(p)
    ns = p.parse_args([])
    ns.suite = "quick"
    for k, v in over.items():
        setattr(ns, k, v)
    return ns


def test_make_config_defaults_from_the_local_profile() -> None:
    cfg = train.make_config(_args(), load_profile("local"))
    assert (cfg.world_size, cfg.steps, cfg.launcher, cfg.framework, cfg.resume_check) == (2, 60, "local", "torch",
                                                                                          "restart")
    assert cfg.sweep_sizes[0] == 1024
    assert cfg.sweep_sizes[-1] == 4 << 20
    full = train.make_config(_args(suite="full"), load_profile("local"))
    assert (full.framework, full.resume_check) == ("both", "kill")
    eks = train.make_config(_args(), load_profile("eks"))
    assert eks.launcher == "job"
    assert eks.accelerators_per_worker == 1
    assert eks.sweep_max_bytes == 256 << 20


@pytest.mark.parametrize(("over", "match"), [
    ({"world_size": 3}, "not a multiple of world size 3"),
    ({"checkpoint_every": 0}, "resume check needs"),
    ({"steps": 20}, "resume check needs"),
    ({"checkpoint_uri": "ftp://x"}, "--checkpoint-uri"),
])
def test_bad_config_is_one_line_config_error(over: dict[str, Any], match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        train.make_config(_args(**over), load_profile("local"))


# --- cluster launcher ------------------------------------------------------------------------------


def _spec() -> WorkerSpec:
    return WorkerSpec("s3://kaic/objects", "runs/r/data/digits.parquet", "runs/r/train/torch.json",
                      checkpoint_uri="s3://kaic/objects/runs/r/checkpoints", accelerators_per_worker=1)


def test_job_and_service_manifests_are_valid_and_labelled() -> None:
    import kubernetes_validate

    profile = load_profile("eks")
    svc = cluster.headless_service("kaic-20260101-000000-abcdef", "torch", profile)
    job = cluster.indexed_job("kaic-20260101-000000-abcdef", "torch", profile, _spec(), 4, 1800)
    for obj in (svc, job):
        kubernetes_validate.validate(obj, "1.33", strict=True)
        assert obj["metadata"]["labels"][RUN_ID_LABEL] == "kaic-20260101-000000-abcdef"
        assert obj["metadata"]["labels"][cluster.KUEUE_QUEUE_LABEL] == "kaic"
    spec = job["spec"]
    got = (spec["completionMode"], spec["completions"], spec["parallelism"], spec["suspend"])
    assert got == ("Indexed", 4, 4, True)
    pod = spec["template"]["spec"]
    assert pod["subdomain"] == svc["metadata"]["name"]
    assert svc["spec"]["clusterIP"] == "None"
    assert pod["containers"][0]["resources"]["limits"]["nvidia.com/gpu"] == "1"
    cmd = pod["containers"][0]["command"]
    assert cmd[cmd.index("--rdzv-endpoint") + 1] == f"{job['metadata']['name']}-0.{svc['metadata']['name']}:29400"
    assert WorkerSpec.from_argv(cmd[cmd.index("steps.train.worker") + 1:]) == _spec()
    assert set(svc["spec"]["selector"].items()) <= set(spec["template"]["metadata"]["labels"].items())


def test_trainjob_manifest_shape() -> None:
    tj = cluster.trainjob("run-1", "torch", load_profile("eks"), _spec(), 2, 600)
    assert (tj["apiVersion"], tj["kind"]) == ("trainer.kubeflow.org/v1alpha1", "TrainJob")
    assert tj["spec"]["runtimeRef"] == {"name": "torch-distributed", "apiGroup": "trainer.kubeflow.org",
                                        "kind": "ClusterTrainingRuntime"}
    t = tj["spec"]["trainer"]
    assert t["numNodes"] == 2
    assert t["numProcPerNode"] == 1
    assert WorkerSpec.from_argv(t["args"]) == _spec()
    assert tj["metadata"]["labels"][RUN_ID_LABEL] == "run-1"


class _CompletingCluster(FakeCluster):
    """FakeCluster plus what the Job controller and the workers would do: once the Job was read, it is
    Complete and rank 0's result JSON is in the object store."""

    def __init__(self, store: Any, result_key: str, phase: str = "Complete") -> None:
        super().__init__(nodes=[], k8s_version="1.33")
        self.store, self.result_key, self.phase = store, result_key, phase

    def get(self, group_version: str, plural: str, name: str, namespace: str | None = None) -> Any:
        obj = super().get(group_version, plural, name, namespace)
        if obj is not None and plural == "jobs":
            self.store.put_bytes(self.result_key, json.dumps({"param_sha256": "x"}).encode())
            obj = {**obj, "status": {"conditions": [{"type": self.phase, "status": "True"}]}}
        return obj


@pytest.mark.parametrize("phase", ["Complete", "Failed"])
def test_cluster_launcher_applies_waits_reads_and_cleans_up(tmp_path: Path, phase: str) -> None:
    store = open_store(f"file://{tmp_path / 'objects'}", source="test")
    spec = WorkerSpec(store.base_uri, "d", "runs/r/train/torch.json")
    fake = _CompletingCluster(store, spec.result_key, phase)
    launcher = cluster.ClusterLauncher(fake, "r", load_profile("generic"), store, deadline_s=5, poll_s=0.01)
    res = launcher.launch(spec, 2, "torch")
    assert res.ok is (phase == "Complete")
    assert (res.result == {"param_sha256": "x"}) is (phase == "Complete")
    kinds = sorted(o["kind"] for o in fake.created)
    assert kinds == ["Job", "Service"]
    assert fake.list("batch/v1", "jobs", "kaic") == []
    assert fake.list("v1", "services", "kaic") == []
