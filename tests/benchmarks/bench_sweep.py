"""Benchmark 2: per-run cost in a sweep. A 12-run grid on digits with trainer=quick, run by
`imbalance-lab -m` (one process) vs the same 12 trainings as 12 `python plain_train.py`
processes; then imbalance-lab's own overhead per run (everything but fit and predict); and levers
measured, not adopted: training's threads on one CPU and the MLflow writer on another (Linux), and
two changes of DESIGN.md's MLflow contract (contract_levers.py)."""

from __future__ import annotations

import contextlib
import functools
import itertools
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from common import HERE, QUICK, cli, interleaved, median, write_section

LOSSES, WEIGHTS, SAMPLERS = ("ce", "bce"), ("none", "balanced"), ("none", "random_over", "smote")
GRID = ["dataset=digits", "trainer=quick", f"loss={','.join(LOSSES)}", f"class_weight={','.join(WEIGHTS)}",
        f"sampler={','.join(SAMPLERS)}"]
ROUNDS = 1 if QUICK else 2
# The overhead share moves by several points between rounds on a noisy machine (one 12-run
# sequence is ~10 s): more rounds of it, and the spread is reported.
OVERHEAD_ROUNDS = 1 if QUICK else 12
PLACEMENT_ROWS = (2_000, 10_000) if QUICK else (2_000, 10_000, 30_000, 269_501)
# Changes of DESIGN.md's MLflow contract measured as levers, not adopted: (no_png, late_create)
CONTRACT_LEVERS = {"no_png": (True, False), "late_create": (False, True)}
CPUS = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []  # [] where CPUs cannot be chosen


def sweep_in_process(_round: int) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        return cli("-m", *GRID, cwd=Path(tmp), store=f"sqlite:///{tmp}/mlflow.db")


def plain_processes(_round: int) -> float:
    start = time.perf_counter()
    for loss, weight, sampler in itertools.product(LOSSES, WEIGHTS, SAMPLERS):
        subprocess.run([sys.executable, str(HERE / "plain_train.py"), "--loss", loss, "--class-weight", weight,
                        "--sampler", sampler, "--epochs", "5"], check=True, capture_output=True)
    return time.perf_counter() - start


