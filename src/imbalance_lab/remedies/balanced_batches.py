"""The training batches of sampler=balanced_batch, as a Keras data source (remedies/sampling.py's
BalancedBatchSampler makes it when the run trains)."""

from __future__ import annotations

import keras
import numpy as np


class BalancedBatches(keras.utils.PyDataset):
    """One epoch = `n_batches` class-balanced batches of (X, Y[, sample_weight]) rows."""

    def __init__(self, X, Y, sample_weight, batch_size: int, batches_per_epoch: int | None, seed: int):
        super().__init__()
        self.X, self.Y, self.sample_weight = X, Y, sample_weight
        labels = np.argmax(Y, axis=1)
        # rows grouped by class (one index array, no copy of X): class c owns order[start_c : start_c + size_c]
        self.order = np.argsort(labels, kind="stable")
        sizes = np.bincount(labels, minlength=Y.shape[1])
        self.sizes, self.starts = sizes[sizes > 0], (np.cumsum(sizes) - sizes)[sizes > 0]
        self.batch_size, self.seed, self.epoch = int(batch_size), int(seed), 0
        self.n_batches = int(batches_per_epoch or -(-len(X) // self.batch_size))

    def __len__(self) -> int:
        return self.n_batches

    def draw(self, index: int) -> np.ndarray:
        """Row indices of batch `index` of the current epoch."""
        rng = np.random.default_rng((self.seed, self.epoch, int(index)))
        classes = rng.integers(len(self.sizes), size=self.batch_size)
        within = (rng.random(self.batch_size) * self.sizes[classes]).astype("int64")
        return self.order[self.starts[classes] + within]

    def __getitem__(self, index: int):
        rows = self.draw(index)
        if self.sample_weight is None:
            return self.X[rows], self.Y[rows]
        return self.X[rows], self.Y[rows], np.asarray(self.sample_weight)[rows]

    def on_epoch_end(self):
        self.epoch += 1
