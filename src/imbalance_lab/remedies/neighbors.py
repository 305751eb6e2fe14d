"""Neighbour search for the samplers (`sampler.neighbors`): exact (imbalanced-learn's default
estimator), approximate (an inverted-file index of faiss), or chosen by the training split's size.

Every kNN sampler of imbalanced-learn takes a neighbours estimator in place of its `k_neighbors`-
style integer; `ApproximateNeighbors` is that estimator over faiss's IVF-Flat index. TomekLinks
takes none, so `ApproximateTomekLinks` finds its links as mutual nearest neighbours over the same
index. `estimated_seconds` predicts what a sampler costs before anything is fitted (the doctor).
"""

from __future__ import annotations

import hashlib
import math
import os

import numpy as np
from imblearn.under_sampling import TomekLinks
from scipy import sparse
from sklearn.base import BaseEstimator
from sklearn.utils import check_random_state

from imbalance_lab.errors import ImbalanceLabError

CHOICES = ("auto", "exact", "approximate")
# `auto` searches approximately from this many training rows on. tests/benchmarks/bench_samplers.py
# measured approximate faster for every kNN sampler from 10,000 rows on (RESULTS.md, section 5), but
# by seconds below ~30,000 (smote_enn 7.1 s exact vs 0.7 s at 20,000); up to here auto keeps exact
# neighbours, i.e. imbalanced-learn's own results.
APPROXIMATE_FROM_ROWS = 30_000

# The index: about LISTS_PER_SQRT_ROW * sqrt(n) lists (k-means cells); a query scans the lists
# nearest to it until it has seen SCANNED_LISTS lists' worth of rows on average (at least
# SCANNED_ROWS_MIN rows). The scan reads every candidate row from memory, so its cost is fixed per
# query whatever the cells' sizes; on seed002_profile (147 of 157 features noise) this keeps SMOTEENN
# at 269,501 rows under a minute on 2 cores. More rows scanned buy recall at a cost linear in them
# (bench_samplers.py).
LISTS_PER_SQRT_ROW = 2.0
SCANNED_LISTS = 4
SCANNED_ROWS_MIN = 500
TRAIN_ROWS_PER_LIST = 32   # k-means runs on a seeded sample of this many rows per list
KMEANS_ITERATIONS = 6
# Below this many fitted rows the index is not worth building: the search is exact (faiss brute force).
INDEXED_FROM_ROWS = 1_000

# Samplers' neighbour parameters, and the neighbours imbalanced-learn adds for the row itself
# (it queries k + 1 and drops the first): an estimator handed over in their place must ask for as many.
NEIGHBOUR_PARAMS = {
    "SMOTE": {"k_neighbors": 1},
    "BorderlineSMOTE": {"k_neighbors": 1, "m_neighbors": 1},
    "ADASYN": {"n_neighbors": 1},
    "EditedNearestNeighbours": {"n_neighbors": 1},
    "NearMiss": {"n_neighbors": 0, "n_neighbors_ver3": 0},
}
TOMEK = "TomekLinks"

# What the doctor's estimate assumes, in multiply-adds per second on 2 cores: imbalanced-learn's
# exact brute-force search (its SMOTE and BorderlineSMOTE at 269,501 x 157 in issue 25: 39-47 G/s)
# and the index's scan, which reads each candidate row from memory (~5 G/s measured on seed002_profile).
EXACT_MACS_PER_SECOND = 4.0e10
SCAN_MACS_PER_SECOND = 5.0e9


def resolve(choice: str, n_rows: int) -> str:
    """`exact` or `approximate` for `sampler.neighbors=choice` on a training split of n_rows."""
    if choice not in CHOICES:
        raise ImbalanceLabError(f"sampler.neighbors={choice!r} is not one of {', '.join(CHOICES)}; "
                                f"auto picks approximate from {APPROXIMATE_FROM_ROWS:,} training rows on.")
    if choice == "auto":
        return "approximate" if n_rows >= APPROXIMATE_FROM_ROWS else "exact"
    return choice


def _faiss():
    try:
        import faiss
    except ImportError:
        raise ImbalanceLabError("sampler.neighbors=approximate needs faiss-cpu, which is not installed: "
                                "pip install faiss-cpu, or set sampler.neighbors=exact.") from None
    return faiss


