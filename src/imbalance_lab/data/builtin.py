"""scikit-learn's bundled datasets: nothing is downloaded."""

from __future__ import annotations

from sklearn import datasets

from imbalance_lab.data.raw import RawData


def load_digits_images() -> RawData:
    """8x8 grey images of digits 0-9 (1797 rows), shaped (n, 8, 8, 1) for convolutional models."""
    bunch = datasets.load_digits()
    images = (bunch.images / 16.0).astype("float32")[..., None]
    return RawData(images, bunch.target, is_image=True, description="sklearn digits 8x8x1")
