"""Hydra's basic sweeper, composing each job's config once instead of twice.

The basic sweeper composes every config of a batch to validate it before launching (so a bad
override fails before any job has run), then the basic launcher composes each again to run it:
~0.2 s per job here, a quarter of a quick run. This sweeper keeps the configs it validated and
hands each to the launcher that asks for it with the same overrides. Launchers that compose in
other processes (joblib, submitit) compose there as before: the kept configs never leave this
process. Imported at every Hydra start-up (plugin discovery): Hydra imports only.
"""

from __future__ import annotations

from typing import Any

from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig


class ComposedConfigs:
    """A ConfigLoader that answers a repeated `load_sweep_config` (same master config, same
    overrides) with the config it composed the first time, once; everything else is the loader's."""

    LIMIT = 256  # configs kept at most (~0.1 MB each; the rest of a larger batch is composed twice)

    def __init__(self, loader: Any):
        self._loader = loader
        self._kept: dict[tuple[int, tuple[str, ...]], DictConfig] = {}

    def load_sweep_config(self, master_config: DictConfig, sweep_overrides: list[str]) -> DictConfig:
        key = (id(master_config), tuple(sweep_overrides))
        if key in self._kept:
            return self._kept.pop(key)  # the launcher's call: it may now change the config (job id)
        config = self._loader.load_sweep_config(master_config, list(sweep_overrides))
        if len(self._kept) < self.LIMIT:
            self._kept[key] = config
        return config

    def __getattr__(self, name: str) -> Any:
        return getattr(self._loader, name)

    def __getstate__(self) -> dict:  # sent to other processes without the kept configs
        return {"_loader": self._loader, "_kept": {}}

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)


class ComposeOnceSweeper(BasicSweeper):
    """`hydra/sweeper=compose_once` (imbalance-lab's default): the basic sweeper, whose launcher
    gets the configs it validated."""

    def setup(self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig) -> None:
        context = HydraContext(config_loader=ComposedConfigs(hydra_context.config_loader),
                               callbacks=hydra_context.callbacks)
        super().setup(hydra_context=context, task_function=task_function, config=config)
