"""Decision rules against hand-computed cases, Bayes' rule, and scikit-learn's macro-F1."""

from __future__ import annotations

import json

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


def textbook_macro_f1(y, pred, k):
    """Macro-F1 from its definition, 2 TP / (2 TP + FP + FN) per class, 0 where that is 0/0: a reference
    fast enough to score every offset of a brute-force search (checked against scikit-learn below)."""
    cm = np.bincount(np.asarray(y) * k + np.asarray(pred), minlength=k * k).reshape(k, k)
    tp, denominator = np.diag(cm), cm.sum(axis=0) + cm.sum(axis=1)
    return float(np.mean(np.divide(2 * tp, denominator, out=np.zeros(k), where=denominator > 0)))


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
    # 120 rows and 20 candidates: still more breakpoints than candidates (the quantile subset), at a
    # fifth of the macro-F1 evaluations of the defaults
    z, y, priors = biased_logits(n=120, shift=[0.0, 0.5, 1.5][seed % 3], seed=seed)
    rule = TunedThreshold(candidates=20).fit(z, y, priors, "softmax")
    argmax_f1, tuned_f1 = sk_macro_f1(y, np.argmax(z, axis=1), 4), sk_macro_f1(y, rule.predict(z), 4)
    assert tuned_f1 >= argmax_f1 - 1e-12
    assert tuned_f1 == pytest.approx(rule.val_macro_f1_) and argmax_f1 == pytest.approx(rule.val_macro_f1_argmax_)


def test_tuned_threshold_undoes_a_majority_bias():
    z, y, priors = biased_logits(shift=1.5)
    rule = TunedThreshold(candidates=20).fit(z, y, priors, "softmax")
    assert rule.val_macro_f1_ > rule.val_macro_f1_argmax_ + 0.05
    assert rule.offsets_[3] > rule.offsets_[0]   # the rarest class is pushed up


def test_binary_tuned_threshold_is_one_threshold_and_finds_the_best_one():
    z, y, priors = biased_logits(n=80, k=2, shift=1.0, seed=3)
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
    z, y, priors = biased_logits(n=60)  # fewer breakpoints than the default 100 candidates: a quick fit
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


# --- the fitted values and summaries (remedies.json) against hand-computed ones --------------------------

LABELS4 = ("a", "b", "c", "d")


def six_decimals(values) -> dict:
    """What remedies.json holds per label: each value rounded to 6 decimals."""
    return {label: round(float(v), 6) for label, v in zip(LABELS4, values)}


def test_the_textbook_macro_f1_used_as_reference_is_scikit_learns():
    y, pred = RNG.integers(0, 4, size=200), RNG.integers(0, 3, size=200)  # class 3 never predicted
    assert textbook_macro_f1(y, pred, 5) == pytest.approx(sk_macro_f1(y, pred, 5), abs=1e-12)


def test_logit_adjusted_summary_states_tau_and_the_offsets():
    priors = np.array([0.61, 0.23, 0.11, 0.05])
    rule = LogitAdjusted(tau=0.7).fit(None, None, priors, "sigmoid")
    expected = -0.7 * np.log(priors)
    assert any(round(v, 6) != round(v, 7) for v in expected)  # the rounding to 6 decimals shows
    assert rule.summary(LABELS4) == {"rule": "logit_adjusted", "tau": 0.7, "applied_to": "logits",
                                     "offsets": six_decimals(expected)}


def test_prior_correction_summary_states_the_normalised_target_and_the_multipliers():
    priors = np.array([0.61, 0.23, 0.11, 0.05])
    target = np.array([1.0, 2.0, 3.0, 4.0])  # not normalised: the summary states it normalised, / 10
    for activation in ("softmax", "sigmoid"):
        rule = PriorCorrection(target_prior=target.tolist()).fit(None, None, priors, activation)
        assert rule.summary(LABELS4) == {"rule": "prior_correction", "applied_to": f"{activation} probabilities",
                                         "target_prior": six_decimals(target / 10),
                                         "multipliers": six_decimals(target / 10 / priors)}
    uniform = PriorCorrection().fit(None, None, priors, "softmax").summary(LABELS4)
    assert uniform["target_prior"] == six_decimals([0.25] * 4)
    assert uniform["multipliers"] == six_decimals(0.25 / priors)


