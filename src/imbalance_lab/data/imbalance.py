"""Imbalance injection (Buda, Maki & Mazurowski 2018, "A systematic study of the class imbalance
problem in convolutional neural networks"): subsample the TRAINING split to a controlled profile.

- step: a fraction `mu` of the classes are minority classes of n_min rows, the others majority
  classes of n_max = rho * n_min rows.
- linear: class sizes grow linearly from n_min to n_max = rho * n_min.
rho = n_max / n_min (the imbalance ratio). The classes with the fewest available rows take the small
sizes, so that as many rows as possible are kept; n_min is the largest size the data can provide.
"""

from __future__ import annotations

import numpy as np

from imbalance_lab.errors import ImbalanceLabError

KINDS = ("none", "step", "linear")


def target_counts(available: np.ndarray, kind: str = "none", rho: float = 1.0, mu: float = 0.5) -> np.ndarray:
    """Rows to keep per class (in class order) for the requested profile."""
    available = np.asarray(available, dtype="int64")
    if kind not in KINDS:
        raise ImbalanceLabError(f"dataset.imbalance.kind={kind!r} is not one of {list(KINDS)}; choose one of those.")
    if kind == "none":
        return available.copy()
    if not rho >= 1:
        raise ImbalanceLabError(f"dataset.imbalance.rho={rho} must be at least 1 (rho = largest / smallest class size).")
    order = np.argsort(available, kind="stable")  # smallest classes take the smallest sizes
    sizes_per_n_min = _step_factors(len(available), rho, mu) if kind == "step" else _linear_factors(len(available), rho)
    n_min = int(min(np.floor(available[order] / sizes_per_n_min)))
    while n_min >= 1 and np.any(np.round(n_min * sizes_per_n_min) > available[order]):
        n_min -= 1
    if n_min < 1:
        raise ImbalanceLabError(
            f"The training split ({available.tolist()} rows per class) is too small for {kind} imbalance with "
            f"rho={rho}; lower dataset.imbalance.rho or use more data."
        )
    counts = np.empty_like(available)
    counts[order] = np.round(n_min * sizes_per_n_min).astype("int64")
    return counts


def _step_factors(n_classes: int, rho: float, mu: float) -> np.ndarray:
    n_minority = mu * n_classes
    if not (0 < mu < 1) or abs(n_minority - round(n_minority)) > 1e-9:
        raise ImbalanceLabError(
            f"dataset.imbalance.mu={mu} gives {n_minority:g} minority classes out of {n_classes}; choose mu as a "
            f"multiple of 1/{n_classes} strictly between 0 and 1."
        )
    n_minority = int(round(n_minority))
    return np.array([1.0] * n_minority + [float(rho)] * (n_classes - n_minority))


def _linear_factors(n_classes: int, rho: float) -> np.ndarray:
    return 1.0 + (float(rho) - 1.0) * np.arange(n_classes) / max(n_classes - 1, 1)


def inject(X: np.ndarray, y: np.ndarray, n_classes: int, seed: int, kind: str = "none", rho: float = 1.0,
           mu: float = 0.5) -> tuple[np.ndarray, np.ndarray]:
    """Subsample (X, y) to `target_counts`, rows of a class chosen at random with `seed`."""
    if kind == "none":
        return X, y
    keep_counts = target_counts(np.bincount(y, minlength=n_classes), kind, rho, mu)
    rng = np.random.default_rng(seed)
    keep = np.concatenate([rng.choice(np.flatnonzero(y == c), size=n, replace=False)
                           for c, n in enumerate(keep_counts)])
    keep = np.sort(keep)  # keep the split's (already shuffled) row order
    return X[keep], y[keep]
