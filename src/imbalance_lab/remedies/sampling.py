"""Resampling of the training split (the `sampler` axis), with imbalanced-learn samplers.

A sampler option is an imbalanced-learn estimator config (`_target_` plus its parameters); the
run passes its seed as `random_state`. A kNN sampler's `neighbors` key (exact | approximate | auto)
says how its neighbours are searched (neighbors.py). Validation and test never reach this module.
"""

from __future__ import annotations

import inspect
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from imbalance_lab.errors import ImbalanceLabError
from imbalance_lab.remedies import neighbors


@dataclass
class Resampled:
    X: np.ndarray
    y: np.ndarray
    counts_before: list[int]
    counts_after: list[int]
    method: str
    note: str = ""
    batch_source: Callable | None = None  # balanced_batch: draws the training batches (training.fit)
    neighbors: str = ""   # how a kNN sampler searched its neighbours: exact | approximate ("" for the others)
    seconds: float = 0.0  # wall time of the fit_resample that made these rows (a cache hit: of the run that did)

    @property
    def logged_params(self) -> dict[str, str]:
        """The run's param for what `sampler.neighbors` (maybe auto) resolved to."""
        return {"resample.neighbors": self.neighbors} if self.neighbors else {}

    @property
    def logged_metrics(self) -> dict[str, float]:
        return {"resample/seconds": self.seconds}


def make_sampler(sampler_cfg: DictConfig, seed: int, n_rows: int = 0):
    """The configured sampler, or None for `sampler=none`; a kNN sampler's neighbours estimators
    follow `sampler.neighbors` resolved for a training split of n_rows (neighbors.resolve)."""
    if sampler_cfg is None or not sampler_cfg.get("_target_"):
        return None
    params = OmegaConf.to_container(sampler_cfg, resolve=True)
    choice = neighbors_choice(params, n_rows)
    params.pop("neighbors", None)
    target = params.pop("_target_")
    sampler_cls = _resolve(target)
    if "random_state" in inspect.signature(sampler_cls).parameters:
        params["random_state"] = seed
    if choice == "approximate":
        target, params = _approximate(target, params, seed)
    try:
        return instantiate({"_target_": target, **params}, _convert_="all")  # plain dicts and lists, as imblearn expects
    except Exception as err:
        raise ImbalanceLabError(f"The sampler {target} rejected its parameters {params}: {err}") from None


def neighbors_choice(sampler_params: dict | DictConfig | None, n_rows: int) -> str:
    """`exact` or `approximate` for a kNN sampler's config on n_rows training rows, "" for a sampler
    without neighbours (its `neighbors` key is absent)."""
    choice = (sampler_params or {}).get("neighbors")
    return "" if choice is None else neighbors.resolve(str(choice), n_rows)


def _approximate(target: str, params: dict, seed: int) -> tuple[str, dict]:
    """The sampler's config with every neighbour parameter (inner samplers' too) replaced by an
    ApproximateNeighbors config asking for as many neighbours as imbalanced-learn would, and
    TomekLinks by ApproximateTomekLinks."""
    name = target.rsplit(".", 1)[-1]
    if name == neighbors.TOMEK:
        target, params = f"{neighbors.__name__}.ApproximateTomekLinks", {**params, "random_state": seed}
    for param, extra in neighbors.NEIGHBOUR_PARAMS.get(name, {}).items():
        k = params.get(param, inspect.signature(_resolve(target)).parameters[param].default)
        if isinstance(k, int):
            params[param] = {"_target_": f"{neighbors.__name__}.ApproximateNeighbors",
                             "n_neighbors": k + extra, "random_state": seed}
    for inner in INNER_SAMPLERS:
        node = params.get(inner)
        if isinstance(node, dict) and node.get("_target_"):
            inner_target, inner_params = _approximate(node["_target_"], {k: v for k, v in node.items() if k != "_target_"}, seed)
            params[inner] = {"_target_": inner_target, **inner_params}
    return target, params


