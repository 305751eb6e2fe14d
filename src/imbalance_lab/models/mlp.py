"""Multi-layer perceptron, with the knobs of the forum thread's model (input dropout, max-norm)."""

from __future__ import annotations

from collections.abc import Sequence

import keras
import numpy as np

from imbalance_lab.models.head import logits_layer


def build_mlp(
    input_shape: tuple[int, ...],
    n_classes: int,
    output_bias: np.ndarray,
    widths: Sequence[int] = (64, 32),
    dropout: float = 0.0,
    input_dropout: float = 0.0,
    max_norm: float | None = None,
    hidden_activation: str = "relu",
) -> keras.Model:
    inputs = keras.Input(shape=input_shape)
    x = keras.layers.Flatten()(inputs) if len(input_shape) > 1 else inputs
    if input_dropout:
        x = keras.layers.Dropout(input_dropout)(x)
    constraint = keras.constraints.MaxNorm(max_norm) if max_norm else None
    for width in widths:
        x = keras.layers.Dense(width, activation=hidden_activation, kernel_constraint=constraint)(x)
        if dropout:
            x = keras.layers.Dropout(dropout)(x)
    return keras.Model(inputs, logits_layer(n_classes, output_bias)(x), name="mlp")
