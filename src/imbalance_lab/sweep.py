"""Jobs and sweeps: run one job without ever taking the sweep down, and, around a Hydra
multirun, open the parent run first and print the summary and leaderboard last."""

from __future__ import annotations

import atexit
import gc
import json
import logging
import os
import sys
import traceback
from dataclasses import asdict
from pathlib import Path

import pandas as pd
from hydra.core.hydra_config import HydraConfig
from hydra.experimental.callback import Callback
from hydra.types import RunMode
from omegaconf import DictConfig

from imbalance_lab import tracking, workers
from imbalance_lab.configs import choices_from_hydra
from imbalance_lab.errors import ImbalanceLabError
from imbalance_lab.report.command import command_line as report_command_line

log = logging.getLogger(__name__)
RESULT_FILE = "job_result.json"


def run_job(cfg: DictConfig):
    """The Hydra task. In a sweep a failure is recorded and the sweep goes on; a single run
    that fails prints one sentence and exits non-zero."""
    hydra_cfg = HydraConfig.get()
    multirun = hydra_cfg.mode == RunMode.MULTIRUN
    # the writer process (in-process sweeps) starts before TensorFlow is imported, and alongside it
    writer = tracking.background_writer(cfg.tracking.uri) if multirun and in_process(hydra_cfg.launcher) else None
    from imbalance_lab.run import JobResult, execute  # imports TensorFlow: not needed for --help

    limit_tf_threads(threads_per_job(hydra_cfg.launcher))
    parent = tracking.read_parent(Path(hydra_cfg.sweep.dir)) if multirun else None
    if not multirun:
        _mark_orphans(cfg)
    gradients_before = set(_gradient_registry())
    result_file = Path(hydra_cfg.runtime.output_dir) / RESULT_FILE
    try:
        result = execute(cfg, choices_from_hydra(), parent, writer, report=lambda r: write_result(result_file, r))
    except ImbalanceLabError as err:
        result = write_result(result_file, JobResult("FAILED", None, "", "", reason=str(err)))
    except Exception as err:  # a failing job never takes the sweep down
        log.error("Job failed:\n%s", traceback.format_exc())
        result = write_result(result_file, JobResult("FAILED", None, "", "", reason=f"{type(err).__name__}: {err}"))
    finally:
        release_job_memory(gradients_before)
    if result.status == "FAILED":
        log.error("FAILED %s: %s", " ".join(hydra_cfg.overrides.task), result.reason)
        if not multirun:
            print(f"imbalance-lab: {result.reason}", file=sys.stderr)
            sys.exit(1)
    elif not multirun:
        print(f"Run logged to {cfg.tracking.uri}, experiment '{cfg.tracking.experiment}'. "
              f"Browse it: {tracking.ui_command(cfg.tracking.uri)}")
    return result.status


def write_result(path: Path, result):
    """The job's outcome, read by the sweep's summary (a background write reports it when done)."""
    path.write_text(json.dumps(asdict(result)))
    return result


def prepare_jobs_here(config: DictConfig) -> None:
    """What the first job run in this process would start with, done while the sweeper composes the
    batch in another process (compose_once): the writer process (in-process sweeps), which opens the
    store, and the import of TensorFlow and the training code."""
    if in_process(config.hydra.launcher):
        tracking.background_writer(config.tracking.uri)
    import imbalance_lab.run  # noqa: F401


def in_process(launcher: DictConfig) -> bool:
    """Jobs run one after another in this process (Hydra's basic launcher): the next job may train
    while the last one's MLflow writes finish in the writer process; the sweep's end waits for them."""
    return "BasicLauncher" in str(launcher.get("_target_", ""))


