"""A user's own images: a folder with one sub-folder per class (the layout Keras's
`image_dataset_from_directory` and `flow_from_directory` read), and optionally a test folder with
the same classes. Images are decoded with Pillow, resized to `image_size` and kept as 0-255 uint8
pixels; the split, and for `model=pretrained` the backbone, take them from there."""

from __future__ import annotations

import logging
import os
from collections import Counter
from pathlib import Path

import numpy as np
from hydra.utils import to_absolute_path
from PIL import Image, UnidentifiedImageError

from imbalance_lab.data.raw import RawData
from imbalance_lab.errors import ImbalanceLabError

log = logging.getLogger(__name__)

EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif")   # Keras's own list for image folders
COLOR_MODES = {"rgb": ("RGB", 3), "grayscale": ("L", 1)}
# Bytes per pixel value while loading: the uint8 pixels plus the float32 copy the split scales
# (or the backbone reads in batches).
BYTES_PER_VALUE = 1 + 4


def load_image_folder(path: str | None = None, test_path: str | None = None, image_size=(64, 64),
                      color_mode: str = "rgb", memory_budget_gb: float | None = None) -> RawData:
    """Every image under `path/<class>/` (sub-folders of a class included), labelled by its class
    folder's name; `test_path/<class>/` becomes the fixed test set, else the test split is drawn
    from `path`, stratified."""
    if not path:
        raise ImbalanceLabError("dataset=image_folder needs a folder: add dataset.path=DIR, with one sub-folder "
                                "of images per class (DIR/cat/*.png, DIR/dog/*.png).")
    height, width = _image_size(image_size)
    if color_mode not in COLOR_MODES:
        raise ImbalanceLabError(f"dataset.color_mode={color_mode!r} is not one of {list(COLOR_MODES)}; "
                                f"choose one of those.")
    train_folder = _folder(path, "dataset.path")
    test_folder = _folder(test_path, "dataset.test_path") if test_path else None
    train = class_files(train_folder, "dataset.path")
    test = class_files(test_folder, "dataset.test_path") if test_folder else None
    if test is not None:
        _check_test_classes(train, test, path, test_path)
    channels = COLOR_MODES[color_mode][1]
    n_images = sum(map(len, train.values())) + (sum(map(len, test.values())) if test else 0)
    check_memory(n_images, (height, width, channels), memory_budget_gb,
                 f"dataset.path={path}" + (f" with dataset.test_path={test_path}" if test else ""))
    sizes: Counter = Counter()
    X, y = read_images(train, (height, width), color_mode, sizes)
    X_test, y_test = read_images(test, (height, width), color_mode, sizes) if test else (None, None)
    _report_sizes(sizes, (height, width), path)
    counts = ", ".join(f"{label} {len(files)}" for label, files in train.items())
    description = f"image folder {train_folder.name}: {len(y)} images of {height}x{width}x{channels} ({counts})"
    if test:
        description += f"; test folder {test_folder.name}: {len(y_test)} images"
    source = str(train_folder) + (f" + test {test_folder}" if test else "")
    return RawData(X, y, X_test, y_test, is_image=True, description=description, source=source)


def _image_size(image_size) -> tuple[int, int]:
    size = list(image_size) if isinstance(image_size, list | tuple) else [image_size]
    if len(size) != 2 or not all(isinstance(s, int) and not isinstance(s, bool) and s > 0 for s in size):
        raise ImbalanceLabError(f"dataset.image_size={list(size)} is not two positive whole numbers; give "
                                f"[height, width], e.g. dataset.image_size=[64,64].")
    return int(size[0]), int(size[1])


def _folder(path: str, key: str) -> Path:
    """Relative paths are relative to where the user ran the command, not Hydra's output folder."""
    folder = Path(to_absolute_path(os.path.expanduser(str(path))))
    if not folder.exists():
        raise ImbalanceLabError(f"{key}={path} does not exist (looked for {folder}); give a folder with one "
                                f"sub-folder of images per class, absolute or relative to where you run the command.")
    if not folder.is_dir():
        raise ImbalanceLabError(f"{key}={path} is a file, not a folder; give the folder that holds one sub-folder "
                                f"of images per class.")
    return folder


