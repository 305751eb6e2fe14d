"""Decision rules (the `decision` axis): turn test logits into predicted classes.

Each rule is a small estimator: `fit` sees the validation logits and labels and the training
priors (after resampling); `predict` maps logits to class indices; `summary(labels)` says what
was fitted, for remedies.json.
"""

from __future__ import annotations

import numpy as np
from scipy.special import log_expit, log_softmax

from imbalance_lab.errors import ImbalanceLabError
from imbalance_lab.evaluation import macro_f1


def _by_label(values, labels) -> dict:
    return dict(zip(labels, np.round(np.asarray(values, dtype=float), 6).tolist()))


class Argmax:
    """The class with the highest score (logits and probabilities agree on it)."""

    def fit(self, val_logits: np.ndarray, y_val: np.ndarray, train_priors: np.ndarray, activation: str):
        return self

    def predict(self, logits: np.ndarray) -> np.ndarray:
        return np.argmax(logits, axis=1)

    def summary(self, labels=()) -> dict:
        return {"rule": "argmax"}


class LogitAdjusted:
    """Post-hoc logit adjustment (Menon et al. 2021): argmax_y z_y - tau log pi_y, with pi the
    training priors the model was fitted on; on the logits whatever the activation."""

    def __init__(self, tau: float = 1.0):
        self.tau = float(tau)

    def fit(self, val_logits, y_val, train_priors, activation):
        self.offsets_ = -self.tau * np.log(np.clip(np.asarray(train_priors, dtype=float), 1e-12, None))
        return self

    def predict(self, logits):
        return np.argmax(logits + self.offsets_, axis=1)

    def summary(self, labels=()) -> dict:
        return {"rule": "logit_adjusted", "tau": self.tau, "applied_to": "logits",
                "offsets": _by_label(self.offsets_, labels)}


class PriorCorrection:
    """Bayes prior shift: argmax_c p(c|x) * target_c / pi_c, with p the activated outputs
    (softmax, or each class's sigmoid), pi the training priors and the target prior uniform
    unless `target_prior` gives one value per class."""

    def __init__(self, target_prior=None):
        self.target_prior = None if target_prior is None else [float(t) for t in target_prior]

    def fit(self, val_logits, y_val, train_priors, activation):
        pi = np.clip(np.asarray(train_priors, dtype=float), 1e-12, None)
        k = len(pi)
        target = np.full(k, 1.0 / k) if self.target_prior is None else np.asarray(self.target_prior)
        if len(target) != k or np.any(target <= 0):
            raise ImbalanceLabError(
                f"decision.target_prior={self.target_prior} must hold {k} positive values, one per class; "
                f"or null for the uniform prior."
            )
        self.activation_, self.target_ = activation, target / target.sum()
        self.log_ratio_ = np.log(self.target_) - np.log(pi)
        return self

    def predict(self, logits):
        log_p = log_softmax(logits, axis=1) if self.activation_ == "softmax" else log_expit(logits)
        return np.argmax(log_p + self.log_ratio_, axis=1)

    def summary(self, labels=()) -> dict:
        return {"rule": "prior_correction", "applied_to": f"{self.activation_} probabilities",
                "target_prior": _by_label(self.target_, labels),
                "multipliers": _by_label(np.exp(self.log_ratio_), labels)}


class TunedThreshold:
    """Per-class additive offsets b on the logits, predicting argmax_c z_c + b_c, tuned on the
    validation split to maximise validation macro-F1 by coordinate ascent. Starts from b = 0
    (argmax) and accepts only strict improvements, so validation macro-F1 never falls below
    argmax's. Binary: only b_1 moves, i.e. a single threshold on z_1 - z_0."""

    def __init__(self, rounds: int = 3, candidates: int = 100):
        if int(rounds) < 1 or int(candidates) < 2:
            raise ImbalanceLabError(f"decision.rounds={rounds} and decision.candidates={candidates} must be >= 1 and >= 2.")
        self.rounds, self.candidates = int(rounds), int(candidates)

    def fit(self, val_logits, y_val, train_priors, activation):
        z = np.asarray(val_logits, dtype=float)
        k = z.shape[1]
        self.activation_ = activation
        offsets = np.zeros(k)
        self.val_macro_f1_argmax_ = best = macro_f1(y_val, np.argmax(z, axis=1), k)
        tunable = [1] if k == 2 else range(k)
        for _ in range(self.rounds):
            improved = False
            for c in tunable:
                score, value = self._best_offset_for(c, z, y_val, offsets)
                if score > best + 1e-12:
                    best, offsets[c], improved = score, value, True
            if not improved:
                break
        if macro_f1(y_val, np.argmax(z + offsets, axis=1), k) <= self.val_macro_f1_argmax_:
            # no strict improvement after all (only a tie between logits gets here): argmax, its offsets 0
            offsets = np.zeros(k)
        self.offsets_ = offsets
        self.val_macro_f1_ = macro_f1(y_val, np.argmax(z + offsets, axis=1), k)
        return self

    def _best_offset_for(self, c, z, y, offsets) -> tuple[float, float]:
        """The best validation macro-F1 over offsets of class c, others fixed. Row i goes to c iff
        z_ic + b_c > max_{j != c}(z_ij + b_j), so only the midpoints between these breakpoints are
        worth trying (a quantile subset when there are many), and one logit below the lowest (c for no
        row) and above the highest (c for every row), each scored in O(rows)."""
        shifted = z + offsets
        shifted[:, c] = -np.inf
        runner_up = np.argmax(shifted, axis=1)
        breaks = shifted[np.arange(len(z)), runner_up] - z[:, c]
        points = np.unique(breaks)
        if len(points) > self.candidates:
            points = np.unique(np.quantile(points, np.linspace(0, 1, self.candidates)))
        candidates = np.concatenate([[points[0] - 1.0], (points[:-1] + points[1:]) / 2, [points[-1] + 1.0]])
        k = z.shape[1]
        scores = [macro_f1(y, np.where(breaks < b, c, runner_up), k) for b in candidates]
        best = int(np.argmax(scores))
        return scores[best], float(candidates[best])

    def predict(self, logits):
        return np.argmax(logits + self.offsets_, axis=1)

    def summary(self, labels=()) -> dict:
        out = {"rule": "tuned_threshold", "applied_to": "logits", "offsets": _by_label(self.offsets_, labels),
               "val_macro_f1_argmax": round(self.val_macro_f1_argmax_, 6), "val_macro_f1_tuned": round(self.val_macro_f1_, 6)}
        if len(self.offsets_) == 2:
            # predict class 1 iff z_1 - z_0 > -b_1; under softmax that is p_1 > sigmoid(-b_1)
            out["threshold_on_logit_difference"] = round(float(-self.offsets_[1]), 6)
            if self.activation_ == "softmax":
                out["threshold_on_p1"] = round(float(1 / (1 + np.exp(self.offsets_[1]))), 6)
        return out
