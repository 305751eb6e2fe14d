"""Image embeddings, computed once per study. With model=pretrained and a frozen backbone, the
backbone's output for an image is the same in every run of a study (whatever the seed, sampler,
loss or head), so it is computed once per (images' pixels, backbone, weights, pooling) and kept on
disk under paths.cache_dir(): later runs, other processes and later sweeps read it, and each run
trains only the head, on embeddings (which samplers such as SMOTE then resample: vectors, not
pixels). A backbone that fine-tunes (model.trainable > 0) sees the images in every epoch instead.

`model_inputs(cfg.model)` is what the run hands to data.load_splits, between loading and
splitting; it is None for every other model. This module does not import TensorFlow unless it
has to run a backbone: the doctor reads cached embeddings in seconds.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import random
import time
from dataclasses import dataclass, replace
from importlib import metadata
from pathlib import Path

import joblib
import numpy as np

from imbalance_lab.data.raw import RawData
from imbalance_lab.errors import ImbalanceLabError
from imbalance_lab.paths import cache_dir, one_at_a_time

log = logging.getLogger(__name__)

PRETRAINED_BUILDER = "imbalance_lab.models.pretrained.build_pretrained"
# weights=null: every process and run builds the same randomly initialised backbone, from this
# seed, so that its embeddings are cached like any others (the run's own seed is left as it was).
RANDOM_BACKBONE_SEED = 0
IMAGES_PER_CALL = 1024   # pixels cast to float32 a chunk at a time
BATCH_SIZE = 128

computed = {"count": 0}  # backbones run on a dataset's images in this process (tests count them)


@dataclass(frozen=True)
class BackboneInputs:
    """What model=pretrained takes: the frozen backbone's embeddings, or 0-255 pixels for a
    backbone that fine-tunes. Called on a loader's RawData; hashable (data.load_splits keys on it)."""
    backbone: str
    weights: str | None      # imagenet, None, or the absolute path of a weights file
    weights_id: str          # what the weights are, for the cache: imagenet, random:SEED or the file's digest
    pooling: str
    embed: bool

    @property
    def standardise(self) -> bool:
        """Embeddings are standardised on the training split like any features; a fine-tuning
        backbone takes the 0-255 pixels its preprocess_input expects."""
        return self.embed

    def __call__(self, raw: RawData) -> RawData:
        if not raw.is_image or np.asarray(raw.X).ndim != 4:
            raise ImbalanceLabError(
                f"model=pretrained takes images, but the dataset's rows have shape {tuple(np.shape(raw.X)[1:])}; "
                f"use dataset=image_folder (or another image dataset), or model=mlp.")
        if not self.embed:
            return replace(raw, X=_as_float(raw.X), X_test=None if raw.X_test is None else _as_float(raw.X_test))
        X, X_test = embed_images(self, raw.X, raw.X_test)
        return RawData(X, raw.y, X_test, raw.y_test, is_image=False, source=raw.source,
                       description=f"{raw.description}; {self.backbone} embeddings, {X.shape[1]} per image")


def model_inputs(model_cfg) -> BackboneInputs | None:
    """For model=pretrained, how the loaded images become the model's inputs; None otherwise."""
    if model_cfg is None or str(model_cfg.get("_target_", "")) != PRETRAINED_BUILDER:
        return None
    weights = resolve_weights(model_cfg.get("weights"))
    weights_id = (f"random:{RANDOM_BACKBONE_SEED}" if weights is None else
                  "imagenet" if weights == "imagenet" else _file_digest(weights))
    return BackboneInputs(str(model_cfg.get("backbone")), weights, weights_id, str(model_cfg.get("pooling", "avg")),
                          embed=not backbone_trains(model_cfg))


def backbone_trains(model_cfg) -> bool:
    """model=pretrained with model.trainable set: the images go through the backbone in training."""
    if model_cfg is None or str(model_cfg.get("_target_", "")) != PRETRAINED_BUILDER:
        return False
    trainable = model_cfg.get("trainable", False)
    return not (trainable is False or trainable is None or trainable == 0)


def resolve_weights(weights) -> str | None:
    """`imagenet`, None, or the absolute path of an existing weights file (relative paths are
    relative to where the command was run)."""
    if weights is None or weights == "imagenet":
        return weights
    from hydra.utils import to_absolute_path

    path = Path(to_absolute_path(os.path.expanduser(str(weights))))
    if not path.is_file():
        raise ImbalanceLabError(f"model.weights={weights} is neither imagenet, null, nor an existing weights file "
                                f"(looked for {path}); give one of those.")
    return str(path)


_digests: dict[tuple, str] = {}


