"""A linear model (multinomial logistic regression on the flattened input): no hidden layer, so
whatever it learns beyond the priors comes straight from the features."""

from __future__ import annotations

import keras
import numpy as np

from imbalance_lab.models.head import logits_layer


def build_linear(input_shape: tuple[int, ...], n_classes: int, output_bias: np.ndarray, l2: float = 0.0) -> keras.Model:
    inputs = keras.Input(shape=input_shape)
    x = keras.layers.Flatten()(inputs) if len(input_shape) > 1 else inputs
    head = logits_layer(n_classes, output_bias)
    if l2:
        head.kernel_regularizer = keras.regularizers.L2(l2)
    return keras.Model(inputs, head(x), name="linear")
