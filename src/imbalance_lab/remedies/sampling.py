"""Resampling of the training split (the `sampler` axis), with imbalanced-learn samplers.

A sampler option is an imbalanced-learn estimator config (`_target_` plus its parameters); the
run passes its seed as `random_state`. Validation and test never reach this module.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass

import numpy as np
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from imbalance_lab.errors import ImbalanceLabError


@dataclass
class Resampled:
    X: np.ndarray
    y: np.ndarray
    counts_before: list[int]
    counts_after: list[int]
    method: str


def make_sampler(sampler_cfg: DictConfig, seed: int):
    """The configured sampler, or None for `sampler=none`."""
    if sampler_cfg is None or not sampler_cfg.get("_target_"):
        return None
    params = OmegaConf.to_container(sampler_cfg, resolve=True)
    target = params.pop("_target_")
    sampler_cls = _resolve(target)
    if "random_state" in inspect.signature(sampler_cls).parameters:
        params["random_state"] = seed
    try:
        return instantiate({"_target_": target, **params})
    except Exception as err:
        raise ImbalanceLabError(f"The sampler {target} rejected its parameters {params}: {err}") from None


def resample(sampler, X: np.ndarray, y: np.ndarray, labels: tuple[str, ...]) -> Resampled:
    """Resample (X, y); images are flattened for the sampler and reshaped back."""
    k = len(labels)
    before = np.bincount(y, minlength=k).tolist()
    if sampler is None:
        return Resampled(X, y, before, before, "none")
    _check_neighbours(sampler, before, labels)
    flat = X.reshape(len(X), -1)
    try:
        X_res, y_res = sampler.fit_resample(flat, y)
    except ValueError as err:
        raise ImbalanceLabError(f"{type(sampler).__name__} failed on the training split: {err}") from None
    X_res = np.asarray(X_res, dtype="float32").reshape((-1, *X.shape[1:]))
    y_res = np.asarray(y_res)
    return Resampled(X_res, y_res, before, np.bincount(y_res, minlength=k).tolist(), type(sampler).__name__)


def _check_neighbours(sampler, counts, labels) -> None:
    """SMOTE-like samplers need more minority rows than neighbours: say so before fitting."""
    k = getattr(sampler, "k_neighbors", None)
    if not isinstance(k, int | np.integer):
        return
    smallest = int(np.argmin(counts))
    if counts[smallest] <= k:
        raise ImbalanceLabError(
            f"sampler={type(sampler).__name__} needs more than k_neighbors={k} rows per class, but class "
            f"'{labels[smallest]}' has {counts[smallest]} training rows; lower sampler.k_neighbors to "
            f"{max(1, counts[smallest] - 1)} or use sampler=random_over."
        )


def _resolve(target: str):
    from hydra.utils import get_class

    try:
        return get_class(target)
    except Exception:
        raise ImbalanceLabError(f"sampler._target_={target!r} is not an importable class.") from None