def overhead_per_run() -> dict:
    """In one process, after a warm-up run, the 12 configs one after another as an in-process sweep
    runs them (execute, then release_job_memory), twice per round: with every MLflow write done at
    once ("sync", whose parts are timed) and with the writes in the background writer process as
    `imbalance-lab -m` does ("sweep"; its wall time includes waiting for the last write); and the
    levers measured, not adopted, as "sweep" with one change each ("one_cpu"; CONTRACT_LEVERS)."""
    import contract_levers

    from imbalance_lab import run as recipe
    from imbalance_lab import tracking
    from imbalance_lab.configs import compose
    from imbalance_lab.epoch_loop import forget_trainers
    from imbalance_lab.report import plots
    from imbalance_lab.sweep import _gradient_registry, release_job_memory

    parts = ("fit", "predict", "train_and_evaluate", "run_payload", "evaluate",
             "create_run", "finish_run", "confusion_matrix_png")
    spent = dict.fromkeys(parts, 0.0)

    def clocked(name, fn):
        def wrapper(*args, **kwargs):
            start = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                spent[name] += time.perf_counter() - start
        return wrapper

    recipe.predict_logits = clocked("predict", recipe.predict_logits)
    for name in ("fit", "train_and_evaluate", "run_payload", "evaluate"):
        setattr(recipe, name, clocked(name, getattr(recipe, name)))
    # The MLflow writes, timed when done at once (in the background they run in the writer process,
    # which is handed the functions themselves: unwrapped there).
    writes = [(tracking, "_create_run", "create_run"), (tracking, "_finish_run", "finish_run"),
              (plots, "confusion_matrix_png", "confusion_matrix_png")]
    unwrapped = {name: getattr(module, name) for module, name, _ in writes}

    def clock_writes(on: bool) -> None:
        for module, name, label in writes:
            setattr(module, name, clocked(label, unwrapped[name]) if on else unwrapped[name])
    out = {"sync": [], "sweep": [], "compose": []}
    with tempfile.TemporaryDirectory() as tmp:
        def configs(experiment):
            return [["dataset=digits", "trainer=quick", f"loss={loss}", f"class_weight={weight}", f"sampler={sampler}",
                     f"tracking.uri=sqlite:///{tmp}/mlflow.db", f"tracking.experiment={experiment}"]
                    for loss, weight, sampler in itertools.product(LOSSES, WEIGHTS, SAMPLERS)]

        def sequence(writer: tracking.Writer | None, experiment: str) -> dict:
            start = time.perf_counter()
            composed = [compose(o) for o in configs(experiment)]
            out["compose"].append((time.perf_counter() - start) / len(composed))
            writer, rows = writer or tracking.Writer(background=False), []
            clock_writes(not writer.background)
            forget_trainers()  # each sequence traces its own training functions, as a new sweep process would
            # The sweep's start creates its experiment (with the parent run) before any job: not a run's cost.
            tracking.experiment_id(tracking.client_for(composed[0][0].tracking.uri), experiment)
            start = time.perf_counter()
            for cfg, choices in composed:
                spent.update(dict.fromkeys(parts, 0.0))
                begin, before = time.perf_counter(), set(_gradient_registry())
                recipe.execute(cfg, choices, writer=writer)
                release_job_memory(before)
                total = time.perf_counter() - begin
                rows.append({"total": total, **spent, "overhead": total - spent["fit"] - spent["predict"],
                             "recipe_rest": spent["train_and_evaluate"] - spent["fit"] - spent["predict"] - spent["evaluate"],
                             "mlflow_writes": spent["create_run"] + spent["finish_run"] - spent["confusion_matrix_png"],
                             "execute_rest": total - spent["train_and_evaluate"] - spent["run_payload"]
                                             - spent["create_run"] - spent["finish_run"]})
            writer.wait()
            return {"wall": time.perf_counter() - start, "rows": rows}

        background_writer = tracking.Writer(background=True)  # one per sweep, started with it (sweep.run_job)
        # Levers measured and not adopted: one_cpu, the sweep with training's threads on one CPU and
        # the writer process on another; two changes of the MLflow contract, each in its own writer
        # process (contract_levers).
        writers = {"sync": None, "sweep": background_writer, "one_cpu": background_writer}
        for lever in CONTRACT_LEVERS:
            writers[lever] = tracking.Writer(background=True)
            writers[lever].submit(functools.partial(contract_levers.apply, *CONTRACT_LEVERS[lever]))
        for seed, writer in enumerate(dict.fromkeys(writers.values())):  # TensorFlow, MLflow, each writer process started
            recipe.execute(*compose([*configs("warm-up")[0], f"seed={90 + seed}"]), writer=writer)
            if writer is not None:
                writer.wait()
        variants, writer_pid = [v for v in writers if v != "one_cpu" or len(CPUS) > 1], []
        background_writer.submit(os.getpid, then=lambda pid, error: writer_pid.append(pid))
        background_writer.wait()
        out.update({lever: [] for lever in ("one_cpu", *CONTRACT_LEVERS)})
        for r in range(OVERHEAD_ROUNDS):
            for variant in variants[r % len(variants):] + variants[:r % len(variants)]:
                one = variant == "one_cpu"
                pin_threads({CPUS[0]} if one else set(CPUS), writer_pid[0], set(CPUS[1:]) if one else set(CPUS))
                out[variant].append(sequence(writers[variant], f"{variant}-{r}"))
        pin_threads(set(CPUS))
    return out


CONTRACT_TEXT = {"sweep": "as `imbalance-lab -m` writes (the contract)",
                 "no_png": "no confusion_matrix.png",
                 "late_create": "each run created only when its results are written (none RUNNING while it trains)"}


def _share_lists(syncs: list[dict], sweeps: list[dict]) -> tuple[list[float], list[float]]:
    """Per round, the overhead share of each sequence against the fit + predict of its round's sync
    sequence (uncontended), and on the main thread alone (fit + predict as timed in that sequence)."""
    strict = [1 - sum(r["fit"] + r["predict"] for r in sync["rows"]) / sweep["wall"] for sync, sweep in zip(syncs, sweeps)]
    main = [1 - sum(r["fit"] + r["predict"] for r in sweep["rows"]) / sweep["wall"] for sweep in sweeps]
    return strict, main


def _shares(syncs: list[dict], sweeps: list[dict]) -> str:
    """'median (min to max) | median' of _share_lists."""
    strict, main = _share_lists(syncs, sweeps)
    return f"{median(strict):.1%} ({min(strict):.1%} to {max(strict):.1%}) | {median(main):.1%}"


