"""Fitting (the `trainer` group): optimiser, early stopping on validation macro-F1 with
best-weights restore, and a per-epoch history that is logged to MLflow in one batch."""

from __future__ import annotations

import contextlib
import logging
import math
from collections.abc import Hashable, Iterator
from dataclasses import dataclass, field

import keras
import numpy as np
from omegaconf import DictConfig

from imbalance_lab.errors import ImbalanceLabError
from imbalance_lab.evaluation import macro_f1
from imbalance_lab.models import built

log = logging.getLogger(__name__)

OPTIMIZERS = ("adam", "sgd", "rmsprop", "adamw")


@dataclass
class TrainResult:
    history: list[dict] = field(default_factory=list)   # one row per epoch: epoch, train/loss, val/loss, val/macro_f1
    best_epoch: int = 0
    stopped_early: bool = False
    model: keras.Model | None = None  # holds the trained (best) weights; its prediction function may be traced already


def seed_everything(seed: int) -> None:
    """Python, NumPy and Keras/TensorFlow seeds plus deterministic TF ops: same seed, same metrics.
    The compiled functions of earlier runs stay compiled (compiled_functions_kept)."""
    with compiled_functions_kept():
        keras.utils.set_random_seed(int(seed))
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        tf.config.experimental.enable_op_determinism()


@contextlib.contextmanager
def compiled_functions_kept() -> Iterator[None]:
    """TensorFlow empties its cache of instantiated function kernels whenever its global seed is
    set (keras.utils.set_random_seed) or Keras's session is cleared, "to reset any existing seeds"
    of stateful random kernels. Every compiled function then pays its instantiation again, with
    graph optimisation (~0.15 s for a quick run's training function, a third of such a run). Within
    this block the cache is kept; everything else those calls do is done. What this skips matters
    only for stateful TensorFlow random ops (tf.random.uniform and the like, each keeping its
    stream in its kernel); Keras 3 draws all its randomness (initializers, dropout) with stateless
    ops from its own seed generators, which keras.utils.set_random_seed resets; Model.fit's shuffle
    (trainer.loop=keras) runs in a tf.data function traced anew for each fit. A model or loss of
    one's own (`_target_`) that calls stateful TensorFlow random ops would see its random streams
    go on from run to run instead of restarting at each seed. Not thread-safe: for the jobs of one
    process, run one after another."""
    if keras.backend.backend() != "tensorflow":
        yield
        return
    from tensorflow.python.eager import context

    module = getattr(context, "pywrap_tfe", None)
    original = getattr(module, "TFE_ContextClearCaches", None)
    if original is None:  # TensorFlow moved it: its caches are emptied as before
        yield
        return
    module.TFE_ContextClearCaches = _keep_caches
    try:
        yield
    finally:
        module.TFE_ContextClearCaches = original


def _keep_caches(_context_handle) -> None:
    """TFE_ContextClearCaches, skipped."""


def make_optimizer(cfg: DictConfig) -> keras.optimizers.Optimizer:
    name = str(cfg.optimizer).lower()
    lr = float(cfg.learning_rate)
    if name == "adam":
        return keras.optimizers.Adam(lr)
    if name == "sgd":
        return keras.optimizers.SGD(lr, momentum=float(cfg.momentum), nesterov=bool(cfg.nesterov))
    if name == "rmsprop":
        return keras.optimizers.RMSprop(lr)
    if name == "adamw":
        return keras.optimizers.AdamW(lr)
    raise ImbalanceLabError(f"trainer.optimizer={cfg.optimizer!r} is not one of {list(OPTIMIZERS)}.")


def _trainer_settings(cfg: DictConfig) -> tuple:
    """The trainer config as it shapes the compiled training function: all of it but the number of
    epochs and the patience (XLA's choice, which depends on epochs, is keyed in epoch_loop)."""
    return tuple((k, str(v)) for k, v in sorted(cfg.items()) if k not in ("epochs", "patience"))


