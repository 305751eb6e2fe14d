import warnings
from collections import Counter

import numpy as np
import pytest
from imblearn.metrics import geometric_mean_score
from sklearn.metrics import (
    accuracy_score,
    average_precision_score,
    balanced_accuracy_score,
    classification_report,
    confusion_matrix,
    f1_score,
    matthews_corrcoef,
    precision_recall_fscore_support,
    roc_auc_score,
)

from imbalance_lab.evaluation import (
    confusion_matrix_figure,
    evaluate,
    is_collapsed,
    literal,
    macro_f1,
    metric_label,
    naive_macro_f1,
)

RNG = np.random.default_rng(0)


def test_macro_f1_equals_scikit_learn_including_unpredicted_classes():
    y = RNG.integers(0, 5, size=300)
    pred = np.where(RNG.random(300) < 0.5, y, 1)
    pred[pred == 4] = 0
    assert abs(macro_f1(y, pred, 5) - f1_score(y, pred, average="macro", labels=range(5), zero_division=0)) < 1e-12


def test_naive_macro_f1_by_hand():
    y = np.array([0] * 6 + [1] * 3 + [2] * 1)
    # majority 0: F1_0 = 2*6/(2*6+4+0) = 0.75, others 0
    assert abs(naive_macro_f1(y, 0, 3) - 0.25) < 1e-12


def test_evaluate_names_metrics_by_label_and_detects_collapse():
    y = np.array([0, 0, 0, 1, 1, 2])
    scores = np.eye(3)[[0, 0, 0, 0, 0, 0]]
    ev = evaluate(y, np.zeros(6, dtype=int), scores, ("a", "b", "c"), majority_class=0)
    assert ev.collapsed and ev.n_predicted_classes == 1
    assert ev.metrics["test/recall_a"] == 1.0 and ev.metrics["test/recall_b"] == 0.0
    assert ev.metrics["test/macro_f1"] == ev.metrics["naive/macro_f1"]
    assert ev.confusion.sum() == 6 and ev.confusion[:, 0].sum() == 6
    for name in ("accuracy", "balanced_accuracy", "mcc", "gmean", "macro_roc_auc", "macro_pr_auc"):
        assert f"test/{name}" in ev.metrics


def test_collapse_rule():
    assert is_collapsed(1, 2) and is_collapsed(2, 6) and not is_collapsed(3, 6) and not is_collapsed(2, 2)


# --- evaluate() against scikit-learn / imbalanced-learn called one class at a time, as the reference ------

N_CASES = 60


def _reference(y, pred, scores, labels) -> tuple[dict[str, float], dict]:
    """Every metric of `evaluate` (except naive/macro_f1) and the report, straight from sklearn / imblearn."""
    idx = list(range(len(labels)))
    precision, recall, f1, _ = precision_recall_fscore_support(y, pred, labels=idx, zero_division=0)
    scored = [c for c in idx if 0 < np.sum(y == c) < len(y)]

    def macro(score_fn):
        return float(np.mean([score_fn(y == c, scores[:, c]) for c in scored])) if scored else float("nan")

    values = {
        "test/macro_f1": f1_score(y, pred, labels=idx, average="macro", zero_division=0),
        "test/accuracy": accuracy_score(y, pred),
        "test/balanced_accuracy": balanced_accuracy_score(y, pred),
        "test/mcc": matthews_corrcoef(y, pred),
        "test/gmean": geometric_mean_score(y, pred, labels=idx, average="multiclass"),
        "test/macro_roc_auc": macro(roc_auc_score),
        "test/macro_pr_auc": macro(average_precision_score),
        "test/n_predicted_classes": float(len(np.unique(pred))),
    }
    for c in idx:
        name = metric_label(labels[c])
        values |= {f"test/recall_{name}": recall[c], f"test/precision_{name}": precision[c],
                   f"test/f1_{name}": f1[c]}
    report = classification_report(y, pred, labels=idx, target_names=list(labels), output_dict=True,
                                   zero_division=0)
    return values, report


