"""The report's figures (matplotlib, Agg backend: no display needed) and each run's confusion matrix
(drawn directly with Pillow: it is made once per run, hundreds of times in a sweep).

In the report's figures every text that comes from the runs (options, combinations, class names,
metric names) is drawn literally, never as mathtext (`parse_math=False`: a label `$x$` shows `$x$`),
and whole: long labels wrap, they are never cut."""

from __future__ import annotations

import functools
import math
import textwrap
from dataclasses import dataclass
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from PIL import Image, ImageDraw, ImageFont  # noqa: E402

# -- a run's confusion matrix (Pillow) ------------------------------------------------------------

FONT_FILE = Path(matplotlib.get_data_path()) / "fonts" / "ttf" / "DejaVuSans.ttf"
MARGIN, GAP, PAD, TICK = 14, 36, 4, 4      # pixels
ANGLE = 45                                  # rotation of the x tick labels, degrees
TITLE_SIZE, PANEL_TITLE_SIZE, AXIS_SIZE = 15, 14, 12
MAX_VALUES = 20                             # more classes than this: no values written in the cells
INK, BORDER, WHITE = (0, 0, 0), (38, 38, 38), (255, 255, 255)


@dataclass(frozen=True)
class ConfusionLayout:
    """Where everything goes: the image size and the top-left corner of each panel's grid of
    `k` x `k` square cells of `cell` pixels (panel 0: counts, panel 1: row-normalised)."""

    labels: tuple[str, ...]
    cell: int
    size: tuple[int, int]
    grids: tuple[tuple[int, int], tuple[int, int]]
    left: int                               # from a panel's left edge (its "true" label) to its grid
    rotate: bool
    tick_size: int
    title_y: int

    @property
    def k(self) -> int:
        return len(self.labels)

    @property
    def side(self) -> int:
        return self.k * self.cell

    def cell_box(self, panel: int, row: int, col: int) -> tuple[int, int, int, int]:
        """(left, top, right, bottom) of a cell, right and bottom exclusive."""
        x, y = self.grids[panel]
        return x + col * self.cell, y + row * self.cell, x + (col + 1) * self.cell, y + (row + 1) * self.cell

    def cell_centre(self, panel: int, row: int, col: int) -> tuple[int, int]:
        left, top, right, bottom = self.cell_box(panel, row, col)
        return (left + right) // 2, (top + bottom) // 2


