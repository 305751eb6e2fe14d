"""A small convolutional network for image datasets (8x8 digits and up)."""

from __future__ import annotations

from collections.abc import Sequence

import keras
import numpy as np

from imbalance_lab.errors import ImbalanceLabError
from imbalance_lab.models.head import logits_layer


def build_cnn(
    input_shape: tuple[int, ...],
    n_classes: int,
    output_bias: np.ndarray,
    filters: Sequence[int] = (16, 32),
    kernel_size: int = 3,
    dense: int = 64,
    dropout: float = 0.25,
    padding: str = "same",
) -> keras.Model:
    """Conv (ReLU) + 2x2 max-pool per entry of `filters`, then a dense ReLU layer and dropout.
    padding="valid" with filters [20, 50], kernel 5 and dense 200 is the LeNet-style net of the
    MNIST imbalance studies (experiments/kwon_2019.yaml)."""
    if padding not in ("same", "valid"):
        raise ImbalanceLabError(f"model.padding={padding!r} is not one of ['same', 'valid'].")
    if len(input_shape) != 3:
        raise ImbalanceLabError(
            f"model=cnn needs image data (height, width, channels) but the dataset's rows have shape "
            f"{input_shape}; use model=mlp, or an image dataset such as dataset=digits."
        )
    inputs = keras.Input(shape=input_shape)
    x = inputs
    for n_filters in filters:
        x = keras.layers.Conv2D(n_filters, kernel_size, padding=padding, activation="relu")(x)
        if min(x.shape[1], x.shape[2]) >= 2:
            x = keras.layers.MaxPooling2D(2)(x)
    x = keras.layers.Flatten()(x)
    if dense:
        x = keras.layers.Dense(dense, activation="relu")(x)
    if dropout:
        x = keras.layers.Dropout(dropout)(x)
    return keras.Model(inputs, logits_layer(n_classes, output_bias)(x), name="cnn")
