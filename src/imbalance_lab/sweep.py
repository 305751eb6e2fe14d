"""Jobs and sweeps: run one job without ever taking the sweep down, and, around a Hydra
multirun, open the parent run first and print the summary and leaderboard last."""

from __future__ import annotations

import atexit
import gc
import json
import logging
import os
import socket
import sys
import threading
import time
import traceback
from dataclasses import asdict
from pathlib import Path

import pandas as pd
from hydra.core.hydra_config import HydraConfig
from hydra.experimental.callback import Callback
from hydra.types import RunMode
from omegaconf import DictConfig

from imbalance_lab import tracking
from imbalance_lab.configs import choices_from_hydra, run_name, validate
from imbalance_lab.errors import FULL_TEXTS, DiskFull, ImbalanceLabError, disk_full
from imbalance_lab.job_signals import StoppedBySlurm, stopped_by_slurm
from imbalance_lab.paths import console_script
from imbalance_lab.report.command import command_line as report_command_line

log = logging.getLogger(__name__)
RESULT_FILE = "job_result.json"
WATCH_SECONDS = 1.0   # how often a worker process checks that its sweep's process is alive


def run_job(cfg: DictConfig):
    """The Hydra task. In a sweep a failure is recorded and the sweep goes on; a single run
    that fails prints one sentence and exits non-zero."""
    from imbalance_lab.run import JobResult, execute

    hydra_cfg = HydraConfig.get()
    multirun = hydra_cfg.mode == RunMode.MULTIRUN
    parent = tracking.read_parent(Path(hydra_cfg.sweep.dir)) if multirun else None
    result_file = Path(hydra_cfg.runtime.output_dir) / RESULT_FILE
    overrides = " ".join(hydra_cfg.overrides.task)
    watch_sweep_process(parent)
    limit_tf_threads(threads_per_job(hydra_cfg.launcher))
    stopped = False
    try:
        validate(cfg)
        if not multirun:
            tracking.check_store(cfg.tracking.uri)
            _mark_orphans(cfg)
        note = sweep_progress(parent, hydra_cfg.job.num) if multirun else None
        with stopped_by_slurm():  # scancel / time limit: the run ends KILLED and this job still reports
            result = execute(cfg, choices_from_hydra(), parent, progress_note=note)
    except StoppedBySlurm as stop:
        stopped = True
        result = JobResult("KILLED", None, run_name(choices_from_hydra(), cfg.seed), "", reason=str(stop))
    except ImbalanceLabError as err:
        result = JobResult("FAILED", None, "", "", reason=str(err))
    except Exception as err:  # a failing job never takes the sweep down, unless the disk is full
        stop_if_disk_full(cfg.tracking.uri, err)
        log.error("Job failed:\n%s", traceback.format_exc())
        result = JobResult("FAILED", None, "", "", reason=f"{type(err).__name__}: {err}")
    finally:
        if not stopped:  # else the process ends now, and TensorFlow, cut off anywhere, may be mid-trace
            release_job_memory()
    try:
        write_result(result_file, result, parent, overrides)
    except OSError as err:
        stop_if_disk_full(cfg.tracking.uri, err)
        raise
    if result.status in ("FAILED", "KILLED"):
        log.error("%s %s: %s", result.status, overrides, result.reason)
        if not multirun:
            print(f"imbalance-lab: {result.reason}", file=sys.stderr)
            sys.exit(1)
    elif not multirun:
        print(f"Run logged to {cfg.tracking.uri}, experiment '{cfg.tracking.experiment}'. "
              f"Browse it: {tracking.ui_command(cfg.tracking.uri)}")
    return result.status


