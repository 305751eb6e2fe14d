import random

import keras
import numpy as np

from imbalance_lab.models.cnn import build_cnn
from imbalance_lab.models.linear import build_linear
from imbalance_lab.models.mlp import build_mlp

BIAS = np.log([0.7, 0.2, 0.1])


def test_linear_model_is_one_dense_layer_of_logits():
    model = build_linear((8, 8, 1), 3, BIAS)
    dense = [layer for layer in model.layers if isinstance(layer, keras.layers.Dense)]
    assert len(dense) == 1 and model.count_params() == 64 * 3 + 3
    np.testing.assert_allclose(dense[0].bias.numpy(), BIAS, rtol=1e-6)


def test_every_architecture_emits_one_logit_per_class():
    x = np.zeros((4, 8, 8, 1), dtype="float32")
    for model in (build_linear((8, 8, 1), 3, BIAS), build_mlp((8, 8, 1), 3, BIAS, widths=[8]),
                  build_cnn((8, 8, 1), 3, BIAS)):
        logits = keras.ops.convert_to_numpy(model(x))
        assert logits.shape == (4, 3)
        if model.name == "linear":  # zero input: the logits are the bias
            np.testing.assert_allclose(logits[0], BIAS, rtol=1e-6)



def _draws():
    return random.random(), float(np.random.rand())


def test_a_new_model_starts_where_a_build_would_and_reuses_an_equal_build(monkeypatch):
    """NewModel's initial variables and the random states after it equal a real build's at the same
    point (the reference: build_model itself, seeded alike), whether it builds or reuses an equal
    earlier build; anything that differs (seed, output bias) builds anew."""
    from omegaconf import OmegaConf

    from imbalance_lab import models
    from imbalance_lab.training import seed_everything

    cfg = OmegaConf.create({"_target_": "imbalance_lab.models.mlp.build_mlp", "widths": [6], "dropout": 0.3,
                            "input_dropout": 0.2})
    build, builds = models.build_model, []
    monkeypatch.setattr(models, "build_model", lambda *args: builds.append(args) or build(*args))
    models._builds.clear()
    for seed, bias, reused in [(0, BIAS, False), (1, BIAS, False), (0, BIAS, True), (0, BIAS * 2, False)]:
        n_builds = len(builds)
        seed_everything(seed)
        new, draws = models.NewModel(cfg, (5,), 3, bias), _draws()
        seed_everything(seed)
        start, expected_draws = [v.numpy() for v in build(cfg, (5,), 3, bias).variables], _draws()
        assert (len(builds) == n_builds) == reused
        assert draws == expected_draws
        assert len(new.initial_values) == len(start) > 4  # weights, biases and the 2 dropout layers' seed states
        for ours, reference in zip(new.initial_values, start, strict=True):
            np.testing.assert_array_equal(ours, reference)
        # built when asked (a trainer of its own): the same model, and the random states stay where they are
        python_state, numpy_state = random.getstate(), np.random.get_state()[1].copy()
        for variable, reference in zip(new.model().variables, start, strict=True):
            np.testing.assert_array_equal(variable.numpy(), reference)
        assert random.getstate() == python_state
        np.testing.assert_array_equal(np.random.get_state()[1], numpy_state)


def test_a_model_of_ones_own_builder_is_built_every_time(monkeypatch):
    """A `_target_` outside imbalance_lab.models may draw from state NewModel does not key: never reused."""
    from omegaconf import OmegaConf

    from imbalance_lab import models
    from imbalance_lab.training import seed_everything

    cfg = OmegaConf.create({"_target_": "my_project.models.build"})
    builds = []
    monkeypatch.setattr(models, "build_model", lambda *args: builds.append(args) or build_mlp((5,), 3, BIAS, widths=[4]))
    models.forget_builds()
    for _ in range(2):
        seed_everything(0)
        models.NewModel(cfg, (5,), 3, BIAS)
    assert len(builds) == 2 and not models._builds
