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
the sweep goes on with loky's usual workers."""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import os
import sys
from collections.abc import Iterator

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