@pytest.mark.parametrize("target", [[0.5, 0.5, 0.0, 0.0], [0.6, 0.6, -0.2, 0.0]])
def test_prior_correction_rejects_a_target_prior_that_is_not_positive(target):
    with pytest.raises(ImbalanceLabError, match="positive values"):
        PriorCorrection(target_prior=target).fit(None, None, PRIORS, "softmax")


def test_float32_priors_are_computed_in_float64():
    """Priors handed over in float32 (a Keras tensor's dtype) give the float64 offsets and ratios."""
    priors = np.array([0.61, 0.23, 0.11, 0.05])
    as32 = priors.astype(np.float32)
    exact = as32.astype(float)  # the same numbers, in float64
    np.testing.assert_allclose(LogitAdjusted(0.7).fit(None, None, as32, "softmax").offsets_,
                               -0.7 * np.log(exact), rtol=1e-14)
    np.testing.assert_allclose(PriorCorrection().fit(None, None, as32, "softmax").log_ratio_,
                               np.log(0.25) - np.log(exact), rtol=1e-14)


def test_a_class_absent_from_training_keeps_every_value_finite():
    """A prior of 0 is clipped: the offsets and multipliers stay finite numbers that remedies.json can
    hold as JSON, and tau = 0 still means plain argmax."""
    priors = np.array([0.6, 0.4, 0.0])
    z = np.array([[2.0, 1.0, 0.0], [0.0, 3.0, 1.0]])
    for rule in (LogitAdjusted(1.0), PriorCorrection()):
        json.dumps(rule.fit(z, None, priors, "softmax").summary(("a", "b", "c")), allow_nan=False)
    assert LogitAdjusted(0.0).fit(z, None, priors, "softmax").predict(z).tolist() == [0, 1]


def test_the_python_defaults_are_the_configs():
    """LogitAdjusted() and TunedThreshold() built in Python behave as the shipped decision options."""
    for option, rule in (("logit_adjusted", LogitAdjusted()), ("tuned_threshold", TunedThreshold())):
        cfg, _ = compose([f"decision={option}"])
        built = call_target(cfg.decision)
        assert vars(rule) == vars(built) and vars(rule), option


@pytest.mark.parametrize(("rounds", "candidates", "valid"),
                         [(1, 2, True), (0, 2, False), (1, 1, False), (0, 1, False)])
def test_tuned_threshold_accepts_one_round_and_two_candidates_and_nothing_less(rounds, candidates, valid):
    if valid:
        assert (TunedThreshold(rounds, candidates).rounds, TunedThreshold(rounds, candidates).candidates) == (1, 2)
    else:
        with pytest.raises(ImbalanceLabError, match="must be >= 1 and >= 2"):
            TunedThreshold(rounds, candidates)


# Binary by hand: z = (b_i, 0), so the breakpoint of row i (where it turns to class 1) is b_i itself and
# class 1 is predicted iff b_i < offset. Class-1 rows at 0.3, 0.8, 1.0 are argmax's misses; the best
# split puts 0.6 (class 0) on the wrong side and falls between 1.0 and 1.46913578 (checked below by
# enumerating every split).
HAND_BREAKS = np.array([-2.0, -0.5, 0.3, 0.6, 0.8, 1.0, 1.46913578, 2.2, 3.0])
HAND_Y = np.array([1, 1, 1, 0, 1, 1, 0, 0, 0])


