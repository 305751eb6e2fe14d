"""Transfer learning, as in the forum thread's ResNet50 model: a keras.applications backbone
(ImageNet weights, none, or a weights file) with its own preprocess_input, and a head of Dense
layers. The model takes either
- images (height, width, channels) of 0-255 pixels: the backbone, frozen or with its top
  `trainable` layers fine-tuned, then the head; or
- the frozen backbone's outputs, one vector per image (embeddings.py computes them once per
  study): the head alone, which is all a frozen backbone's run has to train."""

from __future__ import annotations

from collections.abc import Sequence

import keras
import numpy as np

from imbalance_lab.embeddings import resolve_weights
from imbalance_lab.errors import ImbalanceLabError
from imbalance_lab.models.head import logits_layer

# option -> (keras.applications class, the keras.applications module holding its preprocess_input)
BACKBONES = {
    "resnet50": ("ResNet50", "resnet50"),
    "mobilenet_v2": ("MobileNetV2", "mobilenet_v2"),
    "efficientnet_b0": ("EfficientNetB0", "efficientnet"),
    "vgg16": ("VGG16", "vgg16"),
}
POOLINGS = {"avg": keras.layers.GlobalAveragePooling2D, "max": keras.layers.GlobalMaxPooling2D,
            "flatten": keras.layers.Flatten}
MIN_SIZE = 32  # the smallest input keras.applications' backbones accept


def build_pretrained(
    input_shape: tuple[int, ...],
    n_classes: int,
    output_bias: np.ndarray,
    backbone: str = "resnet50",
    weights: str | None = "imagenet",
    trainable: bool | int = False,
    pooling: str = "avg",
    widths: Sequence[int] = (256,),
    dropout: float = 0.0,
    hidden_activation: str = "relu",
) -> keras.Model:
    check_backbone(backbone, pooling)
    inputs = keras.Input(shape=input_shape)
    if len(input_shape) == 1:  # the frozen backbone's outputs, computed before the run trains
        x = inputs
    else:
        extractor = feature_extractor(backbone, resolve_weights(weights), input_shape, pooling, trainable_layers(trainable))
        x = extractor(inputs)
    for width in widths:
        x = keras.layers.Dense(width, activation=hidden_activation)(x)
        if dropout:
            x = keras.layers.Dropout(dropout)(x)
    return keras.Model(inputs, logits_layer(n_classes, output_bias)(x), name=f"pretrained_{backbone}")


def check_backbone(backbone: str, pooling: str) -> None:
    if backbone not in BACKBONES:
        raise ImbalanceLabError(f"model.backbone={backbone!r} is not one of {list(BACKBONES)}; choose one of those.")
    if pooling not in POOLINGS:
        raise ImbalanceLabError(f"model.pooling={pooling!r} is not one of {list(POOLINGS)} (flatten: the forum "
                                f"thread's Flatten of the last feature map); choose one of those.")


def trainable_layers(trainable) -> int | None:
    """0: frozen; n: the top n layers of the backbone train; None: all of them (trainable: true)."""
    if trainable is True:
        return None
    if trainable is False or trainable is None:
        return 0
    if isinstance(trainable, int) and trainable >= 0:
        return trainable
    raise ImbalanceLabError(f"model.trainable={trainable!r} is neither false (a frozen backbone), true, nor a number "
                            f"of top layers to fine-tune; use e.g. model.trainable=false or model.trainable=10.")


def feature_extractor(backbone: str, weights: str | None, image_shape: tuple[int, ...], pooling: str,
                      n_trainable: int | None = 0) -> keras.Model:
    """0-255 pixels -> the backbone's pooled outputs: grey images repeated to three channels, the
    backbone's own preprocess_input, the backbone without its top, the pooling."""
    check_backbone(backbone, pooling)
    height, width, channels = image_shape
    if min(height, width) < MIN_SIZE:
        raise ImbalanceLabError(
            f"model=pretrained needs images of at least {MIN_SIZE}x{MIN_SIZE}, but the dataset's are {height}x{width}; "
            f"use dataset.image_size=[{max(height, MIN_SIZE)},{max(width, MIN_SIZE)}] (dataset=image_folder) or model=cnn.")
    class_name, module = BACKBONES[backbone]
    network = _backbone_network(backbone, getattr(keras.applications, class_name), weights, (height, width, 3))
    network.trainable = n_trainable != 0
    for layer in network.layers[:-n_trainable] if n_trainable else ():
        layer.trainable = False
    for layer in network.layers:
        # frozen BatchNormalization normalises with its pretrained statistics, in fit too (Keras's
        # fine-tuning advice; a training=False on the nested call is overridden by fit's training=True)
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.trainable = False
    inputs = keras.Input(shape=image_shape)
    x = keras.layers.Concatenate()([inputs] * 3) if channels == 1 else inputs
    x = keras.layers.Lambda(getattr(keras.applications, module).preprocess_input, name="preprocess_input")(x)
    x = network(x)
    return keras.Model(inputs, POOLINGS[pooling]()(x), name=f"{backbone}_features")


def _backbone_network(backbone: str, constructor, weights: str | None, shape: tuple[int, int, int]) -> keras.Model:
    try:
        return constructor(include_top=False, weights=weights, input_shape=shape)
    except Exception as err:
        if weights == "imagenet" and _download_failed(err):
            raise ImbalanceLabError(
                f"model.weights=imagenet: Keras could not download the {backbone} ImageNet weights ({_one_line(err)}); "
                f"without a network use model.weights=null (a randomly initialised backbone) or model.weights=PATH, "
                f"a weights file of keras.applications.{constructor.__name__}(include_top=False) copied from a "
                f"machine that has it (~/.keras/models/).") from None
        if weights not in (None, "imagenet"):
            raise ImbalanceLabError(
                f"model.weights={weights} does not load into {backbone} without its top at {shape[0]}x{shape[1]}x3 "
                f"({_one_line(err)}); give the weights file of keras.applications.{constructor.__name__}"
                f"(include_top=False), or model.weights=imagenet or null.") from None
        raise


def _download_failed(err: BaseException) -> bool:
    import urllib.error

    return isinstance(err, urllib.error.URLError | OSError | TimeoutError) or "URL fetch failure" in str(err)


def _one_line(err: BaseException) -> str:
    return " ".join(str(err).split())[:300]
