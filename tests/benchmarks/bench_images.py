"""Benchmark 6: the photo user's study (cnn-accuracy-83-percent.txt; /work/shared/workloads.md,
"Images"). A generated folder at the thread's counts: 21,014 training and 7,010 test images, 64x64
RGB, six classes in Train/<class>/ and Test/<class>/; ResNet50 with weights=None (nothing
downloaded; the arithmetic of ImageNet weights).

(1) Seconds per epoch of the plain approach (plain_images.py: the frozen backbone inside the model,
    trained by fit on the folder, every image through ResNet50 in every epoch), in its own process,
    measured before and after (2): its 24-run study is 24 x 10 such epochs.
(2) The wall time of imbalance-lab's 24-run study, as a user runs it:
    `imbalance-lab -m +experiment=photo_folder model.weights=null ...` (loss x class_weight x bias_init
    x sampler, 10 epochs each), from an empty cache: the embeddings are computed in it.
Target (issue 24): (2) at least 30x faster than 24 runs of (1), and under 10 minutes on 2 cores.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import BIN, HERE, QUICK, REPO, load_average, write_section

sys.path.insert(0, str(REPO / "tests"))
from image_folders import THREAD_TEST_COUNTS, THREAD_TRAIN_COUNTS, write_folder  # noqa: E402

SCALE = 20 if QUICK else 1               # QUICK=1: 1/20 of the thread's counts
PLAIN_EPOCHS = 2                         # the first epoch traces; the second is the steady one
STUDY_RUNS, STUDY_EPOCHS = 24, 10
TARGET_RATIO, TARGET_SECONDS = 30, 600


def make_folder(root: Path) -> tuple[list[int], list[int], float]:
    train = [max(2, c // SCALE) for c in THREAD_TRAIN_COUNTS]
    test = [max(2, c // SCALE) for c in THREAD_TEST_COUNTS]
    start = time.perf_counter()
    write_folder(root / "Train", train, size=(64, 64), seed=0)
    write_folder(root / "Test", test, size=(64, 64), seed=1)
    return train, test, time.perf_counter() - start


def plain_epochs(folder: Path) -> list[float]:
    proc = subprocess.run([str(BIN / "python"), str(HERE / "plain_images.py"), str(folder), "--epochs",
                           str(PLAIN_EPOCHS)], capture_output=True, text=True, check=True,
                          env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    return json.loads(proc.stdout.strip().splitlines()[-1])["epoch_seconds"]


def study(root: Path, work: Path) -> tuple[float, str]:
    """The study's command from an empty cache and store; its wall time and output."""
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "IMBALANCE_LAB_CACHE": str(work / "cache"),
           "MLFLOW_TRACKING_URI": f"sqlite:///{work / 'mlflow.db'}"}
    command = [str(BIN / "imbalance-lab"), "-m", "+experiment=photo_folder", f"dataset.path={root / 'Train'}",
               f"dataset.test_path={root / 'Test'}", "model.weights=null"]
    start = time.perf_counter()
    proc = subprocess.run(command, cwd=work, env=env, capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    output = proc.stdout + proc.stderr
    if proc.returncode != 0 or f"{STUDY_RUNS} finished, 0 failed" not in output:
        raise RuntimeError(f"the study failed:\n{output[-4000:]}")
    return elapsed, output


def verdict(met: bool) -> str:
    return "met" if met else "NOT met"


def main() -> None:
    loads = [load_average()]
    with tempfile.TemporaryDirectory(prefix="bench_images_") as tmp:
        root, work = Path(tmp) / "faces", Path(tmp) / "work"
        work.mkdir()
        train, test, written = make_folder(root)
        print(f"wrote {sum(train)} + {sum(test)} PNGs in {written:.0f} s", flush=True)
        before = plain_epochs(root / "Train")
        print(f"plain approach, epochs: {before}", flush=True)
        loads.append(load_average())
        seconds, output = study(root, work)
        print(f"study: {seconds:.0f} s", flush=True)
        loads.append(load_average())
        after = plain_epochs(root / "Train")
        print(f"plain approach, epochs: {after}", flush=True)
        loads.append(load_average())
        shutil.rmtree(work / "cache", ignore_errors=True)
    embedded = re.search(r"Computed resnet50 embeddings of (\d+) images \(64x64x3\) in ([\d.]+) s", output)
    embed_images, embed_seconds = int(embedded.group(1)), float(embedded.group(2))
    epoch = (before[-1] + after[-1]) / 2
    plain_study = STUDY_RUNS * STUDY_EPOCHS * epoch
    ratio = plain_study / seconds
    n_train = sum(train)
    body = f"""
A generated folder at the thread's counts ({n_train:,} training and {sum(test):,} test images, 64x64 RGB,
six classes), ResNet50 without its top, weights=None. Loads during the run: {'; '.join(loads)}.

| | seconds |
| --- | ---: |
| plain approach, one epoch of {n_train:,} images (steady epoch; before / after the study) | {before[-1]:.1f} / {after[-1]:.1f} |
| plain approach, its first epoch (tracing included; before / after) | {before[0]:.1f} / {after[0]:.1f} |
| plain approach, {STUDY_RUNS} runs x {STUDY_EPOCHS} epochs (from the mean steady epoch, {epoch:.1f} s) | {plain_study:,.0f} |
| imbalance-lab, the {STUDY_RUNS}-run study `-m +experiment=photo_folder model.weights=null`, whole command | {seconds:,.0f} |
| of which the embeddings of all {embed_images:,} images, once (ResNet50 at {embed_images / embed_seconds:.0f} images/s) | {embed_seconds:,.0f} |

The study is **{ratio:.1f}x** faster than {STUDY_RUNS} runs of the plain approach (target {TARGET_RATIO}x: {verdict(ratio >= TARGET_RATIO)}) and takes {seconds / 60:.1f} minutes (target under {TARGET_SECONDS // 60}: {verdict(seconds < TARGET_SECONDS)}).
The plain approach sends every training image through ResNet50 in each of its {STUDY_RUNS * STUDY_EPOCHS} epochs (its validation passes not counted here); the study sends each image through it once, then trains {STUDY_RUNS} heads on the embeddings (random oversampling and SMOTE resample embeddings). Not in either figure: writing the images ({written:.0f} s here).
"""
    write_section("6. Images: the photo study, embeddings once vs the plain approach", body,
                  "make bench (bench_images.py)")


if __name__ == "__main__":
    main()