def test_binary_tuned_threshold_by_hand_and_its_summary():
    z = np.column_stack([HAND_BREAKS, np.zeros(len(HAND_BREAKS))])
    splits = {t: sk_macro_f1(HAND_Y, (HAND_BREAKS < t).astype(int), 2) for t in (HAND_BREAKS + 1e-9)}
    assert max(splits.values()) == splits[1.0 + 1e-9] > sorted(splits.values())[-2]  # a unique best split
    argmax_f1 = (4 / 7 + 8 / 11) / 2       # class 1: TP 2, FN 3; class 0: TP 4, FP 3
    tuned_f1 = (10 / 11 + 6 / 7) / 2       # class 1: TP 5, FP 1; class 0: TP 3, FN 1
    assert splits[1.0 + 1e-9] == pytest.approx(tuned_f1, abs=1e-15)
    offset = (1.0 + 1.46913578) / 2        # the midpoint of the two breakpoints around the best split
    for activation in ("softmax", "sigmoid"):
        rule = TunedThreshold().fit(z, HAND_Y, np.array([0.5, 0.5]), activation)
        assert rule.offsets_.tolist() == [0.0, offset]
        expected = {"rule": "tuned_threshold", "applied_to": "logits", "offsets": {"neg": 0.0, "pos": round(offset, 6)},
                    "val_macro_f1_argmax": round(argmax_f1, 6), "val_macro_f1_tuned": round(tuned_f1, 6),
                    "threshold_on_logit_difference": round(-offset, 6)}
        if activation == "softmax":  # predict class 1 iff p_1 > 1 / (1 + e^offset)
            expected["threshold_on_p1"] = round(1 / (1 + np.exp(offset)), 6)
        assert rule.summary(("neg", "pos")) == expected
    assert round(offset, 6) != round(offset, 7) and round(tuned_f1, 6) != round(tuned_f1, 7)
    assert round(argmax_f1, 6) != round(argmax_f1, 7) and round(1 / (1 + np.exp(offset)), 6) != round(1 / (1 + np.exp(offset)), 7)


@pytest.mark.parametrize(("label", "expected_offset"), [(0, -1.5 - 1.0), (1, 3.5 + 1.0)])
def test_tuned_threshold_ends_one_logit_beyond_the_extreme_breakpoints(label, expected_offset):
    """Validation of one class only: the best is class 1 for no row (all 0) or for every row (all 1),
    which the search reaches by an offset one logit below the lowest / above the highest breakpoint."""
    breaks = np.array([-1.5, -0.2, 0.4, 2.0, 3.5])
    z = np.column_stack([breaks, np.zeros(len(breaks))])
    y = np.full(len(breaks), label)
    rule = TunedThreshold().fit(z, y, np.array([0.5, 0.5]), "softmax")
    assert rule.offsets_.tolist() == [0.0, expected_offset]
    assert rule.predict(z).tolist() == y.tolist() and rule.val_macro_f1_ == 0.5


def test_tuned_threshold_keeps_argmax_where_it_is_already_perfect():
    """Only strict improvements are accepted: on separable validation logits the offsets stay 0."""
    z = np.array([[2.0, 0.0], [1.0, 0.5], [0.0, 1.0], [-1.0, 2.0]])
    rule = TunedThreshold().fit(z, np.array([0, 0, 1, 1]), np.array([0.5, 0.5]), "softmax")
    assert rule.offsets_.tolist() == [0.0, 0.0] and rule.val_macro_f1_ == 1.0


@pytest.mark.parametrize(("n0", "n1", "argmax_f1", "offset_f1"),
                         [(1, 3, (6 / 7) / 3, (2 / 5) / 3),    # the offset falls below argmax
                          (2, 2, (2 / 3) / 3, (2 / 3) / 3)])   # the offset only ties argmax: no strict gain
def test_tuned_threshold_falls_back_to_argmax_when_a_float_tie_makes_the_search_overrate_an_offset(
        n0, n1, argmax_f1, offset_f1):
    """k = 3, z = (0, z_1, -100): n0 rows at z_1 = p (class 0), n1 at z_1 = p' = the next double (class 1).
    The midpoint (p + p') / 2 rounds to p', where z_0 + p' ties z_1 = p': the search scores those rows as
    class 1, argmax gives the tie to class 0, so the offset that looked perfect puts every row in class 0.
    Unless that is strictly better than argmax, the rule must return argmax (offsets 0)."""
    p = np.nextafter(1.0, 2.0)
    p_next = np.nextafter(p, 2.0)
    assert (p + p_next) / 2 == p_next   # the float tie this case is built on
    z1 = np.array([p] * n0 + [p_next] * n1)
    z = np.column_stack([np.zeros(len(z1)), z1, np.full(len(z1), -100.0)])
    y = np.array([0] * n0 + [1] * n1)
    rule = TunedThreshold().fit(z, y, np.full(3, 1 / 3), "softmax")
    assert textbook_macro_f1(y, np.argmax(z + [p_next, 0.0, 0.0], axis=1), 3) == pytest.approx(offset_f1)
    assert rule.offsets_.tolist() == [0.0, 0.0, 0.0]
    assert rule.val_macro_f1_ == rule.val_macro_f1_argmax_ == pytest.approx(argmax_f1)
    assert rule.predict(z).tolist() == [1] * len(z1)
    assert rule.summary(("a", "b", "c"))["offsets"] == {"a": 0.0, "b": 0.0, "c": 0.0}