def class_files(folder: Path, key: str) -> dict[str, list[Path]]:
    """{class name: its image files}, classes and files in sorted order (as Keras lists them)."""
    classes = sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not classes:
        loose = [p for p in folder.iterdir() if p.suffix.lower() in EXTENSIONS]
        if loose:
            raise ImbalanceLabError(f"{key}={folder} holds {len(loose)} images but no class sub-folders; put each "
                                    f"class's images in a folder of its own ({folder}/<class>/).")
        raise ImbalanceLabError(f"{key}={folder} is empty: it has no class sub-folders; give the folder that holds "
                                f"one sub-folder of images per class.")
    found, ignored = {}, []
    for class_folder in classes:
        images = []
        for root, dirs, files in os.walk(class_folder):
            dirs[:] = sorted(d for d in dirs if not d.startswith("."))
            for name in sorted(files):
                if name.startswith("."):
                    continue
                (images if Path(name).suffix.lower() in EXTENSIONS else ignored).append(Path(root) / name)
        if not images:
            raise ImbalanceLabError(f"The class folder {class_folder} ({key}) has no images ({'/'.join(e[1:] for e in EXTENSIONS)}); "
                                    f"add its images or remove the folder.")
        found[class_folder.name] = images
    if ignored:
        log.warning("%s: ignored %d file(s) that are not %s images, e.g. %s; convert them if they are images.",
                    folder, len(ignored), "/".join(e[1:] for e in EXTENSIONS), ignored[0])
    return found


def _check_test_classes(train: dict, test: dict, path: str, test_path: str) -> None:
    extra = [c for c in test if c not in train]
    if extra:
        raise ImbalanceLabError(f"dataset.test_path={test_path} has class folder(s) {extra} that dataset.path={path} "
                                f"lacks; a model cannot learn a class it never sees in training: add those folders to "
                                f"the training folder or remove them from the test folder.")
    absent = [c for c in train if c not in test]
    if absent:
        log.warning("dataset.test_path=%s has no folder for class(es) %s: their test recall is undefined.",
                    test_path, absent)


def check_memory(n_images: int, shape: tuple[int, int, int], budget_gb: float | None, folders: str) -> None:
    """Before decoding anything: the pixels and their float copy must fit the budget."""
    need = n_images * int(np.prod(shape)) * BYTES_PER_VALUE
    machine = _physical_memory()
    budget = float(budget_gb) * 1024**3 if budget_gb is not None else machine / 2
    if need > budget:
        where = (f"dataset.memory_budget_gb={budget_gb}" if budget_gb is not None else
                 f"half of this machine's {_size(machine)} (dataset.memory_budget_gb)")
        raise ImbalanceLabError(
            f"{folders} holds {n_images:,} images: at {'x'.join(map(str, shape))} "
            f"they need about {_size(need)} in memory (the pixels and a float copy), more than {where}; "
            f"use a smaller dataset.image_size, a subset of the folder, or raise dataset.memory_budget_gb.")


def _size(n_bytes: float) -> str:
    return f"{n_bytes / 1024**3:.1f} GB" if n_bytes >= 1024**3 else f"{n_bytes / 1024**2:.1f} MB"


def _physical_memory() -> int:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return 8 * 1024**3


def read_images(files_by_class: dict[str, list[Path]], size: tuple[int, int], color_mode: str,
                sizes: Counter) -> tuple[np.ndarray, np.ndarray]:
    """(n, height, width, channels) uint8 pixels and the class name of each; `sizes` counts the
    images' own (width, height) before resizing."""
    mode, channels = COLOR_MODES[color_mode]
    files = [(label, f) for label, fs in files_by_class.items() for f in fs]
    X = np.empty((len(files), *size, channels), dtype="uint8")
    for i, (_, file) in enumerate(files):
        pixels, own_size = read_image(file, size, mode)
        X[i] = pixels.reshape(*size, channels)
        sizes[own_size] += 1
    return X, np.array([label for label, _ in files])


def read_image(file: Path, size: tuple[int, int], mode: str) -> tuple[np.ndarray, tuple[int, int]]:
    """One image: its first frame (GIF), in `mode`, resized to `size` = (height, width) bilinearly
    (Keras's default for image folders); and its own (width, height)."""
    try:
        with Image.open(file) as image:
            own_size = image.size
            image = image.convert(mode)
            if image.size != (size[1], size[0]):
                image = image.resize((size[1], size[0]), Image.Resampling.BILINEAR)
            return np.asarray(image), own_size
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as err:
        raise ImbalanceLabError(f"{file} is not an image Pillow can read ({err}); remove it or replace it with a "
                                f"{'/'.join(e[1:] for e in EXTENSIONS)} image.") from None


def _report_sizes(sizes: Counter, size: tuple[int, int], path: str) -> None:
    """Said once per load: images of several sizes are all resized, some stretched."""
    target = (size[1], size[0])
    shown = ", ".join(f"{w}x{h} ({n})" for (w, h), n in sizes.most_common(4))
    if len(sizes) > 1:
        log.warning("dataset.path=%s: the images come in %d sizes (width x height, count: %s%s); each was resized to "
                    "%dx%d (dataset.image_size, height x width), which stretches those of another aspect ratio.",
                    path, len(sizes), shown, ", ..." if len(sizes) > 4 else "", size[0], size[1])
    elif sizes and next(iter(sizes)) != target:
        log.info("dataset.path=%s: images of %s resized to %dx%d (dataset.image_size).", path, shown, size[0], size[1])
