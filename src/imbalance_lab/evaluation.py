"""Metrics, confusion matrix, the naive majority-class baseline and collapse detection.

Class order is sorted label order; metric names use the labels (`test/recall_<label>`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import numpy as np
from imblearn.metrics import geometric_mean_score
from sklearn import metrics as skm


@dataclass
class Evaluation:
    metrics: dict[str, float]
    confusion: np.ndarray          # rows: true class, columns: predicted class
    report: dict
    n_predicted_classes: int
    collapsed: bool
    labels: tuple[str, ...] = field(default=())


def confusion(y_true: np.ndarray, y_pred: np.ndarray, n_classes: int) -> np.ndarray:
    return np.bincount(y_true * n_classes + y_pred, minlength=n_classes * n_classes).reshape(n_classes, n_classes)


def macro_f1_from_confusion(cm: np.ndarray) -> float:
    """Mean over classes of 2TP / (2TP + FP + FN); a class never predicted nor present scores 0."""
    tp = np.diag(cm).astype(float)
    denom = cm.sum(axis=0) + cm.sum(axis=1)
    return float(np.mean(np.divide(2 * tp, denom, out=np.zeros_like(tp), where=denom > 0)))


def macro_f1(y_true: np.ndarray, y_pred: np.ndarray, n_classes: int) -> float:
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


def evaluate(y_true, y_pred, scores, labels, majority_class: int, prefix: str = "test") -> Evaluation:
    """All contract metrics for predictions `y_pred` and per-class `scores` (probabilities)."""
    k = len(labels)
    idx = list(range(k))
    cm = confusion(y_true, y_pred, k)
    precision, recall, f1, _ = skm.precision_recall_fscore_support(
        y_true, y_pred, labels=idx, zero_division=0
    )
    n_predicted = int(np.count_nonzero(cm.sum(axis=0)))
    values = {
        f"{prefix}/macro_f1": macro_f1_from_confusion(cm),
        f"{prefix}/accuracy": float(np.trace(cm) / cm.sum()),
        f"{prefix}/balanced_accuracy": float(skm.balanced_accuracy_score(y_true, y_pred)),
        f"{prefix}/mcc": float(skm.matthews_corrcoef(y_true, y_pred)),
        f"{prefix}/gmean": float(geometric_mean_score(y_true, y_pred, labels=idx, average="multiclass")),
        f"{prefix}/macro_roc_auc": _one_vs_rest(skm.roc_auc_score, y_true, scores, k),
        f"{prefix}/macro_pr_auc": _one_vs_rest(skm.average_precision_score, y_true, scores, k),
        f"{prefix}/n_predicted_classes": float(n_predicted),
        "naive/macro_f1": naive_macro_f1(y_true, majority_class, k),
    }
    for c, label in enumerate(labels):
        name = metric_label(label)
        values[f"{prefix}/recall_{name}"] = float(recall[c])
        values[f"{prefix}/precision_{name}"] = float(precision[c])
        values[f"{prefix}/f1_{name}"] = float(f1[c])
    report = skm.classification_report(
        y_true, y_pred, labels=idx, target_names=list(labels), output_dict=True, zero_division=0
    )
    return Evaluation(values, cm, report, n_predicted, is_collapsed(n_predicted, k), tuple(labels))


def _one_vs_rest(score_fn, y_true, scores, k) -> float:
    """Macro average over classes of a one-vs-rest ranking score; classes absent from y_true
    are left out (the score is undefined for them). Works for sigmoid scores that do not sum to 1."""
    values = [score_fn(y_true == c, scores[:, c]) for c in range(k) if 0 < np.sum(y_true == c) < len(y_true)]
    return float(np.mean(values)) if values else float("nan")
