"""The worker processes of a parallel sweep (Hydra's joblib launcher with n_jobs > 1).

joblib's loky backend starts each worker as a fresh interpreter that imports TensorFlow, Keras,
MLflow and the training code (~7 s of CPU per worker) once the sweep's process has opened the
store and validated the batch. Instead, the workers are forked from one fork server (Python's
'forkserver' start method, which loky supports) that the sweep starts first, so that those
imports happen once, alongside the sweep's own start-up, and every worker begins with them done.
Forking after them is safe: nothing in the server runs a TensorFlow op, so TensorFlow has no
thread pools yet, and each worker still sets its own thread counts before its first op
(sweep.limit_tf_threads).

As with Python's 'spawn' and 'forkserver' start methods generally, each worker imports the
command's main script as `__mp_main__` (the `imbalance-lab` script only defines its entry point);
and workers see the environment of the moment the sweep started. If the server cannot start,
the sweep goes on with loky's usual workers.

The jobs themselves reach the workers as imbalance-lab's sweeper launches them (`launch_grouped`):
each with the config the sweeper composed to validate the batch (not composed again in the worker),
and grouped so that the jobs likely to share a kept trainer (epoch_loop.py) run in one worker."""

from __future__ import annotations

import contextlib
import copy
import logging
import math
import multiprocessing
import os
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from hydra.types import RunMode
from omegaconf import DictConfig

log = logging.getLogger(__name__)

# Linux only: macOS's system frameworks are not safe to use in a forked child (Python's own default
# there is 'spawn'), and Windows has no fork; elsewhere loky's workers start as before.
FORK_SERVER_PLATFORM = sys.platform.startswith("linux")

# The fork server imports this one module, which imports the rest (its MODULES), never dying of a
# failed import, and then freezes them.
PRELOAD = ["imbalance_lab.preloaded"]


class ForkServer(Callback):
    """Hydra callback, listed before the sweep's in conf/config.yaml: Hydra instantiates every
    callback before it calls any, so the fork server starts here, before `imbalance_lab.sweep` is
    imported for the next callback (MLflow and pandas, ~2 s), and its imports overlap those too."""

    def __init__(self, launcher: DictConfig, mode: RunMode | str | None = None) -> None:
        n_workers = forked_worker_count(launcher) if str(mode).endswith("MULTIRUN") else 0
        if n_workers:
            start_fork_server(n_workers)


def forked_worker_count(launcher: DictConfig) -> int:
    """How many process workers the sweep's joblib launcher will start: 0 for another launcher or
    n_jobs=1 (joblib then runs the jobs in this process). Hydra's joblib launcher always uses loky's
    process workers, whatever `backend` and `prefer` say."""
    if "JoblibLauncher" not in str(launcher.get("_target_", "")) or not FORK_SERVER_PLATFORM:
        return 0
    n_jobs = jobs_at_once(launcher.get("n_jobs", -1))
    return n_jobs if n_jobs > 1 else 0


def jobs_at_once(n_jobs: int | None) -> int:
    """joblib's n_jobs as a number of jobs: negative counts back from the CPUs this process may use
    (affinity, cgroup quota, as joblib counts them); None means one at a time."""
    from joblib import cpu_count

    if not n_jobs:
        return 1
    return n_jobs if n_jobs > 0 else max(1, cpu_count() + 1 + n_jobs)


def forked_from_server() -> bool:
    """This process is the fork server or one of the workers forked from it: the objects it imported
    are frozen (gc.freeze) and shared with the other workers until something writes to them."""
    return PRELOAD[0] in sys.modules


def start_fork_server(n_workers: int) -> None:
    """Start the fork server now (its imports run while this process goes on) and have loky fork
    its workers from it. The server gets the thread limits joblib gives each of `n_workers` loky
    workers (OMP_NUM_THREADS and the like), since forked workers inherit its numerical libraries
    as they were initialised. Only a speed-up: if it cannot start, loky starts its workers as usual."""
    from multiprocessing import forkserver

    try:
        from joblib._parallel_backends import LokyBackend
        from joblib.externals.loky.backend import context as loky_context

        multiprocessing.get_context("forkserver").set_forkserver_preload(PRELOAD)
        with environment(LokyBackend()._prepare_worker_env(n_jobs=n_workers)):
            forkserver.ensure_running()
        loky_context.set_start_method("forkserver", force=True)
    except Exception as err:  # noqa: BLE001 - e.g. a private joblib API moved, a socket path too long
        log.warning("Parallel workers will each import TensorFlow themselves: could not start their fork "
                    "server (%s: %s).", type(err).__name__, err)


@contextlib.contextmanager
def environment(values: dict[str, str]) -> Iterator[None]:
    """os.environ with `values` set, restored after."""
    before = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in before.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


# -- launching a batch of jobs on joblib's workers ---------------------------------------------------

