"""The compiled epoch loop does Model.fit's arithmetic; the resampled-set cache computes once."""

from __future__ import annotations

import keras
import numpy as np
import pytest
from omegaconf import OmegaConf

from imbalance_lab import epoch_loop, resample_cache
from imbalance_lab.configs import compose
from imbalance_lab.epoch_loop import epoch_batches, fit_arrays
from imbalance_lab.remedies.losses import categorical_crossentropy

from conftest import TINY


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


# Each case once with the compiled loop's kept trainer, and the paths that train their own model.
POSITION_CASES = ["model.dropout=0.3 model.input_dropout=0.2", "loss=focal activation=sigmoid",
                  "sampler=random_over class_weight=balanced bias_init=log_prior", "model=linear model.l2=0.01",
                  "loss=ldam", "loss=ldam loss.drw_start=1", "sampler=balanced_batch", "trainer.loop=keras"]


@pytest.mark.parametrize("overrides", POSITION_CASES)
def test_a_run_gives_the_same_numbers_whatever_ran_before_it_in_the_process(overrides):
    """Runs of one architecture and loss function train one kept model with its compiled function,
    and compiled kernels outlive each run's seeding; so seed 0 run first (a new trainer) and run again
    after seed 1 trained (as jobs of an in-process sweep, memory released in between) must agree
    exactly: history, test metrics and the trained weights."""
    from imbalance_lab.run import train_and_evaluate
    from imbalance_lab.sweep import _gradient_registry, release_job_memory

    tiny = [o for o in TINY if not (o.startswith("model.") and "model=" in overrides)]  # mlp's keys
    epoch_loop.forget_trainers()
    runs = []
    for seed in (0, 1, 0):
        before = set(_gradient_registry())
        out = train_and_evaluate(compose([*tiny, *overrides.split(), f"seed={seed}"])[0])
        runs.append((out, [w.copy() for w in out.fitted.model.get_weights()]))
        release_job_memory(before)
    (first, first_weights), (again, again_weights) = runs[0], runs[2]
    assert again.fitted.history == first.fitted.history and len(first.fitted.history) > 0
    np.testing.assert_equal(again.evaluation.metrics, first.evaluation.metrics)
    for a, b in zip(again_weights, first_weights, strict=True):
        np.testing.assert_array_equal(a, b)
    reusable = not any(o in overrides for o in ("drw_start", "balanced_batch", "loop=keras"))
    assert (again.fitted.model is first.fitted.model) == reusable  # the kept trainer did train it (or could not)


def test_seeding_sets_what_keras_sets_but_keeps_compiled_kernels():
    """seed_everything sets the seeds keras.utils.set_random_seed sets (the reference: same draws from
    Python, NumPy, Keras's generators and initializers, same TensorFlow op seeds), but TensorFlow's
    compiled kernels survive it: a stateful random kernel (which imbalance-lab's Keras models do not
    use) goes on with its stream, where Keras's seeding restarts it by emptying every kernel cache."""
    import random

    import tensorflow as tf
    from tensorflow.python.framework import random_seed

    from imbalance_lab.training import seed_everything

    def draws():
        return (random.random(), float(np.random.rand()), keras.random.uniform((3,)).numpy().tolist(),
                keras.initializers.GlorotUniform()((3, 2)).numpy().tolist(), random_seed.get_seed(None))

    keras.utils.set_random_seed(7)
    reference = draws()
    seed_everything(7)
    assert draws() == reference
    stateful = tf.function(lambda: tf.random.uniform(()))
    keras.utils.set_random_seed(0)
    start = float(stateful())
    assert float(stateful()) != start
    keras.utils.set_random_seed(0)
    assert float(stateful()) == start  # Keras's seeding emptied the kernel cache: the stream restarted
    seed_everything(0)
    assert float(stateful()) != start  # kept: the kernel was not rebuilt


def _trainer(key):
    model = _model(0)
    trainer = epoch_loop.epoch_trainer(model, categorical_crossentropy("softmax"), lambda: keras.optimizers.Adam(0.01),
                                       False, key=key)
    from imbalance_lab.training import predict_logits

    predict_logits(trainer.model, np.zeros((2, 6), "float32"))  # its traced forward pass: a reference cycle
    return trainer


def test_kept_trainers_are_the_most_recently_used_and_dropped_ones_are_freed(monkeypatch):
    """At most KEPT_TRAINERS are kept, the least recently used goes first; a dropped trainer, frozen
    with everything else between jobs and held in reference cycles, is freed by the job end that
    follows KEPT_TRAINERS drops (release_job_memory)."""
    import gc
    import weakref

    from imbalance_lab.sweep import release_job_memory

    monkeypatch.setattr(epoch_loop, "KEPT_TRAINERS", 2)
    epoch_loop.forget_trainers()
    epoch_loop.dropped_trainers_due()  # start counting drops from here
    a, b = _trainer("a"), _trainer("b")
    assert _trainer("a") is a  # used again: "b" is now the least recently used
    release_job_memory(set())  # the job ends: a and b are frozen with the rest
    gone = weakref.ref(b.model)
    del b
    _trainer("c")  # the third key drops "b"
    release_job_memory(set())
    assert gone() is not None and list(epoch_loop._kept) == [("a", False), ("c", False)]  # 1 drop of 2: frozen still
    _trainer("d")  # drops "a": two drops
    release_job_memory(set())
    assert gone() is None, "a dropped trainer outlived the collection after KEPT_TRAINERS drops"
    assert list(epoch_loop._kept) == [("c", False), ("d", False)] and gc.get_freeze_count() > 0


def test_a_parallel_worker_keeps_its_trainers_and_trains_new_keys_with_unkept_ones(monkeypatch):
    """In a worker forked from the fork server a full cache drops nothing (dropping needs a collection
    of the objects shared with the server): a new key trains with a trainer of its own, not kept."""
    monkeypatch.setattr(epoch_loop, "KEPT_TRAINERS", 2)
    monkeypatch.setattr(epoch_loop, "forked_from_server", lambda: True)
    epoch_loop.forget_trainers()
    a, b = _trainer("a"), _trainer("b")
    c = _trainer("c")
    assert list(epoch_loop._kept) == [("a", False), ("b", False)] and _trainer("c") is not c
    assert _trainer("a") is a and _trainer("b") is b
