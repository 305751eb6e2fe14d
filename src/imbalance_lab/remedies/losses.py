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

import math
from collections.abc import Callable

import keras
from keras import ops

from imbalance_lab.errors import ImbalanceLabError
from imbalance_lab.remedies.weighting import effective_number_raw

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


# --- The imbalance-aware losses. Notation: n_c training count of class c, pi_c = n_c / N, z logits.

def _class_vector(class_counts, name: str):
    counts = [float(n) for n in class_counts]
    if not counts or min(counts) <= 0:
        raise ImbalanceLabError(
            f"loss={name} needs every class in the training split, but the class counts are {counts}; "
            f"use a sampler that keeps every class or more training data."
        )
    return counts


def _per_sample(y_true, per_class):
    """The weight of each row's true class: sum_c y_c w_c."""
    return ops.sum(y_true * ops.convert_to_tensor(per_class, dtype=y_true.dtype), axis=-1)


def _log_probabilities(logits, activation: str, y_true):
    """log p_t per column: softmax -> log softmax(z); sigmoid -> log p_t of each one-vs-rest column."""
    if activation == "softmax":
        return ops.log_softmax(logits, axis=-1)
    return y_true * ops.log_sigmoid(logits) + (1.0 - y_true) * ops.log_sigmoid(-logits)


def focal_alpha(alpha, class_counts) -> list[float]:
    """alpha_c per class: a scalar for every class, `balanced` = N / (K n_c) (mean 1 over the
    training rows, like class_weight=balanced), or a list of K values."""
    k = len(class_counts)
    if alpha is None:
        return [1.0] * k
    if isinstance(alpha, str):
        if alpha != "balanced":
            raise ImbalanceLabError(f"loss.alpha={alpha!r} is not a number, a list or 'balanced'; use one of those.")
        counts = _class_vector(class_counts, "focal")
        return [sum(counts) / (k * n) for n in counts]
    if isinstance(alpha, int | float):
        return [float(alpha)] * k
    values = [float(a) for a in alpha]
    if len(values) != k:
        raise ImbalanceLabError(f"loss.alpha has {len(values)} values but the data has {k} classes; give one per class.")
    return values


def focal(activation: str, class_counts, gamma: float = 2.0, alpha=None) -> Callable:
    """Focal loss (Lin et al. 2017): -alpha_t (1 - p_t)^gamma log p_t. softmax: p_t is the true
    class's softmax probability. sigmoid: the mean over the K one-vs-rest columns of the binary
    focal term, weighted by the row's alpha_t. alpha_t is the true class's alpha."""
    check_activation(activation)
    if float(gamma) < 0:
        raise ImbalanceLabError(f"loss.gamma={gamma} is negative; the focusing parameter must be >= 0.")
    alphas, gamma = focal_alpha(alpha, class_counts), float(gamma)

    def loss(y_true, logits):
        y_true = ops.cast(y_true, logits.dtype)
        log_p = _log_probabilities(logits, activation, y_true)
        terms = -ops.power(1.0 - ops.exp(log_p), gamma) * log_p
        per_row = ops.sum(y_true * terms, axis=-1) if activation == "softmax" else ops.mean(terms, axis=-1)
        return _per_sample(y_true, alphas) * per_row

    form = ("focal on softmax(z): -alpha_t (1-p_t)^gamma log p_t" if activation == "softmax" else
            "focal on sigmoid(z), one-vs-rest: alpha_t * mean_c -(1-p_t,c)^gamma log p_t,c")
    return _with_details(_with_form(loss, "focal", form), gamma=gamma, alpha=alphas)


def class_balanced_weights(class_counts, beta: float) -> list[float]:
    """Cui et al.'s weights, normalised (as in the paper) to sum to K."""
    raw = effective_number_raw(_class_vector(class_counts, "class_balanced"), beta)
    return [w * len(raw) / sum(raw) for w in raw]


CB_BASES = ("ce", "focal", "bce")


def class_balanced(activation: str, class_counts, beta: float = 0.999, base: str = "ce",
                   gamma: float = 2.0) -> Callable:
    """Class-balanced loss (Cui et al. 2019): the base loss of each row times its class's
    weight (1 - beta) / (1 - beta^n_c), normalised to sum to K; applied inside the loss."""
    if base not in CB_BASES:
        raise ImbalanceLabError(f"loss.base={base!r} is not one of {list(CB_BASES)}.")
    weights = class_balanced_weights(class_counts, beta)
    inner = {"ce": lambda: categorical_crossentropy(activation),
             "bce": lambda: binary_crossentropy(activation),
             "focal": lambda: focal(activation, class_counts, gamma=gamma)}[base]()

    def loss(y_true, logits):
        y_true = ops.cast(y_true, logits.dtype)
        return _per_sample(y_true, weights) * inner(y_true, logits)

    form = f"class-balanced (beta={beta}) weights times [{inner.form}]"
    return _with_details(_with_form(loss, "class_balanced", form), beta=float(beta), base=base,
                         class_weights=weights)