def predict_logits(model: keras.Model, X: np.ndarray, chunk: int = 16384) -> np.ndarray:
    """Logits in large chunks through one compiled forward pass per model: cheaper than
    model.predict's per-call setup and than an eager call (~14 ms of Python per call of a small MLP
    against ~3 ms compiled), which matters because validation runs it every epoch."""
    forward = _forward(model)
    parts = [keras.ops.convert_to_numpy(forward(X[i : i + chunk])) for i in range(0, len(X), chunk)]
    return np.concatenate(parts).astype("float64")


def _forward(model: keras.Model):
    """`model(x, training=False)`, traced once for any batch size (TensorFlow), else eager."""
    forward = model.__dict__.get("_imbalance_lab_forward")  # stored past Keras's attribute tracking
    if forward is None:
        if keras.backend.backend() == "tensorflow":
            import tensorflow as tf

            spec = tf.TensorSpec((None, *model.input_shape[1:]), "float32")
            forward = tf.function(lambda x: model(x, training=False), input_signature=[spec])
        else:
            def forward(x):
                return model(x, training=False)
        model.__dict__["_imbalance_lab_forward"] = forward
    return forward


def _compiled_mean(loss_fn):
    """mean(loss_fn(y, logits)), traced once (TensorFlow): eager, its few ops cost ~3 ms of Python
    per epoch. A loss that changes during training does it through variables (LDAM's DRW)."""
    if keras.backend.backend() != "tensorflow":
        return lambda y, z: np.mean(keras.ops.convert_to_numpy(loss_fn(y, z)))
    import tensorflow as tf

    return tf.function(lambda y, z: tf.reduce_mean(loss_fn(y, z)), reduce_retracing=True)


def _mean_loss(model: keras.Model, loss_fn, same_loss: Hashable | None):
    """The validation loss function of `model`'s training: kept on the model for its next training
    with an equal `same_loss` key (a kept trainer's model, epoch_loop), else compiled anew."""
    kept_key, kept = model.__dict__.get("_imbalance_lab_mean_loss", (None, None))
    if same_loss is None or kept_key != same_loss:
        kept = _compiled_mean(loss_fn)
        model.__dict__["_imbalance_lab_mean_loss"] = (same_loss, kept)  # past Keras's attribute tracking
    return kept


class MacroF1EarlyStopping(keras.callbacks.Callback):
    """Per epoch: validation loss and macro-F1 (argmax) from one forward pass; keep the best
    weights by macro-F1 and stop after `patience` epochs without improvement."""

    def __init__(self, X_val, y_val, loss_fn, n_classes: int, patience: int, result: TrainResult,
                 same_loss: Hashable | None = None):
        super().__init__()
        self.X_val, self.y_val, self.loss_fn, self.same_loss = X_val, y_val, loss_fn, same_loss
        self.y_val_onehot = keras.utils.to_categorical(y_val, n_classes).astype("float32")
        self.mean_loss = None  # compiled at the first epoch's end, or the kept one of self.model (_mean_loss)
        self.n_classes, self.patience, self.result = n_classes, int(patience), result
        self.best, self.best_weights, self.wait = -math.inf, None, 0

    def on_epoch_end(self, epoch, logs=None):
        if self.mean_loss is None:
            self.mean_loss = _mean_loss(self.model, self.loss_fn, self.same_loss)
        logits = predict_logits(self.model, self.X_val)
        val_loss = float(self.mean_loss(self.y_val_onehot, logits.astype("float32")))
        f1 = macro_f1(self.y_val, np.argmax(logits, axis=1), self.n_classes)
        train_loss = float((logs or {}).get("loss", float("nan")))
        self.result.history.append({"epoch": epoch, "train/loss": train_loss, "val/loss": val_loss, "val/macro_f1": f1})
        if not math.isfinite(train_loss):
            raise ImbalanceLabError(
                f"The training loss became {train_loss} at epoch {epoch}; lower trainer.learning_rate "
                f"or check the data for extreme values."
            )
        if f1 > self.best:
            self.best, self.best_weights, self.wait = f1, self.model.get_weights(), 0
            self.result.best_epoch = epoch
        else:
            self.wait += 1
            if self.wait >= self.patience:
                self.result.stopped_early = True
                self.model.stop_training = True
        if epoch % 10 == 0:
            log.info("epoch %d  train/loss %.4f  val/loss %.4f  val/macro_f1 %.4f", epoch, train_loss, val_loss, f1)

    def on_train_end(self, logs=None):
        if self.best_weights is not None:
            self.model.set_weights(self.best_weights)


