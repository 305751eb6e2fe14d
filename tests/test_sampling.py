"""Samplers: what each does to the class counts, the neighbour check against imbalanced-learn's
own failures, the training-split-only rule, and balanced batches drawn on the fly."""

from __future__ import annotations

import time

import numpy as np
import pytest
from omegaconf import OmegaConf

from imbalance_lab.configs import compose
from imbalance_lab.data import load_splits
from imbalance_lab.errors import ImbalanceLabError
from imbalance_lab.paths import CONF_DIR
from imbalance_lab.remedies.sampling import BalancedBatchSampler, make_sampler, resample
from imbalance_lab.run import train_and_evaluate

RNG = np.random.default_rng(0)
COUNTS = [120, 40, 12]
Y = np.repeat(np.arange(3), COUNTS)
X = (RNG.normal(size=(len(Y), 6)) + Y[:, None] * 0.8).astype("float32")
LABELS = ("a", "b", "c")
SAMPLERS = sorted(p.stem for p in (CONF_DIR / "sampler").glob("*.yaml") if p.stem not in ("none", "balanced_batch"))
OVER = {"random_over", "smote", "borderline_smote", "adasyn", "smote_tomek", "smote_enn"}
UNDER = {"random_under", "tomek", "enn", "nearmiss"}


def sampler_for(option: str, *overrides: str):
    cfg, _ = compose([f"sampler={option}", *overrides])
    return make_sampler(cfg.sampler, seed=0)


def test_every_sampler_option_is_classified_here():
    assert set(SAMPLERS) == OVER | UNDER


@pytest.mark.parametrize("option", SAMPLERS)
def test_each_sampler_moves_the_counts_its_way_and_keeps_image_shape(option):
    images = np.repeat(X[:, :4].reshape(-1, 2, 2, 1), 1, axis=0)
    out = resample(sampler_for(option), images, Y, LABELS)
    assert out.X.shape[1:] == (2, 2, 1) and len(out.X) == len(out.y) == sum(out.counts_after)
    assert out.counts_before == COUNTS
    if option in OVER:
        assert sum(out.counts_after) > sum(COUNTS) and out.counts_after[2] > 2 * COUNTS[2]
        if not option.startswith("smote_"):   # the combined ones then clean every class, even the majority
            assert all(after >= before for after, before in zip(out.counts_after, COUNTS))
    if option in UNDER:
        assert all(after <= before for after, before in zip(out.counts_after, COUNTS))
        assert out.counts_after[2] == COUNTS[2]   # the minority is never undersampled


def test_random_over_gives_every_class_the_majority_count():
    out = resample(sampler_for("random_over"), X, Y, LABELS)
    assert out.counts_after == [120, 120, 120]


def test_nearmiss_versions_and_sampling_strategy_are_config_keys():
    out = resample(sampler_for("nearmiss", "sampler.version=2"), X, Y, LABELS)
    assert out.counts_after == [12, 12, 12]
    half = resample(sampler_for("random_under", "sampler.sampling_strategy={0: 60}"), X, Y, LABELS)
    assert half.counts_after == [60, 40, 12]


# (option, parameter, smallest value our check rejects when the smallest class has 12 rows)
NEIGHBOUR_LIMITS = [("smote", "k_neighbors", 12), ("borderline_smote", "k_neighbors", 12),
                    ("adasyn", "n_neighbors", 12), ("nearmiss", "n_neighbors", 13)]


@pytest.mark.parametrize(("option", "param", "first_bad"), NEIGHBOUR_LIMITS)
def test_neighbour_check_fires_exactly_where_imblearn_fails(option, param, first_bad):
    with pytest.raises(ImbalanceLabError, match=rf"{param}={first_bad} .*class 'c' has 12 training rows"):
        resample(sampler_for(option, f"sampler.{param}={first_bad}"), X, Y, LABELS)
    with pytest.raises(ValueError):  # imbalanced-learn itself, past our check
        sampler_for(option, f"sampler.{param}={first_bad}").fit_resample(X, Y)
    resample(sampler_for(option, f"sampler.{param}={first_bad - 1}"), X, Y, LABELS)  # accepted, and runs


def test_neighbour_check_looks_inside_combined_samplers():
    with pytest.raises(ImbalanceLabError, match=r"lower sampler\.smote\.k_neighbors to 11"):
        resample(sampler_for("smote_enn", "sampler.smote.k_neighbors=12"), X, Y, LABELS)


