"""The recipe, in process, with real Keras and a real MLflow store."""

from __future__ import annotations

import json
import time

import numpy as np
import pytest

from imbalance_lab.configs import compose
from imbalance_lab.data import load_splits
from imbalance_lab.paths import CONF_DIR
from imbalance_lab.run import execute, train_and_evaluate

from conftest import TINY, client


def test_same_config_and_seed_log_identical_metrics(make_cfg, store):
    cfg, choices = make_cfg("sampler=random_over", "tracking.rerun=true")
    first = execute(cfg, choices)
    second = execute(cfg, choices)
    assert first.status == second.status == "FINISHED" and first.run_id != second.run_id
    c = client(store)
    m1, m2 = (c.get_run(r.run_id).data.metrics for r in (first, second))
    assert m1.pop("resample/seconds") >= 0 and m2.pop("resample/seconds") >= 0   # a wall time, not a result
    assert m1 == m2 and "test/macro_f1" in m1


def test_resampling_touches_the_training_split_only(make_cfg):
    cfg, _ = make_cfg("sampler=random_over")
    plain_cfg, _ = make_cfg()
    out = train_and_evaluate(cfg)
    plain = load_splits(plain_cfg.dataset, plain_cfg.seed)
    np.testing.assert_array_equal(out.data.class_counts("val"), plain.class_counts("val"))
    np.testing.assert_array_equal(out.data.class_counts("test"), plain.class_counts("test"))
    before = out.train.counts_before
    assert before == plain.class_counts("train").tolist()
    assert out.train.counts_after == [max(before)] * len(before)


def test_finished_config_is_skipped_unless_rerun(make_cfg, store):
    cfg, choices = make_cfg()
    first = execute(cfg, choices)
    again = execute(cfg, choices)
    assert again.status == "SKIPPED" and again.run_id == first.run_id
    assert len(client(store).search_runs([client(store).get_experiment_by_name("test").experiment_id])) == 1


def test_the_skip_check_names_the_latest_finished_run_of_its_key(store):
    """FINISHED counts, RUNNING / FAILED / deleted runs and other experiments do not; a key trained
    again (tracking.rerun=true) is named by its latest run."""
    from imbalance_lab import tracking

    c = tracking.client_for(store)
    exp_id, other = tracking.experiment_id(c, "skip"), tracking.experiment_id(c, "elsewhere")

    def run(experiment: str, key: str, status: str | None) -> str:
        run_id = c.create_run(experiment, tags={"run_key": key}).info.run_id
        if status:
            c.set_terminated(run_id, status=status)
        return run_id

    for _ in range(3):
        finished = run(exp_id, "done", "FINISHED")
        time.sleep(0.01)
    run(exp_id, "done", "FAILED")
    run(exp_id, "running", None)
    run(exp_id, "failed", "FAILED")
    c.delete_run(run(exp_id, "deleted", "FINISHED"))
    run(other, "elsewhere", "FINISHED")
    assert tracking.finished_run_id(c, exp_id, "done") == finished
    for key in ("running", "failed", "deleted", "elsewhere", "never"):
        assert tracking.finished_run_id(c, exp_id, key) is None, key


def test_remedies_json_records_what_the_remedies_did(make_cfg, store, tmp_path):
    cfg, choices = make_cfg("class_weight=balanced", "bias_init=log_prior")
    result = execute(cfg, choices)
    path = client(store).download_artifacts(result.run_id, "remedies.json", str(tmp_path))
    remedies = json.loads(open(path).read())
    counts = np.array(list(remedies["sampler"]["class_counts_after"].values()), dtype=float)
    weights = np.array(list(remedies["class_weight"]["weights"].values()))
    np.testing.assert_allclose(weights, counts.sum() / (len(counts) * counts), rtol=1e-5)
    bias = np.array(list(remedies["bias_init"]["output_bias"].values()))
    np.testing.assert_allclose(bias, np.log(counts / counts.sum()), atol=1e-5)


