"""Metrics, confusion matrix, the naive majority-class baseline and collapse detection.

Class order is sorted label order; metric names use the labels (`test/recall_<label>`).
Every metric is computed with NumPy from the confusion matrix and the score columns; each helper
equals the scikit-learn / imbalanced-learn function it replaces (tests/test_evaluation.py checks this),
without their per-call input validation (tens of milliseconds per run in sweeps of tiny runs).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import numpy as np


@dataclass
class Evaluation:
    metrics: dict[str, float]
    confusion: np.ndarray          # rows: true class, columns: predicted class
    report: dict
    n_predicted_classes: int
    collapsed: bool
    labels: tuple[str, ...] = field(default=())


def confusion(y_true: np.ndarray, y_pred: np.ndarray, n_classes: int) -> np.ndarray:
    """Counts[true, predicted]; equals sklearn's confusion_matrix(y_true, y_pred, labels=range(n_classes))."""
    return np.bincount(y_true * n_classes + y_pred, minlength=n_classes * n_classes).reshape(n_classes, n_classes)


def macro_f1_from_confusion(cm: np.ndarray) -> float:
    """Mean over classes of 2TP / (2TP + FP + FN); a class never predicted nor present scores 0."""
    tp = np.diag(cm).astype(float)
    denom = cm.sum(axis=0) + cm.sum(axis=1)
    return float(np.mean(np.divide(2 * tp, denom, out=np.zeros_like(tp), where=denom > 0)))


def macro_f1(y_true: np.ndarray, y_pred: np.ndarray, n_classes: int) -> float:
    """Macro-F1 over all n_classes; equals sklearn's f1_score(average="macro", zero_division=0)."""
    return macro_f1_from_confusion(confusion(y_true, y_pred, n_classes))


def is_collapsed(n_predicted: int, n_classes: int) -> bool:
    """One predicted class, or fewer than half of the classes."""
    return n_predicted <= 1 or n_predicted < n_classes / 2


def metric_label(label: str) -> str:
    """A label made safe for an MLflow metric name (letters, digits, _ - . space /)."""
    return re.sub(r"[^A-Za-z0-9_\-. /]", "_", str(label))


def naive_macro_f1(y_true: np.ndarray, majority_class: int, n_classes: int) -> float:
    """Macro-F1 of always predicting the training split's majority class."""
    return macro_f1(y_true, np.full_like(y_true, majority_class), n_classes)


_REPORT_COLUMNS = ("precision", "recall", "f1-score", "support")


def evaluate(y_true, y_pred, scores, labels, majority_class: int, prefix: str = "test") -> Evaluation:
    """All contract metrics for predictions `y_pred` and per-class `scores` (probabilities)."""
    k = len(labels)
    cm = confusion(y_true, y_pred, k)
    precision, recall, f1, support = _precision_recall_f1(cm)
    accuracy = float(np.trace(cm) / cm.sum())
    roc_auc, pr_auc = _one_vs_rest(np.asarray(y_true), np.asarray(scores), k)
    n_predicted = int(np.count_nonzero(cm.sum(axis=0)))
    values = {
        f"{prefix}/macro_f1": macro_f1_from_confusion(cm),
        f"{prefix}/accuracy": accuracy,
        f"{prefix}/balanced_accuracy": _balanced_accuracy(recall, support),
        f"{prefix}/mcc": _mcc(cm),
        f"{prefix}/gmean": _gmean(recall),
        f"{prefix}/macro_roc_auc": roc_auc,
        f"{prefix}/macro_pr_auc": pr_auc,
        f"{prefix}/n_predicted_classes": float(n_predicted),
        "naive/macro_f1": naive_macro_f1(y_true, majority_class, k),
    }
    for c, label in enumerate(labels):
        name = metric_label(label)
        values[f"{prefix}/recall_{name}"] = float(recall[c])
        values[f"{prefix}/precision_{name}"] = float(precision[c])
        values[f"{prefix}/f1_{name}"] = float(f1[c])
    report = _report(labels, precision, recall, f1, support, accuracy)
    return Evaluation(values, cm, report, n_predicted, is_collapsed(n_predicted, k), tuple(labels))


