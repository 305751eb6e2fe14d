"""dataset=image_folder: a folder of class sub-folders read as Keras reads it, split as tables are,
and every bad input as one sentence (in process, and through the command with the run FAILED)."""

from __future__ import annotations

import logging
import re

import numpy as np
import pytest
from PIL import Image

from imbalance_lab.configs import compose
from imbalance_lab.data import load_splits
from imbalance_lab.data.image_folder import load_image_folder
from imbalance_lab.errors import ImbalanceLabError

from conftest import client, run_cli
from image_folders import THREAD_CLASSES, THREAD_TEST_COUNTS, THREAD_TRAIN_COUNTS, scaled_counts, write_folder

TRAIN_COUNTS = scaled_counts(THREAD_TRAIN_COUNTS, 60, 20)   # [20, 26, 52, 60, 22, 20]
TEST_COUNTS = scaled_counts(THREAD_TEST_COUNTS, 20, 4)      # [6, 9, 17, 20, 7, 4]


def folder_cfg(*overrides: str):
    return compose(["dataset=image_folder", "dataset.image_size=[32,32]", *overrides])[0].dataset


def test_the_folder_reads_as_keras_image_dataset_from_directory_reads_it(thread_folder):
    """Keras's own loader is the reference: the same class names, labels and pixels, in its order."""
    import keras

    raw = load_image_folder(str(thread_folder / "Train"), image_size=[32, 32])
    reference = keras.utils.image_dataset_from_directory(thread_folder / "Train", image_size=(32, 32),
                                                         shuffle=False, batch_size=None)
    images, labels = zip(*((x.numpy(), int(y)) for x, y in reference))
    assert reference.class_names == list(THREAD_CLASSES)
    assert raw.X.dtype == np.uint8 and raw.X.shape == (sum(TRAIN_COUNTS), 32, 32, 3) and raw.is_image
    np.testing.assert_array_equal(raw.X, np.stack(images).astype("uint8"))
    np.testing.assert_array_equal(raw.y, np.array(THREAD_CLASSES)[list(labels)])


def test_a_test_folder_is_the_test_set_and_without_one_the_split_is_stratified(thread_folder):
    both = load_splits(folder_cfg(f"dataset.path={thread_folder / 'Train'}",
                                  f"dataset.test_path={thread_folder / 'Test'}"), seed=0)
    assert both.labels == THREAD_CLASSES and both.class_counts("test").tolist() == TEST_COUNTS
    assert (both.class_counts("train") + both.class_counts("val")).tolist() == TRAIN_COUNTS
    assert both.X_train.shape[1:] == (32, 32, 3) and both.is_image
    alone = load_splits(folder_cfg(f"dataset.path={thread_folder / 'Train'}"), seed=0)
    total = sum(alone.class_counts(s) for s in ("train", "val", "test"))
    assert total.tolist() == TRAIN_COUNTS
    # stratified: each split keeps every class's share to within one image
    for split, share in (("train", 0.6), ("val", 0.2), ("test", 0.2)):
        assert np.all(np.abs(alone.class_counts(split) - share * np.array(TRAIN_COUNTS)) <= 1.0), split


def test_extensions_grayscale_and_nested_folders(tmp_path):
    for ext in ("png", "jpg", "jpeg", "bmp", "gif"):
        write_folder(tmp_path / "photos", [3, 2], classes=("cat", "dog"), ext=ext, mode="L", seed=len(ext))
    (tmp_path / "photos" / "cat" / "more").mkdir()
    Image.new("L", (32, 32), 200).save(tmp_path / "photos" / "cat" / "more" / "deep.PNG")
    (tmp_path / "photos" / "dog" / "notes.txt").write_text("not an image, and not named like one")
    raw = load_image_folder(str(tmp_path / "photos"), image_size=[32, 32], color_mode="grayscale")
    assert raw.X.shape == (5 * 5 + 1, 32, 32, 1)
    assert (raw.y == "cat").sum() == 16 and (raw.y == "dog").sum() == 10
    assert raw.X[(raw.y == "cat")][-1].min() == 200   # the nested image, last of its class (sorted walk)
    rgb = load_image_folder(str(tmp_path / "photos"), image_size=[32, 32], color_mode="rgb")
    assert rgb.X.shape[-1] == 3