def _random_case(seed: int):
    """y_true, y_pred, scores and labels with the awkward cases: classes never predicted, classes absent
    from y_true, y_true or y_pred of one class, tied (rounded) scores, sigmoid scores, float32, k = 2."""
    rng = np.random.default_rng(seed)
    k, n = int(rng.integers(2, 9)), int(rng.integers(5, 301))
    y = rng.choice(k, size=n, p=rng.dirichlet(np.full(k, 0.7)))
    if rng.random() < 0.25:                       # a class absent from y_true
        absent = rng.integers(k)
        y[y == absent] = (absent + 1) % k
    if rng.random() < 0.05:                       # y_true of a single class: no one-vs-rest score
        y[:] = rng.integers(k)
    pred = np.where(rng.random(n) < rng.random(), y, rng.integers(0, k, size=n))
    if rng.random() < 0.3:                        # a class never predicted
        pred[pred == rng.integers(k)] = rng.integers(k)
    if rng.random() < 0.1:                        # collapsed onto one class
        pred[:] = rng.integers(k)
    logits = rng.normal(size=(n, k)) + 2 * rng.random() * np.eye(k)[y]
    if rng.random() < 0.5:
        scores = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    else:                                         # sigmoid: rows do not sum to 1
        scores = 1 / (1 + np.exp(-logits))
    if rng.random() < 0.4:                        # heavy ties
        scores = np.round(scores, 1)
    if rng.random() < 0.3:
        scores = scores.astype(np.float32)
    labels = tuple(f"c{c}" if c % 3 else f"class/{c}:x" for c in range(k))
    return y, pred, scores, labels


def _assert_report_equal(report: dict, expected: dict) -> None:
    assert list(report) == list(expected)
    for key, value in expected.items():
        assert type(report[key]) is type(value), key
        if isinstance(value, dict):
            assert list(report[key]) == list(value), key
            for column, v in value.items():
                assert type(report[key][column]) is type(v), (key, column)
                np.testing.assert_allclose(report[key][column], v, rtol=1e-12, atol=1e-12, err_msg=f"{key}/{column}")
        else:
            np.testing.assert_allclose(report[key], value, rtol=1e-12, atol=1e-12, err_msg=key)


@pytest.mark.parametrize("seed", range(N_CASES))
def test_evaluate_equals_scikit_learn_and_imbalanced_learn(seed):
    y, pred, scores, labels = _random_case(seed)
    ev = evaluate(y, pred, scores, labels, majority_class=int(np.bincount(y).argmax()))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        expected, report = _reference(y, pred, scores, labels)
    binary = {"test/sensitivity", "test/specificity"} if len(labels) == 2 else set()
    assert set(ev.metrics) == set(expected) | {"naive/macro_f1"} | binary
    for name, value in expected.items():
        assert type(ev.metrics[name]) is float, name
        np.testing.assert_allclose(ev.metrics[name], value, rtol=1e-12, atol=1e-12, err_msg=name)
    np.testing.assert_array_equal(ev.confusion, confusion_matrix(y, pred, labels=range(len(labels))))
    _assert_report_equal(ev.report, report)


def test_random_cases_cover_the_awkward_cases():
    """The draws above really contain every case evaluate() must get right."""
    seen = Counter()
    for seed in range(N_CASES):
        y, pred, scores, labels = _random_case(seed)
        k = len(labels)
        seen["binary"] += k == 2
        seen["absent from y_true"] += len(np.unique(y)) < k
        seen["no one-vs-rest score"] += len(np.unique(y)) == 1
        seen["never predicted"] += len(np.unique(pred)) < k
        seen["one predicted class"] += len(np.unique(pred)) == 1
        seen["tied scores"] += any(len(np.unique(scores[:, c])) < len(y) / 2 for c in range(k))
        seen["sigmoid"] += not np.allclose(scores.sum(axis=1), 1, atol=1e-3)
        seen["float32"] += scores.dtype == np.float32
        seen["zero mcc denominator"] += len(np.unique(pred)) == 1 or len(np.unique(y)) == 1
    assert min(seen.values()) >= 5, seen


