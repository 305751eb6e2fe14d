"""The report's figures (matplotlib, Agg backend: no display needed).

Every text that comes from the runs (options, combinations, class names, metric names) is drawn
literally, never as mathtext (`parse_math=False`: a label `$x$` shows `$x$`), and whole: long labels
wrap, they are never cut."""

from __future__ import annotations

import textwrap
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402


def row_normalised(cm: np.ndarray) -> np.ndarray:
    """Each row divided by its sum (recall per true class); a row without samples stays 0."""
    rows = cm.sum(axis=1, keepdims=True)
    return np.divide(cm, rows, out=np.zeros(cm.shape, dtype=float), where=rows > 0)


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
