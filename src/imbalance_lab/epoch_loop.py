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

Tracing that function (and the first call of the traced graph) is most of a quick run's time, so
a process keeps the trainers of its recent runs (model, optimizer, traced function). A later run
whose key says it trains the same architecture with the same loss function, optimizer and data
shape loads its own model's initial variables (initial weights, output bias, dropout seed states;
models.NewModel, which builds that model only if an equal build has not run lately) and the
optimizer's initial state into a kept trainer and trains that: the same arithmetic on the same
numbers, so a run's results do not depend on what ran before it in the process.
"""

from __future__ import annotations

import gc
from collections import OrderedDict
from collections.abc import Hashable

import keras
import numpy as np
import tensorflow as tf

from imbalance_lab.memory import as_tensor
from imbalance_lab.models import NewModel, built, forget_builds
from imbalance_lab.workers import forked_from_server

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


class Trainer:
    """A model, its optimizer and their compiled training function, reusable by later runs."""

    def __init__(self, model: keras.Model, loss_fn, optimizer: keras.optimizers.Optimizer, jit: bool):
        self.model, self.optimizer = model, optimizer
        self.train_chunk = make_train_chunk(model, loss_fn, optimizer, jit)  # builds the optimizer
        self.optimizer_start = [v.numpy() for v in optimizer.variables]  # step 0, zero moments, the rate

    def fits(self, start: list) -> bool:
        mine = self.model.variables
        return len(mine) == len(start) and all(a.shape == b.shape and a.dtype == b.dtype for a, b in zip(mine, start))

    def start_from(self, start: list) -> None:
        """Take a model's variables as built (`start`: weights, output bias, dropout seed states) and
        a fresh optimizer state: where a new trainer for that model would start."""
        for mine, theirs in zip(self.model.variables, start, strict=True):
            mine.assign(theirs)
        for variable, initial in zip(self.optimizer.variables, self.optimizer_start, strict=True):
            variable.assign(initial)


# The trainers of this process's most recently used keys (epoch_trainer); a few MB each.
KEPT_TRAINERS = 8
_kept: OrderedDict[Hashable, Trainer] = OrderedDict()
_dropped = 0  # trainers dropped since dropped_trainers_due() last said so


def epoch_trainer(model: keras.Model | NewModel, loss_fn, optimizer, jit: bool, key: Hashable | None = None) -> Trainer:
    """A trainer for `model`: a kept one loaded with `model`'s initial variables when an earlier run
    had the same `key` (same architecture, loss function, optimizer settings and data shape), else a
    new one, kept under `key` in place of the least recently used when KEPT_TRAINERS are kept
    already. `optimizer` is called only for a new trainer, and a NewModel is built only for one.

    In a parallel sweep's worker, forked from the server that imported TensorFlow (workers.py), a
    full cache keeps its trainers and a new key's trainer is not kept: dropping one would need a
    collection of the objects the worker shares with the server (dropped_trainers_due), which
    would give the worker its own copy of them."""
    if key is None:
        return Trainer(built(model), loss_fn, optimizer(), jit)
    key = (key, jit)
    trainer = _kept.get(key)
    start = model.initial_values if isinstance(model, NewModel) else model.variables
    if trainer is not None and trainer.fits(start):
        _kept.move_to_end(key)
        trainer.start_from(start)
        return trainer
    trainer = Trainer(built(model), loss_fn, optimizer(), jit)
    if key in _kept or len(_kept) < KEPT_TRAINERS or not forked_from_server():
        _drop(key)
        _kept[key] = trainer
        while len(_kept) > KEPT_TRAINERS:
            _drop(next(iter(_kept)))
    return trainer


def _drop(key: Hashable) -> None:
    global _dropped
    if _kept.pop(key, None) is not None:
        _dropped += 1


def forget_trainers() -> None:
    """Drop every kept trainer and free them now, and forget the builds NewModel reuses (tests and
    benchmarks: start as a new process would, with no trainer kept and none dropped, so that no
    collection of them falls due later)."""
    global _dropped
    for key in list(_kept):
        _drop(key)
    _dropped = 0
    forget_builds()
    frozen = gc.get_freeze_count() > 0
    gc.unfreeze()
    gc.collect()
    if frozen:
        gc.freeze()


def dropped_trainers_due() -> bool:
    """True once KEPT_TRAINERS trainers have been dropped since it last said so. A trainer kept
    across jobs is frozen with the rest by sweep.release_job_memory (gc.freeze), and its model's
    reference cycles make it garbage that only a collection of the frozen objects frees."""
    global _dropped
    if _dropped < KEPT_TRAINERS:
        return False
    _dropped = 0
    return True


def fit_arrays(model: keras.Model | NewModel, loss_fn, optimizer, X: np.ndarray, Y: np.ndarray, sample_weight,
               *, batch_size: int, epochs: int, steps_per_execution: int, jit_compile, callbacks,
               key: Hashable | None = None) -> keras.Model:
    """Train `model` on in-memory arrays (Y one-hot) for up to `epochs`, calling `callbacks`
    at epoch boundaries; stops when a callback sets `model.stop_training`. `optimizer` is an
    Optimizer or a function returning one. With a `key`, a kept trainer of an earlier run with the
    same key may do the training (epoch_trainer): the trained weights are then copied into `model`
    too (if it is a built Keras model). Returns the model that trained (`model`, or the kept
    trainer's, whose prediction function is traced already)."""
    n_rows = len(X)
    jit = use_xla(jit_compile, n_rows, batch_size, epochs)
    make_optimizer = (lambda: optimizer) if isinstance(optimizer, keras.optimizers.Optimizer) else optimizer
    trainer = epoch_trainer(model, loss_fn, make_optimizer, jit, None if key is None else (key, X.shape, Y.shape))
    _run_epochs(trainer, X, Y, sample_weight, batch_size, epochs, steps_per_execution, callbacks)
    if trainer.model is not model and isinstance(model, keras.Model):
        for theirs, mine in zip(model.variables, trainer.model.variables, strict=True):
            theirs.assign(mine)
    return trainer.model


def _run_epochs(trainer: Trainer, X, Y, sample_weight, batch_size, epochs, steps_per_execution, callbacks) -> None:
    model, train_chunk, n_rows = trainer.model, trainer.train_chunk, len(X)
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