def _one_class_optimum(z, y, offsets, c) -> float:
    """The best validation macro-F1 over every offset of class c, the others fixed: argmax(z + b) only
    changes where z_c + b_c crosses max_{j != c}(z_j + b_j), so one offset per gap between those values
    (and one beyond each end) tries every distinct prediction."""
    k = z.shape[1]
    others = np.delete(np.arange(k), c)
    crossings = np.unique(np.max(z[:, others] + offsets[others], axis=1) - z[:, c])
    best = -1.0
    for value in np.concatenate([[crossings[0] - 1], (crossings[:-1] + crossings[1:]) / 2, [crossings[-1] + 1]]):
        b = offsets.copy()
        b[c] = value
        best = max(best, textbook_macro_f1(y, np.argmax(z + b, axis=1), k))
    return best


def test_tuned_threshold_repeats_passes_until_no_class_offset_can_improve():
    """Coordinate ascent run to convergence: afterwards no single class's offset raises validation
    macro-F1. These logits need a second pass (one pass stops short of that)."""
    z, y, priors = biased_logits(n=20, k=3, shift=1.5, seed=5)
    rule = TunedThreshold(rounds=20, candidates=21).fit(z, y, priors, "softmax")
    assert rule.val_macro_f1_ == pytest.approx(textbook_macro_f1(y, rule.predict(z), 3), abs=1e-12)
    for c in range(3):
        assert _one_class_optimum(z, y, rule.offsets_, c) <= rule.val_macro_f1_ + 1e-12, c
    one_pass = TunedThreshold(rounds=1, candidates=21).fit(z, y, priors, "softmax")
    assert any(_one_class_optimum(z, y, one_pass.offsets_, c) > one_pass.val_macro_f1_ + 1e-12 for c in range(3))


def test_tuned_threshold_tries_only_the_quantile_midpoints_when_there_are_more_breakpoints_than_candidates():
    """candidates=3 over 40 breakpoints: the offsets tried are 1 below the lowest, the midpoints of the
    3 quantiles (0, 1/2, 1) of the breakpoints, and 1 above the highest."""
    z, y, priors = biased_logits(n=40, k=2, shift=1.0, seed=3)
    rule = TunedThreshold(rounds=1, candidates=3).fit(z, y, priors, "softmax")
    breaks = z[:, 0] - z[:, 1]
    low, mid, high = np.quantile(np.unique(breaks), [0.0, 0.5, 1.0])
    tried = {b: sk_macro_f1(y, (breaks < b).astype(int), 2) for b in (low - 1, (low + mid) / 2, (mid + high) / 2, high + 1)}
    assert rule.val_macro_f1_ == pytest.approx(max(max(tried.values()), rule.val_macro_f1_argmax_), abs=1e-12)
    assert rule.offsets_[1] in (0.0, *tried)


def test_tuned_threshold_leaves_at_0_the_offsets_that_cannot_strictly_improve():
    """The hand case with a third class that validation never holds and no logit comes near (z_2 = -100):
    class 0's offset takes the best split (the mirror image of the binary one); class 1's offset can only
    tie that and class 2's can only tie or lose, so both stay 0 (a tie accepted would move class 2's by
    about +100, onto every test row whose z_2 is not far below)."""
    z = np.column_stack([HAND_BREAKS, np.zeros(len(HAND_BREAKS)), np.full(len(HAND_BREAKS), -100.0)])
    rule = TunedThreshold().fit(z, HAND_Y, np.full(3, 1 / 3), "softmax")
    assert rule.offsets_.tolist() == [-(1.0 + 1.46913578) / 2, 0.0, 0.0]
    assert rule.val_macro_f1_ == pytest.approx((10 / 11 + 6 / 7) / 3, abs=1e-15)
