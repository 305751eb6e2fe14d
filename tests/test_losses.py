"""The activation/loss pairs, against hand-written NumPy references."""

import inspect

import hydra
import keras
import numpy as np
import pytest
from omegaconf import OmegaConf

from imbalance_lab.errors import ImbalanceLabError
from imbalance_lab.paths import CONF_DIR
from imbalance_lab.remedies.losses import (
    activate,
    balanced_softmax,
    binary_crossentropy,
    categorical_crossentropy,
    class_balanced,
    class_balanced_weights,
    focal,
    ldam,
    ldam_margins,
    logit_adjusted,
)
from imbalance_lab.training import fit

RNG = np.random.default_rng(1)
Z = RNG.normal(size=(32, 4)).astype("float32")
Y = np.eye(4, dtype="float32")[RNG.integers(0, 4, size=32)]


def _np(x):
    return keras.ops.convert_to_numpy(x)


def _softmax(z):
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def _sigmoid(z):
    return 1 / (1 + np.exp(-z))


def test_softmax_ce_is_cross_entropy_of_softmax():
    expected = -(Y * np.log(_softmax(Z))).sum(axis=1)
    np.testing.assert_allclose(_np(categorical_crossentropy("softmax")(Y, Z)), expected, rtol=1e-5)


def test_sigmoid_ce_renormalises_the_sigmoids_like_keras_2():
    s = _sigmoid(Z)
    expected = -(Y * np.log(s / s.sum(axis=1, keepdims=True))).sum(axis=1)
    got = _np(categorical_crossentropy("sigmoid")(Y, Z))
    np.testing.assert_allclose(got, expected, rtol=1e-5)
    # and it is not silently the softmax cross-entropy (Keras 3's logits shortcut)
    assert np.abs(got - _np(categorical_crossentropy("softmax")(Y, Z))).max() > 1e-2


def test_sigmoid_bce_is_one_vs_rest():
    s = _sigmoid(Z)
    expected = -(Y * np.log(s) + (1 - Y) * np.log(1 - s)).mean(axis=1)
    np.testing.assert_allclose(_np(binary_crossentropy("sigmoid")(Y, Z)), expected, rtol=1e-5)


def test_softmax_bce_scores_softmax_columns_as_binary_problems():
    p = _softmax(Z)
    expected = -(Y * np.log(p) + (1 - Y) * np.log(1 - p)).mean(axis=1)
    np.testing.assert_allclose(_np(binary_crossentropy("softmax")(Y, Z)), expected, rtol=1e-5)


# --- The imbalance-aware losses, against their papers' definitions written in NumPy.

COUNTS = np.array([1000, 100, 10])
Z3 = RNG.normal(size=(64, 3)).astype("float32")
LABELS3 = RNG.integers(0, 3, size=64)
Y3 = np.eye(3, dtype="float32")[LABELS3]


def _ce(z, y):
    return -(y * np.log(_softmax(z))).sum(axis=1)


def test_focal_with_gamma_0_and_alpha_1_is_ce_and_bce():
    np.testing.assert_allclose(_np(focal("softmax", COUNTS, gamma=0.0, alpha=1.0)(Y3, Z3)), _ce(Z3, Y3), rtol=1e-5)
    np.testing.assert_allclose(_np(focal("sigmoid", COUNTS, gamma=0.0)(Y3, Z3)),
                               _np(binary_crossentropy("sigmoid")(Y3, Z3)), rtol=1e-5)


def test_focal_matches_lin_et_al_and_keras_focal():
    p_t = (Y3 * _softmax(Z3)).sum(axis=1)
    alpha = COUNTS.sum() / (3 * COUNTS)  # 'balanced'
    expected = -alpha[LABELS3] * (1 - p_t) ** 2 * np.log(p_t)
    np.testing.assert_allclose(_np(focal("softmax", COUNTS, gamma=2.0, alpha="balanced")(Y3, Z3)), expected, rtol=1e-4)
    reference = keras.losses.CategoricalFocalCrossentropy(alpha=0.25, gamma=2.0, from_logits=True, reduction=None)
    np.testing.assert_allclose(_np(focal("softmax", COUNTS, gamma=2.0, alpha=0.25)(Y3, Z3)),
                               _np(reference(Y3, Z3)), rtol=1e-4)
    binary = keras.losses.BinaryFocalCrossentropy(gamma=2.0, from_logits=True, reduction=None)
    np.testing.assert_allclose(_np(focal("sigmoid", COUNTS, gamma=2.0)(Y3, Z3)), _np(binary(Y3, Z3)), rtol=1e-4)


