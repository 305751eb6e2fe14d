"""The worker processes of a parallel sweep (Hydra's joblib launcher with n_jobs > 1).

joblib's loky backend starts each worker as a fresh interpreter that imports TensorFlow, Keras,
MLflow and the training code (~7 s of CPU per worker) once the sweep's process has opened the
store and validated the batch. Instead, the workers are forked from one fork server (Python's
'forkserver' start method, which loky supports) that the sweep starts first, so that those
imports happen once, alongside the sweep's own start-up, and every worker begins with them done.
Forking after them is safe: nothing in the server runs a TensorFlow op, so TensorFlow has no
thread pools yet, and each worker still sets its own thread counts before its first op
(sweep.limit_tf_threads)."""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import sys
from collections.abc import Iterator

from hydra.experimental.callback import Callback
from hydra.types import RunMode
from omegaconf import DictConfig

# Linux only: macOS's system frameworks are not safe to use in a forked child (Python's own default
# there is 'spawn'), and Windows has no fork; elsewhere loky's workers start as before.
FORK_SERVER_PLATFORM = sys.platform.startswith("linux")

# What the fork server imports, in order; `imbalance_lab.preloaded` last (it freezes the rest).
PRELOAD = [
    "imbalance_lab.sweep", "imbalance_lab.run", "imbalance_lab.report.plots",
    "mlflow.store.tracking.sqlalchemy_store", "hydra_plugins.hydra_joblib_launcher._core",
    "imbalance_lab.preloaded",
]


class ForkServer(Callback):
    """Hydra callback, listed before the sweep's in conf/config.yaml: Hydra instantiates every
    callback before it calls any, so the fork server starts here, before `imbalance_lab.sweep` is
    imported for the next callback (MLflow and pandas, ~2 s), and its imports overlap those too."""

    def __init__(self, launcher: DictConfig, mode: RunMode | str | None = None) -> None:
        n_workers = forked_worker_count(launcher) if str(mode).endswith("MULTIRUN") else 0
        if n_workers:
            start_fork_server(n_workers)


def forked_worker_count(launcher: DictConfig) -> int:
    """How many joblib process workers the sweep's launcher will start (0: none, e.g. n_jobs=1
    runs the jobs in this process, or a threads backend, or another launcher)."""
    if "JoblibLauncher" not in str(launcher.get("_target_", "")):
        return 0
    if launcher.get("backend") not in (None, "loky") or launcher.get("prefer", "processes") != "processes" \
            or launcher.get("require") is not None:
        return 0
    from joblib._parallel_backends import LokyBackend

    n_jobs = LokyBackend().effective_n_jobs(launcher.get("n_jobs", -1))
    return n_jobs if n_jobs > 1 and FORK_SERVER_PLATFORM else 0


def start_fork_server(n_workers: int) -> None:
    """Start the fork server now (its imports run while this process goes on) and have loky fork
    its workers from it. The server gets the thread limits joblib gives each of `n_workers` loky
    workers (OMP_NUM_THREADS and the like), since forked workers inherit its numerical libraries
    as they were initialised."""
    from multiprocessing import forkserver

    from joblib._parallel_backends import LokyBackend
    from joblib.externals.loky.backend import context as loky_context

    multiprocessing.get_context("forkserver").set_forkserver_preload(PRELOAD)
    with environment(LokyBackend()._prepare_worker_env(n_jobs=n_workers)):
        forkserver.ensure_running()
    loky_context.set_start_method("forkserver", force=True)


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