def ldam_margins(class_counts, max_margin: float = 0.5) -> list[float]:
    """Delta_c = C / n_c^(1/4), with C such that the largest margin (the rarest class) is max_margin."""
    quarter = [n ** -0.25 for n in _class_vector(class_counts, "ldam")]
    c = float(max_margin) / max(quarter)
    return [c * q for q in quarter]


def ldam(activation: str, class_counts, max_margin: float = 0.5, scale: float = 30.0,
         drw_start: int | None = None, drw_beta: float = 0.9999) -> Callable:
    """LDAM (Cao et al. 2019): softmax cross-entropy on scale * (z - Delta_y e_y), on the logits
    whatever the activation. Deferred re-weighting: from epoch index `drw_start` (0-based) on,
    each row is weighted by the class-balanced weight of its class (beta `drw_beta`, sum K);
    before that every weight is 1. A callback (`loss.callbacks`) switches the weights on."""
    margins = ldam_margins(class_counts, max_margin)
    scale = float(scale)
    drw_weights = class_balanced_weights(class_counts, drw_beta) if drw_start is not None else None
    # A variable, not a Python flag: the compiled train step reads its current value each epoch.
    drw_on = keras.Variable(0.0, trainable=False, name="ldam_drw_on", dtype="float32") if drw_weights else None

    def loss(y_true, logits):
        y_true = ops.cast(y_true, logits.dtype)
        shifted = scale * (logits - y_true * ops.convert_to_tensor(margins, dtype=logits.dtype))
        ce = keras.losses.categorical_crossentropy(y_true, shifted, from_logits=True)
        if drw_weights is None:
            return ce
        weight = 1.0 + ops.cast(drw_on, ce.dtype) * (_per_sample(y_true, drw_weights) - 1.0)
        return weight * ce

    form = f"LDAM: softmax cross-entropy on {scale:g}*(z - Delta_y) from the logits (activation {activation} not applied)"
    if drw_start is not None:
        form += f"; class-balanced weights (beta={drw_beta}) from epoch {int(drw_start)}"
        loss.callbacks = [_SwitchOnAtEpoch(drw_on, int(drw_start))]
    return _with_details(_with_form(loss, "ldam", form), margins=margins, scale=scale,
                         drw_start=drw_start, drw_weights=drw_weights)


class _SwitchOnAtEpoch(keras.callbacks.Callback):
    """Sets a 0/1 variable the loss reads: 0 before `epoch`, 1 from it on."""

    def __init__(self, variable, epoch: int):
        super().__init__()
        self.variable, self.epoch = variable, epoch

    def on_epoch_begin(self, epoch, logs=None):
        self.variable.assign(1.0 if epoch >= self.epoch else 0.0)


def _log_counts(class_counts, name: str) -> list[float]:
    return [math.log(n) for n in _class_vector(class_counts, name)]


def logit_adjusted(activation: str, class_counts, tau: float = 1.0) -> Callable:
    """Logit-adjusted loss (Menon et al. 2021): softmax cross-entropy on z_y + tau log pi_y,
    on the logits whatever the activation."""
    log_prior = [lc - math.log(sum(class_counts)) for lc in _log_counts(class_counts, "logit_adjusted")]
    offsets = [float(tau) * lp for lp in log_prior]

    def loss(y_true, logits):
        y_true = ops.cast(y_true, logits.dtype)
        adjusted = logits + ops.convert_to_tensor(offsets, dtype=logits.dtype)
        return keras.losses.categorical_crossentropy(y_true, adjusted, from_logits=True)

    form = f"logit-adjusted: softmax cross-entropy on z + {float(tau):g}*log(pi) from the logits (activation {activation} not applied)"
    return _with_details(_with_form(loss, "logit_adjusted", form), tau=float(tau), offsets=offsets)


def balanced_softmax(activation: str, class_counts) -> Callable:
    """Balanced softmax (Ren et al. 2020): p_y = n_y e^{z_y} / sum_j n_j e^{z_j}, on the logits
    whatever the activation."""
    log_n = _log_counts(class_counts, "balanced_softmax")

    def loss(y_true, logits):
        y_true = ops.cast(y_true, logits.dtype)
        shifted = logits + ops.convert_to_tensor(log_n, dtype=logits.dtype)
        return -ops.sum(y_true * ops.log_softmax(shifted, axis=-1), axis=-1)

    form = f"balanced softmax: -log(n_y e^z_y / sum_j n_j e^z_j) from the logits (activation {activation} not applied)"
    return _with_details(_with_form(loss, "balanced_softmax", form), log_counts=log_n)


def _with_details(fn: Callable, **details) -> Callable:
    """What the loss computed from the class counts, for remedies.json."""
    fn.details = details
    return fn
