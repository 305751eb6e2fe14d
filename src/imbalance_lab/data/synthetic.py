"""Generated tabular data with exact class counts, optional label shift, optional "no signal" and
optional raw feature scales."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from sklearn.datasets import make_classification

from imbalance_lab.data.raw import RawData
from imbalance_lab.errors import ImbalanceLabError

DEFAULT_TEST_SHARE = 0.2  # of n_samples, when `test_priors` asks for a separate, label-shifted test set


def normalised_priors(priors: Sequence[float], n_classes: int, key: str = "dataset.priors") -> np.ndarray:
    """Published priors rarely sum to exactly 1: normalise them, after checking they make sense."""
    p = np.asarray(list(priors), dtype=float)
    if len(p) != n_classes:
        raise ImbalanceLabError(
            f"{key} has {len(p)} values but dataset.n_classes is {n_classes}; give one prior per class."
        )
    if np.any(p <= 0):
        raise ImbalanceLabError(f"{key} must all be positive, got {list(p)}.")
    return p / p.sum()


def counts_from_priors(priors: np.ndarray, n: int) -> np.ndarray:
    """Largest-remainder rounding: the counts sum to n and each is within one row of p * n."""
    exact = priors * n
    counts = np.floor(exact).astype("int64")
    short = n - counts.sum()
    counts[np.argsort(-(exact - counts), kind="stable")[:short]] += 1
    if np.any(counts < 1):
        raise ImbalanceLabError(
            f"{n} rows with priors {np.round(priors, 4).tolist()} leave a class empty; raise the number of rows."
        )
    return counts


def generate_counts(
    train_counts: np.ndarray,
    test_counts: np.ndarray | None,
    n_features: int,
    n_informative: int,
    class_sep: float,
    signal: bool,
    seed: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None, np.ndarray | None]:
    """make_classification with exactly the requested rows per class; train and test rows of a class
    come from the same class-conditional distribution, so only the priors differ between them."""
    n_classes = len(train_counts)
    _check_shape(n_classes, n_features, n_informative)
    wanted = train_counts + (0 if test_counts is None else test_counts)
    # Ask for one spare row per class: make_classification floors n * weight, which can lose a row.
    X, y = make_classification(
        n_samples=int(wanted.sum() + n_classes), n_features=n_features, n_informative=n_informative,
        n_redundant=0, n_classes=n_classes, n_clusters_per_class=1, weights=list((wanted + 1) / (wanted + 1).sum()),
        flip_y=0.0, class_sep=class_sep, random_state=seed,
    )
    rng = np.random.default_rng(seed)
    if not signal:
        y = rng.permutation(y)  # same priors, but the label no longer depends on the features
    train_rows, test_rows = [], []
    for c in range(n_classes):
        rows = np.flatnonzero(y == c)
        train_rows.append(rows[: train_counts[c]])
        if test_counts is not None:
            test_rows.append(rows[train_counts[c] : wanted[c]])
    train = rng.permutation(np.concatenate(train_rows))
    X_train, y_train = X[train].astype("float32"), y[train]
    if test_counts is None:
        return X_train, y_train, None, None
    test = rng.permutation(np.concatenate(test_rows))
    return X_train, y_train, X[test].astype("float32"), y[test]


def with_feature_scales(X: np.ndarray, X_test: np.ndarray | None, feature_scales: Sequence[float] | None,
                        seed: int) -> tuple[np.ndarray, np.ndarray | None]:
    """Features in raw units, as a table of measurements has them: column j becomes x * s_j + o_j,
    with the scale s_j and the offset o_j drawn log-uniformly from [low, high] (fixed by the data's
    seed; the same for train and test). None leaves make_classification's unit-scale features."""
    if feature_scales is None:
        return X, X_test
    values = list(feature_scales)
    if len(values) != 2 or not all(isinstance(v, int | float) and v > 0 for v in values) or values[0] > values[1]:
        raise ImbalanceLabError(f"dataset.feature_scales={values} must be [low, high] with 0 < low <= high, "
                                f"e.g. dataset.feature_scales=[1000,100000]; null keeps unit scales.")
    rng = np.random.default_rng([seed, 1])
    low, high = np.log(values[0]), np.log(values[1])
    scale, offset = (np.exp(rng.uniform(low, high, size=X.shape[1])) for _ in range(2))

    def apply(A):
        return None if A is None else (A.astype("float64") * scale + offset).astype("float32")

    return apply(X), apply(X_test)


def _check_shape(n_classes: int, n_features: int, n_informative: int) -> None:
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


def make_synthetic(
    n_classes: int = 3,
    priors: Sequence[float] | None = None,
    n_samples: int = 3000,
    n_features: int = 20,
    n_informative: int = 5,
    class_sep: float = 1.0,
    seed: int = 0,
    test_priors: Sequence[float] | None = None,
    n_test: int | None = None,
    signal: bool = True,
    feature_scales: Sequence[float] | None = None,
) -> RawData:
    """make_classification with exact priors (no label noise), one cluster per class. With
    `test_priors`, a separate test set of `n_test` rows (default 20 % of n_samples) has those priors
    (label shift); `signal: false` makes the features independent of the label; `feature_scales`
    puts the features on raw scales (`with_feature_scales`)."""
    p = normalised_priors(priors if priors is not None else [1.0] * n_classes, n_classes)
    if not class_sep > 0:
        raise ImbalanceLabError(
            f"dataset.class_sep must be positive, got {class_sep}; for features that carry no signal about "
            f"the label use dataset.signal=false."
        )
    if test_priors is None:
        X, y, X_test, y_test = generate_counts(counts_from_priors(p, n_samples), None, n_features,
                                               n_informative, class_sep, signal, seed)
    else:
        q = normalised_priors(test_priors, n_classes, key="dataset.test_priors")
        n_test = int(round(DEFAULT_TEST_SHARE * n_samples)) if n_test is None else int(n_test)
        X, y, X_test, y_test = generate_counts(counts_from_priors(p, n_samples - n_test),
                                               counts_from_priors(q, n_test), n_features, n_informative,
                                               class_sep, signal, seed)
    X, X_test = with_feature_scales(X, X_test, feature_scales, seed)
    shift = "" if test_priors is None else f" test_priors={np.round(q, 4).tolist()}"
    return RawData(X, y, X_test, y_test, description=f"make_classification priors={np.round(p, 4).tolist()}{shift}"
                   f"{'' if signal else ' (no signal: features independent of the label)'}"
                   f"{'' if feature_scales is None else f' on raw scales {list(feature_scales)}'}",
                   source="sklearn.datasets.make_classification")
