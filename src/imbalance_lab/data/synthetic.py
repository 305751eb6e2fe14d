"""Generated tabular data with known class priors."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from sklearn.datasets import make_classification

from imbalance_lab.data.raw import RawData
from imbalance_lab.errors import ImbalanceLabError


def normalised_priors(priors: Sequence[float], n_classes: int) -> np.ndarray:
    """Published priors rarely sum to exactly 1: normalise them, after checking they make sense."""
    p = np.asarray(list(priors), dtype=float)
    if len(p) != n_classes:
        raise ImbalanceLabError(
            f"dataset.priors has {len(p)} values but dataset.n_classes is {n_classes}; "
            f"give one prior per class."
        )
    if np.any(p <= 0):
        raise ImbalanceLabError(f"dataset.priors must all be positive, got {list(p)}.")
    return p / p.sum()


def make_synthetic(
    n_classes: int = 3,
    priors: Sequence[float] | None = None,
    n_samples: int = 3000,
    n_features: int = 20,
    n_informative: int = 5,
    class_sep: float = 1.0,
    seed: int = 0,
) -> RawData:
    """make_classification with exact priors (no label noise), one cluster per class."""
    p = normalised_priors(priors if priors is not None else [1.0] * n_classes, n_classes)
    if n_informative > n_features:
        raise ImbalanceLabError(
            f"dataset.n_informative={n_informative} exceeds dataset.n_features={n_features}; "
            f"lower n_informative or raise n_features."
        )
    if n_classes > 2**n_informative:
        raise ImbalanceLabError(
            f"dataset.n_informative={n_informative} cannot separate {n_classes} classes; "
            f"raise it to at least {int(np.ceil(np.log2(n_classes)))}."
        )
    X, y = make_classification(
        n_samples=n_samples, n_features=n_features, n_informative=n_informative, n_redundant=0,
        n_classes=n_classes, n_clusters_per_class=1, weights=list(p), flip_y=0.0,
        class_sep=class_sep, random_state=seed,
    )
    return RawData(X.astype("float32"), y, description=f"make_classification priors={np.round(p, 4).tolist()}")