def test_focal_alpha_list_must_have_one_value_per_class():
    with pytest.raises(ImbalanceLabError, match="3 classes"):
        focal("softmax", COUNTS, alpha=[0.5, 0.5])


def test_class_balanced_with_beta_0_is_ce():
    np.testing.assert_allclose(_np(class_balanced("softmax", COUNTS, beta=0.0)(Y3, Z3)), _ce(Z3, Y3), rtol=1e-5)


def test_class_balanced_weights_by_hand():
    # beta=0.9: raw_c = 0.1 / (1 - 0.9^n) = [0.1, 0.1/(1-0.9^100), 0.1/(1-0.9^10)], normalised to sum to K=3
    raw = np.array([0.1 / (1 - 0.9**1000), 0.1 / (1 - 0.9**100), 0.1 / (1 - 0.9**10)])
    expected = 3 * raw / raw.sum()
    np.testing.assert_allclose(class_balanced_weights(COUNTS, 0.9), expected, rtol=1e-12)
    np.testing.assert_allclose(_np(class_balanced("softmax", COUNTS, beta=0.9)(Y3, Z3)),
                               expected[LABELS3] * _ce(Z3, Y3), rtol=1e-5)


def test_logit_adjusted_tau_0_is_ce_and_tau_1_is_balanced_softmax():
    np.testing.assert_allclose(_np(logit_adjusted("softmax", COUNTS, tau=0.0)(Y3, Z3)), _ce(Z3, Y3), rtol=1e-5)
    # Ren et al.'s definition: p_y = n_y e^{z_y} / sum_j n_j e^{z_j}
    weighted = COUNTS * np.exp(Z3.astype(float))
    balanced = -np.log((Y3 * weighted).sum(axis=1) / weighted.sum(axis=1))
    np.testing.assert_allclose(_np(balanced_softmax("softmax", COUNTS)(Y3, Z3)), balanced, rtol=1e-5)
    np.testing.assert_allclose(_np(logit_adjusted("softmax", COUNTS, tau=1.0)(Y3, Z3)), balanced, rtol=1e-5)


@pytest.mark.parametrize("tau", [0.5, 2.0])
def test_logit_adjusted_between_and_beyond_the_endpoints_is_menons_formula(tau):
    """Menon et al. (2021), eq. 10: -log(e^{z_y + tau log pi_y} / sum_j e^{z_j + tau log pi_j}), i.e. the
    prior raised to the power tau. At tau 0 and 1 a wrong power (tau^2, 1/tau, sqrt) still agrees."""
    pi = COUNTS / COUNTS.sum()
    weighted = pi**tau * np.exp(Z3.astype(float))
    expected = -np.log((Y3 * weighted).sum(axis=1) / weighted.sum(axis=1))
    loss = logit_adjusted("softmax", COUNTS, tau=tau)
    np.testing.assert_allclose(_np(loss(Y3, Z3)), expected, rtol=1e-5, atol=1e-6)  # float32 near 0
    np.testing.assert_allclose(loss.details["offsets"], tau * np.log(pi), rtol=1e-12)


def test_logit_losses_ignore_the_activation_and_say_so():
    for factory in (logit_adjusted, balanced_softmax, ldam):
        soft, sig = factory("softmax", COUNTS), factory("sigmoid", COUNTS)
        np.testing.assert_allclose(_np(sig(Y3, Z3)), _np(soft(Y3, Z3)), rtol=1e-6)
        assert "from the logits" in sig.form


