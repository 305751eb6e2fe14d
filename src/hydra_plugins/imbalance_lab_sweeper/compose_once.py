"""Hydra's basic sweeper, composing each job's config once instead of twice.

The basic sweeper composes every config of a batch to validate it before launching (so a bad
override fails before any job has run), then the basic launcher composes each again to run it:
~0.2 s per job here, a quarter of a quick run. This sweeper keeps the configs it validated and
hands each to the launcher that asks for it with the same overrides. Hydra's joblib launcher gets
them too: the sweeper launches its batches with imbalance_lab.workers.launch_grouped, which sends
each job's config to the worker with it. Other launchers that compose in their own processes
(submitit) get nothing kept: they compose there as before.

When the jobs run in this process (the basic launcher, joblib with n_jobs=1), this process must
also import TensorFlow (~5 s) before the first job: composing (~0.08 s a job) and importing used to
run one after the other. The batch is composed in a forked child instead, while this process starts
its jobs' writer and imports TensorFlow (imbalance_lab.sweep.prepare_jobs_here); the child's configs
come back pickled. If the child cannot compose them all (a bad override), this process composes the
batch itself, so that Hydra's own error is raised as before. Imported at every Hydra start-up
(plugin discovery): Hydra and the standard library only.
"""

from __future__ import annotations

import contextlib
import functools
import gc
import os
import pickle
import select
import signal
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any

from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig

# The child has this long (~0.08 s a job here) before this process composes the batch itself.
CHILD_SECONDS, CHILD_SECONDS_PER_JOB = 60.0, 1.0


class ComposedConfigs:
    """A ConfigLoader that keeps the configs composed to validate a batch (`keep`), or sent with
    their jobs (`hand`), and hands each to the first `load_sweep_config` or `take` with the same
    master config and overrides, once; any other `load_sweep_config` composes afresh (`take`
    returns None). A config listed twice is kept twice: no config object goes to two jobs."""

    LIMIT = 256  # configs kept at most (~0.1 MB each; the rest of a larger batch is composed twice)

    def __init__(self, loader: Any):
        self._loader = loader
        self._kept: dict[tuple[int, tuple[str, ...]], list[DictConfig]] = {}
        self._count = 0

    def keep(self, master_config: DictConfig, sweep_overrides: list[str]) -> None:
        """Compose (which validates) and keep the result for the launcher."""
        config = self.compose(master_config, sweep_overrides)
        if self._count < self.LIMIT:
            self.hand(master_config, sweep_overrides, config)

    def compose(self, master_config: DictConfig, sweep_overrides: list[str]) -> DictConfig:
        """A new composition, nothing kept (Hydra's own load_sweep_config)."""
        return self._loader.load_sweep_config(master_config, list(sweep_overrides))

    def hand(self, master_config: DictConfig, sweep_overrides: list[str], config: DictConfig) -> None:
        """Keep `config`, composed already, for the next `load_sweep_config` of these overrides."""
        self._kept.setdefault((id(master_config), tuple(sweep_overrides)), []).append(config)
        self._count += 1

    def load_sweep_config(self, master_config: DictConfig, sweep_overrides: list[str]) -> DictConfig:
        config = self.take(master_config, sweep_overrides)
        return config if config is not None else self.compose(master_config, sweep_overrides)

    def take(self, master_config: DictConfig, sweep_overrides: list[str]) -> DictConfig | None:
        """The kept config for these overrides, handed over once (then the launcher's: it may change
        it, e.g. the job id, and Hydra may make it read-only); None if none is kept."""
        key = (id(master_config), tuple(sweep_overrides))
        if not self._kept.get(key):
            return None
        self._count -= 1
        config = self._kept[key].pop(0)
        if not self._kept[key]:
            del self._kept[key]
        return config

    def __getattr__(self, name: str) -> Any:
        return getattr(self._loader, name)

    def __getstate__(self) -> dict:  # sent to other processes without the kept configs
        return {"_loader": self._loader, "_kept": {}, "_count": 0}

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)


