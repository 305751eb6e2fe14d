"""model=pretrained and the embeddings computed once per study: each backbone against Keras's own
network and preprocess_input, frozen and fine-tuned layers, a weights file, the on-disk cache
(computations counted), and the doctor on an image folder. Nothing is downloaded: weights=null,
or a weights file the test writes."""

from __future__ import annotations

import json
import random
import re
import shutil
import subprocess

import keras
import numpy as np
import pytest
from PIL import Image

from imbalance_lab import embeddings
from imbalance_lab.configs import compose
from imbalance_lab.data import load_splits
from imbalance_lab.data.image_folder import load_image_folder
from imbalance_lab.doctor import command as doctor
from imbalance_lab.errors import ImbalanceLabError
from imbalance_lab.models.pretrained import BACKBONES, build_pretrained, feature_extractor

from conftest import BIN, client, run_cli
from image_folders import THREAD_CLASSES, THREAD_TRAIN_COUNTS, scaled_counts, write_folder

FOLDER = ["dataset=image_folder", "dataset.image_size=[32,32]"]
MOBILENET = ["model=pretrained", "model.backbone=mobilenet_v2", "model.weights=null"]


def pixels(n: int = 5, size: int = 32, channels: int = 3, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (n, size, size, channels)).astype("float32")


def assert_same(actual: np.ndarray, expected: np.ndarray) -> None:
    """Equal up to float32 rounding, at the outputs' own scale (a random backbone's can be ~1e-13)."""
    scale = float(np.abs(expected).max())
    assert scale > 0
    np.testing.assert_allclose(actual, expected, rtol=1e-4, atol=1e-5 * scale)


def network_of(model: keras.Model) -> keras.Model:
    """The keras.applications network inside a feature extractor or a full pretrained model."""
    for layer in model.layers:
        if isinstance(layer, keras.Model):
            return network_of(layer) if any(isinstance(sub, keras.Model) for sub in layer.layers) else layer
    raise AssertionError(f"{model.name} holds no backbone")


def folder_inputs(thread_folder, *overrides: str):
    cfg, _ = compose([*FOLDER, f"dataset.path={thread_folder / 'Train'}", f"dataset.test_path={thread_folder / 'Test'}",
                      *MOBILENET, *overrides])
    return cfg, embeddings.model_inputs(cfg.model)


# -- the backbones -----------------------------------------------------------------------------------

@pytest.mark.parametrize("backbone", list(BACKBONES))
def test_the_features_are_keras_backbone_after_its_own_preprocess_input(backbone):
    extractor = feature_extractor(backbone, None, (32, 32, 3), "avg")
    network = network_of(extractor)
    class_name, module = BACKBONES[backbone]
    reference = getattr(keras.applications, class_name)(include_top=False, weights=None, input_shape=(32, 32, 3))
    assert network.count_params() == reference.count_params() and len(network.layers) == len(reference.layers)
    x = pixels()
    preprocessed = getattr(keras.applications, module).preprocess_input(x.copy())
    expected = network.predict(preprocessed, verbose=0).mean(axis=(1, 2))   # global average pooling by hand
    assert_same(extractor.predict(x, verbose=0), expected)


def test_grey_images_are_read_as_three_equal_channels_and_flatten_is_the_threads_head_input():
    keras.utils.set_random_seed(3)
    grey = feature_extractor("mobilenet_v2", None, (32, 32, 1), "flatten")
    keras.utils.set_random_seed(3)
    rgb = feature_extractor("mobilenet_v2", None, (32, 32, 3), "flatten")
    x = pixels(channels=1)
    assert_same(grey.predict(x, verbose=0), rgb.predict(np.repeat(x, 3, axis=-1), verbose=0))
    assert grey.output.shape == (None, 1 * 1 * 1280)   # the last feature map of 32x32 images, flattened


