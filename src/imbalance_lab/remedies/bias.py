"""Initial output biases (the `bias_init` axis)."""

from __future__ import annotations

import numpy as np

from imbalance_lab.remedies.losses import check_activation


def class_priors(class_counts) -> np.ndarray:
    counts = np.asarray(class_counts, dtype=float)
    return counts / counts.sum()


def zeros_bias(activation: str, class_counts) -> np.ndarray:
    check_activation(activation)
    return np.zeros(len(class_counts))


def log_prior_bias(activation: str, class_counts) -> np.ndarray:
    """Biases that make the untrained network output the training priors (Karpathy's
    'init well'; TensorFlow's imbalanced-data tutorial). softmax: b_c = log pi_c, so that
    softmax(b) = pi. sigmoid: b_c = log(pi_c / (1 - pi_c)), so that sigmoid(b_c) = pi_c."""
    check_activation(activation)
    pi = np.clip(class_priors(class_counts), 1e-12, 1 - 1e-12)
    return np.log(pi) if activation == "softmax" else np.log(pi / (1.0 - pi))
