import numpy as np
from sklearn.utils.class_weight import compute_class_weight

from imbalance_lab.remedies.weighting import balanced_weights, sample_weights


def test_balanced_weights_equal_scikit_learn():
    y = np.array([0] * 70 + [1] * 20 + [2] * 7 + [3] * 3)
    expected = compute_class_weight("balanced", classes=np.unique(y), y=y)
    np.testing.assert_allclose(balanced_weights(np.bincount(y)), expected)


def test_balanced_weights_mean_one_over_samples():
    y = np.array([0] * 90 + [1] * 10)
    w = sample_weights(balanced_weights(np.bincount(y)), y)
    assert abs(w.mean() - 1.0) < 1e-6
    assert w[y == 1][0] == 5.0 and abs(w[y == 0][0] - 100 / 180) < 1e-6


def test_no_weighting_gives_no_sample_weights():
    assert sample_weights(None, np.array([0, 1])) is None