def resample(sampler, X: np.ndarray, y: np.ndarray, labels: tuple[str, ...], neighbors_used: str = "") -> Resampled:
    """Resample (X, y); images are flattened for the sampler and reshaped back. `neighbors_used`:
    how the sampler searches neighbours (for the record)."""
    k = len(labels)
    before = np.bincount(y, minlength=k).tolist()
    if sampler is None:
        return Resampled(X, y, before, before, "none")
    if isinstance(sampler, BalancedBatchSampler):
        return Resampled(X, y, before, sampler.expected_counts(len(y), k), "balanced_batch",
                         note="nothing materialised: counts_after are the expected rows per class per epoch",
                         batch_source=sampler.batches)
    _check_neighbours(sampler, before, labels)
    flat = X.reshape(len(X), -1)
    start = time.perf_counter()
    try:
        X_res, y_res = sampler.fit_resample(flat, y)
    except ValueError as err:
        raise ImbalanceLabError(f"{type(sampler).__name__} failed on the training split: {err}") from None
    seconds = time.perf_counter() - start
    X_res = np.asarray(X_res, dtype="float32").reshape((-1, *X.shape[1:]))
    y_res = np.asarray(y_res)
    return Resampled(X_res, y_res, before, np.bincount(y_res, minlength=k).tolist(), type(sampler).__name__,
                     neighbors=neighbors_used, seconds=seconds)


# Neighbour parameters that are fitted within one class, so the smallest class bounds them:
# (sampler class, parameter, rows needed beyond the parameter). SMOTE-like samplers query k + 1
# neighbours among the class's own rows (the row itself comes back first); NearMiss queries
# n_neighbors among the minority rows.
CLASS_BOUND_NEIGHBOURS = {
    "SMOTE": (("k_neighbors", 1),),
    "BorderlineSMOTE": (("k_neighbors", 1),),
    "SVMSMOTE": (("k_neighbors", 1),),
    "KMeansSMOTE": (("k_neighbors", 1),),
    "ADASYN": (("n_neighbors", 1),),
    "NearMiss": (("n_neighbors", 0),),
}
# Composite samplers: the attributes that hold their inner samplers.
INNER_SAMPLERS = ("smote", "enn", "tomek")


def _check_neighbours(sampler, counts, labels, prefix: str = "sampler") -> None:
    """Samplers whose neighbours are searched within a class need that many rows in the smallest
    class: say so, naming the class and its size, before anything is fitted."""
    for inner in INNER_SAMPLERS:
        if getattr(sampler, inner, None) is not None:
            _check_neighbours(getattr(sampler, inner), counts, labels, f"{prefix}.{inner}")
    name = type(sampler).__name__
    smallest = int(np.argmin(counts))
    for param, extra in CLASS_BOUND_NEIGHBOURS.get(name, ()):
        k = getattr(sampler, param, None)
        if isinstance(k, neighbors.ApproximateNeighbors):   # it asks for the k + extra neighbours itself
            k = k.n_neighbors - neighbors.NEIGHBOUR_PARAMS[name][param]
        if not isinstance(k, int | np.integer) or counts[smallest] >= k + extra:
            continue
        relation = "more than" if extra else "at least"
        raise ImbalanceLabError(
            f"{name} needs {relation} {param}={k} rows per class, but class "
            f"'{labels[smallest]}' has {counts[smallest]} training rows; lower {prefix}.{param} to "
            f"{max(1, counts[smallest] - extra)} or use sampler={'random_under' if name == 'NearMiss' else 'random_over'}."
        )


class BalancedBatchSampler:
    """Class-balanced mini-batches drawn on the fly: for each row of a batch, a class uniformly at
    random, then a row of that class uniformly (with replacement). Only per-class index arrays are
    kept; no resampled copy of the data exists. Batches are drawn from a generator seeded by
    (random_state, epoch, batch), so the same seed gives the same batches."""

    def __init__(self, batches_per_epoch: int | None = None, random_state: int = 0):
        if batches_per_epoch is not None and int(batches_per_epoch) < 1:
            raise ImbalanceLabError(f"sampler.batches_per_epoch={batches_per_epoch} must be >= 1 or null.")
        self.batches_per_epoch, self.random_state = batches_per_epoch, int(random_state)

    def expected_counts(self, n_rows: int, n_classes: int) -> list[int]:
        return [round(n_rows / n_classes)] * n_classes

    def batches(self, X, Y, sample_weight, batch_size: int):
        """The batch source for training.fit (Y one-hot)."""
        from imbalance_lab.remedies.balanced_batches import BalancedBatches  # Keras: only when training

        return BalancedBatches(X, Y, sample_weight, batch_size, self.batches_per_epoch, self.random_state)


def _resolve(target: str):
    from hydra.utils import get_class

    try:
        return get_class(target)
    except Exception:
        raise ImbalanceLabError(f"sampler._target_={target!r} is not an importable class.") from None