def test_a_failing_run_ends_failed_not_running(make_cfg, store):
    cfg, choices = make_cfg("sampler=smote", "sampler.k_neighbors=500")
    try:
        execute(cfg, choices)
    except Exception as err:
        assert "k_neighbors=500" in str(err) and "class" in str(err)
    else:
        raise AssertionError("SMOTE with k_neighbors above the smallest class must fail")
    c = client(store)
    runs = c.search_runs([c.get_experiment_by_name("test").experiment_id])
    assert [r.info.status for r in runs] == ["FAILED"]
    assert "k_neighbors" in runs[0].data.tags["error"]


REMEDY_GROUPS = ("bias_init", "class_weight", "sampler", "decision")
ONE_AT_A_TIME = [f"{group}={path.stem}" for group in REMEDY_GROUPS
                 for path in sorted((CONF_DIR / group).glob("*.yaml"))]
ONE_AT_A_TIME += [f"loss={p.stem} activation={a}" for p in sorted((CONF_DIR / "loss").glob("*.yaml"))
                  for a in ("softmax", "sigmoid")]
ONE_AT_A_TIME += ["model=linear", "model=cnn dataset=digits"]


@pytest.mark.parametrize("overrides", ONE_AT_A_TIME)
def test_every_option_trains_and_evaluates(make_cfg, overrides):
    """Each option of every remedy axis (each loss with both activations) runs the whole recipe."""
    if overrides.startswith("model="):  # TINY's model/dataset keys belong to the mlp and synthetic data
        tiny = [o for o in TINY if not o.startswith(("model.", "dataset")) or "digits" not in overrides]
        tiny = [o for o in tiny if not o.startswith("model.")]
        cfg, _ = compose([*tiny, *overrides.split(), "trainer.epochs=1"])
    else:
        cfg, _ = make_cfg(*overrides.split(), "trainer.epochs=1")
    out = train_and_evaluate(cfg)
    assert out.evaluation.confusion.sum() == len(out.data.y_test)
    assert all(np.isfinite(v) for k, v in out.evaluation.metrics.items() if "roc" not in k and "pr_auc" not in k)


def test_a_run_that_fails_mid_training_keeps_the_curves_it_had(make_cfg, store):
    """Per-epoch curves are written as the run trains: a run stopped by a diverging loss keeps them."""
    cfg, choices = make_cfg("trainer.optimizer=sgd", "trainer.learning_rate=1e30", "trainer.epochs=3")
    with pytest.raises(Exception, match="training loss became"):
        execute(cfg, choices)
    c = client(store)
    [run] = c.search_runs([c.get_experiment_by_name("test").experiment_id])
    assert run.info.status == "FAILED"
    assert [m.step for m in c.get_metric_history(run.info.run_id, "train/loss")] == [0]


def test_long_training_prints_progress_with_the_time_left(make_cfg, monkeypatch, caplog):
    import logging

    from imbalance_lab import training

    monkeypatch.setattr(training, "PROGRESS_SECONDS", 0.0)
    cfg, _ = make_cfg("trainer.epochs=3", "trainer.patience=3")
    with caplog.at_level(logging.INFO, logger="imbalance_lab.training"):
        train_and_evaluate(cfg, name="tiny")
    lines = [r.getMessage() for r in caplog.records if r.name == "imbalance_lab.training"]
    assert any(line.startswith("tiny: epoch 3/3") and "val/macro_f1" in line for line in lines), lines
    assert any("left" in line for line in lines)


def test_predicted_logits_are_keras_predicts_across_chunk_boundaries(monkeypatch):
    import keras

    from imbalance_lab import training

    monkeypatch.setattr(training, "PREDICT_BATCH", 64)
    X = np.random.default_rng(0).normal(size=(200, 5)).astype("float32")   # 3 full chunks and a part
    model = keras.Sequential([keras.Input((5,)), keras.layers.Dropout(0.5), keras.layers.Dense(3)])
    logits = training.predict_logits(model, X)
    assert logits.shape == (200, 3) and logits.dtype == np.float64
    np.testing.assert_allclose(logits, model.predict(X, verbose=0), rtol=1e-6)   # inference: dropout off