def test_ldam_margins_match_the_formula_for_hand_computed_counts():
    # Delta_c = C n_c^(-1/4) with max Delta = 0.5 at n = 10: Delta = 0.5 (10 / n_c)^(1/4)
    expected = [0.5 * 0.01**0.25, 0.5 * 0.1**0.25, 0.5]   # 0.158114, 0.281171, 0.5
    np.testing.assert_allclose(ldam_margins(COUNTS, 0.5), expected, rtol=1e-12)
    np.testing.assert_allclose(ldam_margins(COUNTS), expected, rtol=1e-12)  # default max_margin: Cao et al.'s 0.5
    np.testing.assert_allclose(expected[:2], [0.1581139, 0.2811707], rtol=1e-6)


def test_ldam_loss_is_scaled_ce_on_margin_shifted_logits():
    margins = np.array(ldam_margins(COUNTS, 0.5))
    expected = _ce(30.0 * (Z3 - Y3 * margins), Y3)
    np.testing.assert_allclose(_np(ldam("softmax", COUNTS)(Y3, Z3)), expected, rtol=1e-4, atol=1e-5)


def test_ldam_deferred_reweighting_switches_on_at_drw_start_during_fit():
    loss_fn = ldam("softmax", COUNTS, drw_start=2, drw_beta=0.99)
    plain = _np(ldam("softmax", COUNTS)(Y3, Z3))
    np.testing.assert_allclose(_np(loss_fn(Y3, Z3)), plain, rtol=1e-6)  # before drw_start: weights 1
    seen = []
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(3)])
    probe = keras.callbacks.LambdaCallback(on_epoch_end=lambda epoch, logs: seen.append(float(loss_fn(Y3, Z3)[0])))
    cfg = OmegaConf.create({"optimizer": "adam", "learning_rate": 0.001, "batch_size": 32, "epochs": 3, "patience": 5})
    loss_fn.callbacks.append(probe)
    fit(model, loss_fn, Z3, LABELS3, None, Z3, LABELS3, 3, cfg)
    weights = np.array(class_balanced_weights(COUNTS, 0.99))
    np.testing.assert_allclose(seen, [plain[0], plain[0], weights[LABELS3[0]] * plain[0]], rtol=1e-5)


@pytest.mark.parametrize("base", ["bce", "focal"])
def test_class_balanced_on_each_base_is_the_weights_times_that_base(base):
    weights = np.asarray(class_balanced_weights(COUNTS, 0.9))[LABELS3]
    inner = {"bce": binary_crossentropy("softmax"), "focal": focal("softmax", COUNTS, gamma=1.5)}[base]
    loss = class_balanced("softmax", COUNTS, beta=0.9, base=base, gamma=1.5)
    np.testing.assert_allclose(_np(loss(Y3, Z3)), weights * _np(inner(Y3, Z3)), rtol=1e-5)
    assert loss.details["base"] == base and inner.form in loss.form


def test_every_imbalance_loss_states_what_it_computed():
    """remedies.json logs each loss's name, form and the per-class values it derived from the counts."""
    log_pi = np.log(COUNTS / COUNTS.sum())
    cases = [
        (focal("sigmoid", COUNTS, gamma=1.5, alpha="balanced"), "focal", "one-vs-rest",
         {"gamma": 1.5, "alpha": COUNTS.sum() / (3 * COUNTS)}),
        (class_balanced("softmax", COUNTS, beta=0.9, base="focal", gamma=1.5), "class_balanced", "beta=0.9",
         {"beta": 0.9, "base": "focal", "class_weights": class_balanced_weights(COUNTS, 0.9)}),
        (ldam("softmax", COUNTS, max_margin=0.4, scale=20.0, drw_start=3, drw_beta=0.99), "ldam", "from epoch 3",
         {"margins": ldam_margins(COUNTS, 0.4), "scale": 20.0, "drw_start": 3,
          "drw_weights": class_balanced_weights(COUNTS, 0.99)}),
        (logit_adjusted("sigmoid", COUNTS, tau=0.5), "logit_adjusted", "0.5*log(pi)", {"tau": 0.5, "offsets": 0.5 * log_pi}),
        (balanced_softmax("sigmoid", COUNTS), "balanced_softmax", "activation sigmoid not applied",
         {"log_counts": np.log(COUNTS)}),
    ]
    for loss, name, phrase, expected in cases:
        assert loss.__name__ == name and phrase in loss.form, (name, loss.form)
        assert set(loss.details) == set(expected), name
        for key, value in expected.items():
            if isinstance(value, str):
                assert loss.details[key] == value
            else:
                np.testing.assert_allclose(np.asarray(loss.details[key], dtype=float), value, rtol=1e-12, err_msg=f"{name}.{key}")