def threads_per_job(launcher: DictConfig) -> int | None:
    """TensorFlow threads for one job, so that the jobs running at once share the cores instead of
    each starting a pool as wide as the machine; None (TensorFlow's default) when jobs run one by one."""
    from joblib import cpu_count

    if launcher.get("n_jobs"):  # joblib
        return max(1, cpu_count() // workers.jobs_at_once(launcher.n_jobs))
    if launcher.get("cpus_per_task"):  # submitit: the CPUs the scheduler gave this task
        return int(launcher.cpus_per_task)
    if "submitit" in str(launcher.get("_target_", "")):
        from_slurm = os.environ.get("SLURM_CPUS_PER_TASK", "")
        return int(from_slurm) if from_slurm.isdigit() else 1  # submitit_local starts every job at once
    return None


def limit_tf_threads(threads: int | None) -> None:
    """Must run before TensorFlow's first op in this process; a reused worker (joblib) keeps the
    pools of its first job, which had the same setting."""
    if threads is None:
        return
    import tensorflow as tf

    try:
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(threads)
    except RuntimeError:  # already initialised in this process
        pass


def release_job_memory(gradients_before: set[str]) -> None:
    """Between the jobs of one process. Keras keeps every model built in its global state, and
    TensorFlow registers a gradient for each traced training function (the optimizer's all-reduce)
    in a global registry it never empties, which holds that function's graphs: ~2.4 MB per run,
    without bound. The job's functions are gone once it ends (but for the trainers kept for later
    jobs, which no longer need theirs: epoch_loop), so its registrations go too.
    (Not for jobs running as threads of one process: clear_session is process-wide anyway.)"""
    import keras

    from imbalance_lab.epoch_loop import dropped_trainers_due
    from imbalance_lab.training import compiled_functions_kept

    with compiled_functions_kept():  # the kept trainers' functions stay compiled for the next job (epoch_loop)
        keras.backend.clear_session(free_memory=False)  # its own gc.collect() would make a second pass
    registry = _gradient_registry()
    for name in set(registry) - gradients_before:
        if name.startswith("CustomGradient-"):
            del registry[name]
    # Trainers kept across jobs were frozen with the rest: once some are dropped, a full walk frees
    # them (never in a fork server's worker, whose frozen objects are shared: epoch_loop.epoch_trainer).
    if dropped_trainers_due() and not workers.forked_from_server():
        gc.unfreeze()
    gc.collect()
    # What survives is live (TensorFlow, Keras, the data caches: ~670k objects); frozen, it is not
    # walked again by the next job's collection, which then costs ~10x less.
    gc.freeze()


def _gradient_registry() -> dict:
    """TensorFlow's private registry of gradient functions ({} if a TensorFlow version moves it)."""
    from tensorflow.python.framework import ops

    return getattr(getattr(ops, "gradient_registry", None), "_registry", {})


def _mark_orphans(cfg: DictConfig) -> None:
    client = tracking.client_for(cfg.tracking.uri)
    tracking.mark_orphans_killed(client, tracking.experiment_id(client, cfg.tracking.experiment))


class SweepCallback(Callback):
    """Hydra callback: one parent run per multirun; a summary and leaderboard at its end."""

    def on_multirun_start(self, config: DictConfig, **kwargs) -> None:
        sweep_dir = Path(config.hydra.sweep.dir)
        try:
            info = tracking.start_sweep(config.tracking.uri, config.tracking.experiment, sweep_dir,
                                        list(config.hydra.overrides.task))
        except Exception as err:  # Hydra would only warn and launch every job without its parent
            print(f"imbalance-lab: could not open the sweep in MLflow at {config.tracking.uri} "
                  f"({type(err).__name__}: {err}); check tracking.uri and that the store is reachable.",
                  file=sys.stderr)
            sys.exit(1)
        log.info("Sweep parent run %s in experiment '%s' at %s", info["run_id"], config.tracking.experiment,
                 config.tracking.uri)
        atexit.register(end_if_interrupted, info)

    def on_multirun_end(self, config: DictConfig, **kwargs) -> None:
        sweep_dir = Path(config.hydra.sweep.dir)
        tracking.wait_for_writes()  # the last jobs' runs, logged in the background (in-process sweeps)
        info = tracking.read_parent(sweep_dir)
        results = read_results(sweep_dir)
        failed = [r for r in results if r["status"] != "FINISHED" and r["status"] != "SKIPPED"]
        print(summary_text(results))
        if info:
            print(leaderboard_text(info, results))
            tracking.end_sweep(info, len(failed))
            print(f"\nBrowse the runs: {tracking.ui_command(info['uri'])}")
            print(f"Compare them (leaderboard over seeds, effects, tests, plots): "
                  f"{report_command_line(config.tracking.experiment, info['uri'])}")
        gc.freeze()  # nothing is left to collect: exit without a last walk over every object (~1 s)
        if failed:
            sys.exit(1)


def end_if_interrupted(info: dict) -> None:
    """At exit: a parent run still RUNNING means the sweep never reached its end (Ctrl-C, or Hydra
    raised); it ends KILLED, after the writes queued before (the interrupted job's run is KILLED too).
    So do runs whose worker process is gone: joblib stops its workers at once, maybe before one has
    ended its run."""
    try:
        tracking.wait_for_writes()
        client = tracking.client_for(info["uri"])
        if client.get_run(info["run_id"]).info.status == "RUNNING":
            client.set_tag(info["run_id"], "error", "the sweep was interrupted before its end")
            client.set_terminated(info["run_id"], status="KILLED")
            tracking.mark_orphans_killed(client, info["experiment_id"], info["run_id"])
    except Exception as err:  # the store went away: the next sweep marks the runs KILLED (their pids are dead)
        log.warning("Could not end the interrupted sweep's runs: %s", err)


def read_results(sweep_dir: Path) -> list[dict]:
    """One record per job directory; a job that died without writing one counts as CRASHED."""
    results = []
    for job_dir in sorted((p for p in sweep_dir.iterdir() if (p / ".hydra").is_dir()), key=_job_order):
        path = job_dir / RESULT_FILE
        if path.is_file():
            results.append(json.loads(path.read_text()))
        else:
            results.append({"status": "CRASHED", "name": job_dir.name, "run_id": None,
                            "reason": "the job's process ended without reporting (killed or out of memory)"})
    return results


def _job_order(path: Path):
    return (0, int(path.name)) if path.name.isdigit() else (1, path.name)


def summary_text(results: list[dict]) -> str:
    count = {s: sum(r["status"] == s for r in results) for s in ("FINISHED", "FAILED", "SKIPPED", "CRASHED")}
    lines = [f"\nSweep: {count['FINISHED']} finished, {count['FAILED'] + count['CRASHED']} failed, "
             f"{count['SKIPPED']} skipped (already FINISHED; tracking.rerun=true to retrain)."]
    lines += [f"  FAILED {r['name'] or '(before its run started)'}: {r['reason']}"
              for r in results if r["status"] in ("FAILED", "CRASHED")]
    return "\n".join(lines)


def leaderboard_text(info: dict, results: list[dict], top: int = 40) -> str:
    ids = [r["run_id"] for r in results if r["status"] in ("FINISHED", "SKIPPED") and r["run_id"]]
    if not ids:
        return "No finished runs to rank."
    frame = leaderboard_frame(info["uri"], info["experiment_id"], ids)
    skipped = {r["run_id"] for r in results if r["status"] == "SKIPPED"}
    frame["note"] = ["earlier" if run_id in skipped else "" for run_id in frame.pop("run_id")]
    shown = frame.head(top).to_string(index=False, float_format=lambda v: f"{v:.4f}")
    more = f"top {top} of {len(frame)}, " if len(frame) > top else ""
    return f"\nLeaderboard (test macro-F1, {more}best first; naive = always the training majority class):\n{shown}"


def leaderboard_frame(uri: str, exp_id: str, run_ids: list[str]) -> pd.DataFrame:
    client = tracking.client_for(uri)
    rows = []
    for start in range(0, len(run_ids), 100):
        chunk = ", ".join(f"'{r}'" for r in run_ids[start : start + 100])
        for run in client.search_runs([exp_id], filter_string=f"attributes.run_id IN ({chunk})", max_results=1000):
            m = run.data.metrics
            rows.append({"run": run.info.run_name, "macro_f1": m.get("test/macro_f1"),
                         "naive_f1": m.get("naive/macro_f1"), "bal_acc": m.get("test/balanced_accuracy"),
                         "accuracy": m.get("test/accuracy"), "keras_acc": m.get("keras/accuracy"),
                         "collapsed": run.data.tags.get("collapsed", "?"),
                         "doctor": run.data.tags.get("doctor.warnings", "").replace("; ", ","),
                         "run_id": run.info.run_id})
    return pd.DataFrame(rows).sort_values("macro_f1", ascending=False, ignore_index=True)
