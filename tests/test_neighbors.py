"""sampler.neighbors: the approximate neighbours estimator against exact search (scikit-learn's
NearestNeighbors, imbalanced-learn's own samplers), its wiring into every kNN sampler, the seed,
auto's choice by size, the cache, the run's param and metric, and the doctor's estimate."""

from __future__ import annotations

import numpy as np
import pytest
from imblearn.under_sampling import TomekLinks
from omegaconf import OmegaConf
from sklearn.base import clone
from sklearn.datasets import make_classification
from sklearn.neighbors import NearestNeighbors

from imbalance_lab import resample_cache
from imbalance_lab.configs import compose
from imbalance_lab.doctor import rules as doctor
from imbalance_lab.errors import ImbalanceLabError
from imbalance_lab.paths import CONF_DIR
from imbalance_lab.remedies import neighbors
from imbalance_lab.remedies.neighbors import ApproximateNeighbors, ApproximateTomekLinks
from imbalance_lab.remedies.sampling import make_sampler, resample
from imbalance_lab.run import execute

from conftest import client

# Well-separated classes, a few thousand rows: large enough for the index (not its exact fallback).
X, Y = make_classification(3000, n_features=6, n_informative=6, n_redundant=0, n_classes=3, n_clusters_per_class=1,
                           weights=[0.6, 0.3, 0.1], class_sep=2.0, random_state=0)
X = X.astype("float32")
LABELS = ("a", "b", "c")
# Features that are all noise: where an approximate search does miss neighbours.
NOISE = np.random.default_rng(0).normal(size=(6000, 40)).astype("float32")
NOISE_Y = np.repeat([0, 1, 2], [3000, 1800, 1200])   # every class big enough for the index
KNN_SAMPLERS = sorted(p.stem for p in (CONF_DIR / "sampler").glob("*.yaml")
                      if "neighbors" in OmegaConf.load(p))
OVER_SAMPLERS = ["adasyn", "borderline_smote", "smote", "smote_enn", "smote_tomek"]


def sampler_for(option: str, neighbors_choice: str, seed: int = 0, *overrides: str):
    cfg, _ = compose([f"sampler={option}", f"sampler.neighbors={neighbors_choice}", *overrides])
    return make_sampler(cfg.sampler, seed, len(X))


def neighbour_estimators(sampler) -> list:
    """Every neighbours estimator a fitted sampler used, inner samplers' too; an approximate
    TomekLinks counts as its own estimator."""
    found = [sampler] if isinstance(sampler, ApproximateTomekLinks) else []
    for attr in ("nn_k_", "nn_m_", "nn_", "nn_ver3_"):
        if hasattr(sampler, attr):
            found.append(getattr(sampler, attr))
    for inner in ("smote_", "enn_", "tomek_"):
        if getattr(sampler, inner, None) is not None:
            found += neighbour_estimators(getattr(sampler, inner))
    return found


def recall(found: np.ndarray, truth: np.ndarray) -> float:
    return float(np.mean([len(set(a) & set(b)) / len(b) for a, b in zip(found, truth)]))


def test_every_knn_sampler_option_has_the_neighbors_key():
    assert set(KNN_SAMPLERS) == {"adasyn", "borderline_smote", "enn", "nearmiss", "smote", "smote_enn",
                                 "smote_tomek", "tomek"}


@pytest.mark.parametrize("k", [3, 6, 11])
def test_kneighbors_recall_against_exact_search(k):
    est = ApproximateNeighbors(k, random_state=0).fit(X)
    assert type(est.index_).__name__ == "IndexIVFFlat"   # the index, not the exact fallback for small data
    exact = NearestNeighbors(n_neighbors=k).fit(X)
    assert recall(est.kneighbors(return_distance=False), exact.kneighbors(return_distance=False)) >= 0.95
    queries = X[::7] + 0.01   # rows that are not fitted rows
    dist, ind = est.kneighbors(queries)
    exact_dist, exact_ind = exact.kneighbors(queries)
    assert recall(ind, exact_ind) >= 0.95
    np.testing.assert_allclose(dist[ind == exact_ind], exact_dist[ind == exact_ind], rtol=1e-4)


