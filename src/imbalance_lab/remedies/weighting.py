"""Class weights (the `class_weight` axis), applied as per-sample weights so that they work
with every loss. Each function maps training class counts to one weight per class."""

from __future__ import annotations

import numpy as np

from imbalance_lab.errors import ImbalanceLabError

NORMALISATION = "mean weight over training samples = 1: w_c = raw_c * N / sum_j n_j raw_j"


def balanced_weights(class_counts) -> np.ndarray:
    """w_c = N / (K n_c): scikit-learn's compute_class_weight('balanced'). The mean weight over
    training samples is exactly 1."""
    counts = np.asarray(class_counts, dtype=float)
    return counts.sum() / (len(counts) * counts)


def effective_number_raw(class_counts, beta: float) -> list[float]:
    """(1 - beta) / (1 - beta^n_c): the inverse effective number of samples (Cui et al. 2019)."""
    beta = float(beta)
    if not 0.0 <= beta < 1.0:
        raise ImbalanceLabError(f"beta={beta} is outside [0, 1); the effective number needs 0 <= beta < 1 (e.g. 0.999).")
    return [(1.0 - beta) / (1.0 - beta**n) if n > 0 else 0.0 for n in class_counts]  # an absent class has no rows to weight


def unit_sample_mean(raw_weights, class_counts) -> np.ndarray:
    """Scale per-class weights so that the mean weight over the training rows is 1
    (sum_c n_c w_c = N): the loss keeps its scale, so learning rates stay comparable across options."""
    raw = np.asarray(raw_weights, dtype=float)
    counts = np.asarray(class_counts, dtype=float)
    return raw * counts.sum() / np.dot(counts, raw)


def inverse_sqrt_weights(class_counts) -> np.ndarray:
    """w_c proportional to 1 / sqrt(n_c): a milder re-weighting than `balanced`."""
    counts = np.asarray(class_counts, dtype=float)
    return unit_sample_mean(np.divide(1.0, np.sqrt(counts), out=np.zeros_like(counts), where=counts > 0), counts)


def effective_number_weights(class_counts, beta: float = 0.999) -> np.ndarray:
    """w_c proportional to (1 - beta) / (1 - beta^n_c), the inverse effective number of samples
    (Cui et al. 2019). beta=0: no re-weighting; beta -> 1: `balanced`."""
    return unit_sample_mean(effective_number_raw(class_counts, beta), class_counts)


def sample_weights(class_weights: np.ndarray | None, y: np.ndarray) -> np.ndarray | None:
    """Per-sample weights for labels y (indices); None when no class weighting is used."""
    if class_weights is None:
        return None
    return np.asarray(class_weights, dtype="float32")[y]
