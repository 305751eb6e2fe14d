"""The forum thread's plain approach (cnn-accuracy-83-percent.txt), as a user writes it: a Keras
script with the frozen ResNet50 inside the model, trained by fit on the image folder, so that
every epoch sends every training image through the backbone again. Prints the seconds of each
epoch as JSON.

    python plain_images.py FOLDER --epochs 2

ResNet50 without its top at 64x64x3, weights=None (nothing downloaded; the same arithmetic as
ImageNet weights), all its layers frozen, Flatten, the thread's head, Adam(0.001),
BinaryCrossentropy, batch 64; images read by keras.utils.image_dataset_from_directory (Keras 3's
replacement of flow_from_directory) and put through ResNet50's preprocess_input.
"""

from __future__ import annotations

import argparse
import json
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
from keras import layers, regularizers  # noqa: E402


def thread_model(n_classes: int) -> keras.Model:
    base = keras.applications.ResNet50(weights=None, include_top=False, input_shape=(64, 64, 3))
    for layer in base.layers:
        layer.trainable = False
    x = layers.Flatten()(base.output)
    x = layers.Dense(256, activation="relu", kernel_regularizer=regularizers.l2(0.01))(x)
    x = layers.Dropout(0.35)(x)
    x = layers.Dense(128, activation="relu")(x)
    x = layers.BatchNormalization()(x)
    x = layers.Dense(68, activation="relu", kernel_regularizer=regularizers.l2(0.01))(x)
    x = layers.Dense(34, activation="relu")(x)
    return keras.Model(base.input, layers.Dense(n_classes, activation="softmax")(x))


class EpochClock(keras.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.seconds: list[float] = []

    def on_epoch_begin(self, epoch, logs=None):
        self._start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self.seconds.append(time.perf_counter() - self._start)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("folder")
    parser.add_argument("--epochs", type=int, default=2)
    args = parser.parse_args()
    keras.utils.set_random_seed(0)
    train = keras.utils.image_dataset_from_directory(args.folder, image_size=(64, 64), batch_size=64,
                                                     label_mode="categorical", seed=0)
    n_classes = len(train.class_names)
    train = train.map(lambda x, y: (keras.applications.resnet50.preprocess_input(x), y)).prefetch(2)
    model = thread_model(n_classes)
    model.compile(optimizer=keras.optimizers.Adam(0.001), loss=keras.losses.BinaryCrossentropy(), metrics=["accuracy"])
    clock = EpochClock()
    model.fit(train, epochs=args.epochs, callbacks=[clock], verbose=0)
    print(json.dumps({"epoch_seconds": clock.seconds}))


if __name__ == "__main__":
    main()