def fit(model, loss_fn, X, y, sample_weight, X_val, y_val, n_classes: int, cfg: DictConfig,
        batch_source=None, same_training: Hashable | None = None) -> TrainResult:
    """Fit on the (resampled) training split; returns the history, and the best weights (by
    validation macro-F1) are restored into `result.model` (and into `model` if it is built).
    `batch_source(X, Y, sample_weight, batch_size)` replaces shuffled batches with its own
    (sampler=balanced_batch); a loss may bring epoch callbacks in `loss_fn.callbacks` (LDAM's
    deferred re-weighting). `same_training`: a key that is equal only for runs building the same
    architecture and the same loss function; the compiled loop may then train a kept model of an
    earlier such run, loaded with `model`'s initial variables (epoch_loop.epoch_trainer), and
    `result.model` is that model, with the same weights as `model` until the next run with an equal
    key trains it. A loss counts as the same function when built from the same config and inputs,
    unless it brings callbacks that change it as it trains; a loss of one's own (`_target_`) that
    keeps state in variables without such callbacks must not be given a key. `model` may be a
    models.NewModel, built only if no kept trainer takes its initial variables."""
    result = TrainResult()
    loss_callbacks = list(getattr(loss_fn, "callbacks", ()))  # a loss they change is its run's own: no key
    key = (same_training, _trainer_settings(cfg)) if same_training is not None and not loss_callbacks else None
    stopper = MacroF1EarlyStopping(X_val, y_val, loss_fn, n_classes, cfg.patience, result, same_loss=key)
    callbacks = [*loss_callbacks, stopper]
    Y = keras.utils.to_categorical(y, n_classes)
    loop = str(cfg.get("loop", "compiled"))
    if loop not in ("compiled", "keras"):
        raise ImbalanceLabError(f"trainer.loop={loop!r} is not one of ['compiled', 'keras'].")
    if loop == "compiled" and batch_source is None and isinstance(X, np.ndarray) \
            and keras.backend.backend() == "tensorflow":
        # several times faster than Model.fit on these small nets, same arithmetic (epoch_loop.py)
        from imbalance_lab.epoch_loop import fit_arrays

        result.model = fit_arrays(
            model, loss_fn, lambda: make_optimizer(cfg), X, Y, sample_weight, batch_size=int(cfg.batch_size),
            epochs=int(cfg.epochs), steps_per_execution=int(cfg.get("steps_per_execution", 1)),
            jit_compile=cfg.get("jit_compile", "auto"), callbacks=callbacks, key=key)
        return result
    model = result.model = built(model)
    model.compile(
        optimizer=make_optimizer(cfg), loss=loss_fn,
        steps_per_execution=int(cfg.get("steps_per_execution", 1)), jit_compile=False,
    )
    if batch_source is not None:
        model.fit(batch_source(X, Y, sample_weight, int(cfg.batch_size)), epochs=int(cfg.epochs),
                  callbacks=callbacks, verbose=0)
        return result
    model.fit(
        X, Y, sample_weight=sample_weight,
        batch_size=int(cfg.batch_size), epochs=int(cfg.epochs), shuffle=True,
        callbacks=callbacks, verbose=0,
    )
    return result
