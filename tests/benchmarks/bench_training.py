"""Benchmark 1: seconds per epoch of imbalance-lab's training (Keras's Model.fit with the trainer
group's settings) against a plain Keras script (`model.fit(X, Y, batch_size=256)`, Keras's
defaults), each in its own process, on ../shared/workloads.md's shapes: the forum thread's model and
imbalance-lab's default MLP at 269,501 x 157, and the default CNN on seed003_profile's 21,014 images;
with the trainer's levers (XLA, one batch per call) measured beside the defaults. Then a whole
20-epoch run of the thread's model, `imbalance-lab` (MLflow included) against the plain script."""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from common import (
    BIN,
    CNN,
    DEFAULT_MODEL,
    HERE,
    QUICK,
    TABLE,
    THREAD_MODEL,
    epoch_seconds,
    interleaved,
    median,
    run,
    write_section,
)

EPOCHS, ROUNDS = (3, 1) if QUICK else (5, 2)
WHOLE_EPOCHS, WHOLE_ROUNDS = (5, 1) if QUICK else (20, 2)
N_TRAIN = TABLE[1].split("=")[1]
WORKLOADS = {  # name: (plain_fit.py --model, imbalance-lab overrides)
    "forum thread's model (input dropout 0.5, max-norm 3, SGD Nesterov, sigmoid + ce), 269,501 x 157":
        ("thread", [*TABLE, *THREAD_MODEL]),
    "default MLP (64-32, softmax, Adam), 269,501 x 157": ("mlp", [*TABLE, *DEFAULT_MODEL]),
    "default CNN, seed003_profile (16,811 8x8 images)": ("cnn", CNN),
}
LEVERS = {"imbalance-lab (defaults)": [], "lever: + XLA (trainer.jit_compile=true)": ["trainer.jit_compile=true"],
          "lever: one batch per call (trainer.steps_per_execution=1)": ["trainer.steps_per_execution=1"]}


def plain(model: str, epochs: int):
    def call(_round: int) -> list[float]:
        return epoch_seconds(run(sys.executable, str(HERE / "plain_fit.py"), "--model", model, "--n-train", N_TRAIN,
                                 "--epochs", str(epochs))[1])[1:]  # epoch 1 includes tracing
    return call


def ours(overrides: list[str], epochs: int):
    def call(_round: int) -> list[float]:
        _, out = run(sys.executable, str(HERE / "ours_fit.py"), *overrides, f"trainer.epochs={epochs}",
                     f"trainer.patience={epochs}")
        return epoch_seconds(out)  # from epoch 2 on: ours_fit.py prints the time between epoch ends
    return call


def per_epoch_section() -> str:
    rows = ["| workload | training | s/epoch (median, epochs 2+) | speed-up vs plain `fit` |", "| --- | --- | --- | --- |"]
    for workload, (model, overrides) in WORKLOADS.items():
        variants = {"plain Keras script, `fit` defaults": plain(model, EPOCHS)}
        variants |= {name: ours([*overrides, *extra], EPOCHS) for name, extra in LEVERS.items()}
        results = interleaved(variants, ROUNDS)
        base = median([t for times in results["plain Keras script, `fit` defaults"] for t in times])
        for name, times in results.items():
            seconds = median([t for ts in times for t in ts])
            rows.append(f"| {workload} | {name} | {seconds:.3f} | **{base / seconds:.2f}x** |")
    return "\n".join(rows)


def whole_run_section() -> str:
    with tempfile.TemporaryDirectory() as tmp:
        store = f"sqlite:///{tmp}/mlflow.db"

        def ours_whole(r: int) -> float:
            return run(str(BIN / "imbalance-lab"), *TABLE, *THREAD_MODEL, f"trainer.epochs={WHOLE_EPOCHS}",
                       f"trainer.patience={WHOLE_EPOCHS}", f"seed={r}", cwd=Path(tmp),
                       env={"MLFLOW_TRACKING_URI": store, "IMBALANCE_LAB_CACHE": f"{tmp}/cache"})[0]

        def plain_whole(r: int) -> float:
            return run(sys.executable, str(HERE / "plain_fit.py"), "--model", "thread", "--n-train", N_TRAIN,
                       "--epochs", str(WHOLE_EPOCHS), "--seed", str(r))[0]

        results = interleaved({"imbalance-lab": ours_whole, "plain": plain_whole}, WHOLE_ROUNDS)
    ratios = [a / b for a, b in zip(results["imbalance-lab"], results["plain"])]
    return (f"Whole process, {WHOLE_EPOCHS} epochs of the thread's model at {N_TRAIN} rows (train + validation): "
            f"`imbalance-lab` (data, training with validation every epoch, test metrics, MLflow) "
            f"{', '.join(f'{t:.1f}' for t in results['imbalance-lab'])} s against the plain script's "
            f"{', '.join(f'{t:.1f}' for t in results['plain'])} s: **{median(ratios):.2f}x** its wall time "
            f"(per round {', '.join(f'{r:.2f}' for r in ratios)}).")


def main():
    body = per_epoch_section() + "\n\n" + whole_run_section()
    write_section("1. Training: imbalance-lab against a plain Keras script", body,
                  f"{'QUICK=1 ' if QUICK else ''}python tests/benchmarks/bench_training.py "
                  f"({EPOCHS} epochs x {ROUNDS} rounds per variant, each a process)")


if __name__ == "__main__":
    main()
