"""The plain Keras script a user writes without a framework: one training per process.

    python plain_train.py --loss ce --class-weight balanced --sampler smote --epochs 5

Digits, stratified 60/20/20 split, scaling fitted on train, optional imbalanced-learn sampler,
MLP 64-32 with a softmax output, Model.fit with validation data, macro-F1 on the test split.
"""

from __future__ import annotations

import argparse
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402
from sklearn.datasets import load_digits  # noqa: E402
from sklearn.metrics import f1_score  # noqa: E402
from sklearn.model_selection import train_test_split  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402
from sklearn.utils.class_weight import compute_class_weight  # noqa: E402


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--loss", choices=["ce", "bce"], default="ce")
    parser.add_argument("--class-weight", choices=["none", "balanced"], default="none")
    parser.add_argument("--sampler", choices=["none", "random_over", "smote"], default="none")
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    keras.utils.set_random_seed(args.seed)

    X, y = load_digits(return_X_y=True)
    X_rest, X_test, y_rest, y_test = train_test_split(X, y, test_size=0.2, stratify=y, random_state=args.seed)
    X_train, X_val, y_train, y_val = train_test_split(X_rest, y_rest, test_size=0.25, stratify=y_rest,
                                                      random_state=args.seed)
    scaler = StandardScaler().fit(X_train)
    X_train, X_val, X_test = (scaler.transform(a).astype("float32") for a in (X_train, X_val, X_test))
    if args.sampler != "none":
        from imblearn.over_sampling import SMOTE, RandomOverSampler

        sampler = RandomOverSampler if args.sampler == "random_over" else SMOTE
        X_train, y_train = sampler(random_state=args.seed).fit_resample(X_train, y_train)
    classes = np.unique(y_train)
    class_weight = None
    if args.class_weight == "balanced":
        class_weight = dict(zip(classes, compute_class_weight("balanced", classes=classes, y=y_train)))

    model = keras.Sequential([keras.Input((X.shape[1],)), keras.layers.Dense(64, activation="relu"),
                              keras.layers.Dense(32, activation="relu"), keras.layers.Dense(10, activation="softmax")])
    model.compile(optimizer=keras.optimizers.Adam(1e-3),
                  loss="categorical_crossentropy" if args.loss == "ce" else "binary_crossentropy")
    model.fit(X_train, keras.utils.to_categorical(y_train, 10), batch_size=256, epochs=args.epochs,
              validation_data=(X_val, keras.utils.to_categorical(y_val, 10)), class_weight=class_weight, verbose=0)
    y_pred = model.predict(X_test, verbose=0).argmax(axis=1)
    print(f"test macro-F1 {f1_score(y_test, y_pred, average='macro'):.4f}")


if __name__ == "__main__":
    main()
