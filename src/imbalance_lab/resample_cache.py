"""Per-process cache of resampled training sets, keyed by (dataset fingerprint, sampler config,
seed): a sweep that crosses one sampler with many losses, weights or models resamples once.

SMOTE-family samplers take seconds to minutes on large data and are deterministic given their
random_state, so recomputing them per run is pure waste. The cached arrays are made read-only so
that no run can change another run's training set. The cache holds at most a quarter of the
machine's memory, least recently used evicted first.
"""

from __future__ import annotations

import json
import os
from collections import OrderedDict

from omegaconf import DictConfig, OmegaConf

from imbalance_lab.remedies.sampling import Resampled, make_sampler, resample

_cache: OrderedDict[tuple, Resampled] = OrderedDict()
computed = {"count": 0}  # how many resamplings this process actually ran (benchmarks read it)


def _budget_bytes() -> int:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // 4
    except (ValueError, OSError, AttributeError):
        return 2 * 1024**3


def _nbytes(item: Resampled) -> int:
    return int(item.X.nbytes + item.y.nbytes)


def cached_resample(sampler_cfg: DictConfig | None, seed: int, X, y, labels, fingerprint: str) -> Resampled:
    """`resample(make_sampler(sampler_cfg, seed), X, y, labels)`, computed once per process."""
    plain = None if sampler_cfg is None else OmegaConf.to_container(sampler_cfg, resolve=True)
    if not plain or not plain.get("_target_"):
        return resample(None, X, y, labels)  # sampler=none: nothing to compute
    key = (fingerprint, json.dumps(plain, sort_keys=True, default=str), int(seed))
    if key in _cache:
        _cache.move_to_end(key)
        return _cache[key]
    result = resample(make_sampler(sampler_cfg, seed), X, y, labels)
    computed["count"] += 1
    result.X.flags.writeable = False
    result.y.flags.writeable = False
    _cache[key] = result
    while len(_cache) > 1 and sum(_nbytes(r) for r in _cache.values()) > _budget_bytes():
        _cache.popitem(last=False)
    return result


def clear() -> None:
    _cache.clear()
