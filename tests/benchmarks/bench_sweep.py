"""Benchmark 2: a 12-run grid on digits with trainer=quick, run by `imbalance-lab -m` (one process,
TensorFlow imported once, every run logged to MLflow) against the same 12 trainings as 12
`python plain_train.py` processes (a plain Keras script each, nothing logged)."""

from __future__ import annotations

import itertools
import sys
import tempfile
from pathlib import Path

from common import BIN, HERE, QUICK, interleaved, median, run, write_section

LOSSES, WEIGHTS, SAMPLERS = ("ce", "bce"), ("none", "balanced"), ("none", "random_over", "smote")
GRID = ["dataset=digits", "trainer=quick", f"loss={','.join(LOSSES)}", f"class_weight={','.join(WEIGHTS)}",
        f"sampler={','.join(SAMPLERS)}"]
ROUNDS = 1 if QUICK else 3


def sweep_in_process(_round: int) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        return run(str(BIN / "imbalance-lab"), "-m", *GRID, cwd=Path(tmp),
                   env={"MLFLOW_TRACKING_URI": f"sqlite:///{tmp}/mlflow.db", "IMBALANCE_LAB_CACHE": f"{tmp}/cache",
                        "IMBALANCE_LAB_OUTPUT": tmp})[0]


def plain_processes(_round: int) -> float:
    total = 0.0
    for loss, weight, sampler in itertools.product(LOSSES, WEIGHTS, SAMPLERS):
        total += run(sys.executable, str(HERE / "plain_train.py"), "--loss", loss, "--class-weight", weight,
                     "--sampler", sampler, "--epochs", "5")[0]
    return total


def main():
    results = interleaved({"sweep": sweep_in_process, "plain": plain_processes}, ROUNDS)
    ratios = [p / s for s, p in zip(results["sweep"], results["plain"])]
    body = (f"12 runs (loss {'/'.join(LOSSES)} x class_weight {'/'.join(WEIGHTS)} x sampler {'/'.join(SAMPLERS)}, "
            f"digits, 5 epochs): `imbalance-lab -m` {', '.join(f'{t:.1f}' for t in results['sweep'])} s, "
            f"12 plain scripts {', '.join(f'{t:.1f}' for t in results['plain'])} s: the sweep has "
            f"**{median(ratios):.2f}x** their throughput (per round {', '.join(f'{r:.2f}' for r in ratios)}).")
    write_section("2. A sweep of quick runs against separate plain scripts", body,
                  f"{'QUICK=1 ' if QUICK else ''}python tests/benchmarks/bench_sweep.py ({ROUNDS} rounds)")


if __name__ == "__main__":
    main()
