"""The compiled epoch loop does Model.fit's arithmetic; the resampled-set cache computes once."""

from __future__ import annotations

import keras
import numpy as np
import pytest
from omegaconf import OmegaConf

from imbalance_lab import resample_cache
from imbalance_lab.epoch_loop import epoch_batches, fit_arrays
from imbalance_lab.remedies.losses import categorical_crossentropy


def test_an_epoch_visits_every_row_once_and_pads_the_last_batch():
    index, mask, rows = epoch_batches(10, 4, np.random.default_rng(0))
    assert index.shape == (3, 4) and rows.tolist() == [4, 4, 2]
    assert sorted(index[mask > 0].tolist()) == list(range(10))


def _model(seed):
    keras.utils.set_random_seed(seed)
    inputs = keras.Input((6,))
    return keras.Model(inputs, keras.layers.Dense(3)(keras.layers.Dense(8, activation="relu")(inputs)))


@pytest.mark.parametrize("jit", [False, True], ids=["no-xla", "xla"])
def test_full_batch_epochs_match_model_fit_with_sample_weights(jit):
    rng = np.random.default_rng(1)
    X = rng.normal(size=(50, 6)).astype("float32")
    Y = keras.utils.to_categorical(rng.integers(0, 3, 50), 3)
    w = rng.uniform(0.5, 2.0, 50).astype("float32")
    loss = categorical_crossentropy("softmax")
    reference, ours = _model(0), _model(0)
    reference.compile(optimizer=keras.optimizers.Adam(0.01), loss=loss)
    history = reference.fit(X, Y, sample_weight=w, batch_size=50, epochs=2, shuffle=False, verbose=0)
    logs = []
    recorder = keras.callbacks.LambdaCallback(on_epoch_end=lambda epoch, epoch_logs: logs.append(epoch_logs["loss"]))
    fit_arrays(ours, loss, keras.optimizers.Adam(0.01), X, Y, w, batch_size=50, epochs=2, steps_per_execution=8,
               jit_compile=jit, callbacks=[recorder])
    np.testing.assert_allclose(logs, history.history["loss"], rtol=1e-5)
    for a, b in zip(ours.get_weights(), reference.get_weights(), strict=True):
        np.testing.assert_allclose(a, b, atol=1e-5)


def test_a_resampled_training_set_is_computed_once_per_dataset_sampler_and_seed():
    resample_cache.clear()
    cfg = OmegaConf.create({"_target_": "imblearn.over_sampling.RandomOverSampler"})
    X, y = np.arange(40, dtype="float32").reshape(20, 2), np.array([0] * 15 + [1] * 5)
    before = resample_cache.computed["count"]
    first = resample_cache.cached_resample(cfg, 0, X, y, ("a", "b"), "fp")
    again = resample_cache.cached_resample(cfg, 0, X, y, ("a", "b"), "fp")
    other_seed = resample_cache.cached_resample(cfg, 1, X, y, ("a", "b"), "fp")
    assert again is first and other_seed is not first and resample_cache.computed["count"] == before + 2
    assert first.counts_after == [15, 15] and not first.X.flags.writeable


def test_early_stopping_restores_the_weights_of_the_best_validation_epoch():
    """After fit the model is the best epoch's (by validation macro-F1), not the last one's (a learning
    rate so high that validation macro-F1 jumps about: best at epoch 8 of 12): its
    validation macro-F1, recomputed from scratch with scikit-learn, is the history's maximum."""
    from sklearn.metrics import f1_score

    from imbalance_lab.training import fit, predict_logits

    rng = np.random.default_rng(3)
    X = rng.normal(size=(300, 6)).astype("float32")
    y = (X[:, 0] + rng.normal(scale=1.5, size=300) > 0.3).astype("int64") + (X[:, 1] > 1.0)
    cfg = OmegaConf.create({"optimizer": "sgd", "learning_rate": 2.0, "momentum": 0.0, "nesterov": False,
                            "epochs": 12, "patience": 12, "batch_size": 16, "steps_per_execution": 4})
    model = _model(0)
    result = fit(model, categorical_crossentropy("softmax"), X[:200], y[:200], None, X[200:], y[200:], 3, cfg)
    scores = [row["val/macro_f1"] for row in result.history]
    assert result.best_epoch == int(np.argmax(scores)) != len(scores) - 1  # the last epoch was not the best
    restored = f1_score(y[200:], predict_logits(model, X[200:]).argmax(axis=1), average="macro", labels=[0, 1, 2],
                        zero_division=0)
    assert restored == pytest.approx(max(scores), abs=1e-12) and restored > scores[-1]
