import numpy as np
from sklearn.metrics import f1_score

from imbalance_lab.evaluation import evaluate, is_collapsed, macro_f1, naive_macro_f1

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