def pin_threads(cpus: set[int], other_pid: int | None = None, other_cpus: set[int] = frozenset()) -> None:
    """Every thread of this process on `cpus` (os.sched_setaffinity(0) moves the calling thread only),
    and the process `other_pid` on `other_cpus`; nothing on one CPU or where CPUs cannot be chosen."""
    if len(CPUS) < 2:
        return
    for tid in os.listdir("/proc/self/task"):
        with contextlib.suppress(OSError):  # a thread that ended meanwhile
            os.sched_setaffinity(int(tid), cpus)
    if other_pid is not None:
        os.sched_setaffinity(other_pid, other_cpus)


def training_placement() -> dict:
    """Seconds per epoch (median of epochs 2+) of the training path, with every thread of the process
    on one CPU and on every CPU (a lever measured, not adopted), interleaved in this
    process, median over rounds: the MLP 64-32-32-16 on seed002_profile-shaped data at several sizes,
    and the CNN (conf/model/cnn.yaml) on seed003_profile's 8x8 images (batch 256)."""
    from common import profile_data

    from imbalance_lab.configs import compose
    from imbalance_lab.data import load_splits
    from imbalance_lab.models.cnn import build_cnn
    from imbalance_lab.models.mlp import build_mlp

    out = {}
    for rows in PLACEMENT_ROWS:
        X, y = profile_data(rows)
        X_val, y_val = profile_data(max(rows // 4, 500), seed=1)
        out[f"MLP, {rows:,} rows"] = _placed_epochs(
            functools.partial(build_mlp, (X.shape[1],), 5, np.zeros(5), widths=(64, 32, 32, 16)), X, y, X_val, y_val, 5)
    cfg, _ = compose(["dataset=seed003_profile"])
    data = load_splits(cfg.dataset, 0)  # the run's own split and scaling
    out[f"CNN, seed003_profile, {len(data.X_train):,} images 8x8"] = _placed_epochs(
        functools.partial(build_cnn, data.input_shape, data.n_classes, np.zeros(data.n_classes)),
        data.X_train, data.y_train, data.X_val, data.y_val, data.n_classes)
    return out


def _placed_epochs(build, X, y, X_val, y_val, n_classes: int) -> dict:
    from common import epoch_times, trainer_cfg

    from imbalance_lab import training
    from imbalance_lab.remedies.losses import categorical_crossentropy

    times = {"one": [], "all": []}
    for r in range(ROUNDS + 1):
        for where in (("one", "all") if r % 2 == 0 else ("all", "one")):
            pin_threads({CPUS[0]} if where == "one" else set(CPUS))
            training.seed_everything(0)
            with epoch_times() as epochs:
                training.fit(build(), categorical_crossentropy("softmax"), X, y, None, X_val, y_val, n_classes,
                             trainer_cfg(epochs=4, patience=5))
            times[where].append(median(epochs[1:]))
    pin_threads(set(CPUS))
    return {k: median(v) for k, v in times.items()}


def main():
    runs = interleaved({"imbalance-lab -m (one process)": sweep_in_process,
                        "12 x python plain_train.py": plain_processes}, ROUNDS)
    ours, plain = median(runs["imbalance-lab -m (one process)"]), median(runs["12 x python plain_train.py"])
    overhead = overhead_per_run()
    placement = training_placement() if len(CPUS) > 1 else {}
    sync_rows = [row for seq in overhead["sync"] for row in seq["rows"]]
    total, fit_s = median([r["total"] for r in sync_rows]), median([r["fit"] for r in sync_rows])
    pred_s, over_s = median([r["predict"] for r in sync_rows]), median([r["overhead"] for r in sync_rows])
    share = median([r["overhead"] / r["total"] for r in sync_rows])
    # The sweep as it runs: wall time per run (last write included) against fit + predict of the
    # same round's sync sequence (uncontended), so that slower training under the writer counts as overhead.
    placed = [sweep["wall"] / one["wall"] for sweep, one in zip(overhead["sweep"], overhead["one_cpu"])]
    placed_line = "" if not placed else (
        f"Lever measured, not adopted: the same sequence with training's threads on one CPU and the writer process on "
        f"the other: {median([e['wall'] for e in overhead['one_cpu']]) / 12:.3f} s per run,\n**{median(placed):.2f}x** as "
        f"fast as on every CPU (median of the rounds' ratios; per round: {', '.join(f'{x:.2f}x' for x in placed)}).\n")
    pairs = list(zip(overhead["sync"], overhead["sweep"]))
    sweep_share, main_share = _share_lists(overhead["sync"], overhead["sweep"])
    sweep_wall = [sweep["wall"] / len(sweep["rows"]) for sweep in overhead["sweep"]]
    levers = "\n".join(f"| {CONTRACT_TEXT[lever]} | {median([s['wall'] for s in overhead[lever]]) / 12:.3f} | "
                        f"{_shares(overhead['sync'], overhead[lever])} |" for lever in ("sweep", *CONTRACT_LEVERS))
    # All rounds pooled: total overhead time over total time (each round's share is moved by the
    # machine's speed between its two sequences; pooling weighs every run alike).
    pooled = 1 - sum(r["fit"] + r["predict"] for sync, _ in pairs for r in sync["rows"]) / sum(s["wall"] for _, s in pairs)
    labels = {"confusion_matrix_png": "confusion_matrix.png (drawn by the writer)",
              "mlflow_writes": "MLflow writes: create run + params, metrics, history, tags, artifacts, dataset input, "
                               "FINISHED (the writer process's work in a sweep)",
              "run_payload": "run_payload (what MLflow receives, as data: JSON texts, config YAML, dataset schema)",
              "evaluate": "evaluate (test metrics, classification report)",
              "recipe_rest": "recipe minus fit/predict/evaluate (data, sampler, weights, model build, decision)",
              "execute_rest": "execute minus recipe, payload and writes (run_key, skip check, doctor lint) "
                              "+ release_job_memory"}
    breakdown = "\n".join(f"| {text} | {median([r[k] for r in sync_rows]):.3f} | "
                          f"{median([r[k] / r['total'] for r in sync_rows]):.1%} |" for k, text in labels.items())
    body = f"""Grid: `imbalance-lab -m {' '.join(GRID)}` (12 runs, MLflow logging into a fresh SQLite store) vs
the same 12 trainings as separate `python tests/benchmarks/plain_train.py` processes. Median of {ROUNDS} interleaved round(s).

| variant | seconds for 12 runs | per run | throughput vs plain |
| --- | --- | --- | --- |
| imbalance-lab -m (one process, incl. start-up and MLflow) | {ours:.1f} | {ours / 12:.2f} | **{plain / ours:.2f}x** |
| 12 x python plain_train.py | {plain:.1f} | {plain / 12:.2f} | 1.00x |

**Overhead as a sweep runs** (the 12 runs in one process, MLflow writes in the background writer process as
`imbalance-lab -m` does, wall time until the last write is in the store; median of {OVERHEAD_ROUNDS} round(s)):
{median(sweep_wall):.3f} s per run, of which **imbalance-lab overhead {median(sweep_share):.1%}** = 1 - (fit + predict of the
same round's sequence with every write done at once, where nothing competes with training) / wall time
(per round: {', '.join(f'{x:.1%}' for x in sweep_share)}); all rounds pooled (total overhead over total time): {pooled:.1%}.
On the main thread alone (fit + predict as timed in that sequence, i.e. slowed by the writer): {median(main_share):.1%}
(per round: {', '.join(f'{x:.1%}' for x in main_share)}).
{placed_line}
Changes of DESIGN.md's MLflow contract, measured as levers and not adopted (the same sequence, its writes
in a writer process changed by tests/benchmarks/contract_levers.py; same rounds, interleaved):

| variant | s per run | overhead, median (per round min-max) | on the main thread |
| --- | --- | --- | --- |
{levers}

Hydra composing a job's config (the launcher's work, not counted above): {median(overhead['compose']):.3f} s per run.

Where the time goes, with every write done at once (median over the runs): total {total:.3f} s per run,
training.fit {fit_s:.3f} s, predict {pred_s:.3f} s, overhead {over_s:.3f} s = {share:.1%} of the run.

| overhead part (median per run, writes done at once) | seconds | share of the run |
| --- | --- | --- |
{breakdown}"""
    rows_table = "\n".join(f"| {what} | {t['all']:.4f} | {t['one']:.4f} | **{t['all'] / t['one']:.2f}x** |"
                           for what, t in placement.items())
    body += "" if not placement else f"""

**Where training runs** (a lever measured, not adopted: training's threads on one CPU, leaving the other to
the MLflow writer process). Seconds per epoch of the training path (batch 256, epochs 2+; MLP 64-32-32-16 on seed002_profile-shaped
data, the CNN of conf/model/cnn.yaml on seed003_profile's images), every thread on one CPU vs on every CPU of this
machine, interleaved in one process, median of {ROUNDS + 1} rounds:

| model, training data | every CPU, s/epoch | one CPU, s/epoch | one CPU faster by |
| --- | --- | --- | --- |
{rows_table}"""
    write_section("2. Per-run cost in a sweep (digits, trainer=quick, 12 runs)", body,
                  f"{'QUICK=1 ' if QUICK else ''}make bench (tests/benchmarks/bench_sweep.py)")


if __name__ == "__main__":
    main()