def test_images_of_mixed_sizes_are_resized_and_it_is_said_once(tmp_path, caplog):
    write_folder(tmp_path / "mixed", [6, 6], classes=("a", "b"), size=(32, 32))
    for i in range(3):  # 40 wide, 48 high
        Image.fromarray(np.full((48, 40, 3), 50 * i, "uint8")).save(tmp_path / "mixed" / "b" / f"tall{i}.png")
    Image.fromarray(np.full((40, 48, 3), 7, "uint8")).save(tmp_path / "mixed" / "a" / "wide.png")
    cfg = folder_cfg(f"dataset.path={tmp_path / 'mixed'}", "dataset.image_size=[24,24]")
    with caplog.at_level(logging.WARNING, logger="imbalance_lab.data.image_folder"):
        for seed in (0, 1):  # two runs of a sweep in one process: the folder is read, and the warning said, once
            data = load_splits(cfg, seed=seed)
    said = [r.getMessage() for r in caplog.records if "sizes" in r.getMessage()]
    assert len(said) == 1 and "3 sizes" in said[0] and "32x32 (12), 40x48 (3), 48x40 (1)" in said[0] and "resized to 24x24" in said[0]
    assert data.X_train.shape[1:] == (24, 24, 3)
    raw = load_image_folder(str(tmp_path / "mixed"), image_size=[24, 24])
    resized = raw.X[list(raw.y).index("a") + 6]   # wide.png sorts after 00000-00005.png
    np.testing.assert_array_equal(resized, np.full((24, 24, 3), 7, "uint8"))


# -- bad input ----------------------------------------------------------------------------------------

def _empty(root):
    (root / "empty").mkdir()
    return {"path": root / "empty"}


def _loose(root):
    write_folder(root / "x", [2], classes=("c",))
    for f in (root / "x" / "c").iterdir():
        f.rename(root / "x" / f.name)
    (root / "x" / "c").rmdir()
    return {"path": root / "x"}


def _empty_class(root):
    write_folder(root / "x", [3, 0], classes=("cat", "dog"))
    (root / "x" / "dog" / "readme.txt").write_text("no images here")
    return {"path": root / "x"}


def _not_an_image(root):
    write_folder(root / "x", [3, 3], classes=("cat", "dog"))
    (root / "x" / "dog" / "00001.png").write_text("<html>a web page saved as .png</html>")
    return {"path": root / "x"}


def _extra_test_class(root):
    write_folder(root / "Train", [3, 3], classes=("cat", "dog"))
    write_folder(root / "Test", [2, 2, 2], classes=("cat", "dog", "fox"))
    return {"path": root / "Train", "test_path": root / "Test"}


def _a_file(root):
    (root / "photos.zip").write_bytes(b"PK")
    return {"path": root / "photos.zip"}


def _small_budget(root):
    write_folder(root / "x", [3, 3], classes=("cat", "dog"))
    return {"path": root / "x", "memory_budget_gb": 0.01, "image_size": [512, 512]}


def _this_machine(root):
    write_folder(root / "x", [3, 3], classes=("cat", "dog"))
    return {"path": root / "x", "image_size": [60000, 60000]}   # 6 x 10.8 GB of pixels: more than any machine's half


