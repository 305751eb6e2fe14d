"""remedies/balanced_batches.py's BalancedBatches directly, on class layouts the sampler tests do not build:
a class with no training row, a class of one row, a data size that is not a multiple of the batch size."""

import math

import numpy as np
import pytest

from imbalance_lab.remedies.balanced_batches import BalancedBatches

# Four one-hot columns: class 1 has no row (an undersampler or a tiny split can do that), class 2 has one.
LABELS = np.random.default_rng(7).permutation(np.array([0] * 50 + [2] + [3] * 20))
Y = np.eye(4, dtype="float32")[LABELS]
X = np.arange(len(LABELS), dtype="float32")[:, None]  # row i holds i: a drawn row says which row it is


def test_only_present_classes_are_drawn_each_equally_often_a_one_row_class_included():
    source = BalancedBatches(X, Y, None, batch_size=300, batches_per_epoch=10, seed=0)
    drawn = np.concatenate([source[i][0][:, 0] for i in range(len(source))]).astype(int)
    labels = LABELS[drawn]
    np.testing.assert_array_equal(np.argmax(np.concatenate([source[i][1] for i in range(3)]), axis=1),
                                  LABELS[np.concatenate([source.draw(i) for i in range(3)])])
    counts = np.bincount(labels, minlength=4)
    assert counts[1] == 0
    # each present class ~ Binomial(3000, 1/3): sd 25.8, 5 sd bounds
    assert np.all(np.abs(counts[[0, 2, 3]] - 1000) < 5 * math.sqrt(3000 / 3 * 2 / 3)), counts
    assert set(drawn[labels == 2]) == {int(np.flatnonzero(LABELS == 2)[0])}
    assert len(set(drawn[labels == 3])) == 20  # uniform within a class: 1000 draws reach all 20 rows


@pytest.mark.parametrize("n_rows, batch_size, batches_per_epoch", [(71, 10, None), (70, 10, None), (71, 7, None), (71, 10, 3)])
def test_an_epoch_is_ceil_n_over_batch_size_batches_unless_given(n_rows, batch_size, batches_per_epoch):
    """Like Keras's fit on arrays: the last, partial batch counts, so every row has a chance per epoch."""
    source = BalancedBatches(X[:n_rows], Y[:n_rows], None, batch_size, batches_per_epoch, seed=0)
    assert len(source) == (batches_per_epoch or math.ceil(n_rows / batch_size))


def test_rows_are_grouped_by_class_in_their_original_order():
    """A stable sort: which row a draw picks depends only on the labels and the seed, not on the sort
    algorithm numpy picks for the machine's CPU (a quicksort may order equal labels differently)."""
    source = BalancedBatches(X, Y, None, batch_size=8, batches_per_epoch=1, seed=0)
    np.testing.assert_array_equal(source.order, np.concatenate([np.flatnonzero(LABELS == c) for c in range(4)]))
