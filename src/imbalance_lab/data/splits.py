"""Stratified train/val/test splits, imbalance injection, an optional row budget, and the
`preprocess` option, fitted on the training split only."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np
from hydra.utils import get_method
from omegaconf import DictConfig, OmegaConf
from sklearn.impute import SimpleImputer
from sklearn.model_selection import train_test_split

from imbalance_lab.data.binary import one_vs_rest
from imbalance_lab.data.imbalance import inject
from imbalance_lab.data.preprocess import NONE, STANDARD, FeatureScale, fit_transform, make_transformer
from imbalance_lab.data.raw import RawData
from imbalance_lab.errors import ImbalanceLabError

# Keys of a `dataset` option that belong to the split, not to its loader. `max_train_rows` and
# `max_val_rows` keep a stratified sample of those splits (a quick look at a large table; the
# doctor's --why), the test split stays whole.
SPLIT_KEYS = ("val_size", "test_size", "imbalance", "positive", "train_size", "max_train_rows", "max_val_rows")


@dataclass(frozen=True)
class Splits:
    X_train: np.ndarray
    y_train: np.ndarray      # class indices 0..K-1 in sorted label order
    X_val: np.ndarray
    y_val: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray
    labels: tuple[str, ...]  # the original labels, sorted, as strings
    is_image: bool
    fingerprint: str
    description: str
    source: str = ""         # where the rows come from: the MLflow dataset input's source
    raw_scale: FeatureScale | None = None   # the training features before `preprocess`

    @property
    def imbalance_ratio(self) -> float:
        """Largest / smallest training class size (inf when a class is absent from training)."""
        counts = self.class_counts("train")
        return float(counts.max() / counts.min()) if counts.min() > 0 else float("inf")

    @property
    def n_classes(self) -> int:
        return len(self.labels)

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(self.X_train.shape[1:])

    def class_counts(self, split: str = "train") -> np.ndarray:
        y = getattr(self, f"y_{split}")
        return np.bincount(y, minlength=self.n_classes)


def load_splits(dataset_cfg: DictConfig | dict, seed: int, preprocess_cfg: DictConfig | dict | None = None,
                model_inputs: Callable[[RawData], RawData] | None = None) -> Splits:
    """Load, split and preprocess a dataset (`preprocess_cfg`: the `preprocess` option's config,
    `standard` when None); cached per process for runs that share (dataset, seed, preprocess).
    `model_inputs` (hashable; embeddings.model_inputs) turns the loaded rows into what the model
    takes before they are split, e.g. images into a frozen backbone's embeddings; when its
    `standardise` is false (a fine-tuning backbone, which has its own preprocess_input) the rows
    are not preprocessed."""
    preprocess = STANDARD if preprocess_cfg is None else _plain(preprocess_cfg)
    if model_inputs is not None and not model_inputs.standardise:
        preprocess = NONE
    return _load_splits_cached(json.dumps(_plain(dataset_cfg), sort_keys=True), int(seed),
                               json.dumps(preprocess, sort_keys=True), model_inputs)


def _plain(node: DictConfig | dict) -> dict:
    return OmegaConf.to_container(node, resolve=True) if isinstance(node, DictConfig) else dict(node)


@dataclass(frozen=True)
class _Split:
    arrays: tuple[np.ndarray, ...]   # X_train, y_train, X_val, y_val, X_test, y_test before preprocessing
    raw: RawData
    labels: tuple[str, ...]
    scale: FeatureScale


@lru_cache(maxsize=4)
def _load_splits_cached(dataset_json: str, seed: int, preprocess_json: str, model_inputs=None) -> Splits:
    split = _split_cached(dataset_json, seed, model_inputs)
    X_train, y_train, X_val, y_val, X_test, y_test = split.arrays
    preprocess = json.loads(preprocess_json)
    option = str(preprocess.get("_target_") or "none").rsplit(".", 1)[-1]
    X_train, X_val, X_test = fit_transform(make_transformer(preprocess, seed), X_train, X_val, X_test, option)
    arrays = [X_train, y_train, X_val, y_val, X_test, y_test]
    for a in arrays:
        a.setflags(write=False)  # shared by every run in this process that uses the same data
    raw = split.raw
    return Splits(*arrays, labels=split.labels, is_image=raw.is_image, fingerprint=_fingerprint(arrays),
                  description=raw.description, source=raw.source, raw_scale=split.scale)


@lru_cache(maxsize=2)
def _split_cached(dataset_json: str, seed: int, model_inputs=None) -> _Split:
    """The splits before preprocessing: every preprocess option of a sweep starts from these."""
    cfg: dict[str, Any] = json.loads(dataset_json)
    raw = _load_raw(json.dumps({k: v for k, v in cfg.items() if k not in SPLIT_KEYS}, sort_keys=True))
    if model_inputs is not None:
        raw = model_inputs(raw)
    raw = one_vs_rest(raw, cfg.get("positive"))
    labels, encode = _label_encoder(raw)
    y = encode(raw.y)
    val_size, test_size = float(cfg.get("val_size", 0.2)), float(cfg.get("test_size", 0.2))
    if raw.X_test is None:
        X_rest, X_test, y_rest, y_test = _stratified(raw.X, y, test_size, seed, labels, "test",
                                                     f"dataset.test_size={test_size}")
        val_share = val_size / (1.0 - test_size)
    else:
        X_rest, y_rest, X_test, y_test = raw.X, y, raw.X_test, encode(raw.y_test)
        val_share = val_size
    X_train, X_val, y_train, y_val = _stratified(X_rest, y_rest, val_share, seed, labels, "validation",
                                                 f"dataset.val_size={val_size}", before=y)
    X_train, y_train = _training_subset(X_train, y_train, cfg.get("train_size"), seed)
    X_train, y_train = inject(X_train, y_train, len(labels), seed, **cfg.get("imbalance") or {})
    X_train, y_train = _at_most(X_train, y_train, cfg.get("max_train_rows"), seed, "max_train_rows")
    X_val, y_val = _at_most(X_val, y_val, cfg.get("max_val_rows"), seed, "max_val_rows")
    X_train, X_val, X_test = _impute(X_train, X_val, X_test)
    arrays = (X_train, y_train, X_val, y_val, X_test, y_test)
    for a in arrays:
        a.setflags(write=False)
    return _Split(arrays, raw, labels, FeatureScale.of(X_train, raw.feature_names))


def _at_most(X, y, n_rows, seed: int, key: str):
    """A stratified sample of `n_rows` rows (all rows when there are no more than that)."""
    if n_rows is None or int(n_rows) >= len(y):
        return X, y
    try:
        X, _, y, _ = train_test_split(X, y, train_size=int(n_rows), stratify=y, random_state=seed)
    except ValueError as err:
        raise ImbalanceLabError(f"dataset.{key}={n_rows} cannot sample {len(y)} rows stratified ({err}); "
                                f"raise it or set dataset.{key}=null.") from None
    return X, y


@lru_cache(maxsize=2)
def _load_raw(loader_json: str) -> RawData:
    """The loader's rows, read or generated once per process: they do not depend on the run's seed
    (a sweep over seeds would otherwise re-read the file or re-generate the profile for each).
    Read-only, since every run that splits them shares them."""
    cfg: dict[str, Any] = json.loads(loader_json)
    target = cfg.get("_target_")
    if not target:
        raise ImbalanceLabError("The dataset config has no `_target_` loader; choose an option such as dataset=digits.")
    loader = get_method(target)
    raw = loader(**{k: v for k, v in cfg.items() if not k.startswith("_")})
    for a in (raw.X, raw.y, raw.X_test, raw.y_test):
        if isinstance(a, np.ndarray):
            a.setflags(write=False)
    return raw


def _label_encoder(raw: RawData):
    """Sorted label order everywhere; labels may be strings or non-contiguous integers."""
    seen = np.asarray(raw.y) if raw.y_test is None else np.concatenate([np.asarray(raw.y), np.asarray(raw.y_test)])
    classes = np.unique(seen)
    if len(classes) < 2:
        raise ImbalanceLabError(
            f"The dataset has a single class ({classes.tolist()}); a classifier needs at least two: "
            f"check the target column."
        )

    def encode(values) -> np.ndarray:
        return np.searchsorted(classes, np.asarray(values)).astype("int64")

    return tuple(str(c) for c in classes), encode


def _stratified(X, y, share, seed, labels, split: str, key: str, before=None):
    """Rows and labels into (rest, `split`), stratified. A class too small for it is named with its
    rows at this split, and, for the validation split, with the rows the test split left it."""
    counts = np.bincount(y, minlength=len(labels))
    too_small = [c for c, n in enumerate(counts) if n < 2]
    if too_small:
        c = too_small[0]
        if before is None or len(before) == len(y):
            where = "in the data" if before is None else "among the training rows (the test set comes separately)"
        else:
            total = int(np.bincount(before, minlength=len(labels))[c])
            where = (f"left for training and validation after the stratified test split took "
                     f"{total - int(counts[c])} of its {total}")
        raise ImbalanceLabError(
            f"Class '{labels[c]}' has {int(counts[c])} row(s) {where}, too few for the stratified {split} split "
            f"({key}), which needs 2 per class; add rows of that class or drop its rows from the data."
        )
    try:
        return train_test_split(X, y, test_size=share, stratify=y, random_state=seed)
    except ValueError as err:
        raise ImbalanceLabError(
            f"Cannot split {len(y)} rows stratified with a {share:.0%} {split} share ({err}); "
            f"use more data or change dataset.val_size/dataset.test_size."
        ) from None


def _training_subset(X, y, train_size, seed: int):
    """`dataset.train_size` rows of the training split (a small-sample study, e.g. 200 MNIST digits),
    drawn stratified so that every class keeps its share; null keeps them all."""
    if train_size is None or int(train_size) == len(y):
        return X, y
    n = int(train_size)
    if not len(np.unique(y)) <= n < len(y):
        raise ImbalanceLabError(
            f"dataset.train_size={train_size} must be at least the number of classes ({len(np.unique(y))}) and at "
            f"most the {len(y)} rows of the training split; change it, or null for all of them."
        )
    keep, _ = train_test_split(np.arange(len(y)), train_size=n, stratify=y, random_state=seed)
    keep = np.sort(keep)  # the split's (already shuffled) row order
    return X[keep], y[keep]


def _impute(X_train, X_val, X_test):
    """Missing values left by `dataset.na=impute` get the training split's column medians."""
    if not any(np.isnan(X).any() for X in (X_train, X_val, X_test) if X.dtype.kind == "f"):
        return X_train, X_val, X_test
    imputer = SimpleImputer(strategy="median", keep_empty_features=True).fit(X_train.reshape(len(X_train), -1))

    def apply(X):
        return imputer.transform(X.reshape(len(X), -1)).astype("float32").reshape(X.shape)

    return apply(X_train), apply(X_val), apply(X_test)


def _fingerprint(arrays) -> str:
    digest = hashlib.sha256()
    for a in arrays:
        digest.update(np.ascontiguousarray(a).tobytes())
    return digest.hexdigest()[:16]
