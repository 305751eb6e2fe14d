"""Fitting (the `trainer` group): Keras's `Model.fit`, with early stopping on validation macro-F1
and best-weights restore, a per-epoch history, and progress lines for long runs."""

from __future__ import annotations

import logging
import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import keras
import numpy as np
from omegaconf import DictConfig

from imbalance_lab.errors import ImbalanceLabError
from imbalance_lab.evaluation import macro_f1

log = logging.getLogger(__name__)

OPTIMIZERS = ("adam", "sgd", "rmsprop", "adamw")
PROGRESS_SECONDS = 10.0   # a progress line at least this often while a run trains
PREDICT_BATCH = 8192      # rows per forward pass when predicting: memory, not arithmetic, bounds it


@dataclass
class TrainResult:
    history: list[dict] = field(default_factory=list)   # one row per epoch: epoch, train/loss, val/loss, val/macro_f1
    best_epoch: int = 0
    stopped_early: bool = False
    initial_val_loss: float | None = None   # before the first step: what "the loss did not move" is measured from
    model: keras.Model | None = None  # holds the trained (best) weights


def seed_everything(seed: int) -> None:
    """Python, NumPy and Keras/TensorFlow seeds plus deterministic TF ops: same seed, same metrics."""
    keras.utils.set_random_seed(int(seed))
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        tf.config.experimental.enable_op_determinism()


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


def predict_logits(model: keras.Model, X: np.ndarray) -> np.ndarray:
    """The model's outputs for X, PREDICT_BATCH rows per forward pass. `predict_on_batch` reuses the
    traced function; `Model.predict` builds a data pipeline and callbacks on each call (~0.1 s),
    which at one call per epoch for validation was most of a small run's time."""
    chunks = [model.predict_on_batch(X[start:start + PREDICT_BATCH]) for start in range(0, len(X), PREDICT_BATCH)]
    return np.concatenate(chunks).astype("float64")


class MacroF1EarlyStopping(keras.callbacks.Callback):
    """Per epoch: validation loss and macro-F1 (argmax) from one forward pass; keep the best
    weights by macro-F1 and stop after `patience` epochs without improvement. Each epoch's row
    goes to `on_epoch` (the run logs it to MLflow as it trains)."""

    def __init__(self, X_val, y_val, loss_fn, n_classes: int, patience: int, result: TrainResult,
                 on_epoch: Callable[[dict], None] | None = None):
        super().__init__()
        self.X_val, self.y_val, self.loss_fn, self.on_epoch = X_val, y_val, loss_fn, on_epoch
        self.y_val_onehot = keras.utils.to_categorical(y_val, n_classes).astype("float32")
        self.n_classes, self.patience, self.result = n_classes, int(patience), result
        self.best, self.best_weights, self.wait = -math.inf, None, 0

    def on_train_begin(self, logs=None):
        self.result.initial_val_loss = self._val_loss(predict_logits(self.model, self.X_val))

    def _val_loss(self, logits: np.ndarray) -> float:
        return float(keras.ops.convert_to_numpy(keras.ops.mean(self.loss_fn(self.y_val_onehot, logits.astype("float32")))))

    def on_epoch_end(self, epoch, logs=None):
        logits = predict_logits(self.model, self.X_val)
        val_loss = self._val_loss(logits)
        f1 = macro_f1(self.y_val, np.argmax(logits, axis=1), self.n_classes)
        train_loss = float((logs or {}).get("loss", float("nan")))
        row = {"epoch": epoch, "train/loss": train_loss, "val/loss": val_loss, "val/macro_f1": f1}
        self.result.history.append(row)
        if self.on_epoch is not None:
            self.on_epoch(row)
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

    def on_train_end(self, logs=None):
        if self.best_weights is not None:
            self.model.set_weights(self.best_weights)


class Progress(keras.callbacks.Callback):
    """A log line at least every PROGRESS_SECONDS (inside an epoch when epochs are slower): epoch,
    batches done, the last epoch's losses and validation macro-F1, and the time left if every
    epoch runs (early stopping may end it sooner)."""

    def __init__(self, epochs: int, result: TrainResult, name: str = "", every: float | None = None,
                 note: Callable[[float], str] | None = None):
        super().__init__()
        self.epochs, self.result, self.name, self.note = int(epochs), result, name, note
        self.every = PROGRESS_SECONDS if every is None else every

    def on_train_begin(self, logs=None):
        self.start = self.last = time.monotonic()

    def on_train_batch_end(self, batch, logs=None):
        if time.monotonic() - self.last >= self.every:
            steps = (self.params or {}).get("steps")
            self._line(f"epoch {self.epoch + 1}/{self.epochs} batch {batch + 1}" + (f"/{steps}" if steps else ""))

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def on_epoch_end(self, epoch, logs=None):
        if time.monotonic() - self.last >= self.every:
            self._line(f"epoch {epoch + 1}/{self.epochs}")

    def _line(self, where: str) -> None:
        now = time.monotonic()
        self.last = now
        if os.environ.get("IMBALANCE_LAB_QUIET"):  # imbalance-lab --quiet
            return
        done = len(self.result.history)
        last = self.result.history[-1] if done else None
        scores = (f"  train/loss {last['train/loss']:.4f}  val/loss {last['val/loss']:.4f}  "
                  f"val/macro_f1 {last['val/macro_f1']:.4f}" if last else "")
        left = (now - self.start) / done * (self.epochs - done) if done else float("nan")
        eta = f"  at most {_duration(left)} left" if math.isfinite(left) else ""
        sweep = f"  ({self.note(done / self.epochs)})" if self.note else ""
        log.info("%s%s%s%s%s", f"{self.name}: " if self.name else "", where, scores, eta, sweep)


def _duration(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 120 else f"{seconds / 60:.1f} min"


def fit(model: keras.Model, loss_fn, X, y, sample_weight, X_val, y_val, n_classes: int, cfg: DictConfig,
        batch_source=None, on_epoch: Callable[[dict], None] | None = None, name: str = "",
        progress_note: Callable[[float], str] | None = None) -> TrainResult:
    """Fit on the (resampled) training split with Keras's `Model.fit`; returns the history, and the
    best weights (by validation macro-F1) are restored into `model`. `batch_source(X, Y,
    sample_weight, batch_size)` replaces shuffled batches with its own (sampler=balanced_batch); a
    loss may bring epoch callbacks in `loss_fn.callbacks` (LDAM's deferred re-weighting)."""
    result = TrainResult(model=model)
    stopper = MacroF1EarlyStopping(X_val, y_val, loss_fn, n_classes, cfg.patience, result, on_epoch)
    callbacks = [*getattr(loss_fn, "callbacks", ()), stopper, Progress(cfg.epochs, result, name, note=progress_note)]
    model.compile(optimizer=make_optimizer(cfg), loss=loss_fn,
                  steps_per_execution=int(cfg.get("steps_per_execution", 1)),
                  jit_compile=bool(cfg.get("jit_compile", False)))
    Y = keras.utils.to_categorical(y, n_classes)
    if batch_source is not None:
        model.fit(batch_source(X, Y, sample_weight, int(cfg.batch_size)), epochs=int(cfg.epochs),
                  callbacks=callbacks, verbose=0)
    else:
        model.fit(X, Y, sample_weight=sample_weight, batch_size=int(cfg.batch_size), epochs=int(cfg.epochs),
                  shuffle=True, callbacks=callbacks, verbose=0)
    return result
