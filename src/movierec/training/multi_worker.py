"""`model.fit` for `MultiWorkerMirroredStrategy` (Keras 3's own `fit` fails there): rating models only."""

from __future__ import annotations

import time

from movierec import distribute
from movierec.params.train import TrainParams
from movierec.prepare import Split
from movierec.examples import VALIDATION_BATCH, rating_batches


def fit_epochs(model, strategy, rows: Split, val: Split | None, t: TrainParams, epochs: int, callbacks: list) -> dict:
    """`model.fit` for `MultiWorkerMirroredStrategy`: the same batches, loss, logs and callbacks.

    Every worker walks the same seeded global batches (`rating_batches`) and trains on its slice of each
    (`distribute.this_workers_share`). A replica's loss is its share of the global-batch loss:
    sum of its squared errors / global batch + (its rows / global batch) * the model's regularisation
    losses, so the all-reduced (summed) gradients equal one worker's on the whole batch. Per-epoch sums
    (loss, squared error, rows) accumulate in a replica-local variable, all-reduced once per epoch.
    """
    import keras
    import tensorflow as tf

    watch_rmse = t.early_stopping_patience > 0
    with strategy.scope():
        totals = tf.Variable(
            tf.zeros(3), trainable=False,
            synchronization=tf.VariableSynchronization.ON_READ, aggregation=tf.VariableAggregation.SUM,
        )
    variables = model.trainable_variables

    def replica_loss(user, movie, rating, global_n, training):
        predicted = model([user, movie], training=training)
        squared = tf.reduce_sum(tf.square(rating - predicted))
        share = tf.cast(tf.shape(rating)[0], tf.float32) / global_n
        extra = tf.add_n(model.losses) if model.losses else 0.0
        return squared / global_n + share * extra, squared

    def train_step(inputs, rating, global_n):
        with tf.GradientTape() as tape:
            loss, squared = replica_loss(*inputs, rating, global_n, training=True)
        model.optimizer.apply_gradients(zip(tape.gradient(loss, variables), variables))
        totals.assign_add(tf.stack([loss * global_n, squared, tf.cast(tf.shape(rating)[0], tf.float32)]))

    def eval_step(inputs, rating, global_n):
        loss, squared = replica_loss(*inputs, rating, global_n, training=False)
        totals.assign_add(tf.stack([loss * global_n, squared, tf.cast(tf.shape(rating)[0], tf.float32)]))

    def runner(step):
        @tf.function
        def run(iterator, steps):
            for _ in tf.range(steps):
                strategy.run(step, args=next(iterator))
        return run

    def epoch_logs(rows_in_pass: int, batch_size: int, dataset, run_whole, run_short, chunk: int) -> dict:
        """One pass; the shorter last batch goes through its own traced function: a collective keeps
        the shapes it first ran with, so its sparse-gradient gather cannot change size mid-loop."""
        totals.assign(tf.zeros(3))
        whole, rest = divmod(rows_in_pass, batch_size)
        iterator = iter(dataset)
        for done in range(0, whole, chunk):
            run_whole(iterator, tf.constant(min(chunk, whole - done)))
        if rest:
            run_short(iterator, tf.constant(1))
        loss_sum, squared, n = (float(x) for x in totals.read_value().numpy())  # the one all-reduce
        return {"loss": loss_sum / n, **({"rmse": (squared / n) ** 0.5} if watch_rmse else {})}

    run_train, run_train_last, run_eval = runner(train_step), runner(train_step), runner(eval_step)
    train_data = distribute.this_workers_share(rating_batches(rows, t.batch_size, seed=t.seed))
    val_data = distribute.this_workers_share(rating_batches(val, VALIDATION_BATCH)) if val is not None else None
    chief = distribute.is_chief(t.distribute)
    history: dict[str, list] = {}
    hooks = keras.callbacks.CallbackList(callbacks, model=model)
    model.stop_training = False
    hooks.on_train_begin()
    for epoch in range(epochs):
        began = time.perf_counter()
        hooks.on_epoch_begin(epoch)
        logs = epoch_logs(len(rows), t.batch_size, train_data, run_train, run_train_last, t.steps_per_execution)
        if val_data is not None:
            val_logs = epoch_logs(len(val), VALIDATION_BATCH, val_data, run_eval, run_eval, 1 << 30)
            logs.update({f"val_{k}": v for k, v in val_logs.items()})
        if chief:
            shown = " - ".join(f"{k}: {v:.4f}" for k, v in logs.items())
            print(f"Epoch {epoch + 1}/{epochs}\n{time.perf_counter() - began:.1f}s - {shown}", flush=True)
        hooks.on_epoch_end(epoch, logs)
        for k, v in logs.items():
            history.setdefault(k, []).append(v)
        if model.stop_training:
            break
    hooks.on_train_end()
    return history