def test_ldam_deferred_reweighting_by_hand_before_and_from_drw_start():
    """The epoch callback's switch, without training: weights 1 before drw_start, the class-balanced
    weights of the row's class from it on (and they stay on)."""
    loss_fn = ldam("softmax", COUNTS, drw_start=2, drw_beta=0.99)
    plain = _np(ldam("softmax", COUNTS)(Y3, Z3))
    weights = np.array(class_balanced_weights(COUNTS, 0.99))[LABELS3]
    # freshly built, before any epoch has begun (e.g. the loss evaluated outside fit), the weights are 1 too
    np.testing.assert_allclose(_np(loss_fn(Y3, Z3)), plain, rtol=1e-6)
    # remedies.json's form: the LDAM part, then the re-weighting
    assert loss_fn.form.startswith("LDAM: softmax cross-entropy on 30*(z - Delta_y)") and "from epoch 2" in loss_fn.form
    [switch] = loss_fn.callbacks
    for epoch, expected in ((0, plain), (1, plain), (2, weights * plain), (5, weights * plain), (1, plain)):
        switch.on_epoch_begin(epoch)
        np.testing.assert_allclose(_np(loss_fn(Y3, Z3)), expected, rtol=1e-5, atol=1e-7, err_msg=f"epoch {epoch}")
    assert not hasattr(ldam("softmax", COUNTS), "callbacks") and ldam("softmax", COUNTS).details["drw_weights"] is None


@pytest.mark.parametrize("activation", ["softmax", "sigmoid"])
def test_activate_turns_logits_into_the_activations_probabilities(activation):
    """run.py scores the test split with these probabilities: scipy's softmax (over the classes) or expit."""
    from scipy.special import expit, softmax

    reference = softmax(Z.astype(float), axis=1) if activation == "softmax" else expit(Z.astype(float))
    np.testing.assert_allclose(_np(activate(Z, activation)), reference, rtol=1e-5, atol=1e-7)


def test_activate_rejects_an_unknown_activation():
    with pytest.raises(ImbalanceLabError, match="'relu' is not one of"):
        activate(Z, "relu")


# Rows whose probabilities reach 0 and 1 in float32: the clipping to [1e-7, 1 - 1e-7] decides the loss.
Z_EXTREME = np.array([[10.0, -200.0, -200.0], [200.0, 0.0, -200.0], [0.0, 0.5, 1.0], [-200.0, 200.0, 3.0], [200.0, -200.0, 0.0]], dtype="float32")
Y_EXTREME = np.eye(3, dtype="float32")[[0, 1, 2, 1, 1]]


def test_ce_on_sigmoid_and_bce_on_softmax_clip_like_keras_probability_losses():
    """Keras's own losses on probabilities (from_logits=False, given plain arrays so no logits shortcut)
    renormalise and clip to [epsilon, 1 - epsilon]: the written-out forms must agree, saturated rows included."""
    s, p = _sigmoid(Z_EXTREME.astype(float)).astype("float32"), _softmax(Z_EXTREME.astype(float)).astype("float32")
    ce_reference = _np(keras.losses.categorical_crossentropy(Y_EXTREME, s, from_logits=False))
    bce_reference = _np(keras.losses.binary_crossentropy(Y_EXTREME, p, from_logits=False))
    assert np.all(np.isfinite(bce_reference)) and bce_reference.max() > 5  # a clipped log(1e-7) is in there
    np.testing.assert_allclose(_np(categorical_crossentropy("sigmoid")(Y_EXTREME, Z_EXTREME)), ce_reference, rtol=1e-5)
    np.testing.assert_allclose(_np(binary_crossentropy("softmax")(Y_EXTREME, Z_EXTREME)), bce_reference, rtol=1e-5)