BAD_FOLDERS = {
    "missing folder": (lambda r: {"path": r / "nope"}, r"dataset.path=.*nope does not exist"),
    "a file, not a folder": (_a_file, r"photos.zip is a file, not a folder"),
    "empty folder": (_empty, r"empty is empty: it has no class sub-folders"),
    "images without class folders": (_loose, r"holds 2 images but no class sub-folders"),
    "a class folder with no images": (_empty_class, r"class folder .*dog \(dataset.path\) has no images"),
    "a file that is not an image": (_not_an_image, r"dog/00001.png is not an image Pillow can read"),
    "a test class training lacks": (_extra_test_class, r"dataset.test_path=.*Test has class folder\(s\) \['fox'\]"),
    "over the memory budget": (_small_budget, r"x holds 6 images: at 512x512x3 they need about 22.5 MB .*"
                                              r"more than dataset.memory_budget_gb=0.01"),
    "over half of this machine": (_this_machine, r"at 60000x60000x3 they need about 301.7 GB .*half of this machine's"),
}


def _overrides(case: dict) -> list[str]:
    return [f"dataset.{k}={v}" if not isinstance(v, list) else f"dataset.{k}=[{v[0]},{v[1]}]" for k, v in case.items()]


@pytest.mark.parametrize("case", list(BAD_FOLDERS))
def test_a_bad_folder_is_one_sentence(case, tmp_path):
    make, message = BAD_FOLDERS[case]
    with pytest.raises(ImbalanceLabError, match=message) as caught:
        load_splits(folder_cfg(*_overrides(make(tmp_path))), seed=0)
    assert "\n" not in str(caught.value) and str(caught.value).endswith(".")


@pytest.mark.parametrize(("key", "value", "message"), [
    ("image_size", "[64]", r"dataset.image_size=\[64\] is not two positive whole numbers"),
    ("image_size", "[0,64]", r"dataset.image_size=\[0, 64\] is not two positive"),
    ("color_mode", "cmyk", r"dataset.color_mode='cmyk' is not one of \['rgb', 'grayscale'\]"),
    ("path", "null", r"dataset=image_folder needs a folder: add dataset.path=DIR"),
])
def test_bad_settings_are_one_sentence(thread_folder, key, value, message):
    with pytest.raises(ImbalanceLabError, match=message):
        load_splits(folder_cfg(f"dataset.path={thread_folder / 'Train'}", f"dataset.{key}={value}"), seed=0)


@pytest.mark.slow
def test_bad_folders_through_the_command_fail_their_runs(tmp_path, store):
    """A sweep over the bad folders: each run FAILED with its sentence as the error, none RUNNING."""
    cases = {}
    for case in ("missing folder", "a file, not a folder", "empty folder", "images without class folders",
                 "a class folder with no images", "a file that is not an image"):
        root = tmp_path / f"case{len(cases)}"
        root.mkdir()
        make, message = BAD_FOLDERS[case]
        cases[str(make(root)["path"])] = message
    proc = run_cli("-m", "dataset=image_folder", f"dataset.path={','.join(cases)}", "trainer=quick",
                   cwd=tmp_path, store=store, check=False)
    assert f"0 finished, {len(cases)} failed" in proc.stdout and "Traceback" not in proc.stdout + proc.stderr
    runs = client(store).search_runs([client(store).get_experiment_by_name("imbalance-lab").experiment_id])
    runs = [r for r in runs if r.data.tags.get("imbalance_lab.role") != "sweep"]
    assert sorted(r.info.status for r in runs) == ["FAILED"] * len(cases)
    for run in runs:
        error = run.data.tags["error"]
        assert re.search(cases[run.data.params["dataset.path"]], error) and "\n" not in error


@pytest.mark.slow
@pytest.mark.parametrize("case", ["a test class training lacks", "over the memory budget"])
def test_a_bad_folder_through_the_command_is_one_sentence_and_the_run_failed(case, tmp_path, store):
    make, message = BAD_FOLDERS[case]
    proc = run_cli("dataset=image_folder", *_overrides(make(tmp_path)), "trainer=quick", cwd=tmp_path, store=store,
                   check=False)
    assert proc.returncode != 0 and "Traceback" not in proc.stderr
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("imbalance-lab: ") and re.search(message, last)
    runs = client(store).search_runs([client(store).get_experiment_by_name("imbalance-lab").experiment_id])
    assert [r.info.status for r in runs] == ["FAILED"]
