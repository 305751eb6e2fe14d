"""scikit-learn's bundled datasets: nothing is downloaded."""

from __future__ import annotations

from sklearn import datasets

from imbalance_lab.data.raw import RawData


def load_digits_images() -> RawData:
    """8x8 grey images of digits 0-9 (1797 rows), shaped (n, 8, 8, 1) for convolutional models."""
    bunch = datasets.load_digits()
    images = (bunch.images / 16.0).astype("float32")[..., None]
    return RawData(images, bunch.target, is_image=True, description="sklearn digits 8x8x1",
                   source="sklearn.datasets.load_digits")


def load_wine() -> RawData:
    """178 wines, 13 chemical measurements, 3 cultivars (59/71/48): mildly imbalanced."""
    bunch = datasets.load_wine()
    return RawData(bunch.data.astype("float32"), bunch.target_names[bunch.target], description="sklearn wine",
                   source="sklearn.datasets.load_wine", feature_names=tuple(bunch.feature_names))


def load_breast_cancer() -> RawData:
    """569 tumours, 30 features, malignant/benign (212/357)."""
    bunch = datasets.load_breast_cancer()
    return RawData(bunch.data.astype("float32"), bunch.target_names[bunch.target],
                   description="sklearn breast_cancer", source="sklearn.datasets.load_breast_cancer",
                   feature_names=tuple(bunch.feature_names))
