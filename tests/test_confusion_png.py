"""The run's confusion matrix PNG (drawn with Pillow): a valid image that grows with the classes,
each cell in matplotlib's "Blues" at its place, values written in, nothing clipped at the edges."""

from __future__ import annotations

import warnings
from collections import Counter

import matplotlib
import numpy as np
import pytest
from PIL import Image

from imbalance_lab.report.plots import cell_texts, confusion_layout, confusion_matrix_png, row_normalised

TITLE = "test macro-F1 0.523"
NAMES = ["cat", "class_with_long_name", "dog", "another_long_class_label", "x"]


def blues(value: float) -> tuple[int, int, int]:
    """The colour matplotlib itself gives a normalised value in "Blues", as 8-bit RGB."""
    return tuple(round(c * 255) for c in matplotlib.colormaps["Blues"](value)[:3])


def labels_for(k: int) -> list[str]:
    return [NAMES[i] if i < len(NAMES) else f"c{i}" for i in range(k)]


def matrix(k: int, peak: tuple[int, int]) -> np.ndarray:
    """Small counts everywhere, a diagonal, and one largest count at `peak` (off the diagonal)."""
    cm = np.arange(k * k).reshape(k, k) % 3 + 5 * np.eye(k, dtype=int)
    cm[peak] = cm.max() + 40
    return cm


def draw(tmp_path, k: int, cm: np.ndarray | None = None, labels=None):
    cm = matrix(k, (k - 1, 0)) if cm is None else cm
    labels = labels_for(k) if labels is None else labels
    out = confusion_matrix_png(cm, labels, tmp_path / f"cm{k}.png", title=TITLE)
    image = Image.open(out)
    image.load()
    return out, image.convert("RGB"), confusion_layout(labels, TITLE)


def cell_colour(image: Image.Image, box: tuple[int, int, int, int]) -> tuple[int, int, int]:
    """The cell's background: its most common colour (the value written in covers far less)."""
    return Counter(image.crop(box).getdata()).most_common(1)[0][0]


@pytest.fixture(scope="module")
def drawn(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("cm")
    return {k: draw(tmp, k) for k in (2, 5, 25)}


def test_a_valid_png_that_grows_with_the_classes_and_is_not_blank(drawn):
    sizes = []
    for k, (out, image, layout) in drawn.items():
        with Image.open(out) as raw:
            assert raw.format == "PNG" and raw.size == layout.size
        colours = image.getcolors(maxcolors=1 << 20)
        assert colours is not None and len(colours) > 20, f"{k} classes: only {len(colours)} colours"
        assert blues(1.0) in {c for _, c in colours}          # the largest count's cell
        sizes.append(image.size)
    assert all(a[0] < b[0] and a[1] < b[1] for a, b in zip(sizes, sizes[1:])), sizes


@pytest.mark.parametrize("k", [2, 5, 25])
def test_each_cell_has_the_blues_colour_of_its_count_and_the_darkest_is_the_largest(drawn, k):
    _, image, layout = drawn[k]
    cm = matrix(k, (k - 1, 0))
    colours = {(i, j): cell_colour(image, layout.cell_box(0, i, j)) for i in range(k) for j in range(k)}
    darkest = min(colours, key=lambda cell: sum(colours[cell]))
    assert darkest == (k - 1, 0) and colours[darkest] == blues(1.0)
    peak_x, peak_y = layout.cell_centre(0, k - 1, 0)
    if k > 20:                                   # no value written in: the centre pixel is the cell's colour
        assert image.getpixel((peak_x, peak_y)) == blues(1.0)
    for (i, j), colour in colours.items():
        assert np.abs(np.subtract(colour, blues(cm[i, j] / cm.max()))).max() <= 1, (i, j)


def test_values_are_written_in_up_to_20_classes_white_on_dark_cells(drawn):
    _, image, layout = drawn[5]
    peak = image.crop(layout.cell_box(0, 4, 0)).getcolors(maxcolors=1 << 16)
    light = image.crop(layout.cell_box(0, 0, 1)).getcolors(maxcolors=1 << 16)
    assert (255, 255, 255) in {c for _, c in peak}          # white text on the darkest cell
    assert min(sum(c) for _, c in light) < 100                 # black text on a light one
    _, image, layout = drawn[25]
    assert len(image.crop(layout.cell_box(0, 4, 0)).getcolors()) == 1   # 25 classes: cells left plain


@pytest.mark.parametrize("k", [2, 5, 25])
def test_nothing_is_clipped_at_the_image_edges(drawn, k):
    _, image, _ = drawn[k]
    pixels = np.asarray(image)
    frame = np.concatenate([pixels[:4].reshape(-1, 3), pixels[-4:].reshape(-1, 3),
                            pixels[:, :4].reshape(-1, 3), pixels[:, -4:].reshape(-1, 3)])
    assert (frame == 255).all()


@pytest.mark.parametrize("k", [5, 25])
def test_tick_labels_line_up_with_the_cell_centres(drawn, k):
    """Left labels: their ink is centred on the row's centre. Rotated labels under the grid: each
    one's upper end (the text's end) is right under its tick."""
    _, image, layout = drawn[k]
    ink = np.asarray(image.convert("L")) < 128
    half = layout.cell // 2
    for panel in (0, 1):
        x, y = layout.grids[panel]
        labels = ink[:, x - layout.left + 30: x - 6]        # right of the "true" label, left of the ticks
        under = ink[y + layout.side + 5: y + layout.side + 18]
        for i in range(k):
            cx, cy = layout.cell_centre(panel, i, i)
            rows = np.flatnonzero(labels[cy - half: cy + half].any(axis=1))
            assert abs((rows.min() + rows.max()) / 2 - half) <= 1.5, (panel, i)
            cols = np.flatnonzero(under[:, cx - half: cx + half].any(axis=0))
            assert abs(cols.max() - half) <= 3, (panel, i)


def test_a_class_never_seen_in_the_test_set_is_a_row_of_zeros(tmp_path):
    cm = matrix(5, (0, 3))
    cm[2] = 0
    with warnings.catch_warnings():
        warnings.simplefilter("error")               # no division by zero on the way either
        _, image, layout = draw(tmp_path, 5, cm, labels=list(range(5)))
    assert cell_texts(row_normalised(cm), 2)[2] == ["0.00"] * 5
    assert cell_texts(cm, 0)[0] == [str(v) for v in cm[0]]
    for j in range(5):
        assert cell_colour(image, layout.cell_box(1, 2, j)) == blues(0.0)
        assert cell_colour(image, layout.cell_box(0, 2, j)) == blues(0.0)
