"""Datasets: generated priors, label shift, "no signal", the seed profiles, imbalance injection."""

from __future__ import annotations

import json

import numpy as np
import pytest
from sklearn.feature_selection import mutual_info_classif

from imbalance_lab.configs import compose
from imbalance_lab.data import load_splits
from imbalance_lab.data.imbalance import inject, target_counts
from imbalance_lab.data.profiles import (
    SEED002_TEST_PRIORS,
    SEED002_TRAIN_PRIORS,
    SEED003_TEST_COUNTS,
    SEED003_TRAIN_COUNTS,
    make_seed002_profile,
    make_seed003_profile,
)
from imbalance_lab.data.synthetic import make_synthetic
from imbalance_lab.errors import ImbalanceLabError
from imbalance_lab.run import execute, train_and_evaluate

from conftest import client


def shares(y, labels) -> np.ndarray:
    return np.array([np.mean(np.asarray(y) == label) for label in labels])


# -- imbalance injection (Buda et al. 2018) ---------------------------------------------------------

@pytest.mark.parametrize("rho", [1, 10, 50])
def test_step_injection_gives_exactly_rho_and_mu_on_digits(rho):
    cfg, _ = compose(["dataset=digits", "dataset.imbalance.kind=step", f"dataset.imbalance.rho={rho}",
                      "dataset.imbalance.mu=0.5"])
    data = load_splits(cfg.dataset, seed=0)
    train = data.class_counts("train")
    assert train.max() / train.min() == rho and data.imbalance_ratio == rho
    assert np.mean(train == train.min()) == (0.5 if rho > 1 else 1.0)   # mu: half the classes are minority
    assert set(train.tolist()) == ({train.min(), train.min() * rho})
    # validation and test keep digits' natural (near-balanced) priors
    plain = load_splits(compose(["dataset=digits"])[0].dataset, seed=0)
    np.testing.assert_array_equal(data.class_counts("test"), plain.class_counts("test"))
    np.testing.assert_array_equal(data.class_counts("val"), plain.class_counts("val"))
    assert data.class_counts("test").max() / data.class_counts("test").min() < 1.1


@pytest.mark.parametrize("mu", [0.1, 0.3, 0.9])
def test_step_mu_is_the_exact_fraction_of_minority_classes(mu):
    available = np.array([120, 130, 125, 140, 118, 133, 127, 129, 131, 126])
    counts = target_counts(available, "step", rho=4, mu=mu)
    assert np.sum(counts == counts.min()) == round(mu * 10) and counts.max() == 4 * counts.min()
    assert np.all(counts <= available)


def test_linear_injection_sizes_are_evenly_spaced_from_n_min_to_rho_n_min():
    available = np.full(5, 100)
    counts = np.sort(target_counts(available, "linear", rho=5))
    assert counts.tolist() == [20, 40, 60, 80, 100]    # n_min * (1 + (rho-1) i/(K-1)), by hand
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(1000, 3)), rng.integers(0, 4, size=1000)
    X2, y2 = inject(X, y, 4, seed=1, kind="linear", rho=10)
    kept = np.sort(np.bincount(y2))
    assert kept.max() / kept.min() == 10 and np.allclose(np.diff(kept), np.diff(kept)[0], atol=1)
    assert all(any(np.array_equal(row, orig) for orig in X[y == c]) for row, c in zip(X2[:20], y2[:20]))


def test_injection_rejects_an_impossible_mu_and_kind():
    with pytest.raises(ImbalanceLabError, match=r"mu=0.25 .*multiple of 1/10"):
        target_counts(np.full(10, 50), "step", rho=2, mu=0.25)
    with pytest.raises(ImbalanceLabError, match="kind='steps'"):
        target_counts(np.full(10, 50), "steps", rho=2)
    with pytest.raises(ImbalanceLabError, match="too small"):
        target_counts(np.full(4, 10), "step", rho=50, mu=0.5)


# -- generated data -----------------------------------------------------------------------------

def test_synthetic_test_priors_shift_the_test_set_only():
    raw = make_synthetic(n_classes=3, priors=[0.8, 0.15, 0.05], test_priors=[0.2, 0.3, 0.5], n_samples=2000,
                         n_features=6, n_informative=3)
    np.testing.assert_allclose(shares(raw.y, [0, 1, 2]), [0.8, 0.15, 0.05], atol=1e-3)
    np.testing.assert_allclose(shares(raw.y_test, [0, 1, 2]), [0.2, 0.3, 0.5], atol=1e-3)
    assert len(raw.y) == 1600 and len(raw.y_test) == 400
    # same class-conditional distribution: class means agree between train and test
    for c in range(3):
        assert np.abs(raw.X[raw.y == c].mean(0) - raw.X_test[raw.y_test == c].mean(0)).max() < 0.5


