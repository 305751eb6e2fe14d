"""The report's figures (matplotlib, Agg backend: no display needed)."""

from __future__ import annotations

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

def heatmap_png(means, path: str | Path, metric: str) -> Path:
    """Mean metric for each pair of options of two axes (a pandas pivot table), values written in."""
    values = means.to_numpy(dtype=float)
    n_rows, n_cols = values.shape
    fig, ax = plt.subplots(figsize=(max(4.0, 1.1 * n_cols + 2.5), max(3.0, 0.5 * n_rows + 1.8)))
    image = ax.imshow(values, cmap="viridis", aspect="auto")
    ax.set(xticks=range(n_cols), yticks=range(n_rows), xticklabels=[str(c) for c in means.columns],
           yticklabels=[str(i) for i in means.index], xlabel=means.columns.name, ylabel=means.index.name,
           title=f"mean {metric}")
    ax.tick_params(axis="x", labelrotation=30)
    middle = np.nanmean(values) if np.isfinite(values).any() else 0
    for i in range(n_rows):
        for j in range(n_cols):
            if np.isfinite(values[i, j]):
                ax.text(j, i, f"{values[i, j]:.3f}", ha="center", va="center", fontsize=8,
                        color="black" if values[i, j] > middle else "white")
    fig.colorbar(image, ax=ax)
    return _save(fig, path)


def recall_bars_png(recalls, path: str | Path) -> Path:
    """Per-class recall (columns: class labels) of a few combinations (rows), grouped by class."""
    labels, names = list(recalls.columns), list(recalls.index)
    width = 0.8 / max(1, len(names))
    fig, ax = plt.subplots(figsize=(max(6.0, 0.9 * len(labels) * max(1, len(names)) * 0.35 + 3), 4))
    for i, name in enumerate(names):
        ax.bar(np.arange(len(labels)) + (i - (len(names) - 1) / 2) * width, recalls.loc[name].to_numpy(float),
               width, label=_short(name))
    ax.set(xticks=range(len(labels)), xticklabels=labels, xlabel="true class", ylabel="test recall",
           ylim=(0, 1.05), title="per-class recall: best combinations and the baseline")
    ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.15), ncol=2)
    return _save(fig, path)


def confusion_pair_png(panels: dict[str, tuple[list, np.ndarray]], path: str | Path) -> Path:
    """Row-normalised confusion matrices (recall per true class) side by side, one per title."""
    fig, axes = plt.subplots(1, len(panels), figsize=(4.6 * len(panels), 4.4), squeeze=False)
    for ax, (title, (labels, cm)) in zip(axes[0], panels.items(), strict=True):
        normalised = row_normalised(np.asarray(cm, dtype=float))
        k = len(labels)
        ax.imshow(normalised, cmap="Blues", vmin=0, vmax=1)
        ax.set(xticks=range(k), yticks=range(k), xticklabels=labels, yticklabels=labels, xlabel="predicted",
               ylabel="true")
        ax.set_title(_short(title), fontsize=8)
        if k <= 20:
            for i in range(k):
                for j in range(k):
                    ax.text(j, i, f"{normalised[i, j]:.2f}", ha="center", va="center", fontsize=7,
                            color="white" if normalised[i, j] > 0.5 else "black")
    return _save(fig, path)


def f1_vs_naive_png(runs, path: str | Path, metric: str, naive: str) -> Path:
    """One point per run: its metric against the majority-class predictor's macro-F1 on the same
    test set; on or under the diagonal the run learned nothing beyond the priors."""
    fig, ax = plt.subplots(figsize=(5.2, 4.6))
    collapsed = runs["collapsed"].astype(bool).to_numpy()
    x, y = runs[naive].to_numpy(float), runs[metric].to_numpy(float)
    ax.scatter(x[~collapsed], y[~collapsed], s=18, alpha=0.7, label="learned", color="tab:blue")
    ax.scatter(x[collapsed], y[collapsed], s=30, marker="x", label="collapsed", color="tab:red")
    top = float(np.nanmax(np.r_[x, y, 0.05])) * 1.05
    ax.plot([0, top], [0, top], color="grey", linestyle="--", linewidth=1, label="= naive")
    ax.set(xlim=(0, top), ylim=(0, max(top, 1.0) if np.nanmax(np.r_[y, 0]) > 0.9 else top),
           xlabel=f"{naive} (always the majority class)", ylabel=metric, title="every run against the naive baseline")
    ax.legend(fontsize=8)
    return _save(fig, path)


def _short(name: str, limit: int = 60) -> str:
    return name if len(name) <= limit else name[: limit - 1] + "…"


def _save(fig, path: str | Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return Path(path)
