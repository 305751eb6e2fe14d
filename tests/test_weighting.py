import numpy as np
import pytest
from sklearn.utils.class_weight import compute_class_weight

from imbalance_lab.errors import ImbalanceLabError
from imbalance_lab.remedies.weighting import (
    balanced_weights,
    effective_number_raw,
    effective_number_weights,
    inverse_sqrt_weights,
    sample_weights,
)


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


def test_inverse_sqrt_weights_by_hand():
    # counts 100, 25, 4: raw 1/10, 1/5, 1/2; sum n_c raw_c = 17, N = 129 -> w = 129/170, 129/85, 129/34
    np.testing.assert_allclose(inverse_sqrt_weights([100, 25, 4]), [129 / 170, 129 / 85, 129 / 34], rtol=1e-12)


def test_effective_number_weights_by_hand():
    # beta 0.9, counts 90 and 10: raw = 0.1/(1-0.9^90) = 0.1000076, 0.1/(1-0.9^10) = 0.1535340;
    # scaled by N / sum n_c raw_c = 100 / 10.53587 -> 0.949197, 1.457229
    np.testing.assert_allclose(effective_number_weights([90, 10], beta=0.9), [0.949197, 1.457229], atol=1e-6)


def test_effective_number_spans_no_weighting_to_balanced():
    counts = np.array([700, 200, 100])
    np.testing.assert_allclose(effective_number_weights(counts, beta=0.0), [1, 1, 1])
    np.testing.assert_allclose(effective_number_weights(counts, beta=1 - 1e-9), balanced_weights(counts), rtol=1e-4)


@pytest.mark.parametrize("weights_of", [balanced_weights, inverse_sqrt_weights, effective_number_weights])
def test_every_class_weight_has_mean_one_over_training_rows(weights_of):
    y = np.array([0] * 700 + [1] * 200 + [2] * 60 + [3] * 40)
    w = sample_weights(weights_of(np.bincount(y)), y)
    assert abs(w.mean() - 1.0) < 1e-6
    assert np.all(np.diff(weights_of(np.bincount(y))) > 0)  # rarer class, larger weight


def test_effective_number_rejects_beta_of_one():
    with pytest.raises(ImbalanceLabError, match="beta=1.0"):
        effective_number_weights([10, 5], beta=1.0)


@pytest.mark.parametrize("weights_of", [inverse_sqrt_weights, effective_number_weights])
def test_a_class_absent_from_training_gets_weight_zero_and_the_others_keep_mean_one(weights_of):
    """An undersampler or a tiny split can leave a class with no training row: it has nothing to weight."""
    counts = np.array([100, 0, 25])
    w = weights_of(counts)
    assert w[1] == 0.0 and np.all(np.isfinite(w))
    np.testing.assert_allclose(np.dot(counts, w) / counts.sum(), 1.0)
    np.testing.assert_allclose(w[[0, 2]], weights_of(np.array([100, 25])), rtol=1e-12)


def test_inverse_sqrt_weights_a_class_of_one_row_by_hand():
    # counts 100, 1, 25: raw 1/10, 1, 1/5; sum n_c raw_c = 10 + 1 + 5 = 16, N = 126 -> w = raw * 126 / 16
    np.testing.assert_allclose(inverse_sqrt_weights([100, 1, 25]), np.array([0.1, 1.0, 0.2]) * 126 / 16, rtol=1e-12)


@pytest.mark.parametrize("beta", [-0.1, 1.5])
def test_effective_number_rejects_a_beta_outside_zero_one(beta):
    with pytest.raises(ImbalanceLabError, match=f"beta={beta} is outside"):
        effective_number_weights([10, 5], beta=beta)


def test_effective_number_of_a_one_row_class_is_one():
    """Cui et al.: E_n = (1 - beta^n) / (1 - beta), so E_1 = 1 and the raw weight 1 / E_1 = 1 for any beta."""
    for beta in (0.5, 0.9, 0.999):
        raw = [(1 - beta) / (1 - beta**n) for n in (100, 1, 25)]
        np.testing.assert_allclose(effective_number_raw([100, 1, 25], beta), raw, rtol=1e-12)
        assert effective_number_raw([100, 1, 25], beta)[1] == pytest.approx(1.0)