def confusion_matrix_png(cm: np.ndarray, labels, path: str | Path, title: str = "") -> Path:
    """Counts and row-normalised (recall per true class) side by side, values written in, in the
    colours of matplotlib's "Blues". Drawn with Pillow: over 10x faster than the same figure in matplotlib."""
    cm = np.asarray(cm)
    layout = confusion_layout(labels, title)
    image = Image.new("RGB", layout.size, WHITE)
    draw = ImageDraw.Draw(image)
    for panel, (values, name, decimals) in enumerate(((cm, "counts", 0), (row_normalised(cm), "row-normalised", 2))):
        _draw_panel(image, draw, layout, panel, values, name, decimals)
    if title:
        draw.text((layout.size[0] // 2, layout.title_y), title, fill=INK, font=_font(TITLE_SIZE), anchor="mt")
    image.save(path, format="PNG", compress_level=1)  # lossless at any level: 1 saves ~3 ms a run for ~6 % more bytes
    return Path(path)


def row_normalised(cm: np.ndarray) -> np.ndarray:
    """Each row divided by its sum (recall per true class); a row without samples stays 0."""
    rows = cm.sum(axis=1, keepdims=True)
    return np.divide(cm, rows, out=np.zeros(cm.shape, dtype=float), where=rows > 0)


def cell_texts(values: np.ndarray, decimals: int) -> list[list[str]]:
    """The values written in the cells: counts with 0 decimals, the row-normalised panel with 2."""
    return [[f"{v:.{decimals}f}" for v in row] for row in np.asarray(values, dtype=float)]


def confusion_layout(labels, title: str = "") -> ConfusionLayout:
    """Cells shrink from 60 px (2 classes) to 20 px (30 classes) while the grid keeps growing;
    the margins make room for the widest tick label, rotated by ANGLE when there are many or long ones."""
    names = tuple(_short(str(label), 30) for label in labels)
    k = len(names)
    cell = max(16, min(60, round(300 / k + 10)))
    tick_size = max(8, min(12, round(cell * 0.5)))
    rotate = k > 6 or max(len(name) for name in names) > 4
    tick_font, axis_h = _font(tick_size), _line_height(_font(AXIS_SIZE))
    widths = [tick_font.getlength(name) for name in names]
    h = _line_height(tick_font)
    # Panel edge -> grid: room for the widest label on the left, hence also for any rotated label
    # under the grid, which reaches at most w cos(ANGLE) + h/2 sin(ANGLE) < w + h left of its tick.
    left = axis_h + 2 * PAD + math.ceil(max(widths)) + PAD + TICK
    if rotate:
        sin, cos = math.sin(math.radians(ANGLE)), math.cos(math.radians(ANGLE))
        under = math.ceil(max(widths) * sin + h * cos) + PAD
    else:
        under = h + PAD
    below = TICK + PAD + under + PAD + axis_h                              # grid -> panel bottom
    top = MARGIN + (_line_height(_font(TITLE_SIZE)) + 2 * PAD if title else 0)
    grid_y = top + _line_height(_font(PANEL_TITLE_SIZE)) + 2 * PAD
    content = 2 * (left + k * cell) + GAP
    width = max(content, math.ceil(_font(TITLE_SIZE).getlength(title))) + 2 * MARGIN
    x = (width - content) // 2 + left
    return ConfusionLayout(labels=names, cell=cell, size=(width, grid_y + k * cell + below + MARGIN),
                           grids=((x, grid_y), (x + k * cell + GAP + left, grid_y)), left=left, rotate=rotate,
                           tick_size=tick_size, title_y=MARGIN)


def _draw_panel(image: Image.Image, draw: ImageDraw.ImageDraw, layout: ConfusionLayout, panel: int,
                values: np.ndarray, name: str, decimals: int) -> None:
    """One heatmap: coloured cells, values, border, ticks and tick labels, title and axis labels."""
    x, y = layout.grids[panel]
    side = layout.side
    top = values.max() if values.max() > 0 else 1
    shades = np.minimum((values / top * 256).astype(int), 255)    # as matplotlib's Normalize + cmap
    cells = Image.fromarray(_blues()[shades]).resize((side, side), Image.Resampling.NEAREST)
    image.paste(cells, (x, y))
    draw.rectangle((x - 1, y - 1, x + side, y + side), outline=BORDER)
    if layout.k <= MAX_VALUES:
        _draw_values(image, layout, panel, cell_texts(values, decimals), dark=values > top / 2)
    _draw_ticks(image, draw, layout, panel)
    centre = x + side // 2
    draw.text((centre, y - PAD - 2), name, fill=INK, font=_font(PANEL_TITLE_SIZE), anchor="md")
    axis_font = _font(AXIS_SIZE)
    draw.text((centre, layout.size[1] - MARGIN), "predicted", fill=INK, font=axis_font, anchor="md")
    true = _text_mask("true", AXIS_SIZE, 90)
    image.paste(INK, (x - layout.left + PAD, y + (side - true.height) // 2), true)


def _draw_values(image: Image.Image, layout: ConfusionLayout, panel: int, texts: list[list[str]],
                 dark: np.ndarray) -> None:
    """Each cell's value centred in it: white on the dark half of the colour scale, black elsewhere."""
    longest = max((text for row in texts for text in row), key=len)
    size = _fitting_size(longest, max(8, min(13, round(layout.cell * 0.36))), layout.cell - 4)
    for i, row in enumerate(texts):
        for j, text in enumerate(row):
            mask = _text_mask(text, size)
            cx, cy = layout.cell_centre(panel, i, j)
            image.paste(WHITE if dark[i, j] else INK, (cx - mask.width // 2, cy - mask.height // 2), mask)


def _draw_ticks(image: Image.Image, draw: ImageDraw.ImageDraw, layout: ConfusionLayout, panel: int) -> None:
    """Tick marks at the cell centres, labels right-aligned on the left and under the grid (rotated so
    that each one ends under its tick when they are many or long)."""
    x, y = layout.grids[panel]
    bottom = y + layout.side
    font = _font(layout.tick_size)
    lift = math.ceil(_line_height(font) / 2 * math.cos(math.radians(ANGLE)))
    for j, name in enumerate(layout.labels):
        cx, cy = layout.cell_centre(panel, j, j)
        draw.line((x - 1 - TICK, cy, x - 1, cy), fill=BORDER)
        draw.line((cx, bottom, cx, bottom + TICK), fill=BORDER)
        mask = _text_mask(name, layout.tick_size)
        image.paste(INK, (x - 1 - TICK - PAD - mask.width, cy - mask.height // 2), mask)
        if not layout.rotate:
            draw.text((cx, bottom + TICK + PAD), name, fill=INK, font=font, anchor="mt")
            continue
        mask = _text_mask(name, layout.tick_size, ANGLE)
        end_x, end_y = _rotated_end(name, layout.tick_size, ANGLE, mask.size)
        image.paste(INK, (cx - end_x, bottom + TICK + PAD + lift - end_y), mask)


@functools.lru_cache(maxsize=4096)
def _text_mask(text: str, size: int, angle: int = 0) -> Image.Image:
    """A mask ("L" image, one line high) of the text turned `angle` degrees anticlockwise, to paste
    in any colour. Cached: the same values and labels come back in every cell and every run."""
    font = _font(size)
    mask = Image.new("L", (math.ceil(font.getlength(text)), _line_height(font)), 0)
    ImageDraw.Draw(mask).text((0, 0), text, fill=255, font=font, anchor="la")
    if angle == 0:
        return mask
    if angle == 90:
        return mask.transpose(Image.Transpose.ROTATE_90)
    return mask.rotate(angle, resample=Image.Resampling.BICUBIC, expand=True)


def _rotated_end(text: str, size: int, angle: int, rotated: tuple[int, int]) -> tuple[int, int]:
    """Where the end of the text's visual middle line (a third of an em above the baseline: halfway
    up lowercase and capitals alike) lands in its rotated mask, which keeps the centre in the centre."""
    font = _font(size)
    half = font.getlength(text) / 2
    below_centre = font.getmetrics()[0] - size / 3 - _line_height(font) / 2
    cos, sin = math.cos(math.radians(angle)), math.sin(math.radians(angle))
    return (round(rotated[0] / 2 + half * cos + below_centre * sin),
            round(rotated[1] / 2 - half * sin + below_centre * cos))


def _fitting_size(text: str, size: int, width: int) -> int:
    """The largest font size not above `size` (and not under 6 px) at which `text` fits in `width`."""
    while size > 6 and _font(size).getlength(text) > width:
        size -= 1
    return size


def _line_height(font: ImageFont.FreeTypeFont) -> int:
    ascent, descent = font.getmetrics()
    return ascent + descent


@functools.lru_cache(maxsize=64)
def _font(size: int) -> ImageFont.FreeTypeFont:
    """DejaVu Sans, the font matplotlib ships (and draws the report's figures with)."""
    return ImageFont.truetype(str(FONT_FILE), size)


@functools.lru_cache(maxsize=1)
def _blues() -> np.ndarray:
    """matplotlib's "Blues" as a 256 x 3 uint8 lookup table (index = shade, as its colormap does)."""
    cmap = matplotlib.colormaps["Blues"]
    return np.round(cmap(np.arange(cmap.N))[:, :3] * 255).astype(np.uint8)


def _short(name: str, limit: int = 60) -> str:
    return name if len(name) <= limit else name[: limit - 1] + "…"


# -- the report's figures ---------------------------------------------------------------------------

FOREST_ROWS = 20            # the leaderboard figure shows the top rows only (the table has them all)
LITERAL = {"parse_math": False}


def wrap(text, width: int) -> str:
    """The whole text on lines of at most `width` characters (a long word is split, never dropped)."""
    text = str(text)
    return "\n".join(textwrap.wrap(text, width, break_long_words=True, break_on_hyphens=False)) or text


def leaderboard_figure(board, metric: str, top: int = FOREST_ROWS):
    """The best rows' means with their 95 % intervals; the best row's interval shaded, so a row
    whose interval reaches into the band cannot be told apart from it."""
    rows = board.dropna(subset=["mean"]).head(top)
    notes = [f"{r.seeds} seed(s), {r.verdict}" for r in rows.itertuples()]
    fig, ax = _forest(list(rows["combination"]), rows["mean"], rows["ci_low"], rows["ci_high"], notes)
    best = rows[rows["verdict"] == "best"]
    if not best.empty:
        ax.axvspan(best["ci_low"].iloc[0], best["ci_high"].iloc[0], color="tab:green", alpha=0.12, lw=0)
    ax.set_xlabel(f"{metric}: mean over seeds, 95 % t interval", **LITERAL)
    ax.set_title(wrap(f"top {len(rows)} of {len(board)} rows", 70), **LITERAL)
    return fig


def effects_figure(effects, metric: str):
    """Each value's mean paired difference from its axis's reference, with its 95 % interval;
    values without pairs have no point and say so."""
    labels = [f"{r.axis}: {r.value} vs {r.reference}" for r in effects.itertuples()]
    notes = [f"{r.n_pairs} pair(s)" if r.n_pairs else "no pairs" for r in effects.itertuples()]
    fig, ax = _forest(labels, effects["mean_diff"], effects["ci_low"], effects["ci_high"], notes)
    ax.axvline(0, color="grey", linestyle="--", linewidth=1)
    ax.set_xlabel(f"paired difference in {metric} (value minus reference), 95 % t interval", **LITERAL)
    ax.set_title("effects, each against its axis's reference, in runs that agree on everything else",
                 fontsize=9, **LITERAL)
    return fig


def heatmap_figure(grid, metric: str):
    """A PairedGrid: each cell's mean paired difference from the reference cell, ± its interval's
    half-width, and its number of pairs; cells without pairs are grey and say so."""
    mean, half, count = (frame.to_numpy(dtype=float) for frame in (grid.mean, grid.half_width, grid.n_pairs))
    n_rows, n_cols = mean.shape
    row_names = [wrap(v, 24) for v in grid.mean.index]
    col_names = [wrap(v, 18) for v in grid.mean.columns]
    fig, ax = plt.subplots(figsize=(max(5.0, 1.5 * n_cols + 3.5), max(3.2, 0.75 * n_rows + 2.2)))
    limit = float(np.nanmax(np.abs(mean))) if np.isfinite(mean).any() and np.nanmax(np.abs(mean)) > 0 else 1.0
    image = ax.imshow(np.ma.masked_invalid(mean), cmap="RdBu", vmin=-limit, vmax=limit, aspect="auto")
    ax.set_facecolor("0.88")
    for i in range(n_rows):
        for j in range(n_cols):
            if (grid.mean.index[i], grid.mean.columns[j]) == grid.reference:
                text = f"reference\n{int(count[i, j])} run(s)"
            elif count[i, j] == 0:
                text = "no pairs"
            else:
                spread = f"±{half[i, j]:.3f}\n" if np.isfinite(half[i, j]) else ""
                text = f"{mean[i, j]:+.3f}\n{spread}n={int(count[i, j])}"
            dark = np.isfinite(mean[i, j]) and abs(mean[i, j]) > 0.6 * limit
            ax.text(j, i, text, ha="center", va="center", fontsize=7, color="white" if dark else "black", **LITERAL)
    ax.set_xticks(range(n_cols), labels=col_names, rotation=30, ha="right", rotation_mode="anchor", **LITERAL)
    ax.set_yticks(range(n_rows), labels=row_names, **LITERAL)
    ax.set_xlabel(grid.columns, **LITERAL)
    ax.set_ylabel(grid.rows, **LITERAL)
    ax.set_title(wrap(f"{metric}: paired difference from {grid.rows}={grid.reference[0]}, "
                      f"{grid.columns}={grid.reference[1]} (same other axes, data and seed)", 60),
                 fontsize=9, **LITERAL)
    fig.colorbar(image, ax=ax).set_label("mean paired difference", **LITERAL)
    return fig


def recall_bars_figure(recalls):
    """Per-class recall (columns: class labels) of a few combinations (rows), grouped by class."""
    labels, names = list(recalls.columns), list(recalls.index)
    width = 0.8 / max(1, len(names))
    fig, ax = plt.subplots(figsize=(max(6.0, 0.9 * len(labels) * max(1, len(names)) * 0.35 + 3), 4.5))
    for i, name in enumerate(names):
        ax.bar(np.arange(len(labels)) + (i - (len(names) - 1) / 2) * width, recalls.loc[name].to_numpy(float),
               width, label=wrap(name, 60))
    ax.set_xticks(range(len(labels)), labels=[wrap(label, 16) for label in labels],
                  rotation=30 if len(labels) > 6 else 0, ha="right" if len(labels) > 6 else "center", **LITERAL)
    ax.set(xlabel="true class", ylabel="test recall", ylim=(0, 1.05))
    ax.set_title("per-class recall: best combinations and the baseline", **LITERAL)
    legend = ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.2), ncol=1)
    for text in legend.get_texts():
        text.set_parse_math(False)
    return fig


def confusion_figure(panels: dict[str, tuple[list, np.ndarray]]):
    """Row-normalised confusion matrices (recall per true class) side by side, one per title,
    their rows and columns labelled with the classes' names."""
    longest = max((len(str(label)) for _, (labels, _) in panels.items() for label in labels), default=1)
    size = 4.6 + min(longest, 16) * 0.06
    fig, axes = plt.subplots(1, len(panels), figsize=(size * len(panels), size), squeeze=False, layout="constrained")
    for ax, (title, (labels, cm)) in zip(axes[0], panels.items(), strict=True):
        normalised = row_normalised(np.asarray(cm, dtype=float))
        k = len(labels)
        ax.imshow(normalised, cmap="Blues", vmin=0, vmax=1)
        names = [wrap(label, 16) for label in labels]
        ax.set_xticks(range(k), labels=names, rotation=45, ha="right", rotation_mode="anchor", **LITERAL)
        ax.set_yticks(range(k), labels=names, **LITERAL)
        ax.set(xlabel="predicted", ylabel="true")
        ax.set_title(wrap(title, 50), fontsize=8, **LITERAL)
        if k <= 20:
            for i in range(k):
                for j in range(k):
                    ax.text(j, i, f"{normalised[i, j]:.2f}", ha="center", va="center", fontsize=7,
                            color="white" if normalised[i, j] > 0.5 else "black")
    return fig


def f1_vs_naive_figure(runs, metric: str, naive: str):
    """One point per run: its metric against the majority-class predictor's macro-F1 on the same
    test set; on or under the diagonal the run learned nothing beyond the priors."""
    fig, ax = plt.subplots(figsize=(5.2, 4.6))
    collapsed = runs["collapsed"].astype(bool).to_numpy()
    x, y = runs[naive].to_numpy(float), runs[metric].to_numpy(float)
    ax.scatter(x[~collapsed], y[~collapsed], s=18, alpha=0.7, label="learned", color="tab:blue")
    ax.scatter(x[collapsed], y[collapsed], s=30, marker="x", label="collapsed", color="tab:red")
    top = float(np.nanmax(np.r_[x, y, 0.05])) * 1.05
    ax.plot([0, top], [0, top], color="grey", linestyle="--", linewidth=1, label="= naive")
    ax.set(xlim=(0, top), ylim=(0, max(top, 1.0) if np.nanmax(np.r_[y, 0]) > 0.9 else top))
    ax.set_xlabel(f"{naive} (always the majority class)", **LITERAL)
    ax.set_ylabel(metric, **LITERAL)
    ax.set_title("every run against the naive baseline", **LITERAL)
    ax.legend(fontsize=8)
    return fig


def save(fig, path: str | Path) -> Path:
    """The figure as a PNG, its bounding box grown to every text (nothing is cut at the edge)."""
    fig.savefig(path, dpi=90, bbox_inches="tight")
    plt.close(fig)
    return Path(path)


def _forest(labels: list[str], means, lows, highs, notes: list[str]):
    """One row per label, first at the top: a point at the mean and a bar over the interval, and a
    note to the right of the plot."""
    labels = [wrap(label, 44) for label in labels]
    lines = sum(label.count("\n") + 1 for label in labels)
    fig, ax = plt.subplots(figsize=(9.0, max(2.4, 0.24 * lines + 0.35 * len(labels) + 1.2)))
    y = np.arange(len(labels))[::-1]
    for yi, mean, low, high in zip(y, np.asarray(means, float), np.asarray(lows, float), np.asarray(highs, float)):
        if not np.isfinite(mean):
            continue
        error = [[mean - low], [high - mean]] if np.isfinite(low) else None
        ax.errorbar(mean, yi, xerr=error, fmt="o", color="tab:blue", ecolor="tab:blue", capsize=3, markersize=4)
    ax.set_yticks(y, labels=labels, fontsize=8, **LITERAL)
    ax.set_ylim(-0.7, len(labels) - 0.3)
    ax.grid(axis="x", color="0.9")
    for yi, note in zip(y, notes):
        ax.annotate(note, xy=(1.01, yi), xycoords=("axes fraction", "data"), va="center", fontsize=7, **LITERAL)
    return fig, ax
