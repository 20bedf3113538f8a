"""Checks of the data, train, serve, teardown and report steps (kaic's own unless a CNCF id is named).

Each step's owner keeps its tuple here current; ids are stable once published.
"""

from kaic.catalog.model import CheckSpec, Direction, MetricSpec, Probe
from kaic.results import Level

HI, LO = Direction.HIGHER, Direction.LOWER
MEAS, A, R = Probe.MEASURE, Probe.ACTIVE, Probe.READ

DATA: tuple[CheckSpec, ...] = (
    CheckSpec("data.expectations", "data", "Dataset meets its Great Expectations suite", A, level=Level.MUST),
    CheckSpec("data.read_throughput", "data", "Dataset read throughput from the object store", MEAS,
              metrics=(MetricSpec("data_read_mb_per_s", "MB/s", HI),)),
)

TRAIN: tuple[CheckSpec, ...] = (
    CheckSpec("train.workers", "train", "Every training worker ran to completion (torchrun, Job or TrainJob)", A,
              level=Level.MUST, metrics=(MetricSpec("train_launch_wall_s", "s", LO),)),
    CheckSpec("train.allreduce_correct", "train", "All-reduce gives the known sums", A, level=Level.MUST),
    CheckSpec("train.allreduce_busbw", "train", "All-reduce bus bandwidth over message sizes", MEAS,
              metrics=(MetricSpec("allreduce_busbw_gbps@", "GB/s", HI),
                       MetricSpec("allreduce_algbw_gbps@", "GB/s", HI))),
    CheckSpec("train.throughput", "train", "Training throughput", MEAS,
              metrics=(MetricSpec("train_samples_per_s", "samples/s", HI), MetricSpec("train_step_time_ms", "ms", LO),
                       MetricSpec("train_mfu", "ratio", HI))),
    CheckSpec("train.loss_decreases", "train", "Training loss decreases", A, level=Level.MUST,
              metrics=(MetricSpec("train_loss_final", "loss", LO),)),
    CheckSpec("train.holdout_accuracy", "train", "Holdout accuracy at or above the profile threshold", A,
              level=Level.MUST, metrics=(MetricSpec("holdout_accuracy", "ratio", HI),)),
    CheckSpec("train.loss_curve", "train", "Deterministic loss curve of the first steps recorded", MEAS,
              metrics=(MetricSpec("loss_curve@", "loss"),)),
    CheckSpec("train.checkpoint_write", "train", "Checkpoint written to object storage with a manifest", A,
              level=Level.MUST, metrics=(MetricSpec("checkpoint_write_mb_per_s", "MB/s", HI),)),
    CheckSpec("train.checkpoint_read", "train", "Checkpoint read back and verified by checksum", A,
              level=Level.MUST, metrics=(MetricSpec("checkpoint_read_mb_per_s", "MB/s", HI),)),
    CheckSpec("train.resume", "train", "Resume from a checkpoint ends bitwise equal to an uninterrupted run", A,
              level=Level.MUST),
    CheckSpec("train.model_export", "train", "Model exported for serving (TorchScript, metadata, holdout predictions)",
              A, level=Level.MUST),
    CheckSpec("train.tensorflow", "train", "TensorFlow MultiWorkerMirroredStrategy trains the same model", A,
              level=Level.SHOULD, metrics=(MetricSpec("tf_holdout_accuracy", "ratio", HI),
                                           MetricSpec("tf_samples_per_s", "samples/s", HI),
                                           MetricSpec("tf_train_loss_final", "loss", LO))),
)

SERVE: tuple[CheckSpec, ...] = (
    CheckSpec("serve.ready", "serve", "The model server becomes Ready", A, level=Level.MUST,
              metrics=(MetricSpec("serve_time_to_ready_s", "s", LO),)),
    CheckSpec("serve.prediction_parity", "serve", "Served predictions equal training-side predictions", A,
              level=Level.MUST, metrics=(MetricSpec("serve_parity_mismatches", "rows", LO),)),
    CheckSpec("serve.latency", "serve", "Latency percentiles under load (V2 protocol)", MEAS,
              metrics=(MetricSpec("serve_p50_ms@", "ms", LO), MetricSpec("serve_p95_ms@", "ms", LO),
                       MetricSpec("serve_p99_ms@", "ms", LO))),
    CheckSpec("serve.throughput", "serve", "Throughput under load", MEAS,
              metrics=(MetricSpec("serve_rps@", "req/s", HI),)),
    CheckSpec("serve.error_rate", "serve", "Error rate under load", A, level=Level.MUST,
              metrics=(MetricSpec("serve_error_rate", "ratio", LO),)),
    CheckSpec("serve.service_metrics", "serve", "The model server exposes request count and latency metrics", A,
              level=Level.MUST, metrics=(MetricSpec("serve_metrics_requests_counted", "requests"),)),
    CheckSpec("serve.metrics_collected", "serve",
              "The platform's monitoring collected the served model's request count and latency", A,
              "ai_service_metrics", metrics=(MetricSpec("serve_metrics_requests_collected", "requests"),)),
    # kaic's own: the model served through the profile's Gateway. Routing as declared (CNCF ai_inference) is
    # provision.gateway_routing's to show: one backend here, so a pass says nothing of splits or matches.
    CheckSpec("serve.gateway_route", "serve", "The served model answers through a Gateway API HTTPRoute (parity "
              "and load through the Gateway)", A, level=Level.MUST),
)

TEARDOWN: tuple[CheckSpec, ...] = (
    CheckSpec("teardown.deleted", "teardown", "Every object, process and port of the run is gone", A,
              level=Level.MUST, metrics=(MetricSpec("teardown_time_s", "s", LO),)),
    CheckSpec("teardown.capacity_reclaimed", "teardown", "Accelerator allocatable back to what provision saw", A,
              level=Level.MUST, metrics=(MetricSpec("reclaim_time_s", "s", LO),)),
)

REPORT: tuple[CheckSpec, ...] = (
    CheckSpec("report.regression", "report", "No regression against this platform's recent history", MEAS),
)

HARNESS: tuple[CheckSpec, ...] = (
    CheckSpec("step.error", "any", "The step ran to completion without crashing", A, level=Level.MUST),
)
