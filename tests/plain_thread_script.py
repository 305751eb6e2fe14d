"""The forum thread's model as the user wrote it (mlp-predicts-one-class.txt), in a plain Keras
script: Dropout(0.5) on the raw inputs, Dense 64-32-32-16 relu with MaxNorm(3), Dense(5, sigmoid),
SGD(0.01, momentum 0.9, Nesterov), categorical cross-entropy, `fit(X, Y, batch_size=256)`. No
scaling, no imbalance-lab in the loop: only the same data generator. Prints how many test rows
each class got, as JSON.

    python plain_thread_script.py --n-train 20000 --class-sep 1.0 --feature-scales 1000 100000
"""

from __future__ import annotations

import argparse
import json
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402

from imbalance_lab.data.profiles import make_seed002_profile  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n-train", type=int, default=20_000)
    parser.add_argument("--class-sep", type=float, default=0.5)
    parser.add_argument("--feature-scales", type=float, nargs=2, default=None)
    parser.add_argument("--epochs", type=int, default=5)
    args = parser.parse_args()
    keras.utils.set_random_seed(0)
    raw = make_seed002_profile(n_train=args.n_train, class_sep=args.class_sep, feature_scales=args.feature_scales)
    labels, y = np.unique(raw.y, return_inverse=True)
    model = keras.Sequential([keras.Input((raw.X.shape[1],)), keras.layers.Dropout(0.5)])
    for width in (64, 32, 32, 16):
        model.add(keras.layers.Dense(width, activation="relu", kernel_constraint=keras.constraints.MaxNorm(3)))
    model.add(keras.layers.Dense(len(labels), activation="sigmoid"))
    model.compile(optimizer=keras.optimizers.SGD(0.01, momentum=0.9, nesterov=True), loss="categorical_crossentropy")
    model.fit(raw.X, keras.utils.to_categorical(y, len(labels)), batch_size=256, epochs=args.epochs, verbose=0)
    predicted = np.argmax(model.predict(raw.X_test, verbose=0), axis=1)
    print(json.dumps(dict(zip(labels.tolist(), np.bincount(predicted, minlength=len(labels)).tolist()))))


if __name__ == "__main__":
    main()