# Options under which every default is used: drw_beta only acts with drw_start set, gamma only with base=focal.
ACTIVE = {"ldam": {"drw_start": 0}, "class_balanced": {"base": "focal"}}


@pytest.mark.parametrize("path", sorted((CONF_DIR / "loss").glob("*.yaml")), ids=lambda p: p.stem)
def test_a_loss_built_without_an_option_is_the_config_options_loss(path):
    """Called from Python without the config (a notebook, a test), a loss computes what the run's
    config option computes: leaving out any one option gives the same loss values and details."""
    options = OmegaConf.to_container(OmegaConf.load(path))
    factory = hydra.utils.get_method(options.pop("_target_"))
    options.update(ACTIVE.get(path.stem, {}))
    signature = inspect.signature(factory).parameters
    assert set(options) <= set(signature), path.stem
    given = factory("softmax", COUNTS, **options)
    for name in options:
        if signature[name].default is inspect.Parameter.empty or name in ACTIVE.get(path.stem, {}):
            continue
        default = factory("softmax", COUNTS, **{k: v for k, v in options.items() if k != name})
        np.testing.assert_allclose(_np(default(Y3, Z3)), _np(given(Y3, Z3)), rtol=1e-12, err_msg=f"{path.stem}.{name}")
        details = getattr(given, "details", {})
        assert set(getattr(default, "details", {})) == set(details)
        for key, value in details.items():
            assert value == default.details[key] or np.allclose(value, default.details[key], rtol=1e-12), (name, key)


def _references64(z, y, labels):
    """Each loss's published formula in float64 NumPy, keyed by a (name, factory) case below."""
    s, p = _sigmoid(z), _softmax(z)
    alpha = COUNTS.sum() / (3 * COUNTS)  # 'balanced'
    p_t = (y * p).sum(axis=1)
    sig_t = y * s + (1 - y) * (1 - s)  # each one-vs-rest column's probability of its target
    focal_soft = -alpha[labels] * (1 - p_t) ** 2 * np.log(p_t)
    focal_sig = alpha[labels] * (-(1 - sig_t) ** 2 * np.log(sig_t)).mean(axis=1)
    bce_soft = -(y * np.log(p) + (1 - y) * np.log(1 - p)).mean(axis=1)
    raw = 0.1 / (1 - 0.9 ** COUNTS.astype(float))  # Cui et al., beta 0.9, normalised to sum K
    cb = (3 * raw / raw.sum())[labels]
    margins = 0.5 * (COUNTS.min() / COUNTS) ** 0.25  # Cao et al.: C n^(-1/4), the rarest class's margin 0.5
    raw99 = 0.01 / (1 - 0.99 ** COUNTS.astype(float))
    pi = COUNTS / COUNTS.sum()

    def prior_ce(prior):  # -log(prior_y e^z_y / sum_j prior_j e^z_j)
        w = prior * np.exp(z)
        return -np.log((y * w).sum(axis=1) / w.sum(axis=1))

    return {
        "ce softmax": _ce(z, y),
        "ce sigmoid": -(y * np.log(s / s.sum(axis=1, keepdims=True))).sum(axis=1),
        "bce sigmoid": -(y * np.log(s) + (1 - y) * np.log(1 - s)).mean(axis=1),
        "bce softmax": bce_soft,
        "focal softmax": focal_soft,
        "focal sigmoid": focal_sig,
        "cb ce": cb * _ce(z, y),
        "cb bce": cb * bce_soft,
        "cb focal": cb * -(1 - p_t) ** 2 * np.log(p_t),
        "ldam": _ce(30.0 * (z - y * margins), y),
        "ldam drw on": (3 * raw99 / raw99.sum())[labels] * _ce(30.0 * (z - y * margins), y),
        "logit_adjusted": prior_ce(pi**0.5),
        "balanced_softmax": prior_ce(COUNTS),
    }