def count_jobs(config: DictConfig) -> int | None:
    """The number of jobs the basic sweeper makes of the study's grid and the command line's sweeps
    (None when a sweep cannot be counted here, e.g. a glob)."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    overrides = {str(k): f"{k}={v}" for k, v in (config.hydra.sweeper.get("params") or {}).items()}
    overrides |= {o.split("=", 1)[0]: o for o in config.hydra.overrides.task}
    total = 1
    try:
        for override in OverridesParser.create().parse_overrides(list(overrides.values())):
            if override.is_sweep_override():
                total *= len(list(override.sweep_string_iterator()))
    except Exception:  # noqa: BLE001 - an uncountable sweep only loses its time estimate
        return None
    return total


def sweep_progress(parent: dict | None, job_number: int):
    """For a job of a sweep whose size is known: its position and the sweep's time left, estimated
    from the time the sweep has taken so far (for progress lines)."""
    if not parent or not parent.get("n_jobs"):
        return None
    total, started = int(parent["n_jobs"]), float(parent["started"])

    def note(run_done: float) -> str:
        done = min(job_number + run_done, total)
        left = (time.time() - started) / done * (total - done) if done > 0 else float("nan")
        estimate = f", about {left / 60:.1f} min of the sweep left" if left == left else ""
        return f"job {job_number + 1}/{total}{estimate}"

    return note


def stop_if_disk_full(uri: str, err: BaseException) -> None:
    """A write that failed because a disk is full stops the sweep (DiskFull passes through Hydra's
    launchers) instead of letting every later job fail the same way."""
    full = disk_full(err)
    if full is None:
        return
    lines = str(full).splitlines() or [type(full).__name__]
    detail = next((line for line in lines if any(text in line.lower() for text in FULL_TEXTS)), lines[0])[:300]
    log.error("A disk is full: %s", detail)
    path = getattr(full, "filename", None)
    store = tracking.sqlite_path(uri)
    folder = Path(path).parent if path else (store.parent if store else None)
    raise DiskFull(uri, str(folder.resolve()) if folder else "", detail) from None


def write_result(path: Path, result, parent: dict | None, overrides: str) -> None:
    """The job's outcome, read by its sweep's summary (only by the sweep named by `parent`)."""
    record = {**asdict(result), "overrides": overrides, "parent_run_id": (parent or {}).get("run_id")}
    path.write_text(json.dumps(record))


def watch_sweep_process(parent: dict | None) -> None:
    """In a worker process of a parallel sweep on this machine (joblib, submitit_local): if the
    sweep's process dies (kill -9), end the run being trained KILLED and exit, instead of training
    on for minutes and logging runs nobody waits for. Once per worker process."""
    if (not parent or parent.get("pid") in (None, os.getpid()) or parent.get("host") != socket.gethostname()
            or os.environ.get("SLURM_JOB_ID") or _watching):
        return
    _watching.append(parent["pid"])
    threading.Thread(target=_watch, args=(int(parent["pid"]),), name="imbalance-lab-sweep-watch", daemon=True).start()


_watching: list[int] = []


def _watch(pid: int) -> None:
    while tracking.pid_alive(pid):
        time.sleep(WATCH_SECONDS)
    from imbalance_lab.run import current_run

    run = current_run[0]
    if run is not None:
        try:
            tracking.end_run(run.client, run.run_id, "KILLED", "its sweep's process was killed")
        except Exception as err:  # the next sweep marks it KILLED (this pid will be dead)
            log.warning("Could not end run %s: %s", run.run_id, err)
    os._exit(1)


def threads_per_job(launcher: DictConfig) -> int | None:
    """TensorFlow threads for one job, so that the jobs running at once share the cores instead of
    each starting a pool as wide as the machine; None (TensorFlow's default) when jobs run one by one."""
    from joblib import cpu_count

    n_jobs = launcher.get("n_jobs")
    if n_jobs:  # joblib: negative counts back from the CPUs this process may use
        at_once = n_jobs if n_jobs > 0 else max(1, cpu_count() + 1 + n_jobs)
        return max(1, cpu_count() // at_once)
    if launcher.get("cpus_per_task"):  # submitit: the CPUs the scheduler gave this task
        return int(launcher.cpus_per_task)
    if "submitit" in str(launcher.get("_target_", "")):
        from_slurm = os.environ.get("SLURM_CPUS_PER_TASK", "")
        return int(from_slurm) if from_slurm.isdigit() else 1  # submitit_local starts every job at once
    return None


def limit_tf_threads(threads: int | None) -> None:
    """Before TensorFlow's first op in this process: through TensorFlow's own environment
    variables when it is not imported yet (a skipped job never imports it), else its config API
    (a reused joblib worker keeps the pools of its first job, which had the same setting)."""
    if threads is None:
        return
    os.environ["OMP_NUM_THREADS"] = str(threads)  # faiss's OpenMP (approximate neighbours) reads it at its first search
    if "tensorflow" not in sys.modules:
        os.environ["TF_NUM_INTRAOP_THREADS"] = os.environ["TF_NUM_INTEROP_THREADS"] = str(threads)
        return
    import tensorflow as tf

    try:
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(threads)
    except RuntimeError:  # already initialised in this process
        pass


def release_job_memory() -> None:
    """Between the jobs of one process: Keras keeps every model built in its global state.

    What survives the collection is the libraries' own state (~700,000 objects once TensorFlow,
    MLflow and Hydra are imported), which a job never frees. Freezing it takes it out of every later
    collection, so that the next job's collections (Keras's own here, Python's automatic ones
    during training) scan only that job's objects, not the whole process, which took ~0.7 s each."""
    if "keras" in sys.modules:
        sys.modules["keras"].backend.clear_session(free_memory=True)  # runs gc.collect()
    else:
        gc.collect()
    gc.freeze()


def _mark_orphans(cfg: DictConfig) -> None:
    client = tracking.client_for(cfg.tracking.uri)
    tracking.mark_orphans_killed(client, tracking.experiment_id(client, cfg.tracking.experiment))


class SweepCallback(Callback):
    """Hydra callback: one parent run per multirun; a summary and leaderboard at its end."""

    def on_multirun_start(self, config: DictConfig, **kwargs) -> None:
        sweep_dir = Path(config.hydra.sweep.dir)
        try:
            tracking.check_store(config.tracking.uri)
            info = tracking.start_sweep(config.tracking.uri, config.tracking.experiment, sweep_dir,
                                        list(config.hydra.overrides.task))
        except ImbalanceLabError as err:
            print(f"imbalance-lab: {err}", file=sys.stderr)
            sys.exit(1)
        except Exception as err:  # Hydra would only warn and launch every job without its parent
            print(f"imbalance-lab: could not open the sweep in MLflow at {config.tracking.uri} "
                  f"({type(err).__name__}: {err}); check tracking.uri and that the store is reachable.",
                  file=sys.stderr)
            sys.exit(1)
        info["n_jobs"] = count_jobs(config)
        tracking.write_parent(sweep_dir, info)
        log.info("Sweep parent run %s in experiment '%s' at %s", info["run_id"], config.tracking.experiment,
                 config.tracking.uri)
        _sweeps.append(info)
        atexit.register(end_if_interrupted, info)

    def on_multirun_end(self, config: DictConfig, **kwargs) -> None:
        sweep_dir = Path(config.hydra.sweep.dir)
        info = tracking.read_parent(sweep_dir)
        results = read_results(sweep_dir, info)
        failed = [r for r in results if r["status"] not in ("FINISHED", "SKIPPED")]
        print(summary_text(results))
        if info:
            print(leaderboard_text(info, results))
            describe_in_mlflow(info, results)
            tracking.end_sweep(info, len(failed))
            print(f"\nBrowse the runs: {tracking.ui_command(info['uri'])}")
            print(f"Compare them (leaderboard over seeds, effects, tests, plots): "
                  f"{report_command_line(config.tracking.experiment, info['uri'])}")
        if failed:
            sys.exit(1)


_sweeps: list[dict] = []  # the sweep this process opened (its parent run), for interrupted_message


def resume_command() -> str:
    """This command again, pasteable from any folder in a new shell: the folder it ran in, the store
    it wrote to (when the environment chose it) and the absolute path of the console script."""
    import shlex

    store = os.environ.get("MLFLOW_TRACKING_URI")
    quiet = ["--quiet"] if os.environ.get("IMBALANCE_LAB_QUIET") and "--quiet" not in sys.argv else []
    command = shlex.join([console_script("imbalance-lab"), *quiet, *sys.argv[1:]])
    return (f"cd {shlex.quote(os.getcwd())} && " + (f"MLFLOW_TRACKING_URI={shlex.quote(store)} " if store else "")
            + command)


def interrupted_message() -> str:
    """One sentence for Ctrl-C: what is kept, and the command that resumes (it skips what finished)."""
    if not _sweeps:
        return (f"interrupted; nothing of this run is lost but the run itself (ended KILLED); run it again: "
                f"{resume_command()}")
    return (f"interrupted; the {_finished(_sweeps[-1])} run(s) this sweep finished are kept and the interrupted ones "
            f"ended KILLED; the same command resumes it, skipping what finished: {resume_command()}")


def disk_full_message(err: DiskFull) -> str:
    """One sentence for a full disk: which disk and its free space, what is kept, the command that
    resumes. The sweep's parent run is ended here (KILLED) if the store still takes that write."""
    import shutil

    where = f"the disk holding {err.folder}" if err.folder else f"the disk of the tracking server at {err.uri}"
    try:
        free = f" ({shutil.disk_usage(err.folder).free / 2**20:.1f} MB free)" if err.folder else ""
    except OSError:
        free = ""
    if not _sweeps:
        return (f"{where} is full{free}, so the run stopped before its end (a run it could not end is marked KILLED "
                f"by the next command); free some space, then run it again: {resume_command()}")
    info = _sweeps[-1]
    atexit.unregister(end_if_interrupted)
    end_if_interrupted(info, "a disk is full", quiet=True)
    return (f"{where} is full{free}, so the sweep stopped: the {_finished(info)} run(s) it finished are kept; free "
            f"some space, then resume it with the same command, which skips what finished: {resume_command()}")


def _finished(info: dict) -> int:
    """How many of the sweep's runs are FINISHED in the store (0 if it cannot be read)."""
    try:
        client = tracking.client_for(info["uri"])
        return len(client.search_runs([info["experiment_id"]], max_results=5000, filter_string=(
            f"tags.mlflow.parentRunId = '{info['run_id']}' and attributes.status = 'FINISHED'")))
    except Exception as err:  # the store went away: say what can be said
        log.debug("Could not count the finished runs: %s", err)
        return 0


def describe_in_mlflow(info: dict, results: list[dict]) -> None:
    """The sweep's parent run shows the answer in the MLflow UI: its leaderboard (top rows, seeds and
    intervals) as the run's description, the best row's mean (`best/test_macro_f1`) and the best
    single run's test macro-F1 (`best_run/test_macro_f1`) as its metrics."""
    from imbalance_lab.report.summary import write_sweep_note

    ids = [r["run_id"] for r in results if r["status"] in ("FINISHED", "SKIPPED") and r["run_id"]]
    scores = [r["macro_f1"] for r in results if r.get("macro_f1") is not None]
    try:
        write_sweep_note(info["uri"], info["experiment_id"], info["run_id"], ids)
        if ids:
            frame = leaderboard_frame(info["uri"], info["experiment_id"], ids)
            scores = frame["macro_f1"].dropna().tolist() or scores
        if scores:
            tracking.client_for(info["uri"]).log_metric(info["run_id"], "best_run/test_macro_f1", max(scores))
    except Exception as err:  # the summary is printed already; the sweep still ends
        log.warning("Could not write the sweep's leaderboard to its parent run: %s", err)


def end_if_interrupted(info: dict, reason: str = "the sweep was interrupted before its end", quiet: bool = False) -> None:
    """At exit: a parent run still RUNNING means the sweep never reached its end (Ctrl-C, a full disk,
    or Hydra raised); it ends KILLED (the interrupted job's run is KILLED already). So do runs whose
    worker process is gone: joblib stops its workers at once, maybe before one has ended its run."""
    try:
        client = tracking.client_for(info["uri"])
        if client.get_run(info["run_id"]).info.status == "RUNNING":
            tracking.end_run(client, info["run_id"], "KILLED", reason)
            tracking.mark_orphans_killed(client, info["experiment_id"], info["run_id"])
    except Exception as err:  # the store went away: the next sweep marks the runs KILLED (their pids are dead)
        log.log(logging.DEBUG if quiet else logging.WARNING, "Could not end the interrupted sweep's runs: %s", err)


def read_results(sweep_dir: Path, parent: dict | None) -> list[dict]:
    """One record per job of this sweep: its job folders' results that name this sweep's parent
    run (a folder reused by an earlier sweep keeps that sweep's results: they are not ours). A job
    of this sweep that died without writing one counts as CRASHED."""
    parent_id, started = (parent or {}).get("run_id"), (parent or {}).get("started", 0.0)
    results = []
    for job_dir in sorted((p for p in sweep_dir.iterdir() if (p / ".hydra").is_dir()), key=_job_order):
        path = job_dir / RESULT_FILE
        record = json.loads(path.read_text()) if path.is_file() else None
        if record is not None and record.get("parent_run_id") == parent_id:
            results.append(record)
        elif record is None and (job_dir / ".hydra").stat().st_mtime >= started - 1:
            overrides = job_dir / ".hydra" / "overrides.yaml"
            results.append({"status": "CRASHED", "name": "", "run_id": None,
                            "overrides": " ".join(_overrides(overrides)),
                            "reason": "the job's process ended without reporting (killed or out of memory)"})
    return results


def _overrides(path: Path) -> list[str]:
    import yaml

    try:
        return [str(o) for o in yaml.safe_load(path.read_text()) or []]
    except (OSError, yaml.YAMLError):
        return []


def _job_order(path: Path):
    return (0, int(path.name)) if path.name.isdigit() else (1, path.name)


def summary_text(results: list[dict]) -> str:
    count = {s: sum(r["status"] == s for r in results) for s in ("FINISHED", "FAILED", "SKIPPED", "CRASHED", "KILLED")}
    killed = f"{count['KILLED']} killed (stopped by SLURM; the next run trains them), " if count["KILLED"] else ""
    lines = [f"\nSweep: {count['FINISHED']} finished, {count['FAILED'] + count['CRASHED']} failed, {killed}"
             f"{count['SKIPPED']} skipped (already FINISHED; tracking.rerun=true to retrain)."]
    lines += [f"  {'KILLED' if r['status'] == 'KILLED' else 'FAILED'} "
              f"{r['name'] or '(before its run started: ' + (r.get('overrides') or 'no overrides') + ')'}: "
              f"{r['reason']}" for r in results if r["status"] in ("FAILED", "CRASHED", "KILLED")]
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