def test_without_x_no_row_is_its_own_neighbour_and_with_x_a_fitted_row_comes_first():
    for data in (X, NOISE):   # on noise the index misses neighbours, and may rank a row after others
        est = ApproximateNeighbors(5, random_state=0).fit(data)
        ind = est.kneighbors(return_distance=False)
        assert ind.shape == (len(data), 5)
        assert not (ind == np.arange(len(data))[:, None]).any()
        assert all(len(set(row)) == 5 for row in ind)
        rows = np.arange(0, len(data), 3)
        dist, ind = est.kneighbors(data[rows])   # a copy of some fitted rows, as the samplers query
        np.testing.assert_array_equal(ind[:, 0], rows)
        assert (dist[:, 0] == 0).all() and not (ind[:, 1:] == rows[:, None]).any()


def test_the_seed_decides_the_neighbours_where_the_search_is_approximate():
    first, again, other = (ApproximateNeighbors(5, random_state=s).fit(NOISE).kneighbors(return_distance=False)
                           for s in (0, 0, 1))
    np.testing.assert_array_equal(first, again)
    assert not np.array_equal(first, other)
    exact = NearestNeighbors(n_neighbors=5).fit(NOISE).kneighbors(return_distance=False)
    assert recall(first, exact) < 0.95   # noise is where approximate differs from exact


def test_estimator_interface_imbalanced_learn_relies_on():
    est = ApproximateNeighbors(4, random_state=3, n_jobs=1)
    copy = clone(est)
    assert copy.get_params() == {"n_neighbors": 4, "random_state": 3, "n_jobs": 1} and copy is not est
    est.set_params(n_neighbors=2).fit(X)
    graph = est.kneighbors_graph(X[:10], mode="distance")
    dist, ind = est.kneighbors(X[:10])
    assert graph.shape == (10, len(X)) and graph.nnz == 20
    np.testing.assert_allclose(graph[np.arange(10)[:, None], ind].toarray(), dist)
    np.testing.assert_array_equal(est.kneighbors(X[:5], n_neighbors=len(X), return_distance=False)[:, :2],
                                  est.kneighbors(X[:5], return_distance=False))   # as many as there are rows: exact
    with pytest.raises(ValueError, match=rf"1 <= n_neighbors <= {len(X) - 1} \(the fitted rows other than the row"):
        est.kneighbors(n_neighbors=len(X))
    with pytest.raises(ValueError, match=rf"1 <= n_neighbors <= {len(X)} \(the fitted rows\), got n_neighbors = 0"):
        est.kneighbors(X[:1], n_neighbors=0)
    assert ApproximateNeighbors().n_neighbors == NearestNeighbors().n_neighbors   # the default a sampler may rely on


def test_fitting_the_same_data_again_keeps_the_index():
    est = ApproximateNeighbors(3, random_state=0).fit(X)
    index = est.index_
    assert est.fit(X.copy()).index_ is index
    assert est.fit(X[:2000]).index_ is not index
    flipped = X[::-1].copy()   # other data of the same shape: its own index, its own neighbours
    np.testing.assert_array_equal(est.fit(flipped).kneighbors(flipped[:5], return_distance=False)[:, 0], np.arange(5))


def test_rows_whose_probed_lists_hold_too_few_rows_get_exact_search():
    """Asking for more neighbours than the probed lists hold (here 700 of ~500 scanned) leaves no
    row short: those rows are searched exactly, and equal scikit-learn's."""
    data = NOISE[:1000]
    est = ApproximateNeighbors(random_state=0).fit(data)
    dist, ind = est.kneighbors(data[:20], n_neighbors=700)
    exact_dist, _ = NearestNeighbors(n_neighbors=700).fit(data).kneighbors(data[:20])
    assert (ind >= 0).all()
    np.testing.assert_allclose(dist, exact_dist, rtol=1e-4, atol=1e-4)


def test_k_means_sees_every_row_when_there_are_fewer_than_its_sample():
    """1,000 rows and 63 lists ask a k-means sample of 2,016 rows: every row is used, each once."""
    import faiss

    data = NOISE[:1000]
    est = ApproximateNeighbors(random_state=0).fit(data)
    lists = est.index_.nlist
    reference = faiss.IndexIVFFlat(faiss.IndexFlatL2(data.shape[1]), data.shape[1], lists)
    reference.cp.seed, reference.cp.niter = est.index_.cp.seed, neighbors.KMEANS_ITERATIONS
    reference.cp.max_points_per_centroid, reference.cp.min_points_per_centroid = neighbors.TRAIN_ROWS_PER_LIST, 1
    reference.train(data)
    np.testing.assert_array_equal(est.index_.quantizer.reconstruct_n(0, lists), reference.quantizer.reconstruct_n(0, lists))


