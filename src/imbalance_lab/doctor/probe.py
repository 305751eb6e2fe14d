"""The signal probe: can a logistic regression or a shallow tree beat chance on these features?
If neither can, a network that predicts the majority class is doing the best the features allow."""

from __future__ import annotations

import warnings

import numpy as np

from imbalance_lab.doctor.findings import Finding

SIGNAL_MARGIN = 0.05        # macro-F1 a probe must gain over the better of naive and chance
PROBE_MAX_ROWS = 5000       # the signal probe subsamples larger data so that it takes seconds


def signal_probe(X: np.ndarray, y: np.ndarray, seed: int, max_rows: int = PROBE_MAX_ROWS) -> dict:
    """Cross-validated macro-F1 of a logistic regression and a depth-4 tree (both class-balanced,
    so that the imbalance itself cannot hide a signal), of the naive majority predictor, and of
    the better probe on shuffled labels (what a probe scores by chance on these priors). The
    regression standardises inside each fold, so it measures the features' information whatever
    the `preprocess` option (raw scales would only stall its solver)."""
    from sklearn.dummy import DummyClassifier
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import f1_score, make_scorer
    from sklearn.model_selection import StratifiedKFold, cross_val_score, train_test_split
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.tree import DecisionTreeClassifier

    X = np.asarray(X).reshape(len(X), -1)
    if len(y) > max_rows:
        X, _, y, _ = train_test_split(X, y, train_size=max_rows, stratify=y, random_state=seed)
    classes = np.unique(y)
    folds = int(min(3, np.bincount(y).min()))
    if folds < 2:
        return {"rows": len(y), "skipped": "a class has fewer than 2 rows"}
    cv = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    scorer = make_scorer(f1_score, average="macro", labels=classes, zero_division=0)
    probes = {
        "logistic_regression": make_pipeline(StandardScaler(), LogisticRegression(max_iter=300, class_weight="balanced")),
        "decision_tree": DecisionTreeClassifier(max_depth=4, class_weight="balanced", random_state=seed),
    }

    def score(estimator, labels) -> float:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            return float(np.mean(cross_val_score(estimator, X, labels, cv=cv, scoring=scorer)))

    result = {name: score(est, y) for name, est in probes.items()}
    result["naive"] = score(DummyClassifier(strategy="most_frequent"), y)
    best = max(probes, key=lambda name: result[name])
    shuffled = np.random.default_rng(seed).permutation(y)
    result["chance"] = score(probes[best], shuffled)
    result.update(rows=int(len(y)), folds=folds, best_probe=best)
    return result


def signal_finding(probe: dict) -> Finding:
    if "skipped" in probe:
        return Finding("info", "signal_probe", f"Signal probe skipped: {probe['skipped']}.", "", probe)
    best = max(probe["logistic_regression"], probe["decision_tree"])
    reference = max(probe["naive"], probe["chance"])
    scores = (f"cross-validated macro-F1 ({probe['folds']} folds, {probe['rows']} training rows): logistic "
              f"regression {probe['logistic_regression']:.3f}, depth-4 tree {probe['decision_tree']:.3f}, "
              f"naive majority predictor {probe['naive']:.3f}, the better probe on shuffled labels "
              f"{probe['chance']:.3f}")
    if best < reference + SIGNAL_MARGIN:
        return Finding(
            "warning", "no_signal",
            f"The features carry little signal about the label: {scores}; neither probe beats naive or chance "
            f"by {SIGNAL_MARGIN}. A network that predicts the majority class here is doing the best the "
            f"features allow, and no imbalance remedy will fix that.",
            "better features or labels (check the join between features and labels); remedies only trade "
            "majority recall for minority recall here.", probe,
        )
    return Finding(
        "info", "signal",
        f"The features carry signal: {scores}. A network that predicts one class here is failing to learn, "
        f"which the remedies can address.", "", probe,
    )