# Config groups whose choice does not change what a run's traced training function is
# (run.same_training: the model, the data's shape, the loss function and its class counts):
# jobs that differ only in these likely share a kept trainer.
SHARED_TRAINER_GROUPS = frozenset({"class_weight", "bias_init", "decision", "seed"})

Job = tuple[int, list[str], Any]  # (job number, overrides, its composed config or None)


def launch_grouped(launcher: Any, job_overrides: Sequence[Sequence[str]], initial_job_idx: int) -> list:
    """Hydra's joblib launch (hydra_joblib_launcher._core.launch: same logging, joblib settings and
    JobReturns in the batch's order), but each job travels with the config its sweeper composed when
    it validated the batch (~1 ms to send against ~0.2 s to compose again in the worker), and one
    joblib task runs a group of jobs (`job_groups`) in one worker, where they share kept trainers
    instead of each worker tracing the same training function again. joblib's `timeout` and
    `verbose` progress therefore apply to a group of jobs, not to each."""
    from hydra.core.singleton import Singleton
    from hydra.core.utils import configure_log, filter_overrides, setup_globals
    from hydra_plugins.hydra_joblib_launcher._core import process_joblib_cfg
    from joblib import Parallel, delayed

    setup_globals()
    configure_log(launcher.config.hydra.hydra_logging, launcher.config.hydra.verbose)
    sweep_dir = Path(str(launcher.config.hydra.sweep.dir))
    sweep_dir.mkdir(parents=True, exist_ok=True)
    joblib_cfg = launcher.joblib
    joblib_cfg["backend"] = "loky"  # as Hydra's: its threading backend cannot run Hydra jobs
    process_joblib_cfg(joblib_cfg)
    log.info("Joblib.Parallel(%s) is launching %d jobs", ",".join(f"{k}={v}" for k, v in joblib_cfg.items()),
             len(job_overrides))
    log.info("Launching jobs, sweep output dir : %s", sweep_dir)
    loader = launcher.hydra_context.config_loader
    jobs = []
    for idx, overrides in enumerate(job_overrides):
        log.info("\t#%d : %s", idx, " ".join(filter_overrides(overrides)))
        kept = loader.take(launcher.config, list(overrides))  # a ComposedConfigs (compose_once)
        jobs.append((initial_job_idx + idx, list(overrides), kept))
    tasks = job_groups(jobs, jobs_at_once(joblib_cfg.get("n_jobs")))
    state = Singleton.get_state()
    returns = Parallel(**joblib_cfg)(delayed(run_jobs)(task, launcher.hydra_context, launcher.config,
                                                       launcher.task_function, state) for task in tasks)
    by_number = {job[0]: ret for task, rets in zip(tasks, returns) for job, ret in zip(task, rets)}
    return [by_number[initial_job_idx + idx] for idx in range(len(job_overrides))]


def job_groups(jobs: list[Job], n_workers: int) -> list[list[Job]]:
    """The joblib tasks for a batch: jobs whose overrides differ only in SHARED_TRAINER_GROUPS, in
    batch order, cut into pieces of at most half a worker's share (so that the workers
    still end together when groups differ in cost), longest first. A wrong guess costs a trace,
    never a result: each run still finds its own trainer (run.same_training)."""
    groups: dict[tuple[str, ...], list[Job]] = {}
    for job in jobs:
        groups.setdefault(tuple(o for o in job[1] if _override_key(o) not in SHARED_TRAINER_GROUPS), []).append(job)
    size = max(1, math.ceil(len(jobs) / (2 * max(1, n_workers))))
    pieces = [group[i:i + size] for group in groups.values() for i in range(0, len(group), size)]
    return sorted(pieces, key=len, reverse=True)


def _override_key(override: str) -> str:
    """The config key an override sets: `loss` for `loss=ce`, `+seed=1` or `~seed`."""
    return override.split("=", 1)[0].lstrip("+~")


def run_jobs(jobs: list[Job], hydra_context: Any, master: Any, task_function: Any, singleton_state: dict) -> list:
    """In a worker: run a group of jobs one after another, each by Hydra's joblib execute_job, with
    the config it was sent with handed to its config loader (a ComposedConfigs: composed here only
    if sent without one) and its own copy of the sweep's Hydra singletons, as if sent alone. The
    process's own singletons are restored after (this matters when joblib runs the group here, n_jobs=1)."""
    from hydra.core.singleton import Singleton
    from hydra_plugins.hydra_joblib_launcher._core import execute_job

    returns, own = [], Singleton.get_state()
    try:
        for idx, overrides, config in jobs:
            if config is not None:
                hydra_context.config_loader.hand(master, overrides, config)
            returns.append(execute_job(idx, overrides, hydra_context, master, task_function,
                                       copy.deepcopy(singleton_state)))  # ~7 ms
    finally:
        Singleton.set_state(own)
    return returns