@pytest.mark.parametrize("option", OVER_SAMPLERS)
def test_over_samplers_return_imbalanced_learns_exact_class_counts(option):
    approximate, exact = sampler_for(option, "approximate"), sampler_for(option, "exact")
    approx_out, exact_out = resample(approximate, X, Y, LABELS), resample(exact, X, Y, LABELS)
    assert approx_out.counts_after == exact_out.counts_after != approx_out.counts_before
    used = neighbour_estimators(approximate)
    assert used and all(isinstance(e, ApproximateNeighbors | ApproximateTomekLinks) for e in used)
    assert not any(isinstance(e, ApproximateNeighbors | ApproximateTomekLinks) for e in neighbour_estimators(exact))


def test_approximate_tomek_links_are_imbalanced_learns_links():
    for option in ("tomek", "smote_tomek"):
        approximate, exact = sampler_for(option, "approximate"), sampler_for(option, "exact")
        approx_out, exact_out = resample(approximate, X, Y, LABELS), resample(exact, X, Y, LABELS)
        np.testing.assert_array_equal(approx_out.X, exact_out.X)
        assert any(isinstance(e, ApproximateTomekLinks) for e in neighbour_estimators(approximate))
    ours, theirs = ApproximateTomekLinks(random_state=0), TomekLinks()
    ours.fit_resample(X, Y)
    theirs.fit_resample(X, Y)
    assert len(theirs.sample_indices_) < len(X)   # there are links to find
    np.testing.assert_array_equal(ours.sample_indices_, theirs.sample_indices_)


@pytest.mark.parametrize("option", KNN_SAMPLERS)
def test_same_seed_same_rows_other_seed_other_rows(option):
    # the smallest noise on which every class still gets the index: 1,000 rows of each minority class
    rows = np.r_[0:1500, 3000:4000, 4800:5800]
    samplers = [sampler_for(option, "approximate", seed) for seed in (4, 4, 5)]
    first, again, other = (resample(s, NOISE[rows], NOISE_Y[rows], LABELS) for s in samplers)
    np.testing.assert_array_equal(first.X, again.X)
    assert not (len(first.y) == len(other.y) and np.array_equal(first.X, other.X))
    assert {e.random_state for e in neighbour_estimators(samplers[0])} == {4}


def test_auto_is_approximate_from_the_threshold_on():
    assert neighbors.resolve("auto", neighbors.APPROXIMATE_FROM_ROWS - 1) == "exact"
    assert neighbors.resolve("auto", neighbors.APPROXIMATE_FROM_ROWS) == "approximate"
    assert neighbors.resolve("exact", 10**7) == "exact" and neighbors.resolve("approximate", 10) == "approximate"
    cfg, _ = compose(["sampler=smote"])
    assert cfg.sampler.neighbors == "auto"
    small = make_sampler(cfg.sampler, 0, neighbors.APPROXIMATE_FROM_ROWS - 1)
    large = make_sampler(cfg.sampler, 0, neighbors.APPROXIMATE_FROM_ROWS)
    assert small.k_neighbors == 5 and isinstance(large.k_neighbors, ApproximateNeighbors)
    assert large.k_neighbors.n_neighbors == 6   # imbalanced-learn's k + 1: the row itself comes back first
    with pytest.raises(ImbalanceLabError, match=r"sampler.neighbors='fast' is not one of auto, exact, approximate"):
        sampler_for("smote", "fast")


def test_class_too_small_check_sees_through_the_estimator():
    with pytest.raises(ImbalanceLabError, match=r"k_neighbors=12 .*class 'c' has 12 training rows"):
        resample(sampler_for("smote", "approximate", 0, "sampler.k_neighbors=12"),
                 X[:132], np.repeat([0, 1, 2], [80, 40, 12]), LABELS)


