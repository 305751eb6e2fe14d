"""The fast training loop: `steps_per_execution` batches per call of one compiled TensorFlow
function (XLA when the run is long enough to pay for compiling), fed from tensors that stay in
memory, with the arithmetic of Keras's `Model.fit`.

Why not `Model.fit`: on small dense nets most of fit's time per batch is not arithmetic but the
tf.data pipeline it builds over the arrays, the per-batch callback plumbing and, without XLA, one
kernel launch per op. Here an epoch is a permutation drawn with NumPy (seeded by
`seed_everything`), batches are gathered inside the compiled function, and callbacks see only
epochs (on_epoch_begin / on_epoch_end with logs["loss"], `model.stop_training`).

Same arithmetic as fit: per batch, loss = sum(sample_weight * loss_fn(y, logits)) / batch rows
(Keras's "sum_over_batch_size"), plus `model.losses`; the optimizer applies the kernel
constraints; the epoch's loss is the batch losses averaged with batch sizes as weights. The last,
partial batch is padded to the batch size with zero-weight rows so that XLA compiles one shape.
"""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

from imbalance_lab.memory import as_tensor

# XLA compiling costs ~1-2 s per model on CPU and saves ~0.2 ms per batch: "auto" compiles only
# when a run has at least this many batches (epochs x batches per epoch) to pay it back.
XLA_MIN_BATCHES = 5000


def use_xla(jit_compile, n_rows: int, batch_size: int, epochs: int) -> bool:
    if isinstance(jit_compile, str) and jit_compile.lower() == "auto":
        return epochs * -(-n_rows // batch_size) >= XLA_MIN_BATCHES
    return bool(jit_compile)


def epoch_batches(n_rows: int, batch_size: int, rng: np.random.Generator):
    """Row indices of one shuffled epoch as (n_batches, batch_size), a 0/1 mask for the padding
    of the last batch, and each batch's real number of rows."""
    n_batches = -(-n_rows // batch_size)
    padded = np.zeros(n_batches * batch_size, dtype="int32")
    padded[:n_rows] = rng.permutation(n_rows)
    mask = np.zeros(n_batches * batch_size, dtype="float32")
    mask[:n_rows] = 1.0
    mask = mask.reshape(n_batches, batch_size)
    return padded.reshape(n_batches, batch_size), mask, mask.sum(axis=1)


def make_train_chunk(model: keras.Model, loss_fn, optimizer: keras.optimizers.Optimizer, jit: bool):
    """A compiled function that trains on batches [start, stop) of an epoch and returns the sum
    over those batches of (batch loss x batch rows)."""
    weights = model.trainable_variables
    optimizer.build(weights)

    def train_step(x, y, w, rows):
        with tf.GradientTape() as tape:
            logits = model(x, training=True)
            loss = tf.reduce_sum(w * tf.cast(loss_fn(y, logits), w.dtype)) / rows
            if model.losses:
                loss += tf.add_n(model.losses)
        optimizer.apply_gradients(zip(tape.gradient(loss, weights), weights))
        return loss

    # autograph=False: the loop is a tf.while_loop already, and no Python `if`/`for` here depends on a
    # tensor; converting this source (and Keras's) with autograph cost ~0.1 s of each run's tracing.
    @tf.function(jit_compile=jit, reduce_retracing=True, autograph=False)
    def train_chunk(X, Y, W, index, mask, rows, start, stop):
        def body(i, total):
            rows_i = index[i]
            loss = train_step(tf.gather(X, rows_i), tf.gather(Y, rows_i), tf.gather(W, rows_i) * mask[i], rows[i])
            return i + 1, total + loss * rows[i]

        _, total = tf.while_loop(lambda i, _: i < stop, body, (start, tf.constant(0.0)))
        return total

    return train_chunk


def fit_arrays(model: keras.Model, loss_fn, optimizer, X: np.ndarray, Y: np.ndarray, sample_weight,
               *, batch_size: int, epochs: int, steps_per_execution: int, jit_compile, callbacks) -> None:
    """Train `model` on in-memory arrays (Y one-hot) for up to `epochs`, calling `callbacks`
    at epoch boundaries; stops when a callback sets `model.stop_training`."""
    n_rows = len(X)
    jit = use_xla(jit_compile, n_rows, batch_size, epochs)
    train_chunk = make_train_chunk(model, loss_fn, optimizer, jit)
    X_t, Y_t = as_tensor(X), as_tensor(Y)  # over the arrays' memory, no copy (memory.py)
    W_t = tf.ones(n_rows) if sample_weight is None else as_tensor(sample_weight)
    rng = np.random.default_rng(np.random.randint(2**31 - 1))  # drawn from the run's seeded NumPy state
    chunk = max(1, int(steps_per_execution))
    callback_list = keras.callbacks.CallbackList(callbacks, model=model)
    model.stop_training = False
    callback_list.on_train_begin()
    for epoch in range(epochs):
        callback_list.on_epoch_begin(epoch)
        index, mask, rows = (tf.constant(a) for a in epoch_batches(n_rows, batch_size, rng))
        n_batches = int(index.shape[0])
        total = 0.0
        for start in range(0, n_batches, chunk):
            total += float(train_chunk(X_t, Y_t, W_t, index, mask, rows,
                                       tf.constant(start), tf.constant(min(start + chunk, n_batches))))
        callback_list.on_epoch_end(epoch, {"loss": total / n_rows})
        if model.stop_training:
            break
    callback_list.on_train_end()
