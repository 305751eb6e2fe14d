"""Architectures: small functions that return a keras.Model emitting logits."""

from __future__ import annotations

import random
from collections import OrderedDict
from collections.abc import Hashable

import keras
import numpy as np
from hydra.utils import get_method
from omegaconf import DictConfig, OmegaConf

from imbalance_lab.configs import yaml_text
from imbalance_lab.errors import ImbalanceLabError


def build_model(model_cfg: DictConfig, input_shape, n_classes: int, output_bias: np.ndarray) -> keras.Model:
    params = OmegaConf.to_container(model_cfg, resolve=True)
    target = params.pop("_target_", None)
    if not target:
        raise ImbalanceLabError("The model config has no `_target_` builder; choose model=mlp, cnn or linear.")
    builder = get_method(target)
    return builder(input_shape=tuple(input_shape), n_classes=n_classes, output_bias=output_bias, **params)


# Initial variables of recent builds, by everything a build depends on (NewModel); a few per process.
KEPT_BUILDS = 4
OUR_BUILDERS = "imbalance_lab.models."
_builds: OrderedDict[Hashable, tuple[list[np.ndarray], tuple]] = OrderedDict()


def forget_builds() -> None:
    """No earlier build is reused (tests and benchmarks: as in a new process)."""
    _builds.clear()


class NewModel:
    """The model `build_model` builds at this point of a run, built only if asked for (`model()`).

    A kept trainer (epoch_loop) needs only its initial variables (`initial_values`). Those of an
    earlier build by one of our builders (models/*.py) are reused when everything the build depends
    on is equal: the config, input shape, class count, output bias, Keras's float type and image
    data format, and Python's and NumPy's random states (Keras seeds each initializer and dropout
    layer from Python's `random` as it builds them, then draws with stateless ops). The random
    states then move on exactly as the build moved them. This saves a build (~25 ms of Keras's
    layer graph) for most runs of a sweep, whose seed and data repeat. A builder of one's own
    (`_target_` elsewhere) may draw from other state: its models are always built. `model()` sets
    the process's random states for a moment: for the jobs of one process, one after another."""

    def __init__(self, model_cfg: DictConfig, input_shape, n_classes: int, output_bias: np.ndarray):
        self._args = (model_cfg, input_shape, n_classes, output_bias)
        self._before = _random_states()
        self._model: keras.Model | None = None
        key = None  # a builder of one's own: built every time, never reused
        if str(model_cfg.get("_target_", "")).startswith(OUR_BUILDERS):
            key = (yaml_text(model_cfg), tuple(input_shape), int(n_classes), _array_key(np.asarray(output_bias)),
                   keras.config.floatx(), keras.config.image_data_format(), _states_key(self._before))
        if key in _builds:
            _builds.move_to_end(key)
            self.initial_values, after = _builds[key]
            _set_random_states(after)
            return
        self._model = build_model(*self._args)
        self.initial_values = [v.numpy() for v in self._model.variables]
        if key is not None:
            _builds[key] = (self.initial_values, _random_states())
            while len(_builds) > KEPT_BUILDS:
                _builds.popitem(last=False)

    def model(self) -> keras.Model:
        """The model itself, built now if it was not (from the random states of its place in the run)."""
        if self._model is None:
            now = _random_states()
            _set_random_states(self._before)
            try:
                self._model = build_model(*self._args)
            finally:
                _set_random_states(now)
        return self._model


def built(model: keras.Model | NewModel) -> keras.Model:
    return model.model() if isinstance(model, NewModel) else model


def _random_states() -> tuple:
    return random.getstate(), np.random.get_state()


def _set_random_states(states: tuple) -> None:
    random.setstate(states[0])
    np.random.set_state(states[1])


def _states_key(states: tuple) -> tuple:
    python, (name, keys, pos, has_gauss, gauss) = states
    return python, name, keys.tobytes(), pos, has_gauss, gauss


def _array_key(array: np.ndarray) -> tuple:
    return array.dtype.str, array.shape, array.tobytes()