def test_a_frozen_backbone_does_not_train_and_trainable_n_trains_its_top_n_layers_only():
    x, y = pixels(8), keras.utils.to_categorical(np.arange(8) % 3, 3)

    def trained(trainable):
        keras.utils.set_random_seed(0)
        model = build_pretrained((32, 32, 3), 3, np.zeros(3), backbone="resnet50", weights=None,
                                 trainable=trainable, widths=[8])
        network = network_of(model)
        before = [v.numpy().copy() for v in network.weights]
        model.compile(optimizer=keras.optimizers.SGD(0.5), loss=keras.losses.CategoricalCrossentropy(from_logits=True))
        model.fit(x, y, epochs=2, batch_size=4, verbose=0)
        changed = {v.path for v, b in zip(network.weights, before) if not np.array_equal(v.numpy(), b)}
        return network, changed

    network, changed = trained(False)
    assert changed == set() and not any(layer.trainable for layer in network.layers)
    network, changed = trained(4)   # conv5_block3_3_conv, its BatchNormalization, the add, the ReLU
    top = [layer for layer in network.layers[-4:] if not isinstance(layer, keras.layers.BatchNormalization)]
    assert [layer.name for layer in network.layers if layer.trainable] == [layer.name for layer in top]
    assert changed == {v.path for layer in top for v in layer.weights}   # BatchNormalization keeps its statistics


def test_on_embeddings_the_model_is_the_head_alone_with_the_runs_output_bias():
    bias = np.log(np.array([0.5, 0.3, 0.2]))
    model = build_pretrained((1280,), 3, bias, backbone="resnet50", weights="imagenet", widths=[64, 32], dropout=0.35)
    assert not any(isinstance(layer, keras.Model) for layer in model.layers)   # no backbone, nothing downloaded
    assert [layer.units for layer in model.layers if isinstance(layer, keras.layers.Dense)] == [64, 32, 3]
    np.testing.assert_allclose(model.get_layer("logits").bias.numpy(), bias, rtol=1e-6)


@pytest.mark.parametrize(("overrides", "message"), [
    (["model.backbone=alexnet"], r"model.backbone='alexnet' is not one of \['resnet50', 'mobilenet_v2'"),
    (["model.pooling=median"], r"model.pooling='median' is not one of \['avg', 'max', 'flatten'\]"),
    (["model.trainable=-2"], r"model.trainable=-2 is neither false"),
    (["model.weights=no/such/file.h5"], r"model.weights=no/such/file.h5 is neither imagenet, null, nor an existing"),
])
def test_bad_model_settings_are_one_sentence(overrides, message):
    cfg, _ = compose([*MOBILENET, *overrides])
    with pytest.raises(ImbalanceLabError, match=message):
        embeddings.model_inputs(cfg.model)
        build_pretrained((32, 32, 3), 2, np.zeros(2), **{k: v for k, v in cfg.model.items() if k != "_target_"})


def test_images_too_small_or_rows_that_are_not_images_are_one_sentence():
    with pytest.raises(ImbalanceLabError, match=r"at least 32x32, but the dataset's are 8x8; use dataset.image_size=\[32,32\]"):
        build_pretrained((8, 8, 1), 2, np.zeros(2), backbone="mobilenet_v2", weights=None)
    cfg, _ = compose(["dataset=wine", *MOBILENET])
    with pytest.raises(ImbalanceLabError, match=r"model=pretrained takes images, but the dataset's rows have shape \(13,\)"):
        load_splits(cfg.dataset, 0, model_inputs=embeddings.model_inputs(cfg.model))


# -- weights -------------------------------------------------------------------------------------------

def test_a_weights_file_loads_and_gives_that_backbones_embeddings(thread_folder, tmp_path, monkeypatch):
    keras.utils.set_random_seed(11)
    fresh = keras.applications.MobileNetV2(include_top=False, weights=None, input_shape=(32, 32, 3))
    path = tmp_path / "mobilenet_v2_notop.weights.h5"
    fresh.save_weights(path)
    monkeypatch.chdir(tmp_path)   # a relative path is relative to where the command runs
    cfg, inputs = folder_inputs(thread_folder, f"model.weights={path.name}")
    assert inputs.weights == str(path) and inputs.embed
    raw = load_image_folder(str(thread_folder / "Train"), str(thread_folder / "Test"), image_size=[32, 32])
    embedded = inputs(raw)
    expected = fresh.predict(keras.applications.mobilenet_v2.preprocess_input(raw.X.astype("float32")),
                             verbose=0).mean(axis=(1, 2))
    assert_same(embedded.X, expected)
    _, random_inputs = folder_inputs(thread_folder)
    with pytest.raises(AssertionError):   # weights=null is another backbone
        assert_same(random_inputs(raw).X, embedded.X)
    # fine-tuning from the file: the model's backbone starts from the same weights
    model = build_pretrained((32, 32, 3), 6, np.zeros(6), backbone="mobilenet_v2", weights=path.name, trainable=3)
    for mine, theirs in zip(network_of(model).weights, fresh.weights):
        np.testing.assert_array_equal(mine.numpy(), theirs.numpy())