def test_signal_false_makes_features_independent_of_the_label():
    kwargs = dict(n_classes=3, priors=[0.6, 0.3, 0.1], n_samples=3000, n_features=6, n_informative=4, class_sep=2.0)
    with_signal, without = make_synthetic(**kwargs), make_synthetic(**kwargs, signal=False)
    assert mutual_info_classif(with_signal.X, with_signal.y, random_state=0).max() > 0.3
    assert mutual_info_classif(without.X, without.y, random_state=0).max() < 0.05
    np.testing.assert_array_equal(np.bincount(without.y), np.bincount(with_signal.y))


def test_seed002_profile_has_the_threads_priors_and_sizes():
    raw = make_seed002_profile()
    labels = ["a", "b", "c", "d", "e"]
    assert raw.X.shape == (20000, 157) and raw.X_test.shape[1] == 157
    assert abs(len(raw.y_test) - 20000 * 33967 / 269501) < 1
    assert np.abs(shares(raw.y, labels) - SEED002_TRAIN_PRIORS).max() < 0.005
    assert np.abs(shares(raw.y_test, labels) - SEED002_TEST_PRIORS).max() < 0.005
    assert shares(raw.y_test, ["b"])[0] == pytest.approx(0.3539, abs=0.005)   # the thread's stuck val_acc


def test_seed002_profile_full_size_is_the_threads():
    raw = make_seed002_profile(n_train=269501, n_features=8, n_informative=4)  # full rows, fewer columns: fast
    assert len(raw.y) == 269501 and len(raw.y_test) == 33967
    assert np.abs(shares(raw.y_test, ["a", "b", "c", "d", "e"]) - SEED002_TEST_PRIORS).max() < 0.005


def test_seed003_profile_is_images_in_the_threads_counts_and_composes():
    raw = make_seed003_profile()
    labels = ["anger", "disgust", "happiness", "neutral", "sadness", "surprise"]
    assert raw.is_image and raw.X.shape[1:] == (8, 8, 1)
    assert [int(np.sum(raw.y == c)) for c in labels] == list(SEED003_TRAIN_COUNTS)
    assert [int(np.sum(raw.y_test == c)) for c in labels] == list(SEED003_TEST_COUNTS)
    train_priors = np.array(SEED003_TRAIN_COUNTS) / sum(SEED003_TRAIN_COUNTS)
    cfg, _ = compose(["dataset=seed003_profile", "dataset.scale=0.25"])
    data = load_splits(cfg.dataset, seed=0)
    assert data.labels == tuple(labels) and data.is_image
    assert np.abs(data.class_counts("train") / data.class_counts("train").sum() - train_priors).max() < 0.005
    # the thread's trap: always predicting 'neutral' is 31.8 % accurate on its test set
    assert data.class_counts("test")[3] / data.class_counts("test").sum() == pytest.approx(0.318, abs=0.005)


@pytest.mark.parametrize("name", ["wine", "breast_cancer", "synthetic", "seed002_profile"])
def test_bundled_and_generated_options_compose_and_split_stratified(name):
    cfg, choices = compose([f"dataset={name}"])
    data = load_splits(cfg.dataset, seed=0)
    assert choices["dataset"] == name and data.n_classes >= 2 and not data.is_image
    for split in ("val", "test"):
        assert np.all(data.class_counts(split) > 0)


# -- what MLflow receives about the data --------------------------------------------------------

def test_a_run_logs_class_counts_imbalance_ratio_and_the_training_data_as_an_input(make_cfg, store):
    cfg, choices = make_cfg("dataset.imbalance.kind=linear", "dataset.imbalance.rho=4")
    result = execute(cfg, choices)
    run = client(store).get_run(result.run_id)
    data = load_splits(cfg.dataset, cfg.seed)
    train = json.loads(run.data.params["dataset.class_counts.train"])
    assert list(train) == ["0", "1", "2"] and max(train.values()) / min(train.values()) == 4
    assert json.loads(run.data.params["dataset.class_counts.test"]) == dict(zip(data.labels, data.class_counts("test").tolist()))
    assert run.data.metrics["dataset.imbalance_ratio"] == 4.0
    inputs = run.inputs.dataset_inputs
    assert len(inputs) == 1 and inputs[0].dataset.name == "synthetic"
    assert inputs[0].dataset.digest == run.data.tags["dataset.fingerprint"] == data.fingerprint
    assert [t.value for t in inputs[0].tags if t.key == "mlflow.data.context"] == ["train"]
    assert json.loads(inputs[0].dataset.profile)["features_shape"] == [int(sum(train.values())), 8]


def test_a_cnn_trains_on_the_seed003_images():
    cfg, _ = compose(["dataset=seed003_profile", "dataset.scale=0.1", "model=cnn", "trainer=quick", "trainer.epochs=5"])
    metrics = train_and_evaluate(cfg).evaluation.metrics
    assert metrics["test/macro_f1"] > metrics["naive/macro_f1"] + 0.1   # measured 0.32 vs 0.08


def test_non_positive_class_sep_is_one_sentence_pointing_at_signal_false():
    with pytest.raises(ImbalanceLabError, match=r"class_sep must be positive, got 0.*signal=false"):
        make_synthetic(class_sep=0)