def test_samplers_never_touch_validation_or_test(make_cfg):
    plain_cfg, _ = make_cfg()
    plain = load_splits(plain_cfg.dataset, plain_cfg.seed)
    for option in ("smote", "random_under"):
        cfg, _ = make_cfg(f"sampler={option}", "trainer.epochs=1")
        out = train_and_evaluate(cfg)
        for split in ("X_val", "y_val", "X_test", "y_test"):
            np.testing.assert_array_equal(getattr(out.data, split), getattr(plain, split))
        assert out.train.counts_before == plain.class_counts("train").tolist() != out.train.counts_after


def _batches(n_batches=60, batch_size=300, seed=0):
    Y_onehot = np.eye(3, dtype="float32")[Y]
    weights = np.arange(len(Y), dtype="float32")
    source = BalancedBatchSampler(batches_per_epoch=n_batches, random_state=seed).batches(X, Y_onehot, weights, batch_size)
    return source, [source[i] for i in range(len(source))]


def test_balanced_batches_are_balanced_within_sampling_noise():
    source, batches = _batches()
    per_batch = np.array([np.bincount(np.argmax(yb, axis=1), minlength=3) for _, yb, _ in batches])
    # each class count per batch ~ Binomial(300, 1/3): sd 8.2; 5 sd bounds, and the total within 1 %
    assert np.all(np.abs(per_batch - 100) < 5 * np.sqrt(300 / 3 * 2 / 3))
    np.testing.assert_allclose(per_batch.sum(axis=0) / per_batch.sum(), [1 / 3] * 3, atol=0.01)
    for xb, yb, wb in batches[:5]:   # each drawn row is a real training row with its own label and weight
        rows = wb.astype(int)
        np.testing.assert_array_equal(xb, X[rows])
        np.testing.assert_array_equal(np.argmax(yb, axis=1), Y[rows])
    assert len(np.unique(np.concatenate([wb[np.argmax(yb, axis=1) == 2] for _, yb, wb in batches]))) == 12


def test_balanced_batches_are_reproducible_and_change_per_epoch():
    first, a = _batches(seed=3)
    _, b = _batches(seed=3)
    np.testing.assert_array_equal(a[0][2], b[0][2])
    first.on_epoch_end()
    assert not np.array_equal(first[0][2], a[0][2])


def test_balanced_batch_materialises_nothing_and_trains(make_cfg):
    out = resample(BalancedBatchSampler(random_state=0), X, Y, LABELS)
    assert out.X is X and out.y is Y and out.counts_after == [57, 57, 57] and "nothing materialised" in out.note
    cfg, _ = make_cfg("sampler=balanced_batch", "trainer.epochs=2")
    run = train_and_evaluate(cfg)
    assert run.train.method == "balanced_batch" and len(run.fitted.history) == 2
    assert OmegaConf.select(cfg, "sampler.batches_per_epoch") is None


def test_a_resampled_set_is_computed_once_and_read_back_from_disk(tmp_path, monkeypatch):
    """Per (data, sampler settings, seed): the second call, in this process or another, reads the
    first one's result from the cache folder; another seed or setting computes anew."""
    from imbalance_lab import resample_cache

    monkeypatch.setenv("IMBALANCE_LAB_CACHE", str(tmp_path))
    before = resample_cache.computed["count"]
    cfg, _ = compose(["sampler=smote"])
    first = resample_cache.cached_resample(cfg.sampler, 0, X, Y, LABELS, "fingerprint-a")
    again = resample_cache.cached_resample(cfg.sampler, 0, X, Y, LABELS, "fingerprint-a")
    assert resample_cache.computed["count"] == before + 1
    np.testing.assert_array_equal(first.X, again.X)
    assert not again.X.flags.writeable  # a run cannot change another run's training set
    assert any((tmp_path / "resampled").rglob("*"))
    resample_cache.cached_resample(cfg.sampler, 1, X, Y, LABELS, "fingerprint-a")
    other, _ = compose(["sampler=smote", "sampler.k_neighbors=3"])
    resample_cache.cached_resample(other.sampler, 0, X, Y, LABELS, "fingerprint-a")
    resample_cache.cached_resample(cfg.sampler, 0, X, Y, LABELS, "fingerprint-b")
    assert resample_cache.computed["count"] == before + 4


def test_balanced_batch_sampler_takes_null_or_a_positive_number_of_batches():
    assert BalancedBatchSampler().batches_per_epoch is None
    assert BalancedBatchSampler(batches_per_epoch=3).batches_per_epoch == 3
    with pytest.raises(ImbalanceLabError, match="batches_per_epoch=0 must be >= 1 or null"):
        BalancedBatchSampler(batches_per_epoch=0)


