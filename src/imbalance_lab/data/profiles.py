"""Datasets shaped like the two forum threads in the user stories (class names, sizes, priors).

seed002: a 5-class tabular case, 157 features, 269,501 training and 33,967 test rows, with priors that
shift between train and test. seed003: a 6-class facial-expression image case whose test accuracy
sat at 83.33 % while the model predicted one class. Nothing is downloaded: seed002 is generated,
seed003 is built from scikit-learn's bundled 8x8 digit images.
"""

from __future__ import annotations

import numpy as np
from sklearn import datasets

from imbalance_lab.data.raw import RawData
from imbalance_lab.data.synthetic import (
    counts_from_priors,
    generate_counts,
    normalised_priors,
    with_feature_scales,
)
from imbalance_lab.errors import ImbalanceLabError

SEED002_LABELS = ("a", "b", "c", "d", "e")
SEED002_TRAIN_PRIORS = (0.1624, 0.3993, 0.0931, 0.2086, 0.1367)
SEED002_TEST_PRIORS = (0.1083, 0.3539, 0.1986, 0.1625, 0.1766)
SEED002_FULL_TRAIN, SEED002_FULL_TEST = 269_501, 33_967

SEED003_LABELS = ("anger", "disgust", "happiness", "neutral", "sadness", "surprise")
SEED003_TRAIN_COUNTS = (1935, 2908, 5778, 6693, 2505, 1195)
SEED003_TEST_COUNTS = (646, 970, 1927, 2232, 836, 399)


def make_seed002_profile(
    n_train: int = 20_000,
    n_test: int | None = None,
    n_features: int = 157,
    n_informative: int = 10,
    class_sep: float = 0.5,
    signal: bool = True,
    seed: int = 0,
    feature_scales: list[float] | None = None,
) -> RawData:
    """The thread's priors exactly (to the row), on `n_train` rows (the thread's full size is
    n_train=269501); the test set keeps the thread's test/train size ratio unless `n_test` is given;
    `feature_scales` puts the features on raw scales, as the thread's unstandardised table."""
    if n_test is None:
        n_test = max(len(SEED002_LABELS), int(round(n_train * SEED002_FULL_TEST / SEED002_FULL_TRAIN)))
    k = len(SEED002_LABELS)
    train_counts = counts_from_priors(normalised_priors(SEED002_TRAIN_PRIORS, k), int(n_train))
    test_counts = counts_from_priors(normalised_priors(SEED002_TEST_PRIORS, k), int(n_test))
    X, y, X_test, y_test = generate_counts(train_counts, test_counts, n_features, n_informative, class_sep,
                                           signal, seed)
    X, X_test = with_feature_scales(X, X_test, feature_scales, seed)
    names = np.asarray(SEED002_LABELS)
    return RawData(X, names[y], X_test, names[y_test], source="imbalance_lab.data.profiles.seed002",
                   description=f"seed002 profile: {n_train} train / {n_test} test rows, {n_features} features"
                               f"{'' if signal else ', no signal'}"
                               f"{'' if feature_scales is None else f', raw scales {list(feature_scales)}'}")


def make_seed003_profile(scale: float = 1.0, noise: float = 0.25, max_shift: int = 1, seed: int = 0) -> RawData:
    """Six 'expressions' drawn from six digit classes (0-5 -> anger..surprise), in the thread's class
    counts times `scale`. Each image is a bundled digit of its class, shifted by up to `max_shift`
    pixels, plus Gaussian noise of std `noise`; train and test images come from disjoint digit
    images, so the test set measures generalisation, not memory."""
    if not 0 < scale <= 4:
        raise ImbalanceLabError(f"dataset.scale={scale} must be in (0, 4]; 1.0 gives the thread's 21,014 training images.")
    bunch = datasets.load_digits()
    images = (bunch.images / 16.0).astype("float32")
    rng = np.random.default_rng(seed)
    X_train, y_train, X_test, y_test = [], [], [], []
    for c, (n_train, n_test) in enumerate(zip(SEED003_TRAIN_COUNTS, SEED003_TEST_COUNTS)):
        pool = rng.permutation(np.flatnonzero(bunch.target == c))
        cut = int(0.75 * len(pool))
        for pool_part, n, xs, ys in ((pool[:cut], n_train, X_train, y_train), (pool[cut:], n_test, X_test, y_test)):
            n = max(2, int(round(n * scale)))
            xs.append(_jitter(images[rng.choice(pool_part, size=n)], noise, max_shift, rng))
            ys.append(np.full(n, c))
    names = np.asarray(SEED003_LABELS)
    X, y = np.concatenate(X_train), np.concatenate(y_train)
    Xt, yt = np.concatenate(X_test), np.concatenate(y_test)
    order, order_t = rng.permutation(len(y)), rng.permutation(len(yt))
    return RawData(X[order][..., None], names[y[order]], Xt[order_t][..., None], names[yt[order_t]], is_image=True,
                   source="sklearn.datasets.load_digits (classes 0-5, jittered)",
                   description=f"seed003 profile: {len(y)} train / {len(yt)} test 8x8x1 images, 6 expressions")


def _jitter(images: np.ndarray, noise: float, max_shift: int, rng: np.random.Generator) -> np.ndarray:
    """Shift each image by whole pixels (zero fill) and add noise: many distinct images per source."""
    out = np.zeros_like(images)
    h, w = images.shape[1:]
    shifts = rng.integers(-max_shift, max_shift + 1, size=(len(images), 2))
    for i, (dy, dx) in enumerate(shifts):
        out[i, max(dy, 0): h + min(dy, 0), max(dx, 0): w + min(dx, 0)] = \
            images[i, max(-dy, 0): h + min(-dy, 0), max(-dx, 0): w + min(-dx, 0)]
    return np.clip(out + rng.normal(0.0, noise, size=out.shape).astype("float32"), 0.0, 1.0)
