"""Benchmark 3: the 12-run digits grid with Hydra's joblib launcher, n_jobs=1 vs n_jobs=2 (and the
default in-process launcher beside)."""

from __future__ import annotations

import tempfile
from pathlib import Path

from bench_sweep import GRID
from common import QUICK, cli, interleaved, median, write_section

ROUNDS = 1 if QUICK else 4  # the whole-command ratios move by ~0.2 between rounds on this machine


SEEDS = "seed=0,1,2,3"  # the same grid x 4 seeds: 48 runs


def sweep(*launcher: str):
    def run(_round: int) -> dict:
        with tempfile.TemporaryDirectory() as tmp:
            store = f"sqlite:///{tmp}/mlflow.db"
            wall = cli("-m", *GRID, *launcher, cwd=Path(tmp), store=store)
            return {"wall": wall, "steady": steady_runs_per_s(store)}
    return run


def joblib(n_jobs: int, *extra: str):
    return sweep("hydra/launcher=joblib", f"hydra.launcher.n_jobs={n_jobs}", *extra)


def runs_to_reach(target: float, one: float, s1: float, two: float, s2: float, n: int = 12) -> float | None:
    """Extrapolated: the sweep size at which n_jobs=2's whole command is `target` x n_jobs=1's, each
    command modelled as its fixed start-up (wall minus n runs at the steady rate) plus runs / rate."""
    fixed1, fixed2 = one - n / s1, two - n / s2
    per_run_gap = 1 / s1 - target / s2
    return None if per_run_gap <= 0 else max(n, (target * fixed2 - fixed1) / per_run_gap)


def steady_runs_per_s(store: str) -> float:
    """Runs finished per second between the first and the last run's end (start-up excluded): the
    throughput once every worker has imported TensorFlow."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient(store)
    runs = client.search_runs([e.experiment_id for e in client.search_experiments()],
                              filter_string="tags.run_key != ''", max_results=1000)
    ends = sorted(r.info.end_time for r in runs)
    return (len(ends) - 1) / ((ends[-1] - ends[0]) / 1000)


def main():
    runs = interleaved({"n_jobs=1": joblib(1), "n_jobs=2": joblib(2), "default": sweep(),
                        "n_jobs=1, 48": joblib(1, SEEDS), "n_jobs=2, 48": joblib(2, SEEDS)}, ROUNDS)
    one48, two48 = (median([r["wall"] for r in runs[f"n_jobs={n}, 48"]]) for n in (1, 2))
    one, two = median([r["wall"] for r in runs["n_jobs=1"]]), median([r["wall"] for r in runs["n_jobs=2"]])
    s1, s2 = median([r["steady"] for r in runs["n_jobs=1"]]), median([r["steady"] for r in runs["n_jobs=2"]])
    base, s0 = median([r["wall"] for r in runs["default"]]), median([r["steady"] for r in runs["default"]])
    reach = runs_to_reach(1.6, one, s1, two, s2)

    def per_round(a: str, b: str, key: str = "wall") -> str:
        pairs = zip(runs[a], runs[b])
        return ", ".join(f"{(x[key] / y[key]) if key == 'wall' else (y[key] / x[key]):.2f}x" for x, y in pairs)
    body = f"""`imbalance-lab -m {' '.join(GRID)} hydra/launcher=joblib hydra.launcher.n_jobs=N`, fresh store each time;
median of {ROUNDS} interleaved round(s), with the default launcher (in-process, no hydra/launcher override) beside.
Whole command: wall time, start-up included. n_jobs=1 runs its jobs in the launching process, which
imports TensorFlow (~5-8 s) after opening the store, while a forked child composes the batch to validate
it (compose_once.composed_in_child; the default launcher too); n_jobs=2 forks its two workers from a
fork server that imports TensorFlow once, alongside that start-up (imbalance_lab/workers.py).
Both get their jobs from imbalance-lab's sweeper (workers.launch_grouped): each job with the config composed
to validate the batch, and the jobs that differ only in class_weight, bias_init, decision or seed in one worker.
Steady state: runs finished per second between the first and the last run's end (MLflow end times).

| launcher | whole command, s for 12 runs | throughput vs n_jobs=1 | steady state, runs/s | vs n_jobs=1 |
| --- | --- | --- | --- | --- |
| joblib n_jobs=1 | {one:.1f} | 1.00x | {s1:.2f} | 1.00x |
| joblib n_jobs=2 | {two:.1f} | **{one / two:.2f}x** | {s2:.2f} | **{s2 / s1:.2f}x** |
| default (basic, in-process) | {base:.1f} | {one / base:.2f}x | {s0:.2f} | {s0 / s1:.2f}x |

n_jobs=2 vs n_jobs=1 per round (each round runs every variant once, interleaved): whole command
{per_round("n_jobs=1", "n_jobs=2")}; steady state {per_round("n_jobs=1", "n_jobs=2", "steady")}.

The same grid with {SEEDS} (48 runs): n_jobs=1 {one48:.1f} s, n_jobs=2 {two48:.1f} s: **{one48 / two48:.2f}x** for the whole command
(per round {per_round("n_jobs=1, 48", "n_jobs=2, 48")}); steady state {median([r["steady"] for r in runs["n_jobs=1, 48"]]):.2f} vs
{median([r["steady"] for r in runs["n_jobs=2, 48"]]):.2f} runs/s: **{median([r["steady"] for r in runs["n_jobs=2, 48"]]) / median([r["steady"] for r in runs["n_jobs=1, 48"]]):.2f}x**
(per round {per_round("n_jobs=1, 48", "n_jobs=2, 48", "steady")}).

Extrapolated from the 12-run figures (each command = its fixed start-up + runs / its steady rate): the whole
command of n_jobs=2 {f'reaches 1.6x n_jobs=1 from about {reach:.0f} runs' if reach else 'does not reach 1.6x n_jobs=1 at any sweep size: its steady rate is under 1.6x'}."""
    write_section("3. Scaling with joblib (same grid)", body,
                  f"{'QUICK=1 ' if QUICK else ''}make bench (tests/benchmarks/bench_scaling.py)")


if __name__ == "__main__":
    main()
