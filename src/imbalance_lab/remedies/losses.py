"""Losses as plain functions of (y_true, logits) built from keras.ops, for any Keras backend.

The model always emits logits z. Each factory receives the run's output activation and the
training class counts, and returns a loss over one-hot targets. The activation/loss pairs that
forum threads get wrong are computed with their real arithmetic: `ce` on sigmoid outputs is
cross-entropy on the sigmoids renormalised to sum to 1 (what Keras 2 did), and `bce` on softmax
outputs is binary cross-entropy on the softmax probabilities. Keras 3 on TensorFlow silently
swaps in the logits when its losses see a sigmoid or softmax output (`_keras_logits`), which
would hide those mistakes, so they are written out here. `loss_fn.form` states which form was
used; it is logged in remedies.json.
"""

from __future__ import annotations

from collections.abc import Callable

import keras
from keras import ops

from imbalance_lab.errors import ImbalanceLabError

ACTIVATIONS = ("softmax", "sigmoid")


def activate(logits, activation: str):
    """Probabilities from logits for the run's output activation."""
    check_activation(activation)
    return ops.softmax(logits, axis=-1) if activation == "softmax" else ops.sigmoid(logits)


def check_activation(activation: str) -> None:
    if activation not in ACTIVATIONS:
        raise ImbalanceLabError(f"activation.function={activation!r} is not one of {list(ACTIVATIONS)}.")


def _with_form(fn: Callable, name: str, form: str) -> Callable:
    fn.__name__ = name
    fn.form = form
    return fn


EPSILON = 1e-7  # keras.backend.epsilon(): the clipping Keras applies to probabilities


def _clipped(p):
    return ops.clip(p, EPSILON, 1.0 - EPSILON)


def categorical_crossentropy(activation: str, class_counts=None) -> Callable:
    """-sum_c y_c log p_c. softmax: from logits (stable). sigmoid: on sigmoid(z) / sum sigmoid(z),
    as Keras's categorical cross-entropy treats non-normalised outputs (the forum's setting)."""
    check_activation(activation)
    if activation == "softmax":
        def loss(y_true, logits):
            return keras.losses.categorical_crossentropy(y_true, logits, from_logits=True)
        return _with_form(loss, "ce", "categorical cross-entropy on softmax(z), from logits")

    def loss(y_true, logits):
        s = ops.sigmoid(logits)
        p = _clipped(s / ops.sum(s, axis=-1, keepdims=True))
        return -ops.sum(y_true * ops.log(p), axis=-1)
    return _with_form(loss, "ce", "categorical cross-entropy on sigmoid(z) renormalised to sum 1")


def binary_crossentropy(activation: str, class_counts=None) -> Callable:
    """Mean over the K one-hot columns of binary cross-entropy. sigmoid: one-vs-rest, from
    logits. softmax: on the softmax probabilities (the forum's mistake)."""
    check_activation(activation)
    if activation == "sigmoid":
        def loss(y_true, logits):
            return keras.losses.binary_crossentropy(y_true, logits, from_logits=True)
        return _with_form(loss, "bce", "binary cross-entropy per class on sigmoid(z), from logits (one-vs-rest)")

    def loss(y_true, logits):
        p = _clipped(ops.softmax(logits, axis=-1))
        return -ops.mean(y_true * ops.log(p) + (1.0 - y_true) * ops.log(1.0 - p), axis=-1)
    return _with_form(loss, "bce", "binary cross-entropy on softmax(z) over the one-hot columns")
