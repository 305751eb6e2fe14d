"""Decision rules (the `decision` axis): turn test logits into predicted classes.

Each rule is a small estimator: `fit` sees the validation logits and labels and the training
priors (after resampling); `predict` maps logits to class indices; `summary()` says what was
fitted, for remedies.json.
"""

from __future__ import annotations

import numpy as np


class Argmax:
    """The class with the highest score (logits and probabilities agree on it)."""

    def fit(self, val_logits: np.ndarray, y_val: np.ndarray, train_priors: np.ndarray, activation: str):
        return self

    def predict(self, logits: np.ndarray) -> np.ndarray:
        return np.argmax(logits, axis=1)

    def summary(self) -> dict:
        return {"rule": "argmax"}