@pytest.mark.filterwarnings("ignore:Skipping nested container")  # Keras's own note on the mismatch
def test_a_weights_file_of_another_backbone_is_one_sentence(tmp_path):
    other = keras.applications.MobileNetV2(include_top=False, weights=None, input_shape=(32, 32, 3))
    other.save_weights(tmp_path / "mobilenet.weights.h5")
    with pytest.raises(ImbalanceLabError, match=r"model.weights=.*mobilenet.weights.h5 does not load into vgg16 "
                                                r"without its top at 32x32x3 .*keras.applications.VGG16\(include_top=False\)"):
        feature_extractor("vgg16", str(tmp_path / "mobilenet.weights.h5"), (32, 32, 3), "avg")


@pytest.mark.slow
def test_imagenet_weights_without_a_network_say_how_to_work_offline(thread_folder, tmp_path, store):
    """No download happens: Keras's request goes to a closed local port (as on a machine offline)."""
    import os

    closed = "http://127.0.0.1:9"
    env = {"KERAS_HOME": str(tmp_path / "keras"), "HTTPS_PROXY": closed, "https_proxy": closed, "HTTP_PROXY": closed,
           "http_proxy": closed, "NO_PROXY": "", "no_proxy": ""}
    old = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        proc = run_cli(*FOLDER, f"dataset.path={thread_folder / 'Train'}", "model=pretrained", "model.backbone=mobilenet_v2",
                       "trainer=quick", cwd=tmp_path, store=store, check=False)
    finally:
        for k, v in old.items():
            os.environ.pop(k) if v is None else os.environ.__setitem__(k, v)
    last = proc.stderr.strip().splitlines()[-1]
    assert proc.returncode != 0 and "Traceback" not in proc.stderr
    assert re.search(r"^imbalance-lab: model.weights=imagenet: Keras could not download the mobilenet_v2 ImageNet "
                     r"weights .*use model.weights=null .* or model.weights=PATH", last)
    runs = client(store).search_runs([client(store).get_experiment_by_name("imbalance-lab").experiment_id])
    assert [r.info.status for r in runs] == ["FAILED"] and "model.weights=null" in runs[0].data.tags["error"]


# -- embeddings, once per study ------------------------------------------------------------------------------

def test_embeddings_are_computed_once_and_again_only_when_pixels_backbone_size_or_pooling_change(tmp_path, monkeypatch):
    monkeypatch.setenv("IMBALANCE_LAB_CACHE", str(tmp_path / "cache"))
    folder = write_folder(tmp_path / "faces", [12, 8, 5], classes=THREAD_CLASSES[:3])

    def embed(*overrides: str) -> tuple[int, np.ndarray]:
        embeddings.forget_in_memory()   # as a new process: only the disk cache is left
        cfg, _ = compose([*FOLDER, f"dataset.path={folder}", *MOBILENET, *overrides])
        raw = load_image_folder(str(folder), image_size=list(cfg.dataset.image_size))
        before = embeddings.computed["count"]
        embedded = embeddings.model_inputs(cfg.model)(raw)
        return embeddings.computed["count"] - before, embedded.X

    computed, first = embed()
    assert computed == 1 and first.shape == (25, 1280)
    again, second = embed()
    assert again == 0
    np.testing.assert_array_equal(second, first)
    assert embed("model.widths=[8]", "model.dropout=0", "seed=3")[0] == 0   # the head and the seed are not the backbone
    assert embed("model.backbone=vgg16")[0] == 1
    assert embed("dataset.image_size=[40,40]")[0] == 1
    assert embed("model.pooling=max")[0] == 1
    Image.fromarray(np.zeros((32, 32, 3), "uint8")).save(folder / THREAD_CLASSES[1] / "00003.png")
    assert embed()[0] == 1   # one image file changed
    assert embed()[0] == 0


