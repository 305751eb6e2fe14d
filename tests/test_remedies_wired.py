"""Each remedy reaches the run that claims it: tests that fail when the recipe (run.py,
training.py) computes a remedy but does not hand it on. Each was checked by deleting or
bending the line that wires it (docs/mutation-testing.md)."""

from __future__ import annotations

import numpy as np
import pytest
from imblearn.over_sampling import SMOTE, RandomOverSampler
from scipy.special import log_softmax

from imbalance_lab.configs import compose
from imbalance_lab.evaluation import naive_macro_f1
from imbalance_lab.remedies.weighting import balanced_weights
from imbalance_lab.run import train_and_evaluate

from conftest import TINY

TINY_DATA = [o for o in TINY if not o.startswith("model.")]


def test_class_weights_reach_the_loss_keras_minimises():
    """class_weight=balanced: the first epoch's training loss (one batch, learning rate 0, so the model
    stays at its initial weights) is the class-weighted mean cross-entropy computed by hand from the
    model's logits, not the unweighted one. log_prior biases make the per-class losses differ."""
    cfg, _ = compose([*TINY_DATA, "model=linear", "bias_init=log_prior", "class_weight=balanced",
                      "trainer.optimizer=sgd", "trainer.learning_rate=0", "trainer.epochs=1",
                      "trainer.batch_size=100000"])
    out = train_and_evaluate(cfg)
    logits = np.asarray(out.fitted.model.predict(out.train.X, verbose=0), dtype="float64")
    per_row = -log_softmax(logits, axis=1)[np.arange(len(out.train.y)), out.train.y]
    weights = balanced_weights(out.train.counts_after)[out.train.y]
    weighted, unweighted = float(np.mean(weights * per_row)), float(np.mean(per_row))
    assert abs(weighted - unweighted) > 0.3   # priors 0.7/0.2/0.1: ~1.4 vs ~0.8
    assert out.fitted.history[0]["train/loss"] == pytest.approx(weighted, rel=1e-4)


def test_naive_baseline_predicts_the_training_majority_under_label_shift():
    """Training priors 0.7/0.2/0.1, test priors 0.1/0.2/0.7: the test split's majority is another class."""
    cfg, _ = compose([*TINY_DATA, "model=linear", "dataset.test_priors=[0.1,0.2,0.7]", "trainer.epochs=1"])
    out = train_and_evaluate(cfg)
    train_majority = int(np.argmax(out.data.class_counts("train")))
    test_majority = int(np.argmax(out.data.class_counts("test")))
    assert train_majority != test_majority
    expected = naive_macro_f1(out.data.y_test, train_majority, out.data.n_classes)
    assert out.evaluation.metrics["naive/macro_f1"] == expected
    assert expected != naive_macro_f1(out.data.y_test, test_majority, out.data.n_classes)


@pytest.mark.parametrize(("option", "sampler_cls"), [("random_over", RandomOverSampler), ("smote", SMOTE)])
def test_the_sampler_draws_with_the_runs_seed(option, sampler_cls):
    """The training set a run trains on is imbalanced-learn's resampling of its split with
    random_state = the run's seed (so two seeds differ, and one seed repeats)."""
    for seed in (0, 1):
        cfg, _ = compose([*TINY_DATA, "model=linear", f"sampler={option}", f"seed={seed}", "trainer.epochs=1"])
        out = train_and_evaluate(cfg)
        X_ref, y_ref = sampler_cls(random_state=seed).fit_resample(out.data.X_train, out.data.y_train)
        np.testing.assert_array_equal(out.train.y, y_ref)
        np.testing.assert_allclose(out.train.X, X_ref, rtol=1e-6)


@pytest.mark.parametrize("sampler", ["random_under", "random_over"])
def test_decision_rules_use_the_priors_the_model_was_trained_on(sampler):
    """After resampling the model sees balanced classes: logit adjustment and prior correction must
    remove those priors (uniform here), not the split's priors before resampling (0.7/0.2/0.1)."""
    for decision in ("logit_adjusted", "prior_correction"):
        cfg, _ = compose([*TINY_DATA, "model=linear", f"sampler={sampler}", f"decision={decision}",
                          "decision.tau=0.5" if decision == "logit_adjusted" else "decision.target_prior=null",
                          "trainer.epochs=1"])
        out = train_and_evaluate(cfg)
        trained_on = np.asarray(out.train.counts_after, dtype=float) / np.sum(out.train.counts_after)
        before = out.data.class_counts("train") / out.data.class_counts("train").sum()
        assert np.abs(trained_on - before).max() > 0.3
        labels = list(out.data.labels)
        if decision == "logit_adjusted":
            offsets = np.array([out.decision["offsets"][label] for label in labels])
            np.testing.assert_allclose(offsets, -0.5 * np.log(trained_on), atol=1e-6)
        else:
            multipliers = np.array([out.decision["multipliers"][label] for label in labels])
            np.testing.assert_allclose(multipliers, (1 / len(labels)) / trained_on, atol=1e-5)
