"""Resampled training sets, kept on disk (joblib.Memory) by (dataset fingerprint, sampler config,
seed, imbalanced-learn version, how neighbours are searched): a sweep that crosses one sampler with
many losses, weights or models resamples once, and so does every later sweep on the same data.

SMOTE-family samplers take seconds to minutes on large data (28-190 s at the tabular forum user's
269,501 rows) and are deterministic given their random_state. The arrays come back memory-mapped
read-only, so that no run can change another run's training set. The folder is
`paths.cache_dir()/resampled`, trimmed to CACHE_BYTES after each new entry (least recently used first).
"""

from __future__ import annotations

import json
import os

import imblearn
import joblib
import numpy as np
from omegaconf import DictConfig, OmegaConf

from imbalance_lab.paths import cache_dir
from imbalance_lab.remedies.sampling import Resampled, make_sampler, neighbors_choice, resample

CACHE_BYTES = os.environ.get("IMBALANCE_LAB_CACHE_LIMIT", "8G")
# Under a second at 269,501 rows (or nothing materialised): recomputing beats reading a copy back.
RECOMPUTED = ("RandomOverSampler", "RandomUnderSampler", "BalancedBatchSampler")
computed = {"count": 0}  # resamplings this process actually ran (tests and benchmarks read it)


def cached_resample(sampler_cfg: DictConfig | None, seed: int, X, y, labels, fingerprint: str) -> Resampled:
    """`resample(make_sampler(sampler_cfg, seed), X, y, labels)`, computed once per key."""
    plain = None if sampler_cfg is None else OmegaConf.to_container(sampler_cfg, resolve=True)
    if not plain or not plain.get("_target_"):
        return resample(None, X, y, labels)  # sampler=none: nothing to compute
    if plain["_target_"].rsplit(".", 1)[-1] in RECOMPUTED:
        return resample(make_sampler(sampler_cfg, seed), X, y, labels)
    searched = neighbors_choice(plain, len(X))   # `auto` resolved: exact and approximate rows differ
    memory = joblib.Memory(cache_dir() / "resampled", mmap_mode="r", verbose=0)
    compute = memory.cache(_resampled, ignore=["sampler_cfg", "X", "y"])
    key = json.dumps(plain, sort_keys=True, default=str)
    result = compute(key, int(seed), fingerprint, tuple(labels), imblearn.__version__, searched, sampler_cfg, X, y)
    memory.reduce_size(bytes_limit=CACHE_BYTES)
    return result


def _resampled(key: str, seed: int, fingerprint: str, labels: tuple, version: str, searched: str, sampler_cfg, X,
               y) -> Resampled:
    """The cached computation: `key`, `fingerprint`, `version` and `searched` only name the entry."""
    computed["count"] += 1
    result = resample(make_sampler(sampler_cfg, seed, len(X)), X, y, labels, searched)
    return Resampled(np.ascontiguousarray(result.X), np.ascontiguousarray(result.y), result.counts_before,
                     result.counts_after, result.method, result.note, result.batch_source, result.neighbors,
                     result.seconds)
