"""Matplotlib figures (Agg backend: no display needed)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402


def confusion_matrix_png(cm: np.ndarray, labels, path: str | Path, title: str = "") -> Path:
    """Counts and row-normalised (recall per true class) side by side."""
    k = len(labels)
    rows = cm.sum(axis=1, keepdims=True)
    normalised = np.divide(cm, rows, out=np.zeros(cm.shape, dtype=float), where=rows > 0)
    size = max(3.2, 0.45 * k + 2)
    fig, axes = plt.subplots(1, 2, figsize=(2 * size + 1, size))
    for ax, values, name, fmt in ((axes[0], cm, "counts", "d"), (axes[1], normalised, "row-normalised", ".2f")):
        image = ax.imshow(values, cmap="Blues", vmin=0, vmax=values.max() if values.max() > 0 else 1)
        ax.set(xticks=range(k), yticks=range(k), xticklabels=labels, yticklabels=labels,
               xlabel="predicted", ylabel="true", title=name)
        ax.tick_params(axis="x", labelrotation=45 if k > 6 else 0)
        if k <= 20:
            limit = values.max() / 2 if values.max() > 0 else 0.5
            for i in range(k):
                for j in range(k):
                    ax.text(j, i, format(values[i, j], fmt), ha="center", va="center", fontsize=8,
                            color="white" if values[i, j] > limit else "black")
        fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return Path(path)