def test_the_cache_keeps_exact_and_approximate_apart(tmp_path, monkeypatch):
    monkeypatch.setenv("IMBALANCE_LAB_CACHE", str(tmp_path))
    before = resample_cache.computed["count"]
    runs = {nb: resample_cache.cached_resample(compose(["sampler=enn", f"sampler.neighbors={nb}"])[0].sampler, 0,
                                               NOISE, NOISE_Y, LABELS, "noise") for nb in ("exact", "approximate")}
    assert resample_cache.computed["count"] == before + 2
    assert runs["exact"].neighbors == "exact" and runs["approximate"].neighbors == "approximate"
    assert runs["exact"].counts_after != runs["approximate"].counts_after
    assert runs["approximate"].seconds > 0
    again = resample_cache.cached_resample(compose(["sampler=enn", "sampler.neighbors=approximate"])[0].sampler, 0,
                                           NOISE, NOISE_Y, LABELS, "noise")
    assert resample_cache.computed["count"] == before + 2 and again.neighbors == "approximate"
    assert again.seconds == runs["approximate"].seconds   # the seconds of the run that computed the rows


@pytest.mark.slow
@pytest.mark.parametrize("option", KNN_SAMPLERS)
def test_a_run_with_approximate_neighbours_trains_and_logs_how(option, make_cfg, store):
    cfg, choices = make_cfg(f"sampler={option}", "sampler.neighbors=approximate", "dataset.n_samples=3000",
                            "trainer.epochs=2")
    result = execute(cfg, choices)
    assert result.status == "FINISHED"
    run = client(store).get_run(result.run_id)
    assert run.data.params["resample.neighbors"] == "approximate"
    assert run.data.params["sampler.neighbors"] == "approximate"
    assert run.data.metrics["resample/seconds"] > 0


def test_a_run_logs_what_auto_resolved_to(make_cfg, store):
    cfg, choices = make_cfg("sampler=smote", "trainer.epochs=1")
    result = execute(cfg, choices)
    params = client(store).get_run(result.run_id).data.params
    assert params["sampler.neighbors"] == "auto" and params["resample.neighbors"] == "exact"   # 600 rows


class _Data:
    def __init__(self, counts, n_features):
        self.y_train = np.repeat(np.arange(len(counts)), counts)
        self.X_train = np.zeros((1, n_features))
        self.labels = tuple("abcde"[: len(counts)])

    def class_counts(self, split):
        return np.bincount(self.y_train)


FORUM = [43763, 107601, 25088, 56212, 36837]   # seed002_profile at 269,501 training rows


def test_estimate_matches_issue_25s_exact_timings_and_the_doctor_says_how_to_be_fast():
    # measured exact at 269,501 x 157 on 2 cores (issue 25): SMOTE 28.4 s, BorderlineSMOTE 169.6 s, NearMiss 22.7 s
    for sampler, measured in (("SMOTE", 28.4), ("BorderlineSMOTE", 169.6), ("NearMiss", 22.7)):
        assert measured / 1.5 < neighbors.estimated_seconds(sampler, FORUM, 157, "exact") < measured * 1.5
    assert neighbors.estimated_seconds("SMOTEENN", FORUM, 157, "approximate") < 60
    assert neighbors.estimated_seconds("RandomOverSampler", FORUM, 157, "exact") is None
    cfg, choices = compose(["sampler=smote_enn", "sampler.neighbors=exact"])
    slow = [f for f in doctor.data_findings(_Data(FORUM, 157), cfg, choices) if f.code == "slow_sampler"]
    assert len(slow) == 1 and "sampler.neighbors=approximate" in slow[0].fix and "269,501 training rows" in slow[0].message
    cfg, choices = compose(["sampler=smote_enn"])   # auto: approximate at this size, under a minute
    assert not [f for f in doctor.data_findings(_Data(FORUM, 157), cfg, choices) if f.code == "slow_sampler"]
    cfg, choices = compose(["sampler=smote", "sampler.neighbors=exact"])   # exact SMOTE: half a minute
    assert not [f for f in doctor.data_findings(_Data(FORUM, 157), cfg, choices) if f.code == "slow_sampler"]


def _searches_by_hand(sampler: str, counts: list[int]) -> list[tuple[int, int]]:
    """(query rows, fitted rows) of each neighbour search imbalanced-learn's sampler makes with its
    default sampling_strategy, from its algorithm: SMOTE fits each minority class on its own rows and
    queries them; BorderlineSMOTE and ADASYN also query those rows among all rows (their danger /
    density step); ENN queries the rows of every class but the smallest among all rows; Tomek links
    are the 1-NN of every row among all rows; NearMiss queries the other classes' rows among the
    minority's; the combined samplers clean the k x majority rows SMOTE leaves."""
    n, smallest, largest = sum(counts), min(counts), max(counts)
    minority = [c for c in counts if c != largest]
    own = [(c, c) for c in minority]
    return {"SMOTE": own, "BorderlineSMOTE": own + [(c, n) for c in minority],
            "ADASYN": own + [(c, n) for c in minority], "EditedNearestNeighbours": [(n - smallest, n)],
            "TomekLinks": [(n, n)], "NearMiss": [(n - smallest, smallest)],
            "SMOTEENN": own + [(len(counts) * largest,) * 2], "SMOTETomek": own + [(len(counts) * largest,) * 2]}[sampler]