def test_the_random_backbone_is_the_same_in_every_process_and_leaves_the_runs_random_state(thread_folder, tmp_path,
                                                                                              monkeypatch):
    monkeypatch.setenv("IMBALANCE_LAB_CACHE", str(tmp_path / "cache"))
    _, inputs = folder_inputs(thread_folder)
    raw = load_image_folder(str(thread_folder / "Train"), image_size=[32, 32])
    results = []
    for ambient in (1, 2):   # two runs with other seeds, each computing them (no cache between)
        shutil.rmtree(tmp_path / "cache", ignore_errors=True)
        embeddings.forget_in_memory()
        random.seed(ambient)
        np.random.seed(ambient)
        state = random.getstate(), np.random.get_state()[1].copy()
        results.append(embeddings.compute_embeddings("", inputs, raw.X, None)[0])
        assert random.getstate() == state[0] and np.array_equal(np.random.get_state()[1], state[1])
    np.testing.assert_array_equal(results[0], results[1])


# -- the doctor on a folder --------------------------------------------------------------------------------

SHIFTED_TEST = [20, 4, 6, 9, 17, 7]   # the test folder's counts, priors unlike training's


def test_the_doctor_on_a_folder_counts_the_files_and_probes_the_cached_embeddings(tmp_path, monkeypatch):
    monkeypatch.setenv("IMBALANCE_LAB_CACHE", str(tmp_path / "cache"))
    train_counts = scaled_counts(THREAD_TRAIN_COUNTS, 60, 20)
    write_folder(tmp_path / "Train", train_counts)
    write_folder(tmp_path / "Test", SHIFTED_TEST, seed=1)
    overrides = [*FOLDER, f"dataset.path={tmp_path / 'Train'}", f"dataset.test_path={tmp_path / 'Test'}", *MOBILENET,
                 "loss=bce", "sampler=smote"]
    embeddings.forget_in_memory()
    before = embeddings.computed["count"]
    _, _, findings = doctor.diagnose(overrides)
    assert embeddings.computed["count"] == before + 1
    found = {f.code: f for f in findings}
    counts = found["class_counts"].numbers
    assert counts["test"] == SHIFTED_TEST
    assert [a + b for a, b in zip(counts["train"], counts["val"])] == train_counts
    # label shift: train priors (of the training split, stratified) against the test folder's, by hand
    p_train, p_test = np.array(train_counts) / sum(train_counts), np.array(SHIFTED_TEST) / sum(SHIFTED_TEST)
    assert found["label_shift"].severity == "warning"
    assert found["label_shift"].numbers["tvd"] == pytest.approx(0.5 * np.abs(p_train - p_test).sum(), abs=0.01)
    # softmax + bce: 5/6 whatever the model learns; always 'neutral' (the training majority), from the test folder
    share = SHIFTED_TEST[3] / sum(SHIFTED_TEST)
    numbers = found["softmax_bce"].numbers
    assert numbers["majority_label"] == "neutral" and numbers["keras_accuracy_all_below_half"] == 5 / 6
    assert numbers["keras_accuracy_always_majority"] == pytest.approx(share + (1 - share) * 4 / 6, abs=1e-12)
    assert found["signal"].numbers["rows"] == sum(counts["train"])
    assert "smote_on_pixels" not in found   # SMOTE on embeddings interpolates vectors, not images
    # the same doctor again: the embeddings come from the cache
    doctor.diagnose(overrides)
    assert embeddings.computed["count"] == before + 1
    cnn = [o for o in overrides if not o.startswith("model")] + ["model=cnn"]
    assert "smote_on_pixels" in {f.code for f in doctor.diagnose(cnn, probe=False)[2]}
    tuned = {f.code: f for f in doctor.diagnose([*overrides, "model.trainable=3"], probe=False)[2]}
    assert tuned["backbone_in_training"].numbers["trainable"] == 3
    assert f"all {sum(counts['train'])} training images" in tuned["backbone_in_training"].message
    # a new process, embeddings cached: the doctor answers without TensorFlow
    script = (f"import sys, json; from imbalance_lab.doctor import command as doctor; doctor.diagnose({overrides!r}); "
              f"print(json.dumps('tensorflow' in sys.modules))")
    out = subprocess.run([str(BIN / "python"), "-c", script], capture_output=True, text=True, check=True,
                         env={**__import__("os").environ})
    assert json.loads(out.stdout.strip().splitlines()[-1]) is False
