"""The doctor's rules on the inputs and the fit: each fires on a case built for it, with numbers
checked against NumPy or Keras, and stays silent on a clean config."""

from __future__ import annotations

import json

import numpy as np
import pytest

from imbalance_lab.configs import compose
from imbalance_lab.data import load_splits
from imbalance_lab.data.preprocess import NONE
from imbalance_lab.doctor import fit_rules, rules

from conftest import TINY, client

RAW = [*TINY, "dataset.feature_scales=[1000,100000]"]
LINEAR = [*(o for o in TINY if not o.startswith("model.widths")), "model=linear"]
FIT_CODES = {"unscaled_inputs", "heavy_regularisation", "optimizer_stalls"}


def findings_for(*overrides: str):
    cfg, choices = compose(list(overrides))
    data = load_splits(cfg.dataset, cfg.seed, cfg.preprocess)
    return {f.code: f for f in rules.lint_config(cfg, choices, data)}, data, cfg


def test_clean_config_has_none_of_these_findings():
    found, _, _ = findings_for(*TINY)
    assert not FIT_CODES & set(found)


def test_unscaled_inputs_warn_under_none_name_the_columns_and_inform_under_a_scaler():
    found, data, cfg = findings_for(*RAW, "preprocess=none")
    finding = found["unscaled_inputs"]
    assert finding.severity == "warning" and finding.fix.startswith("preprocess=standard")
    raw = load_splits(cfg.dataset, cfg.seed, NONE).X_train.astype("float64")
    rms = np.sqrt(raw.mean(axis=0) ** 2 + raw.std(axis=0) ** 2)
    top = int(np.argmax(rms))
    largest = finding.numbers["largest"][0]
    assert finding.numbers["n_large"] == 8 and largest["name"] == f"feature {top}"
    assert largest["mean"] == pytest.approx(raw[:, top].mean()) and largest["std"] == pytest.approx(raw[:, top].std())
    assert f"'feature {top}' mean {raw[:, top].mean():.3g}" in finding.message
    for option in ("standard", "robust"):
        found, _, _ = findings_for(*RAW, f"preprocess={option}")
        assert found["unscaled_inputs"].severity == "info" and f"preprocess={option} rescales" in found["unscaled_inputs"].message


def test_unscaled_inputs_on_real_data_name_wines_proline():
    found, _, _ = findings_for("dataset=wine", "preprocess=none")
    finding = found["unscaled_inputs"]
    assert finding.severity == "warning" and finding.numbers["largest"][0]["name"] == "proline"
    found, _, _ = findings_for("dataset=digits", "preprocess=none")     # pixels in [0, 1]: nothing to say
    assert "unscaled_inputs" not in found


def test_heavy_regularisation_fires_for_each_setting_and_weighs_the_data():
    found, _, _ = findings_for(*TINY, "model.input_dropout=0.5")
    small = found["heavy_regularisation"]
    # TINY: 360 training rows, an 8-16-3 network of (8+1)*16 + (16+1)*3 = 195 weights (hand count).
    assert small.severity == "info" and small.numbers["weights"] == 195 and small.numbers["train_rows"] == 360
    assert small.fix == "model.input_dropout=0"
    found, _, _ = findings_for(*TINY, "dataset.n_samples=20000", "model.input_dropout=0.5")
    big = found["heavy_regularisation"]   # 12,000 rows for 195 weights: 61.5 rows a weight
    assert big.severity == "warning" and big.numbers["rows_per_weight"] == pytest.approx(12000 / 195)
    found, _, _ = findings_for(*TINY, "model.max_norm=0.5")
    assert found["heavy_regularisation"].fix == "model.max_norm=3"
    found, _, _ = findings_for(*LINEAR, "model.l2=0.1")
    assert found["heavy_regularisation"].numbers["l2"] == 0.1
    for clean in (["model.input_dropout=0.1"], ["model.max_norm=3"], ["model.l2=0.001"]):
        found, _, _ = findings_for(*(LINEAR if "model.l2" in clean[0] else TINY), *clean)
        assert "heavy_regularisation" not in found, clean
    found, _, _ = findings_for("dataset=digits", "model.input_dropout=0.5")   # pixels: input dropout is fine
    assert "heavy_regularisation" not in found


def test_weight_count_and_initial_norm_match_keras():
    import keras

    from imbalance_lab.models.mlp import build_mlp

    model = build_mlp((157,), 5, np.zeros(5), widths=[64, 32, 32, 16])
    assert fit_rules.mlp_weight_count(157, [64, 32, 32, 16], 5) == model.count_params() == 13861
    kernel = keras.initializers.GlorotUniform(seed=0)((157, 64))
    norms = np.linalg.norm(keras.ops.convert_to_numpy(kernel), axis=0)
    assert norms.mean() == pytest.approx(fit_rules.glorot_unit_norm(157, 64), rel=0.03)


def test_optimizer_stalls_is_logged_for_a_learning_rate_that_cannot_move_and_not_for_adam(make_cfg, store, tmp_path):
    from imbalance_lab.run import execute

    stalled, choices = make_cfg("trainer.optimizer=sgd", "trainer.learning_rate=0.000001", "trainer.momentum=0")
    run = client(store).get_run(execute(stalled, choices).run_id)
    assert "optimizer_stalls" in run.data.tags["doctor.warnings"].split("; ")
    path = client(store).download_artifacts(run.info.run_id, "doctor.json", str(tmp_path))
    finding = next(f for f in json.loads(open(path).read()) if f["code"] == "optimizer_stalls")
    assert finding["numbers"]["moved"] < fit_rules.STALL_SHARE and finding["fix"].startswith("trainer.learning_rate=1e-05")
    clean, choices = make_cfg()
    run = client(store).get_run(execute(clean, choices).run_id)
    assert "optimizer_stalls" not in run.data.tags["doctor.warnings"]


def test_optimizer_stalls_thresholds():
    history = [{"val/loss": 1.6090 - 0.001 * i, "val/macro_f1": 0.10} for i in range(5)]
    assert fit_rules.optimizer_stalls(history, 1.6094, 0.12)[0].numbers["moved"] == pytest.approx(
        (1.6094 - 1.6070) / 1.6094)
    assert fit_rules.optimizer_stalls(history, 1.7, 0.12) == []                 # moved 5.5 %
    assert fit_rules.optimizer_stalls(history, 1.6094, 0.05) == []              # learned above naive
    assert fit_rules.optimizer_stalls(history, None, 0.12) == []                # no initial loss