def test_tied_scores_by_hand():
    y = np.array([0, 0, 1, 1])
    scores = np.array([[0.5, 0.5], [0.5, 0.5], [0.5, 0.5], [0.1, 0.9]])
    ev = evaluate(y, np.array([0, 0, 0, 1]), scores, ("a", "b"), majority_class=0)
    # ROC AUC by (positive, negative) pairs, a tie counting 1/2:
    # class 1: 0.9 beats both 0.5s, 0.5 ties both -> (2 + 1) / 4; class 0: ties 0.5 twice, beats 0.1 twice -> 3/4
    assert ev.metrics["test/macro_roc_auc"] == 0.75
    # class 1: threshold 0.9 -> P=1, R=1/2; threshold 0.5 -> P=2/4, R=1 -> AP = 1/2 + 1/2 * 1/2 = 0.75
    # class 0: first three score 0.5, the last 0.1: threshold 0.5 -> P=2/3, R=1 -> AP = 2/3
    assert abs(ev.metrics["test/macro_pr_auc"] - (0.75 + 2 / 3) / 2) < 1e-15


def test_one_vs_rest_scores_reject_nan_like_scikit_learn():
    y = np.array([0, 1, 0, 1])
    with pytest.raises(ValueError, match="NaN"):
        evaluate(y, y, np.full((4, 2), np.nan), ("a", "b"), majority_class=0)


def test_binary_tasks_log_sensitivity_and_specificity_as_the_literature_does():
    """Sensitivity = recall of the second (positive) class, specificity = recall of the first."""
    y = np.array([0, 0, 0, 0, 1, 1])
    pred = np.array([0, 0, 0, 1, 1, 0])
    ev = evaluate(y, pred, np.eye(2)[pred], ("negative", "positive"), majority_class=0)
    assert ev.metrics["test/sensitivity"] == 0.5 and ev.metrics["test/specificity"] == 0.75


def test_naive_baseline_is_the_training_majority_not_the_tests():
    """Under label shift the test split's majority differs: the naive predictor is the training one's."""
    y_test = np.array([1, 1, 1, 0, 2])
    ev = evaluate(y_test, y_test, np.eye(3)[y_test], ("a", "b", "c"), majority_class=0)
    assert ev.metrics["naive/macro_f1"] == naive_macro_f1(y_test, 0, 3) != naive_macro_f1(y_test, 1, 3)


def test_metric_label_keeps_the_safe_characters_and_replaces_each_other_one():
    assert metric_label("Fraud-1.x /y_Z") == "Fraud-1.x /y_Z"
    assert metric_label("class/3:x") == "class/3_x"
    assert metric_label("a:b€(c)") == "a_b__c_"
    assert metric_label(7) == "7"


def test_evaluate_names_per_class_metrics_by_the_safe_label():
    ev = evaluate(np.array([0, 1, 1]), np.array([0, 1, 0]), np.eye(2)[[0, 1, 0]], ("No", "yes:1"), majority_class=1)
    assert ev.metrics["test/recall_No"] == 1.0 and ev.metrics["test/recall_yes_1"] == 0.5


def test_evaluation_record_holds_counts_flags_and_labels():
    y = np.array([0, 1, 2, 2])
    ev = evaluate(y, y, np.eye(3)[y], ("a", "b", "c"), majority_class=2)
    assert ev.n_predicted_classes == 3 and ev.collapsed is False and ev.labels == ("a", "b", "c")
    collapsed = evaluate(y, np.full(4, 2), np.eye(3)[y], ["a", "b", "c"], majority_class=2)
    assert collapsed.n_predicted_classes == 1 and collapsed.collapsed is True and collapsed.labels == ("a", "b", "c")