class ApproximateNeighbors(BaseEstimator):
    """A k-nearest-neighbours estimator as imbalanced-learn's samplers call it (fit, kneighbors,
    kneighbors_graph, n_neighbors), over a faiss inverted-file index with exact distances inside
    the probed lists. Its k-means cells come from `random_state`: same seed, same neighbours.

    As with exact search, a query row that is one of the fitted rows comes back as its own first
    neighbour (samplers drop it): the lists probed first are the query's nearest, which hold its
    copy, and distances inside them are exact, so the copy ranks first at distance 0. `kneighbors()`
    without X never returns a row as its own neighbour: the index is asked for one more neighbour
    and the row is removed by its index (a duplicate row may rank before it). Fitting the same data again (as
    BorderlineSMOTE and ADASYN do once per class, between fits on that class's rows) reuses its
    index: the last KEPT_INDEXES are kept."""

    KEPT_INDEXES = 2

    def __init__(self, n_neighbors: int = 5, random_state=None, n_jobs: int | None = None):
        self.n_neighbors = n_neighbors
        self.random_state = random_state
        self.n_jobs = n_jobs

    def fit(self, X, y=None):
        X = np.ascontiguousarray(X, dtype=np.float32).reshape(len(X), -1)
        digest = (X.shape, hashlib.blake2b(memoryview(X).cast("B"), digest_size=16).digest())
        kept = getattr(self, "kept_", {})
        if digest in kept:
            self.index_, self.search_params_, self.fit_X_ = kept.pop(digest)
        else:
            self.index_, self.search_params_, self.fit_X_ = *self._index(X), X
        self.kept_ = {**dict(list(kept.items())[1 - self.KEPT_INDEXES:]),
                      digest: (self.index_, self.search_params_, self.fit_X_)}
        self.n_samples_fit_, self.n_features_in_ = X.shape
        return self

    def _index(self, X: np.ndarray):
        """The index over X, and the search parameters for it (None: exact search)."""
        faiss = _faiss()
        n, d = X.shape
        with _threads(faiss, self.n_jobs):
            if n < INDEXED_FROM_ROWS:
                index, params = faiss.IndexFlatL2(d), None
            else:
                n_lists = max(1, int(LISTS_PER_SQRT_ROW * math.sqrt(n)))
                index = faiss.IndexIVFFlat(faiss.IndexFlatL2(d), d, n_lists)
                seed = int(check_random_state(self.random_state).randint(2**31 - 1))
                index.cp.seed, index.cp.niter = seed, KMEANS_ITERATIONS
                index.cp.max_points_per_centroid, index.cp.min_points_per_centroid = TRAIN_ROWS_PER_LIST, 1
                sample = np.random.default_rng(seed).choice(n, min(n, TRAIN_ROWS_PER_LIST * n_lists), replace=False)
                index.train(X[np.sort(sample)])
                scanned = max(SCANNED_LISTS * n // n_lists, SCANNED_ROWS_MIN)
                params = faiss.SearchParametersIVF(
                    nprobe=min(n_lists, -(-scanned * n_lists // n)), max_codes=scanned)
            index.add(X)
        return index, params

    def kneighbors(self, X=None, n_neighbors: int | None = None, return_distance: bool = True):
        """The k nearest fitted rows of each row of X (Euclidean), nearest first; X=None: of each
        fitted row, itself excluded (as scikit-learn's NearestNeighbors)."""
        k = int(self.n_neighbors if n_neighbors is None else n_neighbors)
        n_fit = self.n_samples_fit_
        itself = X is None
        if k > n_fit - itself or k < 1:
            raise ValueError(f"Expected 1 <= n_neighbors <= {n_fit - itself} (the fitted rows"
                             f"{' other than the row itself' if itself else ''}), got n_neighbors = {k}.")
        query = self.fit_X_ if itself else np.ascontiguousarray(X, dtype=np.float32).reshape(len(X), -1)
        faiss = _faiss()
        wanted = min(k + 1, n_fit)
        with _threads(faiss, self.n_jobs):
            dist, ind = self.index_.search(query, wanted, params=self.search_params_)
            unfilled = np.flatnonzero((ind < 0).any(axis=1))   # the probed lists held fewer rows than asked
            if len(unfilled):
                exact = faiss.IndexFlatL2(self.n_features_in_)
                exact.add(self.fit_X_)
                dist[unfilled], ind[unfilled] = exact.search(query[unfilled], wanted)
        if itself:   # each row's candidates other than itself, in order (the row itself, if among them, last)
            order = np.argsort(ind == np.arange(n_fit)[:, None], axis=1, kind="stable")
            ind, dist = np.take_along_axis(ind, order, axis=1), np.take_along_axis(dist, order, axis=1)
        ind, dist = ind[:, :k].astype(np.intp), np.sqrt(np.maximum(dist[:, :k], 0))
        return (dist, ind) if return_distance else ind

    def kneighbors_graph(self, X=None, n_neighbors: int | None = None, mode: str = "connectivity"):
        """Sparse (n_queries, n_samples_fit) graph of the kneighbors: 1 or the distance per edge."""
        if mode not in ("connectivity", "distance"):
            raise ValueError(f"mode={mode!r}: expected 'connectivity' or 'distance'.")
        dist, ind = self.kneighbors(X, n_neighbors, return_distance=True)
        k = ind.shape[1]
        values = np.ones(ind.size) if mode == "connectivity" else dist.ravel()
        return sparse.csr_matrix((values, ind.ravel(), np.arange(0, ind.size + 1, k)),
                                 shape=(len(ind), self.n_samples_fit_))


class _threads:
    """faiss's OpenMP threads set to n_jobs for one call (None: faiss's default), then restored."""

    def __init__(self, faiss, n_jobs):
        self.faiss, self.n_jobs = faiss, n_jobs

    def __enter__(self):
        self.before = self.faiss.omp_get_max_threads()
        if self.n_jobs:
            jobs = self.n_jobs if self.n_jobs > 0 else max(1, (os.cpu_count() or 1) + 1 + self.n_jobs)
            self.faiss.omp_set_num_threads(jobs)

    def __exit__(self, *exc):
        self.faiss.omp_set_num_threads(self.before)


class ApproximateTomekLinks(TomekLinks):
    """TomekLinks whose nearest neighbours come from ApproximateNeighbors: a link is a pair of
    rows of different classes that are each other's nearest neighbour on the index (imbalanced-
    learn's own definition, TomekLinks.is_tomek, over the approximate 1-NN graph). A custom
    sampler implements `_fit_resample`, as imbalanced-learn's developer guide says."""

    _parameter_constraints: dict = {**TomekLinks._parameter_constraints, "random_state": ["random_state"]}

    def __init__(self, *, sampling_strategy="auto", n_jobs=None, random_state=None):
        super().__init__(sampling_strategy=sampling_strategy, n_jobs=n_jobs)
        self.random_state = random_state

    def _fit_resample(self, X, y):
        nearest = ApproximateNeighbors(1, self.random_state, self.n_jobs).fit(X).kneighbors(return_distance=False)
        links = self.is_tomek(y, nearest[:, 0], self.sampling_strategy_)
        self.sample_indices_ = np.flatnonzero(~links)
        return X[self.sample_indices_], y[self.sample_indices_]


def estimated_seconds(sampler: str, class_counts, n_features: int, how: str) -> float | None:
    """What one fit_resample of the imbalanced-learn sampler class `sampler` (its default
    sampling_strategy) costs on a training split of these class counts, searching `how` (exact |
    approximate): its neighbour searches' multiply-adds over the rates above. None for a sampler
    that searches no neighbours."""
    counts = np.asarray(class_counts, dtype=float)
    n, k, smallest, largest = counts.sum(), len(counts), counts.min(), counts.max()
    oversampled = counts[counts < largest]
    smote = [(c, c) for c in oversampled]   # (query rows, fitted rows) of each search
    searches = {
        "SMOTE": smote,
        "BorderlineSMOTE": smote + [(c, n) for c in oversampled],
        "ADASYN": smote + [(c, n) for c in oversampled],
        "EditedNearestNeighbours": [(n - smallest, n)],
        "TomekLinks": [(n, n)],
        "NearMiss": [(n - smallest, smallest)],
        "SMOTEENN": smote + [(k * largest, k * largest)],
        "SMOTETomek": smote + [(k * largest, k * largest)],
    }.get(sampler)
    if searches is None:
        return None
    return float(sum(_search_seconds(q, f, n_features, how) for q, f in searches))


def _search_seconds(queries: float, fitted: float, d: int, how: str) -> float:
    if how == "exact" or fitted < INDEXED_FROM_ROWS:
        return queries * fitted * d / EXACT_MACS_PER_SECOND
    lists = LISTS_PER_SQRT_ROW * math.sqrt(fitted)
    scanned = max(SCANNED_LISTS * fitted / lists, SCANNED_ROWS_MIN)
    kmeans = TRAIN_ROWS_PER_LIST * lists * lists * KMEANS_ITERATIONS
    return ((kmeans + (fitted + queries) * lists) * d / EXACT_MACS_PER_SECOND
            + queries * scanned * d / SCAN_MACS_PER_SECOND)
