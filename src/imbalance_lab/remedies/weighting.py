"""Class weights (the `class_weight` axis), applied as per-sample weights so that they work
with every loss. Each function maps training class counts to one weight per class."""

from __future__ import annotations

import numpy as np


def balanced_weights(class_counts) -> np.ndarray:
    """w_c = N / (K n_c): scikit-learn's compute_class_weight('balanced'). The mean weight over
    training samples is exactly 1."""
    counts = np.asarray(class_counts, dtype=float)
    return counts.sum() / (len(counts) * counts)


def sample_weights(class_weights: np.ndarray | None, y: np.ndarray) -> np.ndarray | None:
    """Per-sample weights for labels y (indices); None when no class weighting is used."""
    if class_weights is None:
        return None
    return np.asarray(class_weights, dtype="float32")[y]
