"""Image folders written by the tests and benchmarks (nothing downloaded): the forum thread's six
expressions, each class a colour and a bright square of its own over noise, so that a backbone's
features separate them."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

# The forum thread (cnn-accuracy-83-percent.txt): training and test images per class.
THREAD_CLASSES = ("anger", "disgust", "happiness", "neutral", "sadness", "surprise")
THREAD_TRAIN_COUNTS = (1935, 2908, 5778, 6693, 2505, 1195)
THREAD_TEST_COUNTS = (646, 970, 1927, 2232, 836, 399)


def scaled_counts(counts, largest: int, smallest: int = 1) -> list[int]:
    """The thread's proportions with the largest class at `largest` images (none below `smallest`)."""
    counts = np.asarray(counts, dtype=float)
    return [max(smallest, int(round(c))) for c in counts / counts.max() * largest]


def class_image(rng: np.random.Generator, c: int, size=(32, 32), channels: int = 3) -> np.ndarray:
    h, w = size
    pixels = rng.normal(110, 35, (h, w, channels))
    pixels += 25 * np.sin(np.arange(channels) + c)            # the class's tint
    top, left = (c * h // 7) % (h - h // 4), (c * 5 * w // 11) % (w - w // 4)
    pixels[top:top + h // 4, left:left + w // 4] += 90         # and its square
    return np.clip(pixels, 0, 255).astype("uint8")


def write_folder(root: Path, counts, classes=THREAD_CLASSES, size=(32, 32), seed: int = 0, ext: str = "png",
                 mode: str = "RGB") -> Path:
    """root/<class>/<i>.<ext> for each class, `counts[c]` images of `size` (height, width)."""
    rng = np.random.default_rng(seed)
    channels = 1 if mode == "L" else 3
    for c, (name, n) in enumerate(zip(classes, counts)):
        folder = root / name
        folder.mkdir(parents=True, exist_ok=True)
        for i in range(n):
            pixels = class_image(rng, c, size, channels)
            Image.fromarray(pixels[..., 0] if channels == 1 else pixels, mode).save(folder / f"{i:05d}.{ext}")
    return root
