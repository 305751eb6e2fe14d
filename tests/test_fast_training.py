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
