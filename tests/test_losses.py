"""The activation/loss pairs, against hand-written NumPy references."""

import keras
import numpy as np

from imbalance_lab.remedies.losses import binary_crossentropy, categorical_crossentropy

RNG = np.random.default_rng(1)
Z = RNG.normal(size=(32, 4)).astype("float32")
Y = np.eye(4, dtype="float32")[RNG.integers(0, 4, size=32)]


def _np(x):
    return keras.ops.convert_to_numpy(x)


def _softmax(z):
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def _sigmoid(z):
    return 1 / (1 + np.exp(-z))


def test_softmax_ce_is_cross_entropy_of_softmax():
    expected = -(Y * np.log(_softmax(Z))).sum(axis=1)
    np.testing.assert_allclose(_np(categorical_crossentropy("softmax")(Y, Z)), expected, rtol=1e-5)


def test_sigmoid_ce_renormalises_the_sigmoids_like_keras_2():
    s = _sigmoid(Z)
    expected = -(Y * np.log(s / s.sum(axis=1, keepdims=True))).sum(axis=1)
    got = _np(categorical_crossentropy("sigmoid")(Y, Z))
    np.testing.assert_allclose(got, expected, rtol=1e-5)
    # and it is not silently the softmax cross-entropy (Keras 3's logits shortcut)
    assert np.abs(got - _np(categorical_crossentropy("softmax")(Y, Z))).max() > 1e-2


def test_sigmoid_bce_is_one_vs_rest():
    s = _sigmoid(Z)
    expected = -(Y * np.log(s) + (1 - Y) * np.log(1 - s)).mean(axis=1)
    np.testing.assert_allclose(_np(binary_crossentropy("sigmoid")(Y, Z)), expected, rtol=1e-5)


def test_softmax_bce_scores_softmax_columns_as_binary_problems():
    p = _softmax(Z)
    expected = -(Y * np.log(p) + (1 - Y) * np.log(1 - p)).mean(axis=1)
    np.testing.assert_allclose(_np(binary_crossentropy("softmax")(Y, Z)), expected, rtol=1e-5)
