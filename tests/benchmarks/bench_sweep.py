"""Benchmark 2: per-run cost in a sweep. A 12-run grid on digits with trainer=quick, run by
`imbalance-lab -m` (one process) vs the same 12 trainings as 12 `python plain_train.py`
processes; then imbalance-lab's own overhead per run (everything but fit and predict)."""

from __future__ import annotations

import itertools
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import HERE, QUICK, cli, interleaved, median, write_section

LOSSES, WEIGHTS, SAMPLERS = ("ce", "bce"), ("none", "balanced"), ("none", "random_over", "smote")
GRID = ["dataset=digits", "trainer=quick", f"loss={','.join(LOSSES)}", f"class_weight={','.join(WEIGHTS)}",
        f"sampler={','.join(SAMPLERS)}"]
ROUNDS = 1 if QUICK else 2


def sweep_in_process(_round: int) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        return cli("-m", *GRID, cwd=Path(tmp), store=f"sqlite:///{tmp}/mlflow.db")


def plain_processes(_round: int) -> float:
    start = time.perf_counter()
    for loss, weight, sampler in itertools.product(LOSSES, WEIGHTS, SAMPLERS):
        subprocess.run([sys.executable, str(HERE / "plain_train.py"), "--loss", loss, "--class-weight", weight,
                        "--sampler", sampler, "--epochs", "5"], check=True, capture_output=True)
    return time.perf_counter() - start


def overhead_per_run() -> list[dict]:
    """In one process (as in a sweep, after a warm-up run): each run's total time and the part
    spent in training.fit and predict_logits; the rest is imbalance-lab's overhead."""
    from imbalance_lab import run as recipe
    from imbalance_lab.configs import compose

    parts = ("fit", "predict", "train_and_evaluate", "log_run", "confusion_matrix_png")
    spent = dict.fromkeys(parts, 0.0)

    def clocked(name, fn):
        def wrapper(*args, **kwargs):
            start = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                spent[name] += time.perf_counter() - start
        return wrapper

    recipe.fit, recipe.predict_logits = clocked("fit", recipe.fit), clocked("predict", recipe.predict_logits)
    for name in parts[2:]:
        setattr(recipe, name, clocked(name, getattr(recipe, name)))
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        configs = [["dataset=digits", "trainer=quick", f"loss={loss}", f"class_weight={weight}", f"sampler={sampler}",
                    f"tracking.uri=sqlite:///{tmp}/mlflow.db", "tracking.experiment=bench"]
                   for loss, weight, sampler in itertools.product(LOSSES, WEIGHTS, SAMPLERS)]
        recipe.execute(*compose([*configs[0], "seed=99"]))  # warm-up: TensorFlow and MLflow start-up
        for overrides in configs:
            spent.update(dict.fromkeys(parts, 0.0))
            start = time.perf_counter()
            recipe.execute(*compose(overrides))
            total = time.perf_counter() - start
            rows.append({"total": total, **spent, "overhead": total - spent["fit"] - spent["predict"],
                         "recipe_rest": spent["train_and_evaluate"] - spent["fit"] - spent["predict"],
                         "logging_rest": spent["log_run"] - spent["confusion_matrix_png"],
                         "execute_rest": total - spent["train_and_evaluate"] - spent["log_run"]})
    return rows


def main():
    runs = interleaved({"imbalance-lab -m (one process)": sweep_in_process,
                        "12 x python plain_train.py": plain_processes}, ROUNDS)
    ours, plain = median(runs["imbalance-lab -m (one process)"]), median(runs["12 x python plain_train.py"])
    overhead = overhead_per_run()
    total, fit_s = median([r["total"] for r in overhead]), median([r["fit"] for r in overhead])
    pred_s, over_s = median([r["predict"] for r in overhead]), median([r["overhead"] for r in overhead])
    share = median([r["overhead"] / r["total"] for r in overhead])
    labels = {"confusion_matrix_png": "confusion_matrix.png (matplotlib, in log_run)",
              "logging_rest": "rest of log_run (MLflow metrics, history, JSON/YAML/CSV artifacts)",
              "recipe_rest": "recipe minus fit/predict (data, sampler, weights, model build, decision, evaluation)",
              "execute_rest": "execute minus recipe and log_run (run_key, skip check, doctor lint, create run, params)"}
    breakdown = "\n".join(f"| {text} | {median([r[k] for r in overhead]):.3f} | "
                          f"{median([r[k] / r['total'] for r in overhead]):.1%} |" for k, text in labels.items())
    body = f"""Grid: `imbalance-lab -m {' '.join(GRID)}` (12 runs, MLflow logging into a fresh SQLite store) vs
the same 12 trainings as separate `python tests/benchmarks/plain_train.py` processes. Median of {ROUNDS} interleaved round(s).

| variant | seconds for 12 runs | per run | throughput vs plain |
| --- | --- | --- | --- |
| imbalance-lab -m (one process, incl. start-up and MLflow) | {ours:.1f} | {ours / 12:.2f} | **{plain / ours:.2f}x** |
| 12 x python plain_train.py | {plain:.1f} | {plain / 12:.2f} | 1.00x |

Per-run breakdown in one process after a warm-up run (median of the 12 runs): total {total:.3f} s,
training.fit {fit_s:.3f} s, predict {pred_s:.3f} s, **imbalance-lab overhead {over_s:.3f} s = {share:.1%} of the run**
(data from the per-process cache, sampler, class weights, model build, evaluation, MLflow params/metrics/artifacts incl. the confusion-matrix PNG).

| overhead part (median per run) | seconds | share of the run |
| --- | --- | --- |
{breakdown}"""
    write_section("2. Per-run cost in a sweep (digits, trainer=quick, 12 runs)", body,
                  f"{'QUICK=1 ' if QUICK else ''}make bench (tests/benchmarks/bench_sweep.py)")


if __name__ == "__main__":
    main()
