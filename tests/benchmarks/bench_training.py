"""Benchmark 1: seconds per epoch of imbalance-lab's training path vs a plain Keras
`model.compile(); model.fit(X, y, batch_size=256)` at seed002_profile's full size (269,501 x 157,
5 classes, MLP 64-32-32-16, Adam), with the loss curves side by side and the arithmetic bound."""

from __future__ import annotations

import time

import keras  # noqa: E402  (after common: quiet TensorFlow)
import numpy as np
import tensorflow as tf  # noqa: E402
from common import QUICK, epoch_times, interleaved, median, profile_data, trainer_cfg, write_section

from imbalance_lab import training  # noqa: E402
from imbalance_lab.models.mlp import build_mlp  # noqa: E402
from imbalance_lab.remedies.losses import categorical_crossentropy  # noqa: E402

WIDTHS, BATCH, N_CLASSES = (64, 32, 32, 16), 256, 5
EPOCHS, ROUNDS = (3, 2) if QUICK else (4, 3)


def plain_fit(X, y, seed: int):
    """What a user writes: softmax output, sparse cross-entropy, Model.fit with its defaults."""
    keras.utils.set_random_seed(seed)
    inputs = keras.Input((X.shape[1],))
    h = inputs
    for width in WIDTHS:
        h = keras.layers.Dense(width, activation="relu")(h)
    model = keras.Model(inputs, keras.layers.Dense(N_CLASSES, activation="softmax")(h))
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    clock = EpochClock()
    history = model.fit(X, y, batch_size=BATCH, epochs=EPOCHS, verbose=0, callbacks=[clock])
    return clock.times, history.history["loss"]


class EpochClock(keras.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.times = []

    def on_epoch_begin(self, epoch, logs=None):
        self.start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self.times.append(time.perf_counter() - self.start)


def ours(X, y, X_val, y_val, seed: int, **trainer):
    """imbalance-lab's training.fit, per-epoch validation (loss + macro-F1) included in its time."""
    training.seed_everything(seed)
    model = build_mlp((X.shape[1],), N_CLASSES, np.zeros(N_CLASSES), widths=WIDTHS)
    cfg = trainer_cfg(epochs=EPOCHS, patience=EPOCHS + 1, **trainer)
    with epoch_times() as times:
        result = training.fit(model, categorical_crossentropy("softmax"), X, y, None, X_val, y_val, N_CLASSES, cfg)
    return times, [row["train/loss"] for row in result.history]


def matmul_gflops(m: int, k: int, n: int, repeats: int = 200) -> float:
    """FLOP rate of one float32 matmul shape; small shapes through NumPy's BLAS, because a
    TensorFlow call per matmul would measure its dispatch (~50 us), not the arithmetic."""
    rng = np.random.default_rng(0)
    a, b = rng.random((m, k), dtype=np.float32), rng.random((k, n), dtype=np.float32)
    if m * k * n >= 2**27:
        a, b = tf.constant(a), tf.constant(b)
        matmul = tf.function(tf.matmul)
        matmul(a, b).numpy()
    else:
        matmul = np.matmul
    rates = []
    for _ in range(5):
        start = time.perf_counter()
        for _ in range(repeats):
            out = matmul(a, b)
        np.asarray(out)
        rates.append(2 * m * k * n * repeats / (time.perf_counter() - start) / 1e9)
    return median(rates)


def training_gflop_per_epoch(n_rows: int, n_features: int) -> float:
    """Dense layers: 2 FLOPs per multiply-add forward, twice that backward (input and weight
    gradients): 6 x rows x sum(fan_in x fan_out)."""
    sizes = [n_features, *WIDTHS, N_CLASSES]
    macs = sum(a * b for a, b in zip(sizes[:-1], sizes[1:]))
    return 6 * n_rows * macs / 1e9


def main():
    X, y = profile_data()
    X_val, y_val = profile_data(len(X) // 5, seed=1)
    mean, std = X.mean(0), X.std(0)
    X, X_val = (X - mean) / std, (X_val - mean) / std
    variants = {
        "plain model.fit (Keras defaults)": lambda r: plain_fit(X, y, r),
        "imbalance-lab: compiled loop + XLA": lambda r: ours(X, y, X_val, y_val, r, jit_compile=True),
        "lever: compiled loop, no XLA": lambda r: ours(X, y, X_val, y_val, r, jit_compile=False),
        "lever: Model.fit, steps_per_execution=64": lambda r: ours(X, y, X_val, y_val, r, loop="keras"),
    }
    runs = interleaved(variants, ROUNDS)
    base = median([t for times, _ in runs["plain model.fit (Keras defaults)"] for t in times[1:]])
    base_first = median([times[0] for times, _ in runs["plain model.fit (Keras defaults)"]])
    rows = ["| training path | s/epoch (median, epochs 2+) | speed-up vs plain | 1st epoch s (incl. compile) |",
            "| --- | --- | --- | --- |"]
    for name, results in runs.items():
        per_epoch = median([t for times, _ in results for t in times[1:]])
        first = median([times[0] for times, _ in results])
        rows.append(f"| {name} | {per_epoch:.3f} | **{base / per_epoch:.2f}x** | {first:.2f} ({base_first / first:.2f}x) |")

    gflop = training_gflop_per_epoch(len(X), X.shape[1])
    small, large = matmul_gflops(BATCH, X.shape[1], WIDTHS[0], repeats=2000), matmul_gflops(2048, 2048, 2048, repeats=5)
    rows += ["", f"Arithmetic bound: {gflop:.1f} GFLOP per epoch (6 x rows x sum of fan_in x fan_out). "
             f"Measured matmul rate: {small:.0f} GFLOP/s at the first layer's shape (256x157x64), "
             f"{large:.0f} GFLOP/s at 2048^3. Bound: {gflop / small:.3f} s/epoch at the small-matmul rate, "
             f"{gflop / large:.3f} s/epoch at the large-matmul rate; plain fit is "
             f"{base / (gflop / small):.1f}x above the first, ours (compiled loop + XLA) "
             f"{median([t for times, _ in runs['imbalance-lab: compiled loop + XLA'] for t in times[1:]]) / (gflop / small):.1f}x."]

    rows += ["", f"Training loss per epoch (mean ± sd over seeds 0..{ROUNDS - 1}; plain = Keras sparse CE on "
             "softmax outputs, ours = CE from logits: the same function):", "",
             "| epoch | " + " | ".join(runs) + " |", "|---" * (len(runs) + 1) + "|"]
    for epoch in range(EPOCHS):
        cells = []
        for results in runs.values():
            losses = [curve[epoch] for _, curve in results]
            cells.append(f"{np.mean(losses):.4f} ± {np.std(losses):.4f}")
        rows.append(f"| {epoch + 1} | " + " | ".join(cells) + " |")
    plain_curve = np.array([c for _, c in runs["plain model.fit (Keras defaults)"]])
    ours_curve = np.array([c for _, c in runs["imbalance-lab: compiled loop + XLA"]])
    gap = np.abs(ours_curve.mean(0) - plain_curve.mean(0))
    noise = np.maximum(plain_curve.std(0), ours_curve.std(0))
    rows += ["", f"Largest |mean difference| ours vs plain over epochs: {gap.max():.4f}; seed-to-seed sd at that "
             f"epoch: {noise[gap.argmax()]:.4f}."]
    write_section("1. Training throughput at 269,501 x 157", "\n".join(rows),
                  f"{'QUICK=1 ' if QUICK else ''}make bench (tests/benchmarks/bench_training.py, {EPOCHS} epochs x {ROUNDS} rounds)")


if __name__ == "__main__":
    main()
