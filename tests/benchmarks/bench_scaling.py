"""Benchmark 3: the 12-run digits grid with Hydra's joblib launcher, n_jobs=1 vs n_jobs=2."""

from __future__ import annotations

import tempfile
from pathlib import Path

from bench_sweep import GRID
from common import QUICK, cli, interleaved, median, write_section

ROUNDS = 1 if QUICK else 2


def sweep(n_jobs: int):
    def run(_round: int) -> float:
        with tempfile.TemporaryDirectory() as tmp:
            return cli("-m", *GRID, "hydra/launcher=joblib", f"hydra.launcher.n_jobs={n_jobs}", cwd=Path(tmp),
                       store=f"sqlite:///{tmp}/mlflow.db")
    return run


def main():
    runs = interleaved({"n_jobs=1": sweep(1), "n_jobs=2": sweep(2)}, ROUNDS)
    one, two = median(runs["n_jobs=1"]), median(runs["n_jobs=2"])
    body = f"""`imbalance-lab -m {' '.join(GRID)} hydra/launcher=joblib hydra.launcher.n_jobs=N`, fresh store each time;
median of {ROUNDS} interleaved round(s), whole command wall time (start-up included).

| n_jobs | seconds for 12 runs | throughput vs n_jobs=1 |
| --- | --- | --- |
| 1 | {one:.1f} | 1.00x |
| 2 | {two:.1f} | **{one / two:.2f}x** |"""
    write_section("3. Scaling with joblib (same grid)", body,
                  f"{'QUICK=1 ' if QUICK else ''}make bench (tests/benchmarks/bench_scaling.py)")


if __name__ == "__main__":
    main()
