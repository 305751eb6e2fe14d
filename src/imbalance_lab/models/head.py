"""The output head shared by every architecture: a Dense layer of logits, bias set by `bias_init`."""

from __future__ import annotations

import keras
import numpy as np


def logits_layer(n_classes: int, output_bias: np.ndarray) -> keras.layers.Dense:
    bias = np.asarray(output_bias, dtype="float32").reshape(n_classes)
    return keras.layers.Dense(n_classes, bias_initializer=keras.initializers.Constant(bias), name="logits")
