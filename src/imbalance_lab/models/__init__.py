"""Architectures: small functions that return a keras.Model emitting logits."""

from __future__ import annotations

import keras
import numpy as np
from hydra.utils import get_method
from omegaconf import DictConfig, OmegaConf

from imbalance_lab.errors import ImbalanceLabError


def build_model(model_cfg: DictConfig, input_shape, n_classes: int, output_bias: np.ndarray) -> keras.Model:
    params = OmegaConf.to_container(model_cfg, resolve=True)
    target = params.pop("_target_", None)
    if not target:
        raise ImbalanceLabError("The model config has no `_target_` builder; choose model=mlp, cnn or linear.")
    builder = get_method(target)
    return builder(input_shape=tuple(input_shape), n_classes=n_classes, output_bias=output_bias, **params)
