"""The photo user's study through the run: an image folder with model=pretrained trains end to end
and logs the MLflow contract; the backbone runs once per study (counted in the logs) and its
cached embeddings give the same metrics as computed ones; a fine-tuning backbone trains on the
images. Nothing is downloaded: weights=null."""

from __future__ import annotations

import json

import numpy as np
import pytest

from imbalance_lab import embeddings
from imbalance_lab.configs import compose
from imbalance_lab.run import train_and_evaluate
from test_cli import ARTIFACTS, CONTRACT_METRICS

from conftest import client, run_cli
from image_folders import THREAD_CLASSES, THREAD_TEST_COUNTS, scaled_counts

MOBILENET = ["model=pretrained", "model.backbone=mobilenet_v2", "model.weights=null"]
COMPUTED = "Computed mobilenet_v2 embeddings"
READ = "mobilenet_v2 embeddings of 263 images read from the cache"


def study(thread_folder) -> list[str]:
    return ["dataset=image_folder", f"dataset.path={thread_folder / 'Train'}", f"dataset.test_path={thread_folder / 'Test'}",
            "dataset.image_size=[32,32]", *MOBILENET, "trainer=quick", "trainer.epochs=3", "model.widths=[32]"]


def child_runs(store: str) -> list:
    c = client(store)
    runs = c.search_runs([c.get_experiment_by_name("imbalance-lab").experiment_id])
    return [r for r in runs if r.data.tags.get("imbalance_lab.role") != "sweep"]


@pytest.mark.slow
def test_the_thread_folder_trains_end_to_end_with_the_backbone_run_once_per_study(thread_folder, tmp_path, store,
                                                                                   monkeypatch):
    monkeypatch.setenv("IMBALANCE_LAB_CACHE", str(tmp_path / "cache"))
    grid = ["loss=ce,bce", "sampler=none,smote"]
    first = run_cli("-m", *study(thread_folder), *grid, cwd=tmp_path, store=store)
    log = first.stdout + first.stderr
    assert "4 finished, 0 failed" in first.stdout and log.count(COMPUTED) == 1 and log.count(READ) == 0
    runs = child_runs(store)
    test_counts = scaled_counts(THREAD_TEST_COUNTS, 20, 4)
    c = client(store)
    for run in runs:
        assert run.info.status == "FINISHED"
        metrics = run.data.metrics
        assert all(m in metrics for m in CONTRACT_METRICS)
        assert {f"test/{kind}_{label}" for kind in ("recall", "precision", "f1") for label in THREAD_CLASSES} <= set(metrics)
        assert len(c.get_metric_history(run.info.run_id, "val/macro_f1")) >= 1
        assert ARTIFACTS <= {a.path for a in c.list_artifacts(run.info.run_id)}
        cm = json.loads(open(c.download_artifacts(run.info.run_id, "confusion_matrix.json", str(tmp_path))).read())
        assert cm["labels"] == list(THREAD_CLASSES)
        assert np.array(cm["matrix"]).sum(axis=1).tolist() == test_counts   # the Test folder is the test set
        assert run.data.params["model.backbone"] == "mobilenet_v2" and run.data.tags["dataset"] == "image_folder"
        warnings = run.data.tags["doctor.warnings"]
        assert ("softmax_bce" in warnings) == (run.data.params["loss"] == "bce")
        assert "smote_on_pixels" not in warnings   # SMOTE resampled embeddings, not pixels
    # a later sweep, in another process: the same runs trained again read the embeddings and score the same
    second = run_cli("-m", *study(thread_folder), *grid, "tracking.rerun=true", cwd=tmp_path, store=store)
    log = second.stdout + second.stderr
    assert "4 finished, 0 failed" in second.stdout and log.count(COMPUTED) == 0 and log.count(READ) >= 1
    by_key: dict[str, list[dict]] = {}
    for run in child_runs(store):
        by_key.setdefault(run.data.tags["run_key"], []).append(run.data.metrics)
    assert len(by_key) == 4 and all(len(metrics) == 2 and metrics[0] == metrics[1] for metrics in by_key.values())


def test_a_fine_tuning_backbone_trains_on_the_images_not_on_embeddings(thread_folder):
    cfg, _ = compose([*study(thread_folder), "model.trainable=3", "trainer.epochs=1"])
    before = embeddings.computed["count"]
    out = train_and_evaluate(cfg)
    assert embeddings.computed["count"] == before
    assert out.data.is_image and out.data.X_train.shape[1:] == (32, 32, 3)
    assert 0 <= out.data.X_train.min() and out.data.X_train.max() <= 255 and out.data.X_train.max() > 1  # 0-255 pixels
    assert out.evaluation.confusion.sum() == sum(scaled_counts(THREAD_TEST_COUNTS, 20, 4))


@pytest.mark.slow
def test_a_missing_weights_file_through_the_command_is_one_sentence_and_the_run_failed(thread_folder, tmp_path, store):
    proc = run_cli(*study(thread_folder)[:5], "model=pretrained", "model.weights=weights/resnet50_notop.h5",
                   "trainer=quick", cwd=tmp_path, store=store, check=False)
    last = proc.stderr.strip().splitlines()[-1]
    assert proc.returncode != 0 and "Traceback" not in proc.stderr
    assert last.startswith("imbalance-lab: model.weights=weights/resnet50_notop.h5 is neither imagenet, null, nor an "
                           f"existing weights file (looked for {tmp_path / 'weights' / 'resnet50_notop.h5'})")
    assert [r.info.status for r in child_runs(store)] == ["FAILED"]


@pytest.mark.slow
def test_parallel_workers_compute_the_embeddings_once(thread_folder, tmp_path, store, monkeypatch):
    """Two joblib workers start on the same study at once: one runs the backbone, the other waits
    for it and reads the cache."""
    monkeypatch.setenv("IMBALANCE_LAB_CACHE", str(tmp_path / "cache"))
    run_cli("-m", *study(thread_folder), "loss=ce,bce", "hydra/launcher=joblib", "hydra.launcher.n_jobs=2",
            f"hydra.sweep.dir={tmp_path / 'multirun'}", cwd=tmp_path, store=store)
    logs = "".join(p.read_text() for p in (tmp_path / "multirun").rglob("*.log"))
    assert logs.count(COMPUTED) == 1 and logs.count(READ) == 1
    assert sorted(r.info.status for r in child_runs(store)) == ["FINISHED"] * 2