def test_balanced_batches_count_the_epochs_they_draw_for():
    """Epoch e's batches come from the generator seeded (random_state, e, batch): each epoch new ones."""
    source, first = _batches(n_batches=2, seed=5)
    seen = [first[0][2]]
    for epoch in (1, 2, 3):
        source.on_epoch_end()
        assert source.epoch == epoch
        seen.append(source[0][2])
    assert len({row.tobytes() for row in seen}) == 4


def test_resample_records_what_it_did():
    """The record a run logs: counts per label (a label with no training rows counts 0, before and
    after), the sampler's class name, float32 rows in the input's shape, the neighbour search
    passed in (nothing logged for samplers without one) and the fit_resample's wall time."""
    from imblearn.over_sampling import RandomOverSampler

    labels = (*LABELS, "d")   # a fourth label without training rows
    images = X[:, :4].reshape(-1, 2, 2).astype("float64")
    by_hand = [int((Y == c).sum()) for c in range(4)]
    plain = resample(None, images, Y, labels)
    assert plain.X is images and plain.y is Y and plain.method == "none"
    assert plain.counts_before == plain.counts_after == by_hand
    started = time.perf_counter()
    out = resample(make_sampler(OmegaConf.create({"_target_": "imblearn.over_sampling.RandomOverSampler"}), 0),
                   images, Y, labels)
    elapsed = time.perf_counter() - started
    assert out.method == "RandomOverSampler" and out.counts_before == by_hand
    assert out.counts_after == [int((out.y == c).sum()) for c in range(4)] == [120, 120, 120, 0]
    assert out.X.dtype == np.float32 and out.X.shape == (360, 2, 2)
    theirs_X, theirs_y = RandomOverSampler(random_state=0).fit_resample(images.reshape(len(images), -1), Y)
    np.testing.assert_array_equal(out.X.reshape(len(out.X), -1), theirs_X.astype("float32"))
    np.testing.assert_array_equal(out.y, theirs_y)
    assert 0 < out.seconds <= elapsed and out.logged_metrics == {"resample/seconds": out.seconds}
    assert out.neighbors == "" and out.logged_params == {}
    knn = resample(RandomOverSampler(random_state=0), X, Y, LABELS, neighbors_used="exact")
    assert knn.neighbors == "exact" and knn.logged_params == {"resample.neighbors": "exact"}


def test_make_sampler_seeds_the_sampler_and_none_means_no_resampling():
    from imblearn.over_sampling import RandomOverSampler

    assert make_sampler(None, 0) is None
    assert make_sampler(OmegaConf.create({"_target_": None}), 0) is None   # conf/sampler/none.yaml
    cfg = OmegaConf.create({"_target_": "imblearn.over_sampling.RandomOverSampler"})
    for seed in (0, 7):   # the run's seed reaches the sampler: imbalanced-learn's rows for that seed
        ours = make_sampler(cfg, seed).fit_resample(X, Y)
        theirs = RandomOverSampler(random_state=seed).fit_resample(X, Y)
        np.testing.assert_array_equal(ours[0], theirs[0])
    balanced = OmegaConf.create({"_target_": "imbalance_lab.remedies.sampling.BalancedBatchSampler"})
    assert make_sampler(balanced, 7).random_state == 7


@pytest.mark.parametrize(("params", "n_rows", "expected"), [
    (None, 10**6, ""), ({}, 10**6, ""), ({"_target_": "x.RandomOverSampler"}, 10**6, ""),
    ({"neighbors": "auto"}, 10, "exact"), ({"neighbors": "auto"}, 10**6, "approximate"),
    ({"neighbors": "approximate"}, 10, "approximate"), (OmegaConf.create({"neighbors": "exact"}), 10**6, "exact"),
])
def test_neighbors_choice_is_empty_for_samplers_without_neighbours(params, n_rows, expected):
    from imbalance_lab.remedies.sampling import neighbors_choice

    assert neighbors_choice(params, n_rows) == expected


@pytest.mark.parametrize(("n_rows", "n_classes"), [(172, 3), (11, 3), (10, 4), (7, 2)])
def test_balanced_batch_expects_an_equal_share_per_class(n_rows, n_classes):
    """counts_after of balanced batches: the rows of one pass split evenly, rounded to the nearest."""
    y, rows = np.arange(n_rows) % n_classes, X[:n_rows]
    sampler = BalancedBatchSampler(batches_per_epoch=1)   # the smallest number of batches it takes
    out = resample(sampler, rows, y, tuple("abcd"[:n_classes]))
    share = int(np.rint(n_rows / n_classes))
    assert out.counts_after == [share] * n_classes and out.counts_before == np.bincount(y).tolist()
    assert out.method == "balanced_batch" and out.X is rows and out.y is y
    assert out.batch_source == sampler.batches and "nothing materialised" in out.note
