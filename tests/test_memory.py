"""Training arrays handed to TensorFlow without a copy (memory.py), and data that arrive that way."""

import numpy as np
import pytest
from sklearn.preprocessing import StandardScaler

from imbalance_lab.data import load_splits
from imbalance_lab.memory import ALIGN, aligned, aligned_empty, as_tensor, is_aligned


def test_aligned_empty_starts_on_the_boundary_for_many_shapes():
    for shape in [(1,), (3, 5), (1000, 157), (7, 8, 8, 1)]:
        a = aligned_empty(shape)
        assert a.ctypes.data % ALIGN == 0 and a.shape == shape and a.flags.c_contiguous


def test_as_tensor_shares_an_aligned_arrays_memory():
    a = aligned(np.arange(12, dtype="float32").reshape(3, 4))
    a.flags.writeable = False  # as the data pipeline leaves it
    t = as_tensor(a)
    writer = a.view()
    writer.flags.writeable = True  # the owner of the memory is writeable; change it behind the tensor
    writer[0, 0] = 42.0
    assert float(t[0, 0]) == 42.0, "the tensor is a copy, not a view of the array"
    np.testing.assert_array_equal(t.numpy(), a)


@pytest.mark.parametrize("make", [
    lambda: np.arange(40, dtype="float32").reshape(8, 5)[:, 1:],            # not contiguous
    lambda: np.arange(40, dtype="float64").reshape(8, 5),                   # another dtype
    lambda: np.frombuffer(np.arange(41, dtype="float32").tobytes(), "float32")[1:].reshape(8, 5),  # off the boundary, read-only
])
def test_as_tensor_copies_what_it_cannot_share_with_the_same_values(make):
    a = make()
    np.testing.assert_array_equal(as_tensor(a).numpy(), a.astype("float32"))


def test_scaled_splits_are_shareable_and_equal_sklearns_standard_scaler():
    cfg = {"_target_": "imbalance_lab.data.builtin.load_wine"}
    data = load_splits(cfg, seed=0)
    for X in (data.X_train, data.X_val, data.X_test):
        assert is_aligned(X) and not X.flags.writeable
    from imbalance_lab.data.builtin import load_wine
    from imbalance_lab.data.splits import _stratified  # the same split, then sklearn's scaler
    raw = load_wine()
    classes = np.unique(raw.y)
    y = np.searchsorted(classes, raw.y)
    labels = tuple(str(c) for c in classes)
    X_rest, X_test, y_rest, _ = _stratified(raw.X, y, 0.2, 0, labels)
    X_train, X_val, _, _ = _stratified(X_rest, y_rest, 0.2 / 0.8, 0, labels)
    scaler = StandardScaler().fit(X_train)
    np.testing.assert_allclose(data.X_train, scaler.transform(X_train), rtol=0, atol=1e-6)
    np.testing.assert_allclose(data.X_test, scaler.transform(X_test), rtol=0, atol=1e-6)
