"""The `preprocess` group: how the features are transformed before the network sees them, fitted
on the training split only (validation and test are transformed with the training split's fit).

`standard` (StandardScaler, the default), `minmax` (MinMaxScaler), `robust` (RobustScaler),
`quantile` (QuantileTransformer): scikit-learn's transformers, each key of the option's YAML one of
the transformer's own parameters. `none` (`_target_: null`) keeps the features as the loader gives
them: what a plain script that never scales its inputs trains on.

Images: every pixel of every channel is one feature, fitted over the training images, as
`standard` always did (each pixel position standardised by its own training mean and standard
deviation; `minmax` maps each to [0, 1] by its training range, and so on); `none` keeps the
loader's pixel values (0-1 for the bundled digits and seed003_profile).

The training split's per-feature mean and standard deviation before the transform are kept
(`FeatureScale`): the doctor reads the raw scales from them whatever the option.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from omegaconf import OmegaConf
from sklearn.preprocessing import MinMaxScaler, QuantileTransformer, RobustScaler, StandardScaler

from imbalance_lab.errors import ImbalanceLabError

# The config `standard.yaml` composes to: what callers get when they name no preprocess option.
STANDARD = {"_target_": "imbalance_lab.data.preprocess.standard"}
NONE: dict = {"_target_": None}
STATS_BLOCK = 16_384   # rows per block when the raw scales are measured


def standard(with_mean: bool = True, with_std: bool = True) -> StandardScaler:
    return StandardScaler(with_mean=with_mean, with_std=with_std)


def minmax(feature_range=(0.0, 1.0), clip: bool = False) -> MinMaxScaler:
    return MinMaxScaler(feature_range=tuple(feature_range), clip=clip)


def robust(quantile_range=(25.0, 75.0), with_centering: bool = True, with_scaling: bool = True,
           unit_variance: bool = False) -> RobustScaler:
    return RobustScaler(quantile_range=tuple(quantile_range), with_centering=with_centering,
                        with_scaling=with_scaling, unit_variance=unit_variance)


def quantile(n_quantiles: int = 1000, output_distribution: str = "uniform", subsample: int = 10_000) -> QuantileTransformer:
    return QuantileTransformer(n_quantiles=n_quantiles, output_distribution=output_distribution, subsample=subsample)


@dataclass(frozen=True)
class FeatureScale:
    """Per-feature mean and standard deviation of the training split before preprocessing, with
    the features' names (a table's columns; `pixel (row, column, channel)` for images)."""

    mean: np.ndarray
    std: np.ndarray
    names: tuple[str, ...]

    @classmethod
    def of(cls, X_train: np.ndarray, names=None) -> FeatureScale:
        flat = np.asarray(X_train).reshape(len(X_train), -1)
        if names is None or len(names) != flat.shape[1]:
            names = _default_names(X_train.shape[1:])
        # In float64 and in blocks of rows: no float64 copy of a large table at once.
        def blocks():
            return (flat[i: i + STATS_BLOCK].astype("float64") for i in range(0, len(flat), STATS_BLOCK))

        n = max(len(flat), 1)
        mean = sum(b.sum(axis=0) for b in blocks()) / n
        var = sum(((b - mean) ** 2).sum(axis=0) for b in blocks()) / n
        return cls(mean, np.sqrt(var), tuple(str(n) for n in names))


def _default_names(shape: tuple[int, ...]) -> tuple[str, ...]:
    if len(shape) == 1:
        return tuple(f"feature {j}" for j in range(shape[0]))
    return tuple(f"pixel {index}" for index in np.ndindex(*shape))


def make_transformer(node: dict, seed: int):
    """The option's scikit-learn transformer (None for `none`), seeded where it samples."""
    target = node.get("_target_")
    if not target:
        return None
    from imbalance_lab.configs import call_target

    transformer = call_target(OmegaConf.create(node))
    if "random_state" in transformer.get_params():
        transformer.set_params(random_state=int(seed))
    return transformer


def fit_transform(transformer, X_train: np.ndarray, X_val: np.ndarray, X_test: np.ndarray, option: str = ""):
    """Fit on the training rows only, transform all three splits (float32, shapes kept)."""
    if transformer is None:
        return tuple(np.asarray(X, dtype="float32") for X in (X_train, X_val, X_test))
    flat_train = X_train.reshape(len(X_train), -1)
    if isinstance(transformer, QuantileTransformer):  # sklearn warns and lowers it itself otherwise
        transformer.set_params(n_quantiles=min(transformer.n_quantiles, len(flat_train)))
    try:
        transformer.fit(flat_train)
    except ValueError as err:  # a parameter out of range (sklearn's own sentence names it)
        raise ImbalanceLabError(f"preprocess{'=' + option if option else ''}: {err}; see conf/preprocess/.") from None

    def apply(X):
        return transformer.transform(X.reshape(len(X), -1)).astype("float32").reshape(X.shape)

    return apply(X_train), apply(X_val), apply(X_test)