def _file_digest(path: str) -> str:
    stat = os.stat(path)
    key = (path, stat.st_size, stat.st_mtime_ns)
    if key not in _digests:
        digest = hashlib.sha256()
        with open(path, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
        _digests[key] = digest.hexdigest()
    return _digests[key]


def _as_float(pixels: np.ndarray) -> np.ndarray:
    return np.asarray(pixels, dtype="float32")


# -- the cache -------------------------------------------------------------------------------------

_recent: dict[tuple, tuple] = {}   # this process's last embeddings: a seed sweep reads the cache once


def embed_images(spec: BackboneInputs, X: np.ndarray, X_test: np.ndarray | None) -> tuple[np.ndarray, np.ndarray | None]:
    """The backbone's outputs for X (and X_test): read from the cache, else computed and cached
    (joblib.Memory under paths.cache_dir()/embeddings, read back memory-mapped)."""
    memo = (spec, id(X), id(X_test))
    if memo in _recent:
        return _recent[memo][2]
    key = cache_key(spec, X, X_test)
    folder = cache_dir() / "embeddings"
    compute = joblib.Memory(folder, mmap_mode="r", verbose=0).cache(compute_embeddings, ignore=["spec", "X", "X_test"])
    with _one_process_computes(folder / "locks" / f"{hashlib.sha256(key.encode()).hexdigest()[:20]}.lock"):
        if compute.check_call_in_cache(key, spec, X, X_test):
            log.info("%s embeddings of %d images read from the cache %s.", spec.backbone, _count(X, X_test), folder)
        result = compute(key, spec, X, X_test)
    _recent.clear()
    _recent[memo] = (X, X_test, result)  # the arrays kept alive: their ids stay theirs
    return result


def forget_in_memory() -> None:
    """This process forgets the embeddings it holds (tests: as a new process would start)."""
    _recent.clear()


def cache_key(spec: BackboneInputs, X: np.ndarray, X_test: np.ndarray | None) -> str:
    """Everything the embeddings depend on: a digest of the pixels (so of the image files and the
    image size), the backbone, its weights, the pooling, and the Keras version that defines it."""
    digest = hashlib.sha256()
    for pixels in (X, X_test):
        if pixels is None:
            digest.update(b"none")
            continue
        pixels = np.ascontiguousarray(pixels)
        digest.update(f"{pixels.dtype.str}{pixels.shape}".encode())
        digest.update(memoryview(pixels).cast("B"))
    return json.dumps({"backbone": spec.backbone, "weights": spec.weights_id, "pooling": spec.pooling,
                       "keras": metadata.version("keras"), "pixels": digest.hexdigest()}, sort_keys=True)


@contextlib.contextmanager
def _one_process_computes(lock: Path):
    """A parallel sweep's workers wait for the one computing a dataset's embeddings, then read
    them, instead of each running the backbone (joblib.Memory itself does not lock)."""
    try:
        lock.parent.mkdir(parents=True, exist_ok=True)
    except OSError:  # a read-only cache: joblib.Memory says so and computes without it
        pass
    with one_at_a_time(lock):
        yield


def _count(X, X_test) -> int:
    return len(X) + (0 if X_test is None else len(X_test))


# -- the backbone ----------------------------------------------------------------------------------

def compute_embeddings(key: str, spec: BackboneInputs, X: np.ndarray, X_test: np.ndarray | None):
    """Every image through the frozen backbone once (Keras's predict), a chunk at a time. `key`
    (cache_key) names the result in the cache."""
    from imbalance_lab.models.pretrained import feature_extractor  # imports TensorFlow

    started = time.perf_counter()
    with _fixed_random_state(RANDOM_BACKBONE_SEED):
        extractor = feature_extractor(spec.backbone, spec.weights, tuple(X.shape[1:]), spec.pooling)
    out = [None if pixels is None else _predict(extractor, pixels) for pixels in (X, X_test)]
    computed["count"] += 1
    log.info("Computed %s embeddings of %d images (%s) in %.1f s, once for every run of this study.",
             spec.backbone, _count(X, X_test), "x".join(map(str, X.shape[1:])), time.perf_counter() - started)
    return out[0], out[1]


def _predict(extractor, pixels: np.ndarray) -> np.ndarray:
    parts = [extractor.predict(_as_float(pixels[i:i + IMAGES_PER_CALL]), batch_size=BATCH_SIZE, verbose=0)
             for i in range(0, len(pixels), IMAGES_PER_CALL)]
    return np.concatenate(parts).astype("float32").reshape(len(pixels), -1)


@contextlib.contextmanager
def _fixed_random_state(seed: int):
    """Keras draws its initializers' seeds from Python's `random`: seeded here for the backbone's
    build and put back after, so the run's own random stream goes on as if nothing was built."""
    python, numpy = random.getstate(), np.random.get_state()
    random.seed(seed)
    np.random.seed(seed)
    try:
        yield
    finally:
        random.setstate(python)
        np.random.set_state(numpy)