class ComposeOnceSweeper(BasicSweeper):
    """`hydra/sweeper=compose_once` (imbalance-lab's default): the basic sweeper, whose launcher
    gets the configs it validated (Hydra's basic and joblib launchers)."""

    KEEPING_LAUNCHERS = ("BasicLauncher", "JoblibLauncher")

    def setup(self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig) -> None:
        context = HydraContext(config_loader=ComposedConfigs(hydra_context.config_loader),
                               callbacks=hydra_context.callbacks)
        super().setup(hydra_context=context, task_function=task_function, config=config)
        if type(self.launcher).__name__ == "JoblibLauncher":
            from imbalance_lab.workers import launch_grouped

            self.launcher.launch = functools.partial(launch_grouped, self.launcher)

    def validate_batch_is_legal(self, batch: Sequence[Sequence[str]]) -> None:
        if type(self.launcher).__name__ not in self.KEEPING_LAUNCHERS:  # composes in its own processes: keep nothing
            super().validate_batch_is_legal(batch)
            return
        configs = self.hydra_context.config_loader
        composed = None
        if self._compose_in_child():
            from imbalance_lab.sweep import prepare_jobs_here

            composed = composed_in_child(configs, self.config, batch, configs.LIMIT,
                                         meanwhile=functools.partial(prepare_jobs_here, self.config))
        if composed is None:
            for overrides in batch:
                configs.keep(self.config, list(overrides))
            return
        for overrides, config in zip(batch, composed):
            configs.hand(self.config, list(overrides), config)

    def _compose_in_child(self) -> bool:
        """The first batch of a sweep whose jobs run here: there is an import to overlap."""
        return "tensorflow" not in sys.modules and self._jobs_run_here()

    def _jobs_run_here(self) -> bool:
        """The jobs run in this process, which imports TensorFlow for them: the basic launcher, or
        joblib running one job at a time (joblib then runs them in the calling process)."""
        if type(self.launcher).__name__ == "BasicLauncher":
            return True
        from imbalance_lab.workers import jobs_at_once

        return jobs_at_once(self.config.hydra.launcher.get("n_jobs", -1)) == 1


def composed_in_child(configs: ComposedConfigs, master_config: DictConfig, batch: Sequence[Sequence[str]],
                      limit: int, meanwhile: Callable[[], object]) -> list[DictConfig] | None:
    """The configs of `batch` (the first `limit` of them; all are composed, which validates them),
    composed in a forked child while this process runs `meanwhile()`; None if the child could not
    compose every one in time (this process then composes them itself and raises Hydra's own error),
    or where the fork server of workers.py is not used either (after `meanwhile()` all the same: off
    Linux a forked child of a process with system frameworks loaded is not safe)."""
    from imbalance_lab.workers import FORK_SERVER_PLATFORM

    if not FORK_SERVER_PLATFORM:
        meanwhile()
        return None
    deadline = time.monotonic() + CHILD_SECONDS + CHILD_SECONDS_PER_JOB * len(batch)
    read_end, write_end = os.pipe()
    blocked = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})  # no Ctrl-C between fork and try
    pid = os.fork()
    if pid == 0:
        _compose_and_send(configs, master_config, batch, limit, read_end, write_end, blocked)
    signal.pthread_sigmask(signal.SIG_SETMASK, blocked)
    os.close(write_end)
    data = None
    try:
        meanwhile()
        data = _read_until(read_end, deadline)
    finally:
        os.close(read_end)
        if data is None:  # this process failed meanwhile, or the child overran: it is of no more use
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        status = _reaped(pid)
    if data is None or os.waitstatus_to_exitcode(status) != 0:
        return None
    try:
        return pickle.loads(data)
    except Exception:  # noqa: BLE001 - a config that does not travel: composed here instead
        return None


def _compose_and_send(configs: ComposedConfigs, master_config: DictConfig, batch: Sequence[Sequence[str]],
                      limit: int, read_end: int, write_end: int, blocked: set) -> None:
    """The child: compose, send, and leave without running the parent's exit handlers."""
    code = 1
    try:
        gc.disable()  # nothing of the parent's is finalised here
        signal.pthread_sigmask(signal.SIG_SETMASK, blocked)
        os.close(read_end)
        composed = []
        for number, overrides in enumerate(batch):
            config = configs.compose(master_config, list(overrides))
            if number < limit:
                composed.append(config)
        with os.fdopen(write_end, "wb") as pipe:
            pickle.dump(composed, pipe, protocol=pickle.HIGHEST_PROTOCOL)
        code = 0
    finally:
        os._exit(code)


def _read_until(fd: int, deadline: float) -> bytes | None:
    """Everything until the writer closes `fd`; None if that takes past `deadline`."""
    chunks = []
    while True:
        left = deadline - time.monotonic()
        if left <= 0 or not select.select([fd], [], [], left)[0]:
            return None
        chunk = os.read(fd, 1 << 20)
        if not chunk:
            return b"".join(chunks)
        chunks.append(chunk)


def _reaped(pid: int) -> int:
    """The child's exit status, once it has ended; a Ctrl-C while waiting ends it (never a zombie)."""
    try:
        return os.waitpid(pid, 0)[1]
    except KeyboardInterrupt:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        raise