def _precision_recall_f1(cm: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per-class precision, recall, F1 (0 where undefined) and support; equals sklearn's
    precision_recall_fscore_support(y_true, y_pred, labels=range(k), zero_division=0)."""
    tp = np.diag(cm)
    predicted, support = cm.sum(axis=0), cm.sum(axis=1)
    return _divide(tp, predicted), _divide(tp, support), _divide(2 * tp, predicted + support), support


def _divide(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    """numerator / denominator as floats, 0 where the denominator is 0 (sklearn's zero_division=0)."""
    numerator = numerator.astype(np.float64)
    return np.divide(numerator, denominator, out=np.zeros_like(numerator), where=denominator > 0)


def _balanced_accuracy(recall: np.ndarray, support: np.ndarray) -> float:
    """Mean recall over the classes present in y_true; equals sklearn's balanced_accuracy_score."""
    return float(np.mean(recall[support > 0]))


def _mcc(cm: np.ndarray) -> float:
    """Multiclass Matthews correlation coefficient, 0 when undefined; equals sklearn's matthews_corrcoef."""
    t_sum, p_sum = cm.sum(axis=1, dtype=np.float64), cm.sum(axis=0, dtype=np.float64)
    n, correct = p_sum.sum(), np.trace(cm, dtype=np.float64)
    cov_ytyp = correct * n - np.dot(t_sum, p_sum)
    cov_ypyp_ytyt = (n**2 - np.dot(p_sum, p_sum)) * (n**2 - np.dot(t_sum, t_sum))
    return 0.0 if cov_ypyp_ytyt == 0 else float(cov_ytyp / np.sqrt(cov_ypyp_ytyt))


def _gmean(recall: np.ndarray) -> float:
    """Geometric mean of the per-class recalls, 0 if any class (absent from y_true included) has recall 0;
    equals imblearn's geometric_mean_score(y_true, y_pred, labels=range(k), average="multiclass")."""
    return 0.0 if np.any(recall == 0) else float(np.exp(np.mean(np.log(recall))))


def _one_vs_rest(y_true: np.ndarray, scores: np.ndarray, k: int) -> tuple[float, float]:
    """Macro one-vs-rest ROC AUC and average precision over the classes that occur in y_true but not
    alone (the scores are undefined for the others; NaN if none is left). Works for sigmoid scores
    that do not sum to 1. Equals the mean over those classes of sklearn's roc_auc_score and
    average_precision_score of (y_true == c, scores[:, c])."""
    onehot = y_true[:, None] == np.arange(k)
    counts = onehot.sum(axis=0)
    keep = (counts > 0) & (counts < len(y_true))
    if not keep.any():
        return float("nan"), float("nan")
    onehot, scores = onehot[:, keep], scores[:, keep]
    if not np.isfinite(scores).all():
        raise ValueError("Input contains NaN or infinity in the class scores.")  # as sklearn would
    order = np.argsort(scores, axis=0)
    hits = np.take_along_axis(onehot, order, axis=0)  # positives, by ascending score
    low, high = _tie_ranks(np.take_along_axis(scores, order, axis=0))
    return float(np.mean(_roc_auc(hits, low, high))), float(np.mean(_average_precision(hits, low)))


def _tie_ranks(ordered: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For column-wise ascending scores, each row's lowest and highest 1-based rank among the rows with
    its score; equals scipy.stats.rankdata(ordered, method="min") and (..., method="max") along axis 0."""
    n = len(ordered)
    rank = np.broadcast_to(np.arange(1, n + 1)[:, None], ordered.shape)
    first = np.ones(ordered.shape, dtype=bool)  # first row of a run of equal scores
    first[1:] = ordered[1:] != ordered[:-1]
    last = np.ones_like(first)
    last[:-1] = first[1:]
    low = np.maximum.accumulate(np.where(first, rank, 1), axis=0)
    high = np.minimum.accumulate(np.where(last, rank, n)[::-1], axis=0)[::-1]
    return low, high


def _roc_auc(hits: np.ndarray, low: np.ndarray, high: np.ndarray) -> np.ndarray:
    """Per-column ROC AUC by the rank-sum (Mann-Whitney) formula, tied scores taking their average rank
    (hits: positives in ascending score order, low/high: tie ranks); equals sklearn's roc_auc_score."""
    positives = hits.sum(axis=0)
    negatives = len(hits) - positives
    rank_sum = np.where(hits, (low + high) / 2, 0.0).sum(axis=0)
    return (rank_sum - positives * (positives + 1) / 2) / (positives * negatives)


def _average_precision(hits: np.ndarray, low: np.ndarray) -> np.ndarray:
    """Per-column average precision, sum over distinct thresholds of (R_n - R_{n-1}) * P_n, as the mean
    over positives of the precision at the threshold equal to their score (arguments as for _roc_auc);
    equals sklearn's average_precision_score."""
    n, positives = len(hits), hits.sum(axis=0)
    below = np.cumsum(hits, axis=0) - hits  # positives in the rows before each row
    positives_at_or_above = positives - np.take_along_axis(below, low - 1, axis=0)
    precision = positives_at_or_above / (n + 1 - low)
    return np.where(hits, precision, 0.0).sum(axis=0) / positives


def _report(labels, precision, recall, f1, support, accuracy: float) -> dict:
    """Per-class rows, accuracy, macro and support-weighted averages; equals sklearn's
    classification_report(y_true, y_pred, labels=range(k), target_names=list(labels),
    output_dict=True, zero_division=0) (sklearn 1.9 gives support as a float too)."""
    columns = (precision, recall, f1, support)
    report = {label: dict(zip(_REPORT_COLUMNS, (float(c[i]) for c in columns))) for i, label in enumerate(labels)}
    report["accuracy"] = accuracy
    total = float(np.sum(support))
    report["macro avg"] = dict(zip(_REPORT_COLUMNS, [*(float(np.mean(c)) for c in columns[:3]), total]))
    weighted = (float(np.average(c, weights=support)) for c in columns[:3])
    report["weighted avg"] = dict(zip(_REPORT_COLUMNS, [*weighted, total]))
    return report
