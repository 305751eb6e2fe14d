"""The `preprocess` axis: every option composes and trains; validation and test get the training
split's fit only (checked against scikit-learn's transformers fitted by hand); `none` keeps the
loader's values; images keep their shape; the raw scales, the row budget and the raw-scale
generator; runs carry the option as param, tag and name, and the report reads it as an axis."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.preprocessing import MinMaxScaler, QuantileTransformer, RobustScaler, StandardScaler

from imbalance_lab.configs import compose
from imbalance_lab.data import load_splits
from imbalance_lab.data.preprocess import NONE
from imbalance_lab.data.synthetic import make_synthetic
from imbalance_lab.errors import ImbalanceLabError
from imbalance_lab.paths import CONF_DIR

from conftest import TINY, client

OPTIONS = sorted(p.stem for p in (CONF_DIR / "preprocess").glob("*.yaml"))
# Raw scales and a label-shifted fixed test set: statistics of all rows differ from the training split's.
RAW = ["dataset=synthetic", "dataset.n_samples=1200", "dataset.n_features=6", "dataset.n_informative=3",
       "dataset.priors=[0.7,0.2,0.1]", "dataset.test_priors=[0.2,0.3,0.5]", "dataset.feature_scales=[1000,100000]"]
REFERENCE = {  # the option's transformer as scikit-learn documents it, built by hand
    "standard": lambda n, seed: StandardScaler(),
    "minmax": lambda n, seed: MinMaxScaler(),
    "robust": lambda n, seed: RobustScaler(),
    "quantile": lambda n, seed: QuantileTransformer(n_quantiles=min(1000, n), random_state=seed),
}


def splits(*overrides: str):
    cfg, _ = compose(list(overrides))
    return load_splits(cfg.dataset, cfg.seed, cfg.preprocess), cfg


def test_the_group_has_the_designed_options():
    assert OPTIONS == ["minmax", "none", "quantile", "robust", "standard"]
    assert compose([])[1]["preprocess"] == "standard"


@pytest.mark.parametrize("option", OPTIONS)
def test_every_option_composes_and_trains(option):
    from imbalance_lab.run import train_and_evaluate

    cfg, choices = compose([*TINY, f"preprocess={option}"])
    assert choices["preprocess"] == option
    out = train_and_evaluate(cfg)
    assert np.isfinite(out.evaluation.metrics["test/macro_f1"]) and len(out.fitted.history) == 3
    assert out.data.fingerprint == load_splits(cfg.dataset, cfg.seed, cfg.preprocess).fingerprint


@pytest.mark.parametrize("option", sorted(REFERENCE))
def test_validation_and_test_are_transformed_with_the_training_fit_only(option):
    data, cfg = splits(*RAW, f"preprocess={option}")
    raw = load_splits(cfg.dataset, cfg.seed, NONE)
    fitted = REFERENCE[option](len(raw.X_train), cfg.seed).fit(raw.X_train)
    for split in ("X_train", "X_val", "X_test"):
        expected = fitted.transform(getattr(raw, split))
        np.testing.assert_allclose(getattr(data, split), expected, rtol=1e-5, atol=1e-5)
    # The same transformer fitted on every row would give other values: the check above can tell.
    everything = np.concatenate([raw.X_train, raw.X_val, raw.X_test])
    leaky = REFERENCE[option](len(everything), cfg.seed).fit(everything)
    assert not np.allclose(data.X_test, leaky.transform(raw.X_test), rtol=1e-3, atol=1e-3)


def test_none_keeps_the_loaders_values():
    data, cfg = splits(*RAW, "preprocess=none")
    generated = make_synthetic(n_classes=3, priors=[0.7, 0.2, 0.1], n_samples=1200, n_features=6, n_informative=3,
                               test_priors=[0.2, 0.3, 0.5], feature_scales=[1000, 100000])
    np.testing.assert_array_equal(data.X_test, generated.X_test)     # the fixed test set, untouched
    assert np.abs(data.X_train).max() > 1000


def test_images_are_transformed_per_pixel_and_keep_their_shape():
    data, cfg = splits("dataset=digits", "preprocess=minmax")
    raw = load_splits(cfg.dataset, cfg.seed, NONE)
    assert data.X_train.shape[1:] == raw.X_train.shape[1:] == (8, 8, 1)
    flat = raw.X_train.reshape(len(raw.X_train), -1)
    expected = MinMaxScaler().fit(flat).transform(raw.X_test.reshape(len(raw.X_test), -1))
    np.testing.assert_allclose(data.X_test.reshape(len(data.X_test), -1), expected, atol=1e-6)
    assert raw.X_train.max() <= 1.0 and raw.X_train.min() >= 0.0     # none: the loader's pixels (0-1)


def test_raw_scale_is_the_training_split_before_preprocessing():
    data, cfg = splits("dataset=wine")
    raw = load_splits(cfg.dataset, cfg.seed, NONE)
    np.testing.assert_allclose(data.raw_scale.mean, raw.X_train.astype("float64").mean(axis=0), rtol=1e-9)
    np.testing.assert_allclose(data.raw_scale.std, raw.X_train.astype("float64").std(axis=0), rtol=1e-9)
    assert data.raw_scale.names[12] == "proline" and abs(data.X_train.mean()) < 1e-5


def test_max_rows_sample_train_and_validation_stratified_and_keep_the_test_split():
    full, _ = splits(*TINY)
    cut, cfg = splits(*TINY, "++dataset.max_train_rows=100", "++dataset.max_val_rows=50")
    assert len(cut.y_train) == 100 and len(cut.y_val) == 50
    expected = 100 * full.class_counts("train") / full.class_counts("train").sum()
    assert np.all(np.abs(cut.class_counts("train") - expected) <= 1)
    np.testing.assert_array_equal(cut.y_test, full.y_test)
    with pytest.raises(ImbalanceLabError, match="dataset.max_train_rows"):
        from imbalance_lab.configs import validate

        validate(compose([*TINY, "++dataset.max_train_rows=0"])[0])


def test_feature_scales_put_each_column_on_its_own_raw_scale():
    unit = make_synthetic(n_samples=500, n_features=5, n_informative=3, seed=3)
    scaled = make_synthetic(n_samples=500, n_features=5, n_informative=3, seed=3, feature_scales=[1000, 100000])
    for j in range(5):   # column j = x * s_j + o_j exactly, with s_j and o_j in [1e3, 1e5]
        slope, intercept = np.polyfit(unit.X[:, j].astype("float64"), scaled.X[:, j].astype("float64"), 1)
        assert 1000 <= slope <= 100000 and 1000 <= intercept <= 100000
        np.testing.assert_allclose(scaled.X[:, j], unit.X[:, j] * slope + intercept, rtol=1e-5)
    np.testing.assert_array_equal(scaled.y, unit.y)
    with pytest.raises(ImbalanceLabError, match=r"dataset.feature_scales=\[0, 10\] must be \[low, high\]"):
        make_synthetic(feature_scales=[0, 10])


def test_a_bad_transformer_parameter_is_one_sentence():
    with pytest.raises(ImbalanceLabError, match=r"preprocess=quantile: .*output_distribution"):
        splits(*TINY, "preprocess=quantile", "preprocess.output_distribution=gaussian")


def test_runs_carry_the_option_and_the_report_reads_it_as_an_axis(make_cfg, store):
    from imbalance_lab.report.runs import load_runs, varying_axes
    from imbalance_lab.run import execute

    names = {}
    for option in ("none", "standard"):
        cfg, choices = make_cfg(f"preprocess={option}")
        result = execute(cfg, choices)
        run = client(store).get_run(result.run_id)
        assert run.data.tags["preprocess"] == run.data.params["preprocess"] == option
        names[option] = run.info.run_name
    assert "preprocess=none" in names["none"].split("·") and "preprocess" not in names["standard"]
    frame = load_runs(store, "test").finished
    assert "preprocess" in varying_axes(frame) and set(frame["preprocess"]) == {"none", "standard"}