LOSSES64 = {
    "ce softmax": lambda: categorical_crossentropy("softmax"),
    "ce sigmoid": lambda: categorical_crossentropy("sigmoid"),
    "bce sigmoid": lambda: binary_crossentropy("sigmoid"),
    "bce softmax": lambda: binary_crossentropy("softmax"),
    "focal softmax": lambda: focal("softmax", COUNTS, gamma=2.0, alpha="balanced"),
    "focal sigmoid": lambda: focal("sigmoid", COUNTS, gamma=2.0, alpha="balanced"),
    "cb ce": lambda: class_balanced("softmax", COUNTS, beta=0.9, base="ce"),
    "cb bce": lambda: class_balanced("softmax", COUNTS, beta=0.9, base="bce"),
    "cb focal": lambda: class_balanced("softmax", COUNTS, beta=0.9, base="focal", gamma=2.0),
    "ldam": lambda: ldam("sigmoid", COUNTS),
    "ldam drw on": lambda: ldam("softmax", COUNTS, drw_start=0, drw_beta=0.99),
    "logit_adjusted": lambda: logit_adjusted("softmax", COUNTS, tau=0.5),
    "balanced_softmax": lambda: balanced_softmax("softmax", COUNTS),
}


@pytest.mark.parametrize("case", sorted(LOSSES64))
def test_every_loss_computes_its_formula_in_float64(case):
    """A float64 model (or float64 targets and logits) gets the loss in float64, to float64 precision:
    the per-class constants are made in the logits' dtype, not Keras's float32 default."""
    loss = LOSSES64[case]()
    for callback in getattr(loss, "callbacks", []):
        callback.on_epoch_begin(0)  # drw_start=0: the class-balanced weights are on from the first epoch
    z, y = Z3.astype("float64"), Y3.astype("float64")
    got = _np(loss(y, z))
    assert got.dtype == np.float64, case
    np.testing.assert_allclose(got, _references64(z, y, LABELS3)[case], rtol=1e-9, atol=1e-12, err_msg=case)


@pytest.mark.parametrize("factory, name", [(focal, "focal"), (class_balanced, "class_balanced"), (ldam, "ldam"),
                                           (logit_adjusted, "logit_adjusted"), (balanced_softmax, "balanced_softmax")])
def test_a_loss_built_from_the_counts_names_itself_when_a_class_has_no_training_row(factory, name):
    kwargs = {"alpha": "balanced"} if factory is focal else {}
    with pytest.raises(ImbalanceLabError, match=f"loss={name} needs every class"):
        factory("softmax", [100, 0, 10], **kwargs)
    assert np.all(np.isfinite(_np(factory("softmax", [100, 1, 10], **kwargs)(Y3, Z3))))  # one row is enough


@pytest.mark.parametrize("factory, activation, name, form", [
    (categorical_crossentropy, "softmax", "ce", "categorical cross-entropy on softmax(z), from logits"),
    (categorical_crossentropy, "sigmoid", "ce", "categorical cross-entropy on sigmoid(z) renormalised to sum 1"),
    (binary_crossentropy, "sigmoid", "bce", "binary cross-entropy per class on sigmoid(z), from logits (one-vs-rest)"),
    (binary_crossentropy, "softmax", "bce", "binary cross-entropy on softmax(z) over the one-hot columns"),
    (focal, "softmax", "focal", "focal on softmax(z): -alpha_t (1-p_t)^gamma log p_t"),
    (focal, "sigmoid", "focal", "focal on sigmoid(z), one-vs-rest: alpha_t * mean_c -(1-p_t,c)^gamma log p_t,c"),
])
def test_each_activation_loss_pair_logs_the_arithmetic_it_used(factory, activation, name, form):
    """remedies.json records loss_fn.__name__ and .form: which of the two arithmetics (from the logits, or
    on the other activation's probabilities) a run used, the point of the forum-mistake comparisons."""
    loss = factory(activation, COUNTS)
    assert (loss.__name__, loss.form) == (name, form)