def _seconds_by_hand(queries: int, fitted: int, d: int, how: str) -> float:
    """Multiply-adds over the documented rates: exact search compares every query with every fitted
    row; the index (from INDEXED_FROM_ROWS fitted rows on, as ApproximateNeighbors builds it) costs
    its k-means (TRAIN_ROWS_PER_LIST rows per list, each against every list, per iteration), one
    assignment of every fitted and query row to its list, and the scan of the rows each query reads."""
    if how == "exact" or fitted < neighbors.INDEXED_FROM_ROWS:
        return queries * fitted * d / neighbors.EXACT_MACS_PER_SECOND
    lists = neighbors.LISTS_PER_SQRT_ROW * np.sqrt(fitted)
    kmeans = neighbors.TRAIN_ROWS_PER_LIST * lists * lists * neighbors.KMEANS_ITERATIONS
    scanned = max(neighbors.SCANNED_LISTS * fitted / lists, neighbors.SCANNED_ROWS_MIN)
    return ((kmeans + (fitted + queries) * lists) * d / neighbors.EXACT_MACS_PER_SECOND
            + queries * scanned * d / neighbors.SCAN_MACS_PER_SECOND)


@pytest.mark.parametrize("how", ["exact", "approximate"])
# 1,000 rows: the index's first size; 3 x 10^8 rows: past int64 for n^2 x d multiply-adds
@pytest.mark.parametrize("counts", [[600, 300, 100], [100, 600, 300], FORUM, [2 * 10**8, 10**8]])
@pytest.mark.parametrize("sampler", ["SMOTE", "BorderlineSMOTE", "ADASYN", "EditedNearestNeighbours", "TomekLinks",
                                     "NearMiss", "SMOTEENN", "SMOTETomek"])
def test_estimated_seconds_count_each_samplers_searches(sampler, counts, how):
    """The doctor's minutes (and its advice) come from these estimates: each sampler's searches,
    costed exact or on the index as the estimator builds it."""
    by_hand = sum(_seconds_by_hand(q, f, 157, how) for q, f in _searches_by_hand(sampler, counts))
    assert neighbors.estimated_seconds(sampler, counts, 157, how) == pytest.approx(by_hand, rel=1e-9)


@pytest.mark.parametrize("call", [{}, {"n_neighbors": 1}, {"mode": "distance"}, {"X": "queries", "n_neighbors": 3},
                                  {"X": "queries", "n_neighbors": 1, "mode": "distance"}])
def test_below_the_index_size_neighbours_and_graphs_are_scikit_learns(call):
    """Under INDEXED_FROM_ROWS fitted rows the search is exact: kneighbors and kneighbors_graph (its
    default mode, any n_neighbors, with or without query rows) equal NearestNeighbors'."""
    small = X[:300]
    call = {**call, **({"X": small[::5] + 0.01} if "X" in call else {})}
    ours, theirs = ApproximateNeighbors(2, random_state=0).fit(small), NearestNeighbors(n_neighbors=2).fit(small)
    np.testing.assert_allclose(ours.kneighbors_graph(**call).toarray(), theirs.kneighbors_graph(**call).toarray(),
                               rtol=1e-4, atol=1e-5)
    query = {k: v for k, v in call.items() if k != "mode"}
    np.testing.assert_array_equal(ours.kneighbors(**query)[1], theirs.kneighbors(**query)[1])
    with pytest.raises(ValueError, match="mode"):
        ours.kneighbors_graph(mode="weights")


