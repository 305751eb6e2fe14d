"""Decision rules against hand-computed cases, Bayes' rule, and scikit-learn's macro-F1."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.special import expit, softmax
from sklearn.metrics import f1_score

from imbalance_lab.configs import call_target, compose
from imbalance_lab.errors import ImbalanceLabError
from imbalance_lab.remedies.decision import Argmax, LogitAdjusted, PriorCorrection, TunedThreshold

RNG = np.random.default_rng(0)
PRIORS = np.array([0.7, 0.2, 0.08, 0.02])


def biased_logits(n=400, k=4, shift=1.5, seed=0):
    """Labels with PRIORS[:k]; logits that see the class but lean towards the frequent ones."""
    rng = np.random.default_rng(seed)
    priors = PRIORS[:k] / PRIORS[:k].sum()
    y = rng.choice(k, size=n, p=priors)
    z = rng.normal(size=(n, k)) + 1.2 * np.eye(k)[y] + shift * np.log(priors)
    return z, y, priors


def sk_macro_f1(y, pred, k):
    return f1_score(y, pred, average="macro", labels=list(range(k)), zero_division=0)


def test_logit_adjusted_by_hand():
    z = np.array([[2.0, 1.0], [3.0, 0.5]])
    rule = LogitAdjusted(tau=1.0).fit(z, None, np.array([0.9, 0.1]), "softmax")
    # row 0: 2 - log .9 = 2.105 < 1 - log .1 = 3.303 -> class 1; row 1: 3.105 > 2.803 -> class 0
    assert rule.predict(z).tolist() == [1, 0]
    assert LogitAdjusted(tau=0.0).fit(z, None, np.array([0.9, 0.1]), "softmax").predict(z).tolist() == [0, 0]


@pytest.mark.parametrize("tau", [0.5, 2.0])
def test_logit_adjusted_rule_raises_the_prior_to_the_power_tau(tau):
    """argmax_y z_y - tau log pi_y = argmax_y softmax(z)_y / pi_y^tau (Menon et al. 2021, eq. 8), checked
    away from tau 0 and 1, where a wrong power of the prior would agree."""
    z, _, priors = biased_logits()
    rule = LogitAdjusted(tau=tau).fit(z, None, priors, "softmax")
    np.testing.assert_allclose(rule.offsets_, -tau * np.log(priors), rtol=1e-12)
    np.testing.assert_array_equal(rule.predict(z), np.argmax(softmax(z, axis=1) / priors**tau, axis=1))
    other = LogitAdjusted(tau=tau**2).fit(z, None, priors, "softmax").predict(z)
    assert (rule.predict(z) != other).any()  # these logits tell the powers apart


@pytest.mark.parametrize("activation", ["softmax", "sigmoid"])
def test_prior_correction_with_target_equal_to_training_prior_is_argmax(activation):
    z, _, priors = biased_logits()
    rule = PriorCorrection(target_prior=priors.tolist()).fit(z, None, priors, activation)
    np.testing.assert_array_equal(rule.predict(z), Argmax().predict(z))


def test_prior_correction_is_bayes_rule_on_the_probabilities():
    z, _, priors = biased_logits()
    target = np.array([0.1, 0.2, 0.3, 0.4])
    for activation, prob in (("softmax", softmax(z, axis=1)), ("sigmoid", expit(z))):
        rule = PriorCorrection(target_prior=target.tolist()).fit(z, None, priors, activation)
        np.testing.assert_array_equal(rule.predict(z), np.argmax(prob * target / priors, axis=1))
    uniform = PriorCorrection().fit(z, None, priors, "softmax")
    assert (uniform.predict(z) != np.argmax(z, axis=1)).any()   # it does move predictions to rare classes
    np.testing.assert_array_equal(uniform.predict(z), LogitAdjusted(1.0).fit(z, None, priors, "softmax").predict(z))


def test_prior_correction_rejects_a_target_of_the_wrong_length():
    with pytest.raises(ImbalanceLabError, match="4 positive values"):
        PriorCorrection(target_prior=[0.5, 0.5]).fit(*biased_logits()[:2], PRIORS, "softmax")


@pytest.mark.parametrize("seed", range(6))
def test_tuned_threshold_never_scores_below_argmax_on_validation(seed):
    z, y, priors = biased_logits(shift=[0.0, 0.5, 1.5][seed % 3], seed=seed)
    rule = TunedThreshold().fit(z, y, priors, "softmax")
    argmax_f1, tuned_f1 = sk_macro_f1(y, np.argmax(z, axis=1), 4), sk_macro_f1(y, rule.predict(z), 4)
    assert tuned_f1 >= argmax_f1 - 1e-12
    assert tuned_f1 == pytest.approx(rule.val_macro_f1_) and argmax_f1 == pytest.approx(rule.val_macro_f1_argmax_)


def test_tuned_threshold_undoes_a_majority_bias():
    z, y, priors = biased_logits(shift=1.5)
    rule = TunedThreshold().fit(z, y, priors, "softmax")
    assert rule.val_macro_f1_ > rule.val_macro_f1_argmax_ + 0.05
    assert rule.offsets_[3] > rule.offsets_[0]   # the rarest class is pushed up


def test_binary_tuned_threshold_is_one_threshold_and_finds_the_best_one():
    z, y, priors = biased_logits(n=150, k=2, shift=1.0, seed=3)
    rule = TunedThreshold(candidates=1000).fit(z, y, priors, "softmax")
    assert rule.offsets_[0] == 0.0
    p1 = softmax(z, axis=1)[:, 1]
    brute = max(sk_macro_f1(y, (p1 > t).astype(int), 2) for t in np.concatenate([[-1.0], np.unique(p1)]))
    assert rule.val_macro_f1_ == pytest.approx(brute)
    summary = rule.summary(("neg", "pos"))
    assert set(summary["offsets"]) == {"neg", "pos"}
    assert sk_macro_f1(y, (p1 > summary["threshold_on_p1"]).astype(int), 2) == pytest.approx(brute, abs=1e-9)


@pytest.mark.parametrize("option", ["argmax", "logit_adjusted", "prior_correction", "tuned_threshold"])
def test_every_decision_option_builds_fits_and_summarises(option):
    cfg, _ = compose([f"decision={option}"])
    z, y, priors = biased_logits()
    rule = call_target(cfg.decision).fit(z, y, priors, "softmax")
    assert rule.predict(z).shape == y.shape
    summary = rule.summary(("a", "b", "c", "d"))
    assert summary["rule"] == option
    assert all(set(v) == {"a", "b", "c", "d"} for v in summary.values() if isinstance(v, dict))


def test_remedies_json_states_every_computed_value(make_cfg):
    from imbalance_lab.remedies.losses import ldam_margins
    from imbalance_lab.remedies.weighting import effective_number_weights
    from imbalance_lab.run import remedies_summary, train_and_evaluate

    cfg, _ = make_cfg("loss=ldam", "loss.drw_start=1", "class_weight=effective_number", "sampler=smote",
                      "decision=tuned_threshold", "trainer.epochs=2")
    summary = remedies_summary(train_and_evaluate(cfg))
    after = summary["sampler"]["class_counts_after"]
    counts = [after[label] for label in summary["labels"]]
    assert counts == [max(counts)] * 3 and summary["sampler"]["class_counts_before"] != after
    np.testing.assert_allclose(list(summary["loss"]["margins"].values()), ldam_margins(counts), atol=1e-6)
    assert set(summary["loss"]["drw_weights"]) == set(summary["labels"]) and summary["loss"]["drw_start"] == 1
    np.testing.assert_allclose(list(summary["class_weight"]["weights"].values()),
                               effective_number_weights(counts, 0.999), atol=1e-6)
    assert "mean weight over training samples = 1" in summary["class_weight"]["normalisation"]
    decision = summary["decision"]
    assert set(decision["offsets"]) == set(summary["labels"])
    assert decision["val_macro_f1_tuned"] >= decision["val_macro_f1_argmax"]
