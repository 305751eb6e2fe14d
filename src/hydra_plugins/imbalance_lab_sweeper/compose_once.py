"""Hydra's basic sweeper, composing each job's config once instead of twice.

The basic sweeper composes every config of a batch to validate it before launching (so a bad
override fails before any job has run), then the basic launcher composes each again to run it:
~0.2 s per job here, a quarter of a quick run. This sweeper keeps the configs it validated and
hands each to the launcher that asks for it with the same overrides. Hydra's joblib launcher gets
them too: the sweeper launches its batches with imbalance_lab.workers.launch_grouped, which sends
each job's config to the worker with it. Other launchers that compose in their own processes
(submitit) get nothing kept: they compose there as before. Imported at every Hydra start-up
(plugin discovery): Hydra imports only.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig


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
        config = self._loader.load_sweep_config(master_config, list(sweep_overrides))
        if self._count < self.LIMIT:
            self.hand(master_config, sweep_overrides, config)

    def hand(self, master_config: DictConfig, sweep_overrides: list[str], config: DictConfig) -> None:
        """Keep `config`, composed already, for the next `load_sweep_config` of these overrides."""
        self._kept.setdefault((id(master_config), tuple(sweep_overrides)), []).append(config)
        self._count += 1

    def load_sweep_config(self, master_config: DictConfig, sweep_overrides: list[str]) -> DictConfig:
        config = self.take(master_config, sweep_overrides)
        return config if config is not None else self._loader.load_sweep_config(master_config, list(sweep_overrides))

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
        for overrides in batch:
            self.hydra_context.config_loader.keep(self.config, list(overrides))
