import keras
import numpy as np

from imbalance_lab.models.mlp import build_mlp
from imbalance_lab.remedies.bias import log_prior_bias, zeros_bias

COUNTS = np.array([1624, 3993, 931, 2086, 1367])
PRIORS = COUNTS / COUNTS.sum()


def test_log_prior_softmax_bias_reproduces_priors_exactly():
    b = log_prior_bias("softmax", COUNTS)
    np.testing.assert_allclose(np.exp(b) / np.exp(b).sum(), PRIORS, atol=1e-12)


def test_log_prior_sigmoid_bias_reproduces_each_prior():
    b = log_prior_bias("sigmoid", COUNTS)
    np.testing.assert_allclose(1 / (1 + np.exp(-b)), PRIORS, atol=1e-12)


def test_untrained_network_with_log_prior_outputs_the_training_priors():
    """With the logits kernel zeroed, the output is exactly the bias: mean softmax = priors. With
    the random kernel of a fresh network, the mean output is nearer the priors than with zeros."""
    X = np.random.default_rng(0).normal(size=(2000, 10)).astype("float32")

    def mean_output(bias):
        keras.utils.set_random_seed(0)
        net = build_mlp((10,), 5, bias, widths=[16])
        return net, keras.ops.convert_to_numpy(keras.ops.softmax(net(X), axis=-1)).mean(axis=0)

    model, with_prior = mean_output(log_prior_bias("softmax", COUNTS))
    _, with_zeros = mean_output(zeros_bias("softmax", COUNTS))
    assert np.abs(with_prior - PRIORS).sum() < np.abs(with_zeros - PRIORS).sum()
    layer = model.get_layer("logits")
    layer.kernel.assign(np.zeros(layer.kernel.shape, dtype="float32"))
    mean_exact = keras.ops.convert_to_numpy(keras.ops.softmax(model(X), axis=-1)).mean(axis=0)
    np.testing.assert_allclose(mean_exact, PRIORS, atol=2e-5)  # float32


def test_zeros_bias_gives_uniform_start():
    assert not zeros_bias("softmax", COUNTS).any()


def test_untrained_sigmoid_network_with_log_prior_outputs_each_class_prior():
    X = np.random.default_rng(1).normal(size=(500, 10)).astype("float32")
    keras.utils.set_random_seed(0)
    net = build_mlp((10,), 5, log_prior_bias("sigmoid", COUNTS), widths=[16])
    layer = net.get_layer("logits")
    layer.kernel.assign(np.zeros(layer.kernel.shape, dtype="float32"))
    per_class = keras.ops.convert_to_numpy(keras.ops.sigmoid(net(X))).mean(axis=0)
    np.testing.assert_allclose(per_class, PRIORS, atol=2e-6)


def test_log_prior_bias_stays_finite_when_a_class_has_no_row_or_every_row():
    """A class absent from training (prior 0) or holding every row (prior 1) would give an infinite
    bias; the priors are clipped to [1e-12, 1 - 1e-12], so the untrained outputs are those priors within 1e-11."""
    for activation, counts in (("softmax", [100, 0, 10]), ("sigmoid", [100, 0, 10]), ("sigmoid", [50, 0])):
        b = log_prior_bias(activation, counts)
        assert np.all(np.isfinite(b)), (activation, counts)
        out = np.exp(b) / np.exp(b).sum() if activation == "softmax" else 1 / (1 + np.exp(-b))
        np.testing.assert_allclose(out, np.array(counts) / sum(counts), atol=1e-11)