@pytest.mark.parametrize("n", [6000, 64_000])   # below and above the SCANNED_ROWS_MIN floor (from 62,500 rows)
def test_the_index_is_built_as_documented(n):
    """The settings that decide which neighbours an approximate search returns, from the module's
    description: ~LISTS_PER_SQRT_ROW sqrt(n) lists, k-means of KMEANS_ITERATIONS iterations on
    TRAIN_ROWS_PER_LIST rows per list, and a scan of SCANNED_LISTS lists' worth of rows (at least
    SCANNED_ROWS_MIN) over the fewest nearest lists that hold that many on average."""
    data = NOISE if n == len(NOISE) else np.random.default_rng(1).normal(size=(n, 2)).astype("float32")
    est = ApproximateNeighbors(3, random_state=0).fit(data)
    lists = int(neighbors.LISTS_PER_SQRT_ROW * np.sqrt(n))
    scanned = max(neighbors.SCANNED_LISTS * n // lists, neighbors.SCANNED_ROWS_MIN)
    assert (est.index_.nlist, est.index_.ntotal, est.index_.d) == (lists, n, data.shape[1])
    assert (est.search_params_.max_codes, est.search_params_.nprobe) == (scanned, int(np.ceil(scanned * lists / n)))
    cp = est.index_.cp
    assert (cp.niter, cp.max_points_per_centroid, cp.min_points_per_centroid) == (
        neighbors.KMEANS_ITERATIONS, neighbors.TRAIN_ROWS_PER_LIST, 1)
    assert cp.seed == np.random.RandomState(0).randint(2**31 - 1)   # k-means seeded from random_state, as sklearn reads it


@pytest.mark.parametrize("n_jobs", [1, 2, -1, -2])
def test_n_jobs_changes_the_threads_not_the_neighbours(n_jobs):
    """n_jobs as scikit-learn reads it (-1: all cores, -2: all but one); faiss's thread count is
    restored afterwards, and the neighbours are those of the default."""
    import faiss

    before = faiss.omp_get_max_threads()
    default = ApproximateNeighbors(4, random_state=0).fit(X).kneighbors(X[:50])
    ours = ApproximateNeighbors(4, random_state=0, n_jobs=n_jobs).fit(X).kneighbors(X[:50])
    np.testing.assert_array_equal(ours[1], default[1])
    assert faiss.omp_get_max_threads() == before


def test_many_neighbours_come_nearest_first():
    """With more candidates than a small sort keeps in order by itself (k = 20), each row's
    neighbours still come nearest first, as exact search returns them."""
    est = ApproximateNeighbors(20, random_state=0).fit(NOISE)
    for query in (None, NOISE[::50]):
        dist, ind = est.kneighbors(query)
        assert (np.diff(dist, axis=1) >= 0).all()
        by_hand = np.linalg.norm(NOISE[ind] - (NOISE if query is None else query)[:, None, :], axis=2)
        np.testing.assert_allclose(dist, by_hand, rtol=1e-4, atol=1e-5)


def test_approximate_tomek_links_on_a_few_rows_and_its_parameters():
    """The smallest inputs imbalanced-learn's TomekLinks takes (two rows) give its links too, and the
    parameters it shares with TomekLinks read back as TomekLinks' do (clone relies on them)."""
    for X_few, y_few in ((np.array([[0.0, 0.0], [1.0, 0.0]]), np.array([0, 1])),
                         (np.array([[0.0, 0.0], [1.0, 0.0], [1.2, 0.0], [9.0, 9.0]]), np.array([0, 0, 1, 1]))):
        ours, theirs = ApproximateTomekLinks(random_state=0), TomekLinks()
        ours.fit_resample(X_few, y_few)
        theirs.fit_resample(X_few, y_few)
        np.testing.assert_array_equal(ours.sample_indices_, theirs.sample_indices_)
    ours = ApproximateTomekLinks(sampling_strategy="all", n_jobs=2, random_state=3).get_params()
    assert ours == {**TomekLinks(sampling_strategy="all", n_jobs=2).get_params(), "random_state": 3}


def test_a_neighbour_parameter_left_out_of_the_config_is_searched_approximately_too():
    """A config without k_neighbors / m_neighbors (imbalanced-learn's defaults apply) still gets the
    approximate estimator in their place, asking for the default + 1 neighbours."""
    from imblearn.over_sampling import BorderlineSMOTE

    cfg = OmegaConf.create({"_target_": "imblearn.over_sampling.BorderlineSMOTE", "neighbors": "approximate"})
    sampler, default = make_sampler(cfg, 0), BorderlineSMOTE()
    assert isinstance(sampler.k_neighbors, ApproximateNeighbors) and isinstance(sampler.m_neighbors, ApproximateNeighbors)
    assert (sampler.k_neighbors.n_neighbors, sampler.m_neighbors.n_neighbors) == (default.k_neighbors + 1,
                                                                                  default.m_neighbors + 1)