def test_classes_never_predicted_score_0_silently():
    """zero_division=0: a class never predicted (or absent) scores 0 without an UndefinedMetricWarning,
    which the tuned threshold would otherwise raise on each of its ~1000 macro-F1 evaluations."""
    y, pred = np.array([0, 0, 1, 1, 2]), np.array([0, 0, 0, 1, 1])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert macro_f1(y, pred, 4) == pytest.approx((0.8 + 0.5 + 0 + 0) / 4)
        ev = evaluate(y, pred, np.eye(3)[pred], ("a", "b", "c"), majority_class=0)
    assert ev.metrics["test/recall_c"] == ev.metrics["test/precision_c"] == ev.metrics["test/f1_c"] == 0.0


def test_literal_escapes_every_dollar():
    assert literal("$x$ and $5") == r"\$x\$ and \$5" and literal(3) == "3"


def _cells(ax) -> dict:
    """The numbers written in a panel's cells, by (row, column)."""
    return {(round(t.get_position()[1]), round(t.get_position()[0])): t.get_text() for t in ax.texts}


def test_confusion_matrix_figure_shows_the_counts_the_recalls_and_the_labels():
    import matplotlib.pyplot as plt

    labels = ["$x$", "a" * 40, "plain", "Zz"]
    cm = np.array([[3, 1, 0, 0],    # row sums 4, 0 (class absent from the test split), 1, 5
                   [0, 0, 0, 0],
                   [0, 1, 0, 0],
                   [1, 0, 0, 4]])
    recall = [[3 / 4, 1 / 4, 0, 0], [0, 0, 0, 0], [0, 1, 0, 0], [1 / 5, 0, 0, 4 / 5]]  # by hand
    # The absent class's row must read 0.00 whatever memory the division's output lands in: hand numpy's
    # small-buffer cache a freed array of the same size holding 0.5, and fail on numpy's warning about an
    # uninitialised output.
    stale = np.full(cm.shape, 0.5)
    del stale
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        fig = confusion_matrix_figure(cm, labels, "t $5")
    counts, normalised = fig.axes
    assert len(fig.axes) == 2
    assert _cells(counts) == {(i, j): str(cm[i][j]) for i in range(4) for j in range(4)}
    assert _cells(normalised) == {(i, j): f"{recall[i][j]:.2f}" for i in range(4) for j in range(4)}
    assert _cells(normalised)[(2, 1)] == "1.00" and _cells(normalised)[(1, 1)] == "0.00"
    escaped = [r"\$x\$", "a" * 40, "plain", "Zz"]  # what matplotlib draws as the literal "$x$"
    for ax in fig.axes:
        assert [t.get_text() for t in ax.get_xticklabels()] == escaped
        assert [t.get_text() for t in ax.get_yticklabels()] == escaped
    assert (counts.get_title(), normalised.get_title()) == ("counts", "row-normalised")
    assert fig.get_suptitle() == r"t \$5"
    fig.canvas.draw()  # would raise on unbalanced mathtext
    plt.close(fig)


@pytest.mark.parametrize(("k", "numbers"), [(20, True), (21, False)])
def test_confusion_matrix_figure_writes_the_numbers_up_to_20_classes_and_scales_recall_0_to_1(k, numbers):
    import matplotlib.pyplot as plt

    cm = np.ones((k, k), dtype=int) + np.eye(k, dtype=int)  # recalls 1/(k+1), 2/(k+1): strictly inside (0, 1)
    fig = confusion_matrix_figure(cm, [f"c{i}" for i in range(k)])
    counts, normalised = fig.axes
    assert len(counts.texts) == len(normalised.texts) == (k * k if numbers else 0)
    assert normalised.images[0].get_clim() == (0, 1)          # colours comparable across runs
    assert counts.images[0].get_clim() == (1, 2)              # the counts' own range
    assert fig.get_suptitle() == ""                           # no title given, none drawn
    plt.close(fig)
