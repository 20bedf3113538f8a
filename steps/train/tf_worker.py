"""One TensorFlow worker: the same data, model shape and checks as the PyTorch worker, with
tf.distribute.MultiWorkerMirroredStrategy. TF_CONFIG (cluster + this task) comes from the launcher.

    TF_CONFIG='{"cluster": {"worker": [...]}, "task": {"type": "worker", "index": 0}}' \\
        python -m steps.train.tf_worker --store-uri ... (WorkerSpec flags)

Each worker feeds its own share of every global batch (same order as PyTorch: seed, step), with
auto-sharding off; gradients are all-reduced by the strategy. The chief (index 0) evaluates the holdout
set and writes the result JSON to the object store.
"""

from __future__ import annotations

import json
import sys
import time
from typing import Any

from kaic.stores.objects import open_store
from steps import digits
from steps.train import model
from steps.train.spec import WorkerSpec


def train(spec: WorkerSpec) -> tuple[bool, dict[str, Any]]:
    import numpy as np
    import tensorflow as tf

    strategy = tf.distribute.MultiWorkerMirroredStrategy()
    resolver = strategy.cluster_resolver
    index, world = int(resolver.task_id), strategy.num_replicas_in_sync
    tf.keras.utils.set_random_seed(spec.seed)
    tf.config.experimental.enable_op_determinism()
    store = open_store(spec.store_uri, source="worker --store-uri")
    data = digits.arrays(store.get_bytes(spec.dataset_key))
    n = len(data.y_train)
    batches = [model.rank_slice(model.batch_indices(s, n, spec.batch_size, spec.seed), index, world)
               for s in range(spec.steps)]
    xs = np.stack([data.x_train[b] for b in batches])
    ys = np.stack([data.y_train[b] for b in batches])

    def shard(ctx: Any) -> Any:  # this worker's share of each global batch, already batched
        return tf.data.Dataset.from_tensor_slices((xs, ys))

    batches_ds = iter(strategy.distribute_datasets_from_function(shard))
    with strategy.scope():
        net = tf.keras.Sequential([
            tf.keras.Input(shape=(digits.FEATURES,)),
            tf.keras.layers.Dense(spec.hidden, activation="relu"),
            tf.keras.layers.Dense(digits.CLASSES),
        ])
        opt = tf.keras.optimizers.Adam(spec.lr)

    @tf.function  # type: ignore[untyped-decorator]
    def train_step(x: Any, y: Any) -> Any:
        def replica(x: Any, y: Any) -> Any:
            with tf.GradientTape() as tape:
                per_example = tf.keras.losses.sparse_categorical_crossentropy(y, net(x, training=True),
                                                                              from_logits=True)
                loss = tf.nn.compute_average_loss(per_example, global_batch_size=spec.batch_size)
            grads = tape.gradient(loss, net.trainable_variables)
            opt.apply_gradients(zip(grads, net.trainable_variables, strict=True))  # all-reduces the gradients
            return loss

        return strategy.reduce(tf.distribute.ReduceOp.SUM, strategy.run(replica, args=(x, y)), axis=None)

    losses: list[float] = []
    times: list[float] = []
    for _ in range(spec.steps):
        t0 = time.perf_counter()
        x, y = next(batches_ds)
        losses.append(float(train_step(x, y).numpy()))
        times.append(time.perf_counter() - t0)
    logits = net(data.x_holdout, training=False).numpy()
    accuracy = float((logits.argmax(axis=1) == data.y_holdout).mean())
    timed = times[1:] or times
    return index == 0, {
        "framework": "tensorflow", "tf_version": tf.__version__, "world_size": world,
        "losses": losses,
        "samples_per_s": spec.batch_size * len(timed) / sum(timed) if timed else None,
        "holdout_accuracy": accuracy, "steps": spec.steps, "batch_size": spec.batch_size,
    }


def main(argv: list[str] | None = None) -> int:
    spec = WorkerSpec.from_argv(list(sys.argv[1:] if argv is None else argv))
    chief, result = train(spec)
    if chief:
        open_store(spec.store_uri, source="worker --store-uri").put_bytes(
            spec.result_key, json.dumps(result, indent=1).encode())
    return 0


if __name__ == "__main__":
    sys.exit(main())
