"""The arithmetic of --why: how much macro-F1 a run earns from its features, and whether a change
moved that by more than the seeds' noise. Pure NumPy: no training, no MLflow.

Macro-F1 against naive is not enough to call a change a cure. A network that ignores its inputs
but spreads its predictions over the classes (what balanced class weights do to a network that
learned nothing) scores more than the majority predictor: on the forum's test priors, uniform
guessing earns macro-F1 0.19 against naive 0.105. So each run is measured above *chance for its
own predicted mix*: the expected macro-F1 of predictions drawn independently of the features
with the same predicted class counts. For true priors p and predicted shares q, class j then has
precision p_j and recall q_j, so F1_j = 2 p_j q_j / (p_j + q_j).

Noise has two sources, and a change must clear both: the seeds (initialisation, split, sample:
the range of a config's runs) and the test set itself (how far macro-F1 moves around chance on a
test set of this size: the standard deviation of macro-F1 when the same predictions are shuffled
against the same labels; on a few hundred test rows, a few hundredths).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

MIN_EFFECT = 0.02   # macro-F1 above chance a change must add, at the least, to be called a cause
NOISE_SDS = 2.0     # a gain must exceed this many of the test set's standard deviations (of the difference)
SHUFFLES = 200      # shuffles of the predictions that measure the test set's chance spread


def chance_macro_f1(true_counts, predicted_counts) -> float:
    """Expected macro-F1 of predictions independent of the features with these predicted class
    counts, on a test set with these true class counts (a class neither present nor predicted
    scores 0, as scikit-learn's f1_score with zero_division=0 over every label)."""
    true = np.asarray(true_counts, dtype=float)
    predicted = np.asarray(predicted_counts, dtype=float)
    p, q = true / true.sum(), predicted / max(predicted.sum(), 1.0)
    both = p + q
    f1 = np.divide(2 * p * q, both, out=np.zeros_like(both), where=both > 0)
    return float(f1.mean())


def chance_spread(true_counts, predicted_counts, rounds: int = SHUFFLES, seed: int = 0) -> float:
    """Standard deviation of macro-F1 over `rounds` shuffles of these predictions against these
    labels (the class counts of a confusion matrix are all it needs)."""
    k = len(true_counts)
    y_true = np.repeat(np.arange(k), np.asarray(true_counts, dtype=int))
    y_pred = np.repeat(np.arange(k), np.asarray(predicted_counts, dtype=int))
    rng = np.random.default_rng(seed)
    scores = []
    for _ in range(rounds):
        cm = np.bincount(y_true * k + rng.permutation(y_pred), minlength=k * k).reshape(k, k)
        tp, support, predicted = np.diag(cm), cm.sum(axis=1), cm.sum(axis=0)
        both = support + predicted
        scores.append(np.mean(np.divide(2 * tp, both, out=np.zeros(k), where=both > 0)))
    return float(np.std(scores))


@dataclass
class Outcome:
    """One run of one config and seed, as read back from MLflow (or how it failed)."""
    seed: int
    run_id: str | None = None
    status: str = "FINISHED"     # FINISHED | SKIPPED (finished earlier) | FAILED
    macro_f1: float = float("nan")
    naive_macro_f1: float = float("nan")
    chance_macro_f1: float = float("nan")
    chance_sd: float = 0.0       # the test set's own noise around chance (chance_spread)
    n_predicted: int = 0
    top_label: str = ""
    top_share: float = 0.0
    warnings: str = ""
    error: str = ""

    @property
    def ok(self) -> bool:
        return self.status in ("FINISHED", "SKIPPED")

    @property
    def above_chance(self) -> float:
        """What the features earned: a failed run earned nothing."""
        return self.macro_f1 - self.chance_macro_f1 if self.ok else 0.0


@dataclass
class Summary:
    """One config over its seeds."""
    name: str
    changes: dict[str, str]
    outcomes: list[Outcome] = field(default_factory=list)
    gain: float = 0.0         # mean above-chance macro-F1 minus the user's config's
    spread: float = 0.0       # the larger seed range (max - min) of the two, above chance
    test_noise: float = 0.0   # NOISE_SDS x the test set's chance spread of the difference
    exceeds: bool = False     # the gain is more than noise: a cause

    def _values(self, attr: str) -> np.ndarray:
        return np.array([getattr(o, attr) for o in self.outcomes if o.ok], dtype=float)

    @property
    def above(self) -> np.ndarray:
        return np.array([o.above_chance for o in self.outcomes], dtype=float)

    @property
    def seed_range(self) -> float:
        return float(np.ptp(self.above)) if len(self.above) else 0.0

    def mean(self, attr: str) -> float:
        values = self._values(attr)
        return float(values.mean()) if len(values) else float("nan")

    def std(self, attr: str) -> float:
        values = self._values(attr)
        return float(values.std(ddof=1)) if len(values) > 1 else 0.0

    @property
    def chance_sd(self) -> float:
        """The test set's chance spread of one run, root mean square over the runs."""
        values = self._values("chance_sd")
        return float(np.sqrt(np.mean(values**2))) if len(values) else 0.0

    @property
    def n_failed(self) -> int:
        return sum(not o.ok for o in self.outcomes)

    @property
    def n_collapsed(self) -> int:
        """Runs that predict one class (or failed: they predict nothing usable)."""
        return sum((not o.ok) or o.n_predicted <= 1 for o in self.outcomes)

    def as_dict(self) -> dict:
        return {"name": self.name, "changes": self.changes, "gain": self.gain, "spread": self.spread,
                "test_noise": self.test_noise, "exceeds": self.exceeds, "macro_f1": self.mean("macro_f1"), "macro_f1_std": self.std("macro_f1"),
                "naive_macro_f1": self.mean("naive_macro_f1"), "chance_macro_f1": self.mean("chance_macro_f1"),
                "above_chance": float(self.above.mean()) if len(self.above) else float("nan"),
                "n_predicted": self.mean("n_predicted"), "n_collapsed": self.n_collapsed, "n_failed": self.n_failed,
                "runs": [vars(o) for o in self.outcomes]}


def rank(baseline: Summary, variants: list[Summary]) -> list[Summary]:
    """Each variant's gain over the baseline in macro-F1 above chance (means over seeds), and
    whether it exceeds the noise: larger than the larger of the two configs' seed ranges, larger
    than NOISE_SDS test-set standard deviations of the difference, every seed of the variant above
    every seed of the baseline (with 3 seeds each, chance alone orders them so once in 20), and at
    least MIN_EFFECT. Best gain first."""
    base = baseline.above
    for v in variants:
        above = v.above
        v.gain = float(above.mean() - base.mean()) if len(above) and len(base) else float("nan")
        v.spread = max(baseline.seed_range, v.seed_range)
        v.test_noise = NOISE_SDS * float(np.hypot(baseline.chance_sd, v.chance_sd))
        v.exceeds = bool(len(above) >= 2 and len(base) >= 2 and v.gain >= MIN_EFFECT and v.gain > v.spread
                         and v.gain > v.test_noise and above.min() > base.max())
    return sorted(variants, key=lambda v: (-np.nan_to_num(v.gain, nan=-np.inf), -np.nan_to_num(v.mean("n_predicted"))))
