"""Metrics, confusion matrix, the naive majority-class baseline and collapse detection, from
scikit-learn and imbalanced-learn.

Class order is sorted label order; metric names use the labels (`test/recall_<label>`).
"""

from __future__ import annotations

import re
import warnings
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


def macro_f1(y_true: np.ndarray, y_pred: np.ndarray, n_classes: int) -> float:
    """Macro-F1 over all n_classes; a class never predicted nor present scores 0."""
    return float(skm.f1_score(y_true, y_pred, labels=np.arange(n_classes), average="macro", zero_division=0))


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
    """All contract metrics for predictions `y_pred` and per-class `scores` (probabilities).
    `majority_class`: the TRAINING split's majority class (the naive predictor's answer)."""
    k = len(labels)
    classes = np.arange(k)
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    cm = skm.confusion_matrix(y_true, y_pred, labels=classes)
    precision, recall, f1, support = skm.precision_recall_fscore_support(
        y_true, y_pred, labels=classes, zero_division=0)
    roc_auc, pr_auc = one_vs_rest_auc(y_true, np.asarray(scores), k)
    n_predicted = int(np.count_nonzero(cm.sum(axis=0)))
    with warnings.catch_warnings():  # a class absent from y_pred or y_true: sklearn warns, the value is defined
        warnings.simplefilter("ignore")
        values = {
            f"{prefix}/macro_f1": macro_f1(y_true, y_pred, k),
            f"{prefix}/accuracy": float(skm.accuracy_score(y_true, y_pred)),
            f"{prefix}/balanced_accuracy": float(skm.balanced_accuracy_score(y_true, y_pred)),
            f"{prefix}/mcc": float(skm.matthews_corrcoef(y_true, y_pred)),
            f"{prefix}/gmean": float(geometric_mean_score(y_true, y_pred, labels=classes, average="multiclass")),
            f"{prefix}/macro_roc_auc": roc_auc,
            f"{prefix}/macro_pr_auc": pr_auc,
            f"{prefix}/n_predicted_classes": float(n_predicted),
            "naive/macro_f1": naive_macro_f1(y_true, majority_class, k),
        }
        report = skm.classification_report(y_true, y_pred, labels=classes, target_names=[str(x) for x in labels],
                                           output_dict=True, zero_division=0)
    for c, label in enumerate(labels):
        name = metric_label(label)
        values[f"{prefix}/recall_{name}"] = float(recall[c])
        values[f"{prefix}/precision_{name}"] = float(precision[c])
        values[f"{prefix}/f1_{name}"] = float(f1[c])
    if k == 2:  # the binary literature's sensitivity (recall of the second class) and specificity (of the first)
        values[f"{prefix}/sensitivity"], values[f"{prefix}/specificity"] = float(recall[1]), float(recall[0])
    return Evaluation(values, cm, report, n_predicted, is_collapsed(n_predicted, k), tuple(labels))


def one_vs_rest_auc(y_true: np.ndarray, scores: np.ndarray, k: int) -> tuple[float, float]:
    """Macro one-vs-rest ROC AUC and average precision over the classes that occur in y_true but
    not alone (undefined for the others; NaN if none is left). Each class's score column is scored
    on its own, so sigmoid outputs that do not sum to 1 are fine."""
    onehot = (y_true[:, None] == np.arange(k)).astype(int)
    counts = onehot.sum(axis=0)
    keep = (counts > 0) & (counts < len(y_true))
    if not keep.any():
        return float("nan"), float("nan")
    return (float(skm.roc_auc_score(onehot[:, keep], scores[:, keep], average="macro")),
            float(skm.average_precision_score(onehot[:, keep], scores[:, keep], average="macro")))


def literal(text) -> str:
    """User text as matplotlib draws it literally: a `$` would otherwise start mathtext."""
    return str(text).replace("$", r"\$")


def confusion_matrix_figure(cm: np.ndarray, labels, title: str = ""):
    """Counts and row-normalised (recall per true class, 0 for a class absent from the test split, colour
    scale 0 to 1) side by side, with scikit-learn's ConfusionMatrixDisplay; the numbers are written in the
    cells up to 20 classes; the labels are drawn as given."""
    import matplotlib

    matplotlib.use("Agg")  # pragma: no mutate -- backend names are case-insensitive; the figure is the same
    import matplotlib.pyplot as plt

    cm = np.asarray(cm)
    k = len(labels)
    names = [literal(label) for label in labels]
    rows = cm.sum(axis=1, keepdims=True)
    normalised = np.divide(cm, rows, out=np.zeros(cm.shape, dtype=float), where=rows > 0)
    # The figure's size and layout in inches: styling only, nothing a reader takes from it changes.
    side = min(12.0, max(3.6, 0.55 * k + 2.0))  # pragma: no mutate
    fig, axes = plt.subplots(1, 2, figsize=(2 * side + 1.0, side + 0.6))  # pragma: no mutate
    # The tick labels' angle, slanted for many or long names, like the colours and the colour bar: styling.
    rotation = 45 if k > 6 or max(len(n) for n in names) > 4 else "horizontal"  # pragma: no mutate
    for ax, values, name, fmt in ((axes[0], cm, "counts", "d"), (axes[1], normalised, "row-normalised", ".2f")):
        display = skm.ConfusionMatrixDisplay(values, display_labels=names)
        display.plot(ax=ax, include_values=k <= 20, values_format=fmt,
                     cmap="Blues", colorbar=False, xticks_rotation=rotation,  # pragma: no mutate -- styling
                     )
        ax.set_title(name)
        if values is normalised:
            display.im_.set_clim(0, 1)
    if title:
        fig.suptitle(literal(title))
    return fig
